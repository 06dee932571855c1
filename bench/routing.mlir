// Routing alone at paper scale (B=4, S=2048, D=1024, K=256 = 12.5%): the
// fused router + top-k + gather kernel and the scale + scatter + residual
// kernel, with the identity as the block (d = xk).
func.func @routing(%x: tensor<4x2048x1024xf32> {mod.name = "x"},
                   %p: tensor<4x2048xi32> {mod.name = "positions"},
                   %w: tensor<1024xf32> {mod.name = "w"})
    -> (tensor<4x2048x1024xf32> {mod.name = "out"}) {
  %o = mod.routed_block(%x, %p, %w) capacity(256)
      : (tensor<4x2048x1024xf32>, tensor<4x2048xi32>, tensor<1024xf32>) -> tensor<4x2048x1024xf32> {
  ^bb0(%xk: tensor<4x256x1024xf32>, %pk: tensor<4x256xi32>):
    mod.yield %xk : tensor<4x256x1024xf32>
  }
  return %o : tensor<4x2048x1024xf32>
}
