// RUN: mod-opt %s --mod-expand-routed-blocks=routing=threshold -split-input-file -allow-unregistered-dialect -verify-diagnostics | FileCheck %s
// RUN: not mod-opt %s --mod-expand-routed-blocks=routing=causal -allow-unregistered-dialect -split-input-file 2>&1 | FileCheck %s --check-prefix=BADOPT

// BADOPT: unknown routing 'causal' (expected topk, threshold or predictor)

// Threshold routing: no top-k, the body runs on every token with the
// positions of unrouted tokens (router logit <= 0) moved past the row's last
// position, and only routed tokens take the gated output.
// CHECK-LABEL: func.func @threshold
// CHECK-SAME: (%[[X:.*]]: tensor<2x4x8xf32>, %[[P:.*]]: tensor<2x4xi32>, %[[W:.*]]: tensor<8xf32>)
// CHECK-NOT: mod.topk
// CHECK-NOT: mod.gather
// CHECK: %[[R:.*]] = mod.router %[[X]], %[[W]] : tensor<2x4x8xf32>, tensor<8xf32> -> tensor<2x4xf32>
// CHECK: %[[MIN:.*]] = arith.constant -2147483648 : i32
// CHECK: %[[FILL:.*]] = linalg.fill ins(%[[MIN]] : i32) outs(%{{.*}} : tensor<2xi32>)
// CHECK: %[[MAX:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]} ins(%[[P]] : tensor<2x4xi32>) outs(%[[FILL]] : tensor<2xi32>)
// CHECK: arith.maxsi
// CHECK: %[[PK:.*]] = linalg.generic {{.*}} ins(%[[P]], %[[R]], %[[MAX]] : tensor<2x4xi32>, tensor<2x4xf32>, tensor<2xi32>)
// CHECK: ^bb0(%[[PI:.*]]: i32, %[[RI:.*]]: f32, %[[MI:.*]]: i32, %{{.*}}: i32):
// CHECK: %[[ROUTED:.*]] = arith.cmpf ogt, %[[RI]], %{{.*}} : f32
// CHECK: %[[LATER:.*]] = arith.addi %[[MI]], %{{.*}} : i32
// CHECK: arith.select %[[ROUTED]], %[[PI]], %[[LATER]] : i32
// CHECK: %[[D:.*]] = "body.block"(%[[X]], %[[PK]]) : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<2x4x8xf32>
// CHECK: %[[OUT:.*]] = linalg.generic {{.*}} ins(%[[X]], %[[D]], %[[R]] : tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4xf32>)
// CHECK: ^bb0(%[[XI:.*]]: f32, %[[DI:.*]]: f32, %[[SI:.*]]: f32, %{{.*}}: f32):
// CHECK: %[[ROUTED2:.*]] = arith.cmpf ogt, %[[SI]], %{{.*}} : f32
// CHECK: %[[SCALED:.*]] = arith.mulf %[[SI]], %[[DI]] : f32
// CHECK: %[[SUM:.*]] = arith.addf %[[XI]], %[[SCALED]] : f32
// CHECK: arith.select %[[ROUTED2]], %[[SUM]], %[[XI]] : f32
// CHECK: return %[[OUT]]
func.func @threshold(%x: tensor<2x4x8xf32>, %p: tensor<2x4xi32>, %w: tensor<8xf32>) -> tensor<2x4x8xf32> {
  %o = mod.routed_block(%x, %p, %w) capacity(4)
      : (tensor<2x4x8xf32>, tensor<2x4xi32>, tensor<8xf32>) -> tensor<2x4x8xf32> {
  ^bb0(%xk: tensor<2x4x8xf32>, %pk: tensor<2x4xi32>):
    %d = "body.block"(%xk, %pk) : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<2x4x8xf32>
    mod.yield %d : tensor<2x4x8xf32>
  }
  return %o : tensor<2x4x8xf32>
}

// -----

// Sigmoid gate: applied to the routed token's own logit inside the
// combining generic.
// CHECK-LABEL: func.func @sigmoid
// CHECK: ^bb0(%[[XI:.*]]: f32, %[[DI:.*]]: f32, %[[SI:.*]]: f32, %{{.*}}: f32):
// CHECK: arith.cmpf ogt, %[[SI]]
// CHECK: %[[NEG:.*]] = arith.negf %[[SI]]
// CHECK: math.exp %[[NEG]]
// CHECK: %[[G:.*]] = arith.divf
// CHECK: arith.mulf %[[G]], %[[DI]]
func.func @sigmoid(%x: tensor<1x3x8xf32>, %p: tensor<1x3xi32>, %w: tensor<8xf32>) -> tensor<1x3x8xf32> {
  %o = mod.routed_block(%x, %p, %w) capacity(3) gate(sigmoid)
      : (tensor<1x3x8xf32>, tensor<1x3xi32>, tensor<8xf32>) -> tensor<1x3x8xf32> {
  ^bb0(%xk: tensor<1x3x8xf32>, %pk: tensor<1x3xi32>):
    %d = "body.block"(%xk, %pk) : (tensor<1x3x8xf32>, tensor<1x3xi32>) -> tensor<1x3x8xf32>
    mod.yield %d : tensor<1x3x8xf32>
  }
  return %o : tensor<1x3x8xf32>
}

// -----

// Every block is checked before any is rewritten: the first block is valid,
// the second is not, and the pass fails naming the second.
func.func @capacity_below_s(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
  %a = mod.routed_block(%x, %p, %w) capacity(4)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x4x8xf32>, %pk: tensor<1x4xi32>):
    mod.yield %xk : tensor<1x4x8xf32>
  }
  // expected-error @+1 {{threshold routing needs capacity equal to the sequence length 4 (the block runs on every token and masks the unrouted ones), got capacity 2}}
  %b = mod.routed_block(%a, %p, %w) capacity(2)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x2x8xf32>, %pk: tensor<1x2xi32>):
    mod.yield %xk : tensor<1x2x8xf32>
  }
  return %b : tensor<1x4x8xf32>
}
