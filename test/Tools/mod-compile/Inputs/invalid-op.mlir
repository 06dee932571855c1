func.func @forward(%r: tensor<1x4xf32>) -> tensor<1x5xi32> {
  %i, %v = mod.topk %r k(5) : tensor<1x4xf32> -> tensor<1x5xi32>, tensor<1x5xf32>
  return %i : tensor<1x5xi32>
}
