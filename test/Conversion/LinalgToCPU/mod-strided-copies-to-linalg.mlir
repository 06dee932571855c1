// RUN: mod-opt %s --mod-strided-copies-to-linalg | FileCheck %s

// A copy out of a strided view becomes linalg.copy (generated loops rather
// than a call to the memrefCopy runtime helper); contiguous copies stay.
// CHECK-LABEL: func.func @copies
// CHECK:         linalg.copy ins(%{{.*}} : memref<4x2xf32, strided<[4, 1], offset: 2>>) outs(%{{.*}} : memref<4x2xf32>)
// CHECK:         memref.copy %{{.*}}, %{{.*}} : memref<4x4xf32> to memref<4x4xf32>
// CHECK-NOT:     memref.copy
func.func @copies(%a: memref<4x4xf32>, %b: memref<4x2xf32>, %c: memref<4x4xf32>) {
  %v = memref.subview %a[0, 2] [4, 2] [1, 1] : memref<4x4xf32> to memref<4x2xf32, strided<[4, 1], offset: 2>>
  memref.copy %v, %b : memref<4x2xf32, strided<[4, 1], offset: 2>> to memref<4x2xf32>
  memref.copy %a, %c : memref<4x4xf32> to memref<4x4xf32>
  return
}
