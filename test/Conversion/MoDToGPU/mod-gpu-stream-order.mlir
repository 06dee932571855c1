// RUN: mod-opt %s --mod-gpu-stream-order -split-input-file | FileCheck %s

// What gpu-async-region makes of copy, GEMM call, copy: the stream is
// synchronized and destroyed before the call and a new one starts after it.
// The call is stream-ordered, so the old stream continues through it and
// the only host synchronization left is the final one.
// CHECK-LABEL: func.func @gemm_between_copies
// CHECK-SAME: (%[[X:.*]]: memref<4xf32>, %[[D:.*]]: memref<4xf32>, %[[P:.*]]: !llvm.ptr)
// CHECK: %[[S:.*]] = gpu.wait async
// CHECK-NEXT: %[[T0:.*]] = gpu.memcpy async [%[[S]]] %[[D]], %[[X]]
// CHECK-NOT: gpu.wait
// CHECK: call @sgemm(%[[P]])
// CHECK-NOT: gpu.wait
// CHECK: %[[T1:.*]] = gpu.memcpy async [%[[T0]]] %[[X]], %[[D]]
// CHECK-NEXT: gpu.wait [%[[T1]]]
// CHECK-NEXT: return
// The marker is gone once used.
// CHECK: func.func private @sgemm(!llvm.ptr){{$}}
func.func @gemm_between_copies(%x: memref<4xf32>, %d: memref<4xf32>, %p: !llvm.ptr) {
  %s = gpu.wait async
  %t0 = gpu.memcpy async [%s] %d, %x : memref<4xf32>, memref<4xf32>
  gpu.wait [%t0]
  %c = arith.constant 1 : i64
  call @sgemm(%p) : (!llvm.ptr) -> ()
  %s1 = gpu.wait async
  %t1 = gpu.memcpy async [%s1] %x, %d : memref<4xf32>, memref<4xf32>
  gpu.wait [%t1]
  return
}
func.func private @sgemm(!llvm.ptr) attributes {mod.stream_ordered}

// -----

// A call to anything else (here a function without the marker), or a host
// side effect between the wait and the restart, keeps the synchronization.
// CHECK-LABEL: func.func @other_calls
// CHECK: gpu.wait [%{{.*}}]
// CHECK-NEXT: call @opaque()
// CHECK-NEXT: %{{.*}} = gpu.wait async
// CHECK: gpu.wait [%{{.*}}]
// CHECK-NEXT: call @sgemm(
// CHECK: memref.store
// CHECK-NEXT: %{{.*}} = gpu.wait async
func.func @other_calls(%x: memref<4xf32>, %d: memref<4xf32>, %p: !llvm.ptr, %h: memref<f32>) {
  %s = gpu.wait async
  %t0 = gpu.memcpy async [%s] %d, %x : memref<4xf32>, memref<4xf32>
  gpu.wait [%t0]
  call @opaque() : () -> ()
  %s1 = gpu.wait async
  %t1 = gpu.memcpy async [%s1] %x, %d : memref<4xf32>, memref<4xf32>
  gpu.wait [%t1]
  call @sgemm(%p) : (!llvm.ptr) -> ()
  %f = arith.constant 0.0 : f32
  memref.store %f, %h[] : memref<f32>
  %s2 = gpu.wait async
  %t2 = gpu.memcpy async [%s2] %x, %d : memref<4xf32>, memref<4xf32>
  gpu.wait [%t2]
  return
}
func.func private @opaque()
func.func private @sgemm(!llvm.ptr) attributes {mod.stream_ordered}
