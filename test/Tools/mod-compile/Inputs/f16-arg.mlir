func.func @forward(%x: tensor<4xf16> {mod.name = "x"}) -> tensor<4xf16> {
  return %x : tensor<4xf16>
}
