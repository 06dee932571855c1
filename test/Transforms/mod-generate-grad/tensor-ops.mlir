// RUN: mod-opt %s --split-input-file --mod-generate-grad --canonicalize --cse | FileCheck %s
// Adjoints of tensor ops never copy into a view of a larger tensor (the
// CPU pipeline would need a runtime library for that): a slice's adjoint is
// a generic over the source that reads the slice's adjoint where it lies
// and yields zero elsewhere; concat's adjoints read their window.
// (The numerical checks of concat and insert_slice cannot run yet: their
// forward needs memrefCopy.)

// CHECK-LABEL: func.func @loss_and_grad(
// CHECK: tensor.concat
// CHECK: tensor.insert_slice
// CHECK-NOT: tensor.insert_slice
// insert_slice, source: the window of the result's adjoint (column + 1).
// CHECK: linalg.generic
// CHECK: %[[COL:.*]] = arith.addi %{{.*}}, %c1 : index
// CHECK: tensor.extract %{{.*}}[%c0, %{{.*}}, %[[COL]]] : tensor<1x3x4xf32>
// insert_slice, destination: zero inside the window.
// CHECK: linalg.generic
// CHECK: arith.select %{{.*}}, %cst{{.*}}, %in : f32
// extract_slice: the slice's adjoint inside, zero outside.
// CHECK: linalg.generic
// CHECK: %[[E:.*]] = tensor.extract %{{.*}} : tensor<1x2x2xf32>
// CHECK: arith.select %{{.*}}, %[[E]], %cst{{.*}} : f32
// concat: each input reads its window (columns 0-1, then 2-3).
// CHECK: linalg.generic
// CHECK: tensor.extract %{{.*}}[%c0, %{{.*}}, %{{.*}}] : tensor<1x3x4xf32>
// CHECK: linalg.generic
// CHECK: %[[C2:.*]] = arith.addi %{{.*}}, %c2 : index
// CHECK: tensor.extract %{{.*}}[%c0, %{{.*}}, %[[C2]]] : tensor<1x3x4xf32>
// CHECK: return
func.func @forward(%a: tensor<1x3x2xf32> {mod.name = "a", mod.kind = "parameter"},
                   %c: tensor<1x3x2xf32> {mod.name = "c", mod.kind = "parameter"})
    -> tensor<1x3x4xf32> {
  %cat = tensor.concat dim(2) %a, %c : (tensor<1x3x2xf32>, tensor<1x3x2xf32>) -> tensor<1x3x4xf32>
  %s = tensor.extract_slice %a[0, 1, 0] [1, 2, 2] [1, 1, 1] : tensor<1x3x2xf32> to tensor<1x2x2xf32>
  %ins = tensor.insert_slice %s into %cat[0, 0, 1] [1, 2, 2] [1, 1, 1] : tensor<1x2x2xf32> into tensor<1x3x4xf32>
  return %ins : tensor<1x3x4xf32>
}

// -----

// An embedding lookup: the table's adjoint is an scf.for nest over the
// lookup's iteration space that adds each element's adjoint at the row read.
// CHECK-LABEL: func.func @loss_and_grad(
// CHECK-SAME: %[[T:[^:]*]]: tensor<7x3xf32>
// (Canonicalization folds the size-1 batch loop.)
// CHECK: scf.for
// CHECK: scf.for
// CHECK: %[[OLD:.*]] = tensor.extract %{{.*}}[%[[ROW:.*]], %{{.*}}] : tensor<7x3xf32>
// CHECK: %[[NEW:.*]] = arith.addf %[[OLD]], %{{.*}} : f32
// CHECK: tensor.insert %[[NEW]] into %{{.*}}[%[[ROW]], %{{.*}}] : tensor<7x3xf32>
func.func @forward(%t: tensor<7x3xf32> {mod.name = "t", mod.kind = "parameter"},
                   %ids: tensor<1x2xi32> {mod.name = "tokens"}) -> tensor<1x2x3xf32> {
  %e = tensor.empty() : tensor<1x2x3xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%ids : tensor<1x2xi32>) outs(%e : tensor<1x2x3xf32>) {
  ^bb0(%i: i32, %o: f32):
    %row = arith.index_cast %i : i32 to index
    %col = linalg.index 2 : index
    %v = tensor.extract %t[%row, %col] : tensor<7x3xf32>
    linalg.yield %v : f32
  } -> tensor<1x2x3xf32>
  return %r : tensor<1x2x3xf32>
}

// -----

// A tied embedding: the table is looked up and also read by the output
// matmul (logits = h · tᵀ). The matmul, later in the forward, is
// differentiated first; the lookup's scatter then adds into that adjoint
// instead of into a new zero-filled table added to it afterwards: no fill of
// a 7x3 tensor and no elementwise add once the scatter is done.
// CHECK-LABEL: func.func @loss_and_grad(
// CHECK-SAME: %[[T:[^:]*]]: tensor<7x3xf32>
// CHECK: %[[DT:.*]] = linalg.transpose ins(%{{.*}} : tensor<3x7xf32>) outs(%{{.*}} : tensor<7x3xf32>)
// CHECK-NOT: linalg.fill {{.*}} tensor<7x3xf32>
// CHECK: %[[G:.*]] = scf.for {{.*}} iter_args(%[[ACC:.*]] = %[[DT]]) -> (tensor<7x3xf32>)
// CHECK: tensor.insert %{{.*}} into %{{.*}} : tensor<7x3xf32>
// CHECK-NOT: linalg.generic
// CHECK: return %{{.*}}, %[[G]]
func.func @forward(%t: tensor<7x3xf32> {mod.name = "t", mod.kind = "parameter"},
                   %ids: tensor<1x2xi32> {mod.name = "tokens"}) -> tensor<1x2x7xf32> {
  %e = tensor.empty() : tensor<1x2x3xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%ids : tensor<1x2xi32>) outs(%e : tensor<1x2x3xf32>) {
  ^bb0(%i: i32, %o: f32):
    %row = arith.index_cast %i : i32 to index
    %col = linalg.index 2 : index
    %v = tensor.extract %t[%row, %col] : tensor<7x3xf32>
    linalg.yield %v : f32
  } -> tensor<1x2x3xf32>
  %h = tensor.collapse_shape %r [[0, 1], [2]] : tensor<1x2x3xf32> into tensor<2x3xf32>
  %et = tensor.empty() : tensor<3x7xf32>
  %tt = linalg.transpose ins(%t : tensor<7x3xf32>) outs(%et : tensor<3x7xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %el = tensor.empty() : tensor<2x7xf32>
  %z = linalg.fill ins(%zero : f32) outs(%el : tensor<2x7xf32>) -> tensor<2x7xf32>
  %logits = linalg.matmul ins(%h, %tt : tensor<2x3xf32>, tensor<3x7xf32>) outs(%z : tensor<2x7xf32>) -> tensor<2x7xf32>
  %l3 = tensor.expand_shape %logits [[0, 1], [2]] output_shape [1, 2, 7] : tensor<2x7xf32> into tensor<1x2x7xf32>
  return %l3 : tensor<1x2x7xf32>
}
