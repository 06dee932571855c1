// RUN: mod-opt %s --mod-expand-routed-blocks -split-input-file -allow-unregistered-dialect | FileCheck %s

// Identity gate: the top-k scores scale the block output directly.
// CHECK-LABEL: func.func @identity_gate
// CHECK-SAME: (%[[X:.*]]: tensor<2x4x8xf32>, %[[P:.*]]: tensor<2x4xi32>, %[[W:.*]]: tensor<8xf32>, %[[M:.*]]: tensor<8x8xf32>)
// CHECK-NOT: mod.routed_block
// CHECK: %[[R:.*]] = mod.router %[[X]], %[[W]] : tensor<2x4x8xf32>, tensor<8xf32> -> tensor<2x4xf32>
// CHECK: %[[IDX:.*]], %[[VAL:.*]] = mod.topk %[[R]] k(2) : tensor<2x4xf32> -> tensor<2x2xi32>, tensor<2x2xf32>
// CHECK: %[[XK:.*]] = mod.gather %[[X]][%[[IDX]]] : tensor<2x4x8xf32>, tensor<2x2xi32> -> tensor<2x2x8xf32>
// CHECK: %[[PK:.*]] = mod.gather %[[P]][%[[IDX]]] : tensor<2x4xi32>, tensor<2x2xi32> -> tensor<2x2xi32>
// The body is inlined on the gathered tokens.
// CHECK: %[[D:.*]] = "body.mlp"(%[[XK]], %[[PK]], %[[M]])
// CHECK-NOT: linalg.generic
// CHECK: %[[OUT:.*]] = mod.scatter_add %[[X]][%[[IDX]]], %[[D]] scale %[[VAL]] :
// CHECK: return %[[OUT]]
func.func @identity_gate(%x: tensor<2x4x8xf32>, %p: tensor<2x4xi32>, %w: tensor<8xf32>,
                         %m: tensor<8x8xf32>) -> tensor<2x4x8xf32> {
  %o = mod.routed_block(%x, %p, %w) capacity(2)
      : (tensor<2x4x8xf32>, tensor<2x4xi32>, tensor<8xf32>) -> tensor<2x4x8xf32> {
  ^bb0(%xk: tensor<2x2x8xf32>, %pk: tensor<2x2xi32>):
    %d = "body.mlp"(%xk, %pk, %m) : (tensor<2x2x8xf32>, tensor<2x2xi32>, tensor<8x8xf32>) -> tensor<2x2x8xf32>
    mod.yield %d : tensor<2x2x8xf32>
  }
  return %o : tensor<2x4x8xf32>
}

// -----

// Sigmoid gate: an attribute of the scatter on the raw top-k scores, not a
// separate elementwise op.
// CHECK-LABEL: func.func @sigmoid_gate
// CHECK: %[[IDX:.*]], %[[VAL:.*]] = mod.topk %{{.*}} k(1)
// CHECK-NOT: linalg.generic
// CHECK-NOT: math.exp
// CHECK: mod.scatter_add %{{.*}}[%[[IDX]]], %{{.*}} scale %[[VAL]] gate(sigmoid) :
func.func @sigmoid_gate(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
  %o = mod.routed_block(%x, %p, %w) capacity(1) gate(sigmoid)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x1x8xf32>, %pk: tensor<1x1xi32>):
    mod.yield %xk : tensor<1x1x8xf32>
  }
  return %o : tensor<1x4x8xf32>
}

// -----

// Two blocks in sequence: the second routes on the first one's output.
// CHECK-LABEL: func.func @two_blocks
// CHECK: %[[R0:.*]] = mod.router %[[X:.*]], %{{.*}}
// CHECK: %[[O0:.*]] = mod.scatter_add %[[X]]
// CHECK: mod.router %[[O0]], %{{.*}}
// CHECK: mod.topk %{{.*}} k(3)
// CHECK: mod.scatter_add %[[O0]]
func.func @two_blocks(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w0: tensor<8xf32>, %w1: tensor<8xf32>) -> tensor<1x4x8xf32> {
  %a = mod.routed_block(%x, %p, %w0) capacity(1)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x1x8xf32>, %pk: tensor<1x1xi32>):
    mod.yield %xk : tensor<1x1x8xf32>
  }
  %b = mod.routed_block(%a, %p, %w1) capacity(3)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x3x8xf32>, %pk: tensor<1x3xi32>):
    mod.yield %xk : tensor<1x3x8xf32>
  }
  return %b : tensor<1x4x8xf32>
}
