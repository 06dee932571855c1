// Gradient check of the mod op adjoints: mod.routed_block with the identity
// and the sigmoid gate (router weight through the gate, block weights
// through the gathered rows), and the primitive ops written out (router,
// top-k values, gather, scatter_add to residual, update and scale), with the
// router aux loss in the objective, and once more with the causal-routing
// predictor. Tolerance: relative 1e-6 per direction.
// RUN: mod-opt %s --mod-convert-float-type --mod-generate-grad -o %t.mlir
// RUN: rm -rf %t.dir && mod-compile %t.mlir -o %t.dir
// RUN: mod-gradcheck %t.dir --tol 1e-6 | FileCheck %s
// RUN: mod-opt %s --mod-convert-float-type --mod-generate-grad="aux-loss=0.5 predictor=true predictor-hidden=3 predictor-init-std=0.5" -o %t.p.mlir
// RUN: rm -rf %t.p.dir && mod-compile %t.p.mlir -o %t.p.dir
// RUN: mod-gradcheck %t.p.dir --tol 1e-6 --aux-weight 0.5 | FileCheck %s --check-prefix=PRED
// CHECK: 6 directions, 6 with a nonzero derivative
// CHECK-SAME: 0 failed
// PRED: 19 directions, 19 with a nonzero derivative
// PRED-SAME: 0 failed

#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#v = affine_map<(d0, d1, d2) -> (d2)>
func.func @forward(%x: tensor<2x4x8xf32> {mod.name = "x", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %m: tensor<8xf32> {mod.name = "h.0.m", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %w0: tensor<8xf32> {mod.name = "h.0.mod.router.weight", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %w1: tensor<8xf32> {mod.name = "h.1.mod.router.weight", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %w2: tensor<8xf32> {mod.name = "h.2.mod.router.weight", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %positions: tensor<2x4xi32> {mod.name = "positions"})
    -> (tensor<2x4x8xf32> {mod.name = "logits"}) {
  %h1 = mod.routed_block(%x, %positions, %w0) capacity(2)
      : (tensor<2x4x8xf32>, tensor<2x4xi32>, tensor<8xf32>) -> tensor<2x4x8xf32> {
  ^bb0(%xk: tensor<2x2x8xf32>, %pk: tensor<2x2xi32>):
    %e = tensor.empty() : tensor<2x2x8xf32>
    %d = linalg.generic {indexing_maps = [#id, #v, #id], iterator_types = ["parallel", "parallel", "parallel"]}
        ins(%xk, %m : tensor<2x2x8xf32>, tensor<8xf32>) outs(%e : tensor<2x2x8xf32>) {
    ^bb0(%a: f32, %b: f32, %o: f32):
      %p = arith.mulf %a, %b : f32
      %t = math.tanh %p : f32
      linalg.yield %t : f32
    } -> tensor<2x2x8xf32>
    mod.yield %d : tensor<2x2x8xf32>
  }
  %h2 = mod.routed_block(%h1, %positions, %w1) capacity(4) gate(sigmoid)
      : (tensor<2x4x8xf32>, tensor<2x4xi32>, tensor<8xf32>) -> tensor<2x4x8xf32> {
  ^bb0(%xk: tensor<2x4x8xf32>, %pk: tensor<2x4xi32>):
    %e = tensor.empty() : tensor<2x4x8xf32>
    %d = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
        ins(%xk : tensor<2x4x8xf32>) outs(%e : tensor<2x4x8xf32>) {
    ^bb0(%a: f32, %o: f32):
      %t = arith.mulf %a, %a : f32
      linalg.yield %t : f32
    } -> tensor<2x4x8xf32>
    mod.yield %d : tensor<2x4x8xf32>
  }
  // The same ops written out, K = 1.
  %r = mod.router %h2, %w2 : tensor<2x4x8xf32>, tensor<8xf32> -> tensor<2x4xf32>
  %idx, %val = mod.topk %r k(1) : tensor<2x4xf32> -> tensor<2x1xi32>, tensor<2x1xf32>
  %xk = mod.gather %h2[%idx] : tensor<2x4x8xf32>, tensor<2x1xi32> -> tensor<2x1x8xf32>
  %e = tensor.empty() : tensor<2x1x8xf32>
  %d = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%xk : tensor<2x1x8xf32>) outs(%e : tensor<2x1x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %t = math.sin %a : f32
    linalg.yield %t : f32
  } -> tensor<2x1x8xf32>
  %out = mod.scatter_add %h2[%idx], %d scale %val
      : tensor<2x4x8xf32>, tensor<2x1xi32>, tensor<2x1x8xf32>, tensor<2x1xf32> -> tensor<2x4x8xf32>
  return %out : tensor<2x4x8xf32>
}
