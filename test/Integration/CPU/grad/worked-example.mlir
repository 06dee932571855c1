// The loss, aux loss and agreement values against hand computation on the
// paper's worked example (ARCHITECTURE.md section 2): router logits
// r = (0.34, -0.08, 0.29, 0.27), K = 1, so token 0 is the only member.
//  - aux_loss = mean(log(1 + e^r) - m r) = 0.719332566 (m = 1, 0, 0, 0)
//  - agreement: r > 0 at tokens 0, 2, 3, membership at 0: 2 of 4 = 0.5
//  - a zero-initialized predictor predicts logit 0 everywhere: BCE log 2 =
//    0.693147181, agreement 3 of 4 = 0.75
//  - the block adds 0.34 * u with u = 0, so the logits are x itself; with
//    every target 3, loss = mean(logsumexp(x_i) - x_i[3]) = 2.06388651, and
//    0 when every target is -1 (ignored).
// RUN: mod-opt %s --mod-generate-grad="predictor=true predictor-hidden=2 predictor-init-std=0" -o %t.mlir
// RUN: rm -rf %t.dir && mod-compile %t.mlir -o %t.dir
// RUN: mod-gradcheck %t.dir --print-scalars --target 3 | FileCheck %s
// RUN: mod-gradcheck %t.dir --print-scalars --target -1 | FileCheck %s --check-prefix=IGNORED
// CHECK: loss = 2.063886
// CHECK: aux_loss.block0 = 0.7193325
// CHECK: agreement.block0 = 0.5
// CHECK: predictor_loss.block0 = 0.6931471
// CHECK: predictor_agreement.block0 = 0.75
// IGNORED: loss = 0
func.func @forward(%u: tensor<1x1x8xf32> {mod.name = "u", mod.kind = "parameter", mod.init = "zeros"},
                   %positions: tensor<1x4xi32> {mod.name = "positions"})
    -> (tensor<1x4x8xf32> {mod.name = "logits"}) {
  %x = arith.constant dense<[[[0.5, -0.2, 0.1, 0.3, 0.0, 0.4, -0.1, 0.2],
                              [-0.1, 0.5, 0.2, -0.3, 0.1, 0.0, 0.4, -0.2],
                              [0.3, 0.3, -0.4, 0.1, 0.2, 0.1, 0.0, 0.5],
                              [0.0, 0.1, 0.2, 0.6, -0.1, 0.3, 0.2, 0.0]]]> : tensor<1x4x8xf32>
  %w = arith.constant dense<[0.2, 0.1, -0.1, 0.3, 0.2, 0.4, 0.0, 0.1]> : tensor<8xf32>
  %out = mod.routed_block(%x, %positions, %w) capacity(1)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x1x8xf32>, %pk: tensor<1x1xi32>):
    mod.yield %u : tensor<1x1x8xf32>
  }
  return %out : tensor<1x4x8xf32>
}
