// RUN: mod-opt %s --pass-pipeline='builtin.module(func.func(mod-elide-self-copies))' | FileCheck %s

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
