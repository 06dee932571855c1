// RUN: mod-opt %s --pass-pipeline='builtin.module(func.func(mod-elide-self-copies))' | FileCheck %s
// RUN: mod-opt %s --pass-pipeline='builtin.module(func.func(mod-elide-self-copies),mod-linalg-to-blas,cse)' | FileCheck %s --check-prefix=BLAS

// An argument copied into another argument (an in-place result's
// out-parameter) is copied only when the two are different buffers.
// CHECK-LABEL: func.func @in_place
// CHECK-SAME:    (%[[A:.*]]: memref<2x16xf32>, %[[B:.*]]: memref<2x16xf32>)
// CHECK:         %[[P:.*]] = memref.extract_aligned_pointer_as_index %[[A]] : memref<2x16xf32> -> index
// CHECK:         %[[Q:.*]] = memref.extract_aligned_pointer_as_index %[[B]] : memref<2x16xf32> -> index
// CHECK:         %[[NE:.*]] = arith.cmpi ne, %[[P]], %[[Q]] : index
// CHECK:         scf.if %[[NE]] {
// CHECK-NEXT:      memref.copy %[[A]], %[[B]] : memref<2x16xf32> to memref<2x16xf32>
// CHECK-NEXT:    }
// CHECK-NEXT:    return
func.func @in_place(%a: memref<2x16xf32>, %b: memref<2x16xf32>) {
  memref.copy %a, %b : memref<2x16xf32> to memref<2x16xf32>
  return
}

// Copies from or into a buffer the function allocated, and copies between
// views, stay unguarded.
// CHECK-LABEL: func.func @others
// CHECK-NOT:     scf.if
// CHECK:         memref.copy %{{.*}}, %{{.*}} : memref<4xf32> to memref<4xf32>
// CHECK-NOT:     scf.if
// CHECK:         memref.copy %{{.*}}, %{{.*}} : memref<2xf32, strided<[1], offset: 2>> to memref<2xf32, strided<[1]>>
// CHECK-NOT:     scf.if
// CHECK:         return
func.func @others(%a: memref<4xf32>, %b: memref<4xf32>) {
  %t = memref.alloc() : memref<4xf32>
  memref.copy %a, %t : memref<4xf32> to memref<4xf32>
  %v = memref.subview %t[2] [2] [1] : memref<4xf32> to memref<2xf32, strided<[1], offset: 2>>
  %w = memref.subview %b[0] [2] [1] : memref<4xf32> to memref<2xf32, strided<[1]>>
  memref.copy %v, %w : memref<2xf32, strided<[1], offset: 2>> to memref<2xf32, strided<[1]>>
  memref.dealloc %t : memref<4xf32>
  return
}

// A buffer that only a fill writes (the zero init CSE shared between two
// GEMMs, copied by bufferization before each) is not copied: each copy
// becomes a fill of its target, also through a reshape of the source.
// CHECK-LABEL: func.func @copies_of_a_fill
// CHECK-SAME:    (%[[A:.*]]: memref<16x16xf32>, %[[B:.*]]: memref<16x16xf32>, %[[O:.*]]: memref<16x16xf32>)
// CHECK:         %[[Z:.*]] = arith.constant 0.000000e+00 : f32
// CHECK:         linalg.fill ins(%[[Z]] : f32) outs(%[[SHARED:.*]] : memref<16x16xf32>)
// CHECK:         %[[T0:.*]] = memref.alloc() : memref<16x16xf32>
// CHECK-NEXT:    linalg.fill ins(%[[Z]] : f32) outs(%[[T0]] : memref<16x16xf32>)
// CHECK-NEXT:    linalg.matmul ins(%[[A]], %[[B]] : memref<16x16xf32>, memref<16x16xf32>) outs(%[[T0]] : memref<16x16xf32>)
// CHECK:         %[[T1:.*]] = memref.alloc() : memref<1x16x16xf32>
// CHECK-NEXT:    linalg.fill ins(%[[Z]] : f32) outs(%[[T1]] : memref<1x16x16xf32>)
// CHECK-NOT:     memref.copy
// CHECK:         return
// Then both GEMMs overwrite C (beta = 0), the second through a reshape of
// the buffer that was filled.
// BLAS-LABEL: func.func @copies_of_a_fill
// BLAS:         %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// BLAS:         linalg.fill ins(%[[ZERO]] : f32) outs(%{{.*}} : memref<16x16xf32>)
// BLAS-NOT:     memref.copy
// BLAS-NOT:     linalg.fill
// BLAS:         call @cblas_sgemm({{.*}}, %[[ZERO]], %{{.*}}, %{{.*}})
// BLAS-NOT:     memref.copy
// BLAS-NOT:     linalg.fill
// BLAS:         call @cblas_sgemm({{.*}}, %[[ZERO]], %{{.*}}, %{{.*}})
// BLAS-NOT:     memref.copy
// BLAS:         return
func.func @copies_of_a_fill(%a: memref<16x16xf32>, %b: memref<16x16xf32>,
                            %out: memref<16x16xf32>) {
  %c0 = arith.constant 0.0 : f32
  %zero = memref.alloc() : memref<16x16xf32>
  linalg.fill ins(%c0 : f32) outs(%zero : memref<16x16xf32>)
  %t0 = memref.alloc() : memref<16x16xf32>
  memref.copy %zero, %t0 : memref<16x16xf32> to memref<16x16xf32>
  linalg.matmul ins(%a, %b : memref<16x16xf32>, memref<16x16xf32>)
                outs(%t0 : memref<16x16xf32>)
  %z3 = memref.expand_shape %zero [[0, 1], [2]] output_shape [1, 16, 16]
      : memref<16x16xf32> into memref<1x16x16xf32>
  %t1 = memref.alloc() : memref<1x16x16xf32>
  memref.copy %z3, %t1 : memref<1x16x16xf32> to memref<1x16x16xf32>
  %t1c = memref.collapse_shape %t1 [[0, 1], [2]]
      : memref<1x16x16xf32> into memref<16x16xf32>
  linalg.matmul ins(%b, %a : memref<16x16xf32>, memref<16x16xf32>)
                outs(%t1c : memref<16x16xf32>)
  linalg.add ins(%t0, %t1c : memref<16x16xf32>, memref<16x16xf32>)
             outs(%out : memref<16x16xf32>)
  memref.dealloc %zero : memref<16x16xf32>
  memref.dealloc %t0 : memref<16x16xf32>
  memref.dealloc %t1 : memref<1x16x16xf32>
  return
}

// Copies of a buffer that is written after its fill, or filled only in
// part, or copied before it is filled, stay copies.
// CHECK-LABEL: func.func @not_only_a_fill
// CHECK-COUNT-3: memref.copy
// CHECK-NOT:     memref.copy
// CHECK:         return
func.func @not_only_a_fill(%a: memref<4xf32>, %o0: memref<4xf32>,
                           %o1: memref<2xf32>, %o2: memref<4xf32>) {
  %c0 = arith.constant 0.0 : f32
  %x = memref.alloc() : memref<4xf32>
  linalg.fill ins(%c0 : f32) outs(%x : memref<4xf32>)
  linalg.add ins(%a, %a : memref<4xf32>, memref<4xf32>) outs(%x : memref<4xf32>)
  memref.copy %x, %o0 : memref<4xf32> to memref<4xf32>
  %y = memref.alloc() : memref<4xf32>
  %half = memref.subview %y[0] [2] [1] : memref<4xf32> to memref<2xf32, strided<[1]>>
  linalg.fill ins(%c0 : f32) outs(%half : memref<2xf32, strided<[1]>>)
  memref.copy %half, %o1 : memref<2xf32, strided<[1]>> to memref<2xf32>
  %z = memref.alloc() : memref<4xf32>
  memref.copy %z, %o2 : memref<4xf32> to memref<4xf32>
  linalg.fill ins(%c0 : f32) outs(%z : memref<4xf32>)
  memref.dealloc %x : memref<4xf32>
  memref.dealloc %y : memref<4xf32>
  memref.dealloc %z : memref<4xf32>
  return
}

// Bufferization lets the last op that writes into the shared filled buffer
// do so in place: the copies before it become fills, the one after stays.
// When the buffer is filled again (buffer reuse), the next copy is a fill.
// CHECK-LABEL: func.func @fill_then_in_place
// CHECK-SAME:    (%[[A:.*]]: memref<4xf32>, %[[O0:.*]]: memref<4xf32>, %[[O1:.*]]: memref<4xf32>, %[[O2:.*]]: memref<4xf32>)
// CHECK:         linalg.fill ins(%{{.*}} : f32) outs(%[[X:.*]] : memref<4xf32>)
// CHECK-NEXT:    linalg.fill ins(%{{.*}} : f32) outs(%[[O0]] : memref<4xf32>)
// CHECK-NEXT:    linalg.add ins(%[[A]], %[[O0]] : memref<4xf32>, memref<4xf32>) outs(%[[O0]] : memref<4xf32>)
// CHECK-NEXT:    linalg.add ins(%[[A]], %[[X]] : memref<4xf32>, memref<4xf32>) outs(%[[X]] : memref<4xf32>)
// CHECK-NEXT:    memref.copy %[[X]], %[[O1]] : memref<4xf32> to memref<4xf32>
// CHECK-NEXT:    linalg.fill ins(%[[ONE:.*]] : f32) outs(%[[X]] : memref<4xf32>)
// CHECK-NEXT:    linalg.fill ins(%[[ONE]] : f32) outs(%[[O2]] : memref<4xf32>)
// CHECK-NOT:     memref.copy
func.func @fill_then_in_place(%a: memref<4xf32>, %o0: memref<4xf32>,
                              %o1: memref<4xf32>, %o2: memref<4xf32>) {
  %c0 = arith.constant 0.0 : f32
  %c1 = arith.constant 1.0 : f32
  %x = memref.alloc() : memref<4xf32>
  linalg.fill ins(%c0 : f32) outs(%x : memref<4xf32>)
  memref.copy %x, %o0 : memref<4xf32> to memref<4xf32>
  linalg.add ins(%a, %o0 : memref<4xf32>, memref<4xf32>) outs(%o0 : memref<4xf32>)
  linalg.add ins(%a, %x : memref<4xf32>, memref<4xf32>) outs(%x : memref<4xf32>)
  memref.copy %x, %o1 : memref<4xf32> to memref<4xf32>
  linalg.fill ins(%c1 : f32) outs(%x : memref<4xf32>)
  memref.copy %x, %o2 : memref<4xf32> to memref<4xf32>
  memref.dealloc %x : memref<4xf32>
  return
}

// An op that may alias the buffer (here a cast) could write it later:
// the copy stays.
// CHECK-LABEL: func.func @escapes
// CHECK:         memref.copy
func.func @escapes(%o: memref<4xf32>) {
  %c0 = arith.constant 0.0 : f32
  %x = memref.alloc() : memref<4xf32>
  %y = memref.cast %x : memref<4xf32> to memref<?xf32>
  linalg.fill ins(%c0 : f32) outs(%x : memref<4xf32>)
  %i = arith.constant 1 : index
  memref.store %c0, %y[%i] : memref<?xf32>
  memref.copy %x, %o : memref<4xf32> to memref<4xf32>
  memref.dealloc %x : memref<4xf32>
  return
}
