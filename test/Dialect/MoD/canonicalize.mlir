// RUN: mod-opt %s -canonicalize -split-input-file --mlir-elide-elementsattrs-if-larger=16 | FileCheck %s

// With k == S every token is chosen: the indices are 0..S-1 in every row and
// the values are the scores themselves.
// CHECK-LABEL: func.func @topk_k_equals_s
// CHECK-SAME: (%[[R:.*]]: tensor<2x3xf32>)
// CHECK-NOT: mod.topk
// CHECK: %[[IDX:.*]] = arith.constant dense<{{\[}}[0, 1, 2], [0, 1, 2]]> : tensor<2x3xi32>
// CHECK: return %[[IDX]], %[[R]]
func.func @topk_k_equals_s(%r: tensor<2x3xf32>) -> (tensor<2x3xi32>, tensor<2x3xf32>) {
  %i, %v = mod.topk %r k(3) : tensor<2x3xf32> -> tensor<2x3xi32>, tensor<2x3xf32>
  return %i, %v : tensor<2x3xi32>, tensor<2x3xf32>
}

// -----

// k < S must stay.
// CHECK-LABEL: func.func @topk_k_less_than_s
// CHECK: mod.topk %{{.*}} k(2)
func.func @topk_k_less_than_s(%r: tensor<2x3xf32>) -> (tensor<2x2xi32>, tensor<2x2xf32>) {
  %i, %v = mod.topk %r k(2) : tensor<2x3xf32> -> tensor<2x2xi32>, tensor<2x2xf32>
  return %i, %v : tensor<2x2xi32>, tensor<2x2xf32>
}

// -----

// A top-k over every token followed by a gather is the identity.
// CHECK-LABEL: func.func @gather_all_tokens
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4xf32>, %[[R:.*]]: tensor<2x3xf32>)
// CHECK-NOT: mod.gather
// CHECK: return %[[X]]
func.func @gather_all_tokens(%x: tensor<2x3x4xf32>, %r: tensor<2x3xf32>) -> tensor<2x3x4xf32> {
  %i, %v = mod.topk %r k(3) : tensor<2x3xf32> -> tensor<2x3xi32>, tensor<2x3xf32>
  %g = mod.gather %x[%i] : tensor<2x3x4xf32>, tensor<2x3xi32> -> tensor<2x3x4xf32>
  return %g : tensor<2x3x4xf32>
}

// -----

// A permutation is not the identity.
// CHECK-LABEL: func.func @gather_permuted
// CHECK: mod.gather
func.func @gather_permuted(%x: tensor<1x3x4xf32>) -> tensor<1x3x4xf32> {
  %i = arith.constant dense<[[0, 2, 1]]> : tensor<1x3xi32>
  %g = mod.gather %x[%i] : tensor<1x3x4xf32>, tensor<1x3xi32> -> tensor<1x3x4xf32>
  return %g : tensor<1x3x4xf32>
}

// -----

// Unused routing ops have no side effects and are removed.
// CHECK-LABEL: func.func @dead_routing
// CHECK-NOT: mod.
// CHECK: return
func.func @dead_routing(%x: tensor<1x4x8xf32>, %w: tensor<8xf32>) {
  %r = mod.router %x, %w : tensor<1x4x8xf32>, tensor<8xf32> -> tensor<1x4xf32>
  %i, %v = mod.topk %r k(2) : tensor<1x4xf32> -> tensor<1x2xi32>, tensor<1x2xf32>
  %g = mod.gather %x[%i] : tensor<1x4x8xf32>, tensor<1x2xi32> -> tensor<1x2x8xf32>
  return
}

// -----

// Issue 13 item 3: a top-k over every token of a huge [B,S] must not fold to
// a B x S constant (2^40 indices here: the folder used to abort with
// "SmallVector unable to grow"). It stays, and the values it returns are
// still the scores; a gather through its indices is still the identity.
// CHECK-LABEL: func.func @topk_k_equals_s_huge
// CHECK-SAME: (%[[X:.*]]: tensor<1048576x1048576x1xf32>, %[[R:.*]]: tensor<1048576x1048576xf32>)
// CHECK-NOT: arith.constant
// CHECK: %[[IDX:.*]], %{{.*}} = mod.topk %[[R]] k(1048576)
// CHECK-NOT: mod.gather
// CHECK: return %[[X]], %[[IDX]]
func.func @topk_k_equals_s_huge(%x: tensor<1048576x1048576x1xf32>, %r: tensor<1048576x1048576xf32>)
    -> (tensor<1048576x1048576x1xf32>, tensor<1048576x1048576xi32>) {
  %i, %v = mod.topk %r k(1048576) : tensor<1048576x1048576xf32> -> tensor<1048576x1048576xi32>, tensor<1048576x1048576xf32>
  %g = mod.gather %x[%i] : tensor<1048576x1048576x1xf32>, tensor<1048576x1048576xi32> -> tensor<1048576x1048576x1xf32>
  return %g, %i : tensor<1048576x1048576x1xf32>, tensor<1048576x1048576xi32>
}

// -----

// The largest top-k over every token that still folds: B*S = 65536.
// CHECK-LABEL: func.func @topk_k_equals_s_at_limit
// CHECK-NOT: mod.topk
// CHECK: arith.constant {{.*}} : tensor<2x32768xi32>
func.func @topk_k_equals_s_at_limit(%r: tensor<2x32768xf32>) -> (tensor<2x32768xi32>, tensor<2x32768xf32>) {
  %i, %v = mod.topk %r k(32768) : tensor<2x32768xf32> -> tensor<2x32768xi32>, tensor<2x32768xf32>
  return %i, %v : tensor<2x32768xi32>, tensor<2x32768xf32>
}

// -----

// One index more than the limit: the top-k stays.
// CHECK-LABEL: func.func @topk_k_equals_s_above_limit
// CHECK: mod.topk %{{.*}} k(65537)
func.func @topk_k_equals_s_above_limit(%r: tensor<1x65537xf32>) -> (tensor<1x65537xi32>, tensor<1x65537xf32>) {
  %i, %v = mod.topk %r k(65537) : tensor<1x65537xf32> -> tensor<1x65537xi32>, tensor<1x65537xf32>
  return %i, %v : tensor<1x65537xi32>, tensor<1x65537xf32>
}
