// The paper's worked example (ARCHITECTURE.md section 2): S=4, D=8, K=1, B=1.
// The router picks token 0 (r = 0.34, -0.08, 0.29, 0.27); the block's output
// for it, scaled by r = 0.34, is added to row 0; rows 1-3 pass through.
//
//   mod-compile examples/worked-example.mlir --target=cpu -o out/
//   mod-run out/ --print
func.func @forward() -> (tensor<1x4xf32> {mod.name = "router"},
                         tensor<1x4x8xf32> {mod.name = "out"}) {
  %x = arith.constant dense<[[[0.5, -0.2, 0.1, 0.3, 0.0, 0.4, -0.1, 0.2],
                              [-0.1, 0.5, 0.2, -0.3, 0.1, 0.0, 0.4, -0.2],
                              [0.3, 0.3, -0.4, 0.1, 0.2, 0.1, 0.0, 0.5],
                              [0.0, 0.1, 0.2, 0.6, -0.1, 0.3, 0.2, 0.0]]]> : tensor<1x4x8xf32>
  %w = arith.constant dense<[0.2, 0.1, -0.1, 0.3, 0.2, 0.4, 0.0, 0.1]> : tensor<8xf32>
  %p = arith.constant dense<[[0, 1, 2, 3]]> : tensor<1x4xi32>
  %r = mod.router %x, %w : tensor<1x4x8xf32>, tensor<8xf32> -> tensor<1x4xf32>
  %out = mod.routed_block(%x, %p, %w) capacity(1)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x1x8xf32>, %pk: tensor<1x1xi32>):
    // The block's residual contribution for the routed token (the paper's d).
    %d = arith.constant dense<[[[0.10, 0.05, -0.02, 0.20, 0.00, 0.15, -0.05, 0.10]]]> : tensor<1x1x8xf32>
    mod.yield %d : tensor<1x1x8xf32>
  }
  return %r, %out : tensor<1x4xf32>, tensor<1x4x8xf32>
}
