// RUN: mod-opt %s --mod-linalg-to-cublas --mod-gpu-device-buffers -split-input-file | FileCheck %s

// One matmul through cuBLAS (issue 11, bug 1): the call reads its operands
// through pointers extracted from the buffers, so each operand is freed
// after the call, never between the extraction and the call.
// CHECK-LABEL: func.func @one_matmul
// CHECK-SAME: (%[[A:.*]]: memref<6x4xf32>, %[[B:.*]]: memref<4x8xf32>, %[[OUT:.*]]: memref<6x8xf32>)
// CHECK: %[[DA:.*]] = gpu.alloc () : memref<6x4xf32>
// CHECK-NEXT: gpu.memcpy %[[DA]], %[[A]] : memref<6x4xf32>, memref<6x4xf32>
// CHECK-NEXT: %[[DB:.*]] = gpu.alloc () : memref<4x8xf32>
// CHECK-NEXT: gpu.memcpy %[[DB]], %[[B]] : memref<4x8xf32>, memref<4x8xf32>
// CHECK-NOT: gpu.dealloc
// CHECK: %[[DC:.*]] = gpu.alloc () : memref<6x8xf32>
// CHECK-NOT: gpu.dealloc
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[DC]] : memref<6x8xf32>)
// CHECK-NOT: gpu.dealloc
// CHECK: memref.extract_aligned_pointer_as_index %[[DA]]
// CHECK-NOT: gpu.dealloc
// CHECK: memref.extract_aligned_pointer_as_index %[[DB]]
// CHECK-NOT: gpu.dealloc
// CHECK: memref.extract_aligned_pointer_as_index %[[DC]]
// CHECK-NOT: gpu.dealloc
// CHECK: call @modrt_cublas_sgemm_strided_batched(
// CHECK-DAG: gpu.dealloc %[[DA]] : memref<6x4xf32>
// CHECK-DAG: gpu.dealloc %[[DB]] : memref<4x8xf32>
// CHECK: gpu.memcpy %[[OUT]], %[[DC]] : memref<6x8xf32>, memref<6x8xf32>
// CHECK-NEXT: gpu.dealloc %[[DC]] : memref<6x8xf32>
// CHECK-NEXT: return
func.func @one_matmul(%a: memref<6x4xf32>, %b: memref<4x8xf32>, %out: memref<6x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %c = memref.alloc() : memref<6x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<6x8xf32>)
  linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  memref.copy %c, %out : memref<6x8xf32> to memref<6x8xf32>
  return
}

// -----

// The weight is a constant (memref.get_global): copied to the device once,
// and read by cuBLAS through a view (a transpose-free subview of rows): the
// lifetime follows the view to the pointer and the pointer to the call.
// CHECK-LABEL: func.func @constant_weight_view
// CHECK: %[[G:.*]] = memref.get_global @w : memref<8x4xf32>
// CHECK-NEXT: %[[DW:.*]] = gpu.alloc () : memref<8x4xf32>
// CHECK-NEXT: gpu.memcpy %[[DW]], %[[G]]
// CHECK-NOT: gpu.dealloc %[[DW]]
// CHECK: %[[V:.*]] = memref.subview %[[DW]]
// CHECK-NOT: gpu.dealloc %[[DW]]
// CHECK: memref.extract_aligned_pointer_as_index %[[V]]
// CHECK-NOT: gpu.dealloc %[[DW]]
// CHECK: call @modrt_cublas_sgemm_strided_batched(
// CHECK-NEXT: gpu.dealloc %[[DW]]
memref.global "private" constant @w : memref<8x4xf32> = dense<1.0>
func.func @constant_weight_view(%x: memref<6x4xf32>, %out: memref<6x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %w = memref.get_global @w : memref<8x4xf32>
  %wv = memref.subview %w[2, 0] [4, 4] [1, 1] : memref<8x4xf32> to memref<4x4xf32, strided<[4, 1], offset: 8>>
  %c = memref.alloc() : memref<6x4xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<6x4xf32>)
  linalg.matmul ins(%x, %wv : memref<6x4xf32>, memref<4x4xf32, strided<[4, 1], offset: 8>>) outs(%c : memref<6x4xf32>)
  memref.copy %c, %out : memref<6x4xf32> to memref<6x4xf32>
  return
}

// -----

// A private function is called with device buffers: no copies; a buffer it
// returns is the caller's to free. memref.copy between device buffers
// becomes a linalg.copy (a kernel later).
// CHECK-LABEL: func.func private @helper
// CHECK-NOT: gpu.memcpy
// CHECK: %[[T:.*]] = gpu.alloc () : memref<4xf32>
// CHECK-NEXT: linalg.copy ins(%{{.*}} : memref<4xf32>) outs(%[[T]] : memref<4xf32>)
// CHECK-NOT: gpu.dealloc
// CHECK: return %[[T]]
func.func private @helper(%x: memref<4xf32>) -> memref<4xf32> {
  %t = memref.alloc() : memref<4xf32>
  memref.copy %x, %t : memref<4xf32> to memref<4xf32>
  return %t : memref<4xf32>
}

// -----

// An out-parameter fed from a strided view: the view is first compacted on
// the device, then copied to the host in one piece.
// CHECK-LABEL: func.func @strided_result
// CHECK: %[[DX:.*]] = gpu.alloc () : memref<4x4xf32>
// CHECK: %[[V:.*]] = memref.subview %[[DX]]
// CHECK: %[[TMP:.*]] = gpu.alloc () : memref<4x2xf32>
// CHECK-NEXT: linalg.copy ins(%[[V]] : {{.*}}) outs(%[[TMP]] : memref<4x2xf32>)
// CHECK-NEXT: gpu.dealloc %[[DX]]
// CHECK-NEXT: gpu.memcpy %{{.*}}, %[[TMP]]
// CHECK-NEXT: gpu.dealloc %[[TMP]]
// CHECK-NEXT: return
func.func @strided_result(%x: memref<4x4xf32>, %out: memref<4x2xf32>) {
  %v = memref.subview %x[0, 1] [4, 2] [1, 1] : memref<4x4xf32> to memref<4x2xf32, strided<[4, 1], offset: 1>>
  memref.copy %v, %out : memref<4x2xf32, strided<[4, 1], offset: 1>> to memref<4x2xf32>
  return
}
