// RUN: mod-opt %s --mod-lower-to-linalg -verify-diagnostics

// A routed block must be expanded first; the pass fails and says how.
func.func @unexpanded(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
  // expected-error @+1 {{must be expanded before lowering to linalg; run --mod-expand-routed-blocks first}}
  %o = mod.routed_block(%x, %p, %w) capacity(1)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x1x8xf32>, %pk: tensor<1x1xi32>):
    mod.yield %xk : tensor<1x1x8xf32>
  }
  return %o : tensor<1x4x8xf32>
}
