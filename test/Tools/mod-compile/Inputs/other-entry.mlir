func.func @bias(%b: tensor<3xf32> {mod.name = "layer.bias", mod.kind = "parameter", mod.init = "ones"}) -> (tensor<3xf32> {mod.name = "bias_out"}) {
  return %b : tensor<3xf32>
}
