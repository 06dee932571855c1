// RUN: mod-opt %s --mod-expand-routed-blocks="routing=predictor predictor-hidden=3" -split-input-file -allow-unregistered-dialect -verify-diagnostics | FileCheck %s
// RUN: not mod-opt %s --mod-expand-routed-blocks="routing=predictor predictor-hidden=0" -allow-unregistered-dialect -split-input-file 2>&1 | FileCheck %s --check-prefix=BADHIDDEN

// BADHIDDEN: predictor-hidden must be positive, got 0

// Predictor routing: threshold routing whose decision is the predictor
// MLP's logit tanh(x W1 + b1) . w2 + b2 > 0. Its parameters, named after the
// router weight, are inserted after the leading parameters with training's
// init rules; the router logit still gates the routed tokens.
// CHECK-LABEL: func.func @predictor
// CHECK-SAME: (%[[W0:.*]]: tensor<8xf32> {mod.kind = "parameter", mod.name = "layers.1.mod.router.weight"},
// CHECK-SAME: %[[W1:.*]]: tensor<8x3xf32> {mod.init = "normal:0.02", mod.kind = "parameter", mod.name = "layers.1.mod.predictor.fc1.weight"},
// CHECK-SAME: %[[B1:.*]]: tensor<3xf32> {mod.init = "zeros", mod.kind = "parameter", mod.name = "layers.1.mod.predictor.fc1.bias"},
// CHECK-SAME: %[[W2:.*]]: tensor<3xf32> {mod.init = "normal:0.02", mod.kind = "parameter", mod.name = "layers.1.mod.predictor.fc2.weight"},
// CHECK-SAME: %[[B2:.*]]: tensor<f32> {mod.init = "zeros", mod.kind = "parameter", mod.name = "layers.1.mod.predictor.fc2.bias"},
// CHECK-SAME: %[[X:.*]]: tensor<2x4x8xf32>, %[[P:.*]]: tensor<2x4xi32>)
// CHECK-NOT: mod.topk
// CHECK: %[[R:.*]] = mod.router %[[X]], %[[W0]] : tensor<2x4x8xf32>, tensor<8xf32> -> tensor<2x4xf32>
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : tensor<2x4x8xf32> into tensor<8x8xf32>
// CHECK: %[[PRE:.*]] = linalg.matmul ins(%[[FLAT]], %[[W1]] : tensor<8x8xf32>, tensor<8x3xf32>)
// CHECK: %[[H:.*]] = linalg.generic {{.*}} ins(%[[PRE]], %[[B1]] : tensor<8x3xf32>, tensor<3xf32>)
// CHECK: math.tanh
// CHECK: %[[Q:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]} ins(%[[H]], %[[W2]], %[[B2]] : tensor<8x3xf32>, tensor<3xf32>, tensor<f32>)
// CHECK: %[[QB:.*]] = tensor.expand_shape %[[Q]] {{\[}}[0, 1]] output_shape [2, 4] : tensor<8xf32> into tensor<2x4xf32>
// CHECK: %[[PK:.*]] = linalg.generic {{.*}} ins(%[[P]], %[[QB]], %{{.*}} : tensor<2x4xi32>, tensor<2x4xf32>, tensor<2xi32>)
// CHECK: %[[D:.*]] = "body.block"(%[[X]], %[[PK]])
// CHECK: linalg.generic {{.*}} ins(%[[X]], %[[D]], %[[R]], %[[QB]] : tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4xf32>, tensor<2x4xf32>)
// CHECK: ^bb0(%[[XI:.*]]: f32, %[[DI:.*]]: f32, %[[RI:.*]]: f32, %[[QI:.*]]: f32, %{{.*}}: f32):
// CHECK: %[[ROUTED:.*]] = arith.cmpf ogt, %[[QI]], %{{.*}} : f32
// CHECK: %[[SCALED:.*]] = arith.mulf %[[RI]], %[[DI]] : f32
// CHECK: %[[SUM:.*]] = arith.addf %[[XI]], %[[SCALED]] : f32
// CHECK: arith.select %[[ROUTED]], %[[SUM]], %[[XI]] : f32
func.func @predictor(%w: tensor<8xf32> {mod.kind = "parameter", mod.name = "layers.1.mod.router.weight"}, %x: tensor<2x4x8xf32>, %p: tensor<2x4xi32>) -> tensor<2x4x8xf32> {
  %o = mod.routed_block(%x, %p, %w) capacity(4)
      : (tensor<2x4x8xf32>, tensor<2x4xi32>, tensor<8xf32>) -> tensor<2x4x8xf32> {
  ^bb0(%xk: tensor<2x4x8xf32>, %pk: tensor<2x4xi32>):
    %d = "body.block"(%xk, %pk) : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<2x4x8xf32>
    mod.yield %d : tensor<2x4x8xf32>
  }
  return %o : tensor<2x4x8xf32>
}

// -----

// Two blocks in one function each get their own predictor; a router weight
// without a name gives the block's name from its order.
// CHECK-LABEL: func.func @two
// CHECK-SAME: mod.name = "block0.mod.predictor.fc1.weight"
// CHECK-SAME: mod.name = "block0.mod.predictor.fc2.bias"
// CHECK-SAME: mod.name = "block1.mod.predictor.fc1.weight"
// CHECK-SAME: mod.name = "block1.mod.predictor.fc2.bias"
// CHECK-SAME: %{{.*}}: tensor<1x4x8xf32>, %{{.*}}: tensor<1x4xi32>, %{{.*}}: tensor<8xf32>)
// CHECK-COUNT-2: math.tanh
func.func @two(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
  %a = mod.routed_block(%x, %p, %w) capacity(4)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x4x8xf32>, %pk: tensor<1x4xi32>):
    mod.yield %xk : tensor<1x4x8xf32>
  }
  %b = mod.routed_block(%a, %p, %w) capacity(4)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x4x8xf32>, %pk: tensor<1x4xi32>):
    mod.yield %xk : tensor<1x4x8xf32>
  }
  return %b : tensor<1x4x8xf32>
}

// -----

// The capacity check of threshold routing applies (the pass fails before
// adding any parameter).
func.func @capacity(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
  // expected-error @+1 {{threshold routing needs capacity equal to the sequence length 4}}
  %b = mod.routed_block(%x, %p, %w) capacity(2)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x2x8xf32>, %pk: tensor<1x2xi32>):
    mod.yield %xk : tensor<1x2x8xf32>
  }
  return %b : tensor<1x4x8xf32>
}
