// RUN: mod-opt %s --mod-lower-to-linalg -split-input-file | FileCheck %s

// CHECK-DAG: #[[X3:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[W1:.*]] = affine_map<(d0, d1, d2) -> (d2)>
// CHECK-DAG: #[[R2:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @router
// CHECK-SAME: (%[[X:.*]]: tensor<2x4x8xf32>, %[[W:.*]]: tensor<8xf32>)
// CHECK: %[[ZERO:.*]] = linalg.fill
// CHECK: %[[R:.*]] = linalg.generic {indexing_maps = [#[[X3]], #[[W1]], #[[R2]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%[[X]], %[[W]] : tensor<2x4x8xf32>, tensor<8xf32>) outs(%[[ZERO]] : tensor<2x4xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: return %[[R]]
func.func @router(%x: tensor<2x4x8xf32>, %w: tensor<8xf32>) -> tensor<2x4xf32> {
  %r = mod.router %x, %w : tensor<2x4x8xf32>, tensor<8xf32> -> tensor<2x4xf32>
  return %r : tensor<2x4xf32>
}

// -----

// Top-k: a radix select per row, rows in parallel. Keys in a total order
// (bitcast, flipped to unsigned order), four 8-bit histogram passes over the
// row (most significant digit first: shifts 24, 16, 8, 0), each followed by
// a scan of the 256 bins from the top, then one compaction pass in token
// order taking keys above the threshold and the first ties.
// CHECK-LABEL: func.func @topk
// CHECK-SAME: (%[[R:.*]]: tensor<2x8xf32>)
// CHECK: %[[RB:.*]] = bufferization.to_buffer %[[R]] read_only
// CHECK: %[[IB:.*]] = memref.alloc() : memref<2x3xi32>
// CHECK: %[[VB:.*]] = memref.alloc() : memref<2x3xf32>
// CHECK: scf.parallel (%[[ROW:.*]]) =
// CHECK: memref.alloca() : memref<8xi32>
// CHECK: arith.bitcast %{{.*}} : f32 to i32
// CHECK: %[[HIST:.*]] = memref.alloca() : memref<256xi32>
// CHECK-COUNT-4: arith.shrui
// CHECK: arith.cmpi ugt
// CHECK: arith.cmpi eq
// CHECK: scf.if
// CHECK: memref.store %{{.*}}, %[[IB]][%[[ROW]], %{{.*}}] : memref<2x3xi32>
// CHECK: memref.store %{{.*}}, %[[VB]][%[[ROW]], %{{.*}}] : memref<2x3xf32>
// CHECK: bufferization.to_tensor %[[IB]] restrict writable
// CHECK: bufferization.to_tensor %[[VB]] restrict writable
// CHECK-NOT: mod.topk
func.func @topk(%r: tensor<2x8xf32>) -> (tensor<2x3xi32>, tensor<2x3xf32>) {
  %i, %v = mod.topk %r k(3) : tensor<2x8xf32> -> tensor<2x3xi32>, tensor<2x3xf32>
  return %i, %v : tensor<2x3xi32>, tensor<2x3xf32>
}

// -----

// The key width follows the score type.
// CHECK-LABEL: func.func @topk_f64
// CHECK: arith.bitcast %{{.*}} : f64 to i64
func.func @topk_f64(%r: tensor<1x8xf64>) -> (tensor<1x2xi32>, tensor<1x2xf64>) {
  %i, %v = mod.topk %r k(2) : tensor<1x8xf64> -> tensor<1x2xi32>, tensor<1x2xf64>
  return %i, %v : tensor<1x2xi32>, tensor<1x2xf64>
}

// -----

// CHECK-LABEL: func.func @gather
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x4x5xf32>, %[[I:.*]]: tensor<2x3xi32>)
// CHECK: linalg.generic {{.*}} ins(%[[I]] : tensor<2x3xi32>) outs(%{{.*}} : tensor<2x3x4x5xf32>)
// CHECK: ^bb0(%[[IDX:.*]]: i32, %{{.*}}: f32):
// CHECK-DAG: %[[B:.*]] = linalg.index 0 : index
// CHECK-DAG: %[[T:.*]] = arith.index_cast %[[IDX]] : i32 to index
// CHECK-DAG: %[[D2:.*]] = linalg.index 2 : index
// CHECK-DAG: %[[D3:.*]] = linalg.index 3 : index
// CHECK: tensor.extract %[[X]][%[[B]], %[[T]], %[[D2]], %[[D3]]]
func.func @gather(%x: tensor<2x8x4x5xf32>, %i: tensor<2x3xi32>) -> tensor<2x3x4x5xf32> {
  %g = mod.gather %x[%i] : tensor<2x8x4x5xf32>, tensor<2x3xi32> -> tensor<2x3x4x5xf32>
  return %g : tensor<2x3x4x5xf32>
}

// -----

// CHECK-LABEL: func.func @scatter_add
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x4xf32>, %[[I:.*]]: tensor<2x3xi32>, %[[D:.*]]: tensor<2x3x4xf32>, %[[G:.*]]: tensor<2x3xf32>)
// CHECK: %[[OUT:.*]] = scf.for %[[B:.*]] = {{.*}} iter_args(%[[ACC:.*]] = %[[X]])
// CHECK: scf.for %[[J:.*]] = {{.*}} iter_args(%[[ACC2:.*]] = %[[ACC]])
// CHECK: %[[T32:.*]] = tensor.extract %[[I]][%[[B]], %[[J]]]
// CHECK: %[[T:.*]] = arith.index_cast %[[T32]]
// CHECK: %[[S:.*]] = tensor.extract %[[G]][%[[B]], %[[J]]]
// CHECK-NOT: math.exp
// CHECK: %[[DST:.*]] = tensor.extract_slice %[[ACC2]][%[[B]], %[[T]], 0] [1, 1, 4] [1, 1, 1]
// CHECK: %[[SRC:.*]] = tensor.extract_slice %[[D]][%[[B]], %[[J]], 0] [1, 1, 4] [1, 1, 1]
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} ins(%[[SRC]] : tensor<1x1x4xf32>) outs(%[[DST]] : tensor<1x1x4xf32>)
// CHECK: arith.mulf %[[S]]
// CHECK: tensor.insert_slice %[[SUM]] into %[[ACC2]][%[[B]], %[[T]], 0] [1, 1, 4] [1, 1, 1]
// CHECK: return %[[OUT]]
func.func @scatter_add(%x: tensor<2x8x4xf32>, %i: tensor<2x3xi32>, %d: tensor<2x3x4xf32>,
                       %g: tensor<2x3xf32>) -> tensor<2x8x4xf32> {
  %o = mod.scatter_add %x[%i], %d scale %g
      : tensor<2x8x4xf32>, tensor<2x3xi32>, tensor<2x3x4xf32>, tensor<2x3xf32> -> tensor<2x8x4xf32>
  return %o : tensor<2x8x4xf32>
}

// -----

// gate(sigmoid): each scale is gated once, before it multiplies the row.
// CHECK-LABEL: func.func @scatter_add_sigmoid
// CHECK-SAME: (%[[X:.*]]: tensor<1x4x2xf32>, %[[I:.*]]: tensor<1x2xi32>, %[[D:.*]]: tensor<1x2x2xf32>, %[[G:.*]]: tensor<1x2xf32>)
// CHECK: %[[S:.*]] = tensor.extract %[[G]]
// CHECK-NEXT: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK: %[[NEG:.*]] = arith.negf %[[S]]
// CHECK: %[[E:.*]] = math.exp %[[NEG]]
// CHECK: %[[DEN:.*]] = arith.addf %[[ONE]], %[[E]]
// CHECK: %[[GATE:.*]] = arith.divf %[[ONE]], %[[DEN]]
// CHECK: linalg.generic
// CHECK: arith.mulf %[[GATE]]
func.func @scatter_add_sigmoid(%x: tensor<1x4x2xf32>, %i: tensor<1x2xi32>, %d: tensor<1x2x2xf32>,
                               %g: tensor<1x2xf32>) -> tensor<1x4x2xf32> {
  %o = mod.scatter_add %x[%i], %d scale %g gate(sigmoid)
      : tensor<1x4x2xf32>, tensor<1x2xi32>, tensor<1x2x2xf32>, tensor<1x2xf32> -> tensor<1x4x2xf32>
  return %o : tensor<1x4x2xf32>
}
