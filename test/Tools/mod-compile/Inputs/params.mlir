func.func @forward(%w: tensor<2x3xf32> {mod.name = "layer.weight", mod.kind = "parameter", mod.init = "normal:0.02"},
                   %b: tensor<3xf32> {mod.name = "layer.bias", mod.kind = "parameter", mod.init = "zeros"},
                   %x: tensor<4x2xi32> {mod.name = "tokens"}) -> (tensor<2x3xf32> {mod.name = "out"}) {
  return %w : tensor<2x3xf32>
}
