// The whole CUDA pipeline (needs ptxas for its last step). The host code is
// checked where its GPU work is still gpu dialect ops (after
// --mod-gpu-stream-order), the output where it is LLVM dialect.
//
// REQUIRES: cuda-toolkit
// RUN: mod-opt %s --mod-cuda-lowering -mlir-print-ir-after=mod-gpu-stream-order -o %t.mlir 2>&1 | FileCheck %s --check-prefix=HOST
// RUN: FileCheck %s --check-prefix=LLVM --implicit-check-not=memref. --implicit-check-not=linalg. --implicit-check-not=scf. --implicit-check-not=tensor. --implicit-check-not=modrt_cublas_sgemm_strided_batched_ < %t.mlir
//
// A toolkit in a directory with a space (issue 11, bug 5: the pipeline
// string did not quote it, did not parse, and mod-opt went on with the part
// that did).
// RUN: rm -rf "%t.dir" && mkdir -p "%t.dir" && ln -s %cuda_root "%t.dir/cuda toolkit"
// RUN: env CUDA_ROOT="%t.dir/cuda toolkit" mod-opt %s --mod-cuda-lowering 2>&1 | FileCheck %s --check-prefix=SPACE
// SPACE-NOT: error
// SPACE: gpu.binary @mod_kernels

// One matmul between a fill and an elementwise kernel (issue 11, bug 1):
// inputs are copied in, the fill kernel runs, cuBLAS reads both operands
// through pointers on the kernels' stream (no host sync), both operands are
// freed after the call, the exp kernel runs, the result is copied out, and
// the one host synchronization is at the end.
// HOST-LABEL: func.func @forward(
// HOST-SAME: %[[X:[^:]*]]: memref<6x4xf32> {mod.name = "x"}, %[[W:[^:]*]]: memref<4x8xf32> {mod.name = "w"}, %[[Y:[^:]*]]: memref<6x8xf32> {mod.name = "y"})
// HOST: %[[S:.*]] = gpu.wait async
// HOST-NEXT: %[[DX:.*]], %[[T0:.*]] = gpu.alloc async [%[[S]]] () : memref<6x4xf32>
// HOST-NEXT: %[[T1:.*]] = gpu.memcpy async [%[[T0]]] %[[DX]], %[[X]]
// HOST-NEXT: %[[DW:.*]], %[[T2:.*]] = gpu.alloc async [%[[T1]]] () : memref<4x8xf32>
// HOST-NEXT: %[[T3:.*]] = gpu.memcpy async [%[[T2]]] %[[DW]], %[[W]]
// HOST-NEXT: %[[DC:.*]], %[[T4:.*]] = gpu.alloc async [%[[T3]]] () : memref<6x8xf32>
// HOST-NOT: gpu.wait
// HOST-NOT: gpu.dealloc
// HOST: %[[T5:.*]] = gpu.launch_func async [%[[T4]]] @mod_kernels::@forward_kernel {{.*}} args(%[[DC]] : memref<6x8xf32>)
// HOST-NOT: gpu.wait
// HOST-NOT: gpu.dealloc
// HOST: memref.extract_aligned_pointer_as_index %[[DX]]
// HOST-NOT: gpu.wait
// HOST-NOT: gpu.dealloc
// HOST: memref.extract_aligned_pointer_as_index %[[DW]]
// HOST-NOT: gpu.wait
// HOST-NOT: gpu.dealloc
// HOST: call @modrt_cublas_sgemm_strided_batched(
// HOST-NEXT: %[[T6:.*]] = gpu.dealloc async [%[[T5]]] %[[DW]]
// HOST-NEXT: %[[T7:.*]] = gpu.dealloc async [%[[T6]]] %[[DX]]
// HOST-NOT: gpu.wait
// HOST: %[[T8:.*]] = gpu.launch_func async [%[[T7]]] @mod_kernels::@forward_kernel_0 {{.*}} args(%[[DC]] : memref<6x8xf32>)
// HOST-NEXT: %[[T9:.*]] = gpu.memcpy async [%[[T8]]] %[[Y]], %[[DC]]
// HOST-NEXT: %[[T10:.*]] = gpu.dealloc async [%[[T9]]] %[[DC]]
// HOST-NEXT: gpu.wait [%[[T10]]]
// HOST-NEXT: return
//
// Every kernel in one module, placed after the first function (one binary,
// one module load); the constants are in the kernels, not parameters.
// HOST: gpu.module @mod_kernels
// HOST-DAG: gpu.func @forward_kernel(%{{[^,]*}}: memref<6x8xf32>) kernel
// HOST-DAG: gpu.func @forward_kernel_0(%{{[^,]*}}: memref<6x8xf32>) kernel
// HOST-DAG: gpu.func @mod_reduce_0(%{{[^,]*}}: memref<f32>) kernel
// HOST-DAG: gpu.func @mod_reduce_1(%{{[^,]*}}: memref<6x300xf32>, %{{[^,]*}}: memref<f32>) workgroup
//
// A scalar loss (issue 11, bug 2): the full reduction is a tree-reduction
// kernel, the rank-0 fill a one-thread kernel, and the host only copies.
// HOST-LABEL: func.func @loss(
// HOST-NOT: memref.load
// HOST-NOT: memref.store
// HOST-NOT: scf.for
// HOST: gpu.launch_func async [%{{.*}}] @mod_kernels::@mod_reduce_0 blocks in (%[[ONE:.*]], %[[ONE]], %[[ONE]]) threads in (%[[ONE]], %[[ONE]], %[[ONE]])
// HOST-NOT: memref.load
// HOST-NOT: memref.store
// HOST-NOT: scf.for
// HOST: gpu.launch_func async [%{{.*}}] @mod_kernels::@mod_reduce_1 blocks in (%[[ONE]], %[[ONE]], %[[ONE]]) threads in (%c256
// HOST-NOT: memref.load
// HOST-NOT: memref.store
// HOST-NOT: scf.for
// HOST: gpu.wait [%{{.*}}]
// HOST-NEXT: return
//
//
// LLVM: llvm.func @forward(
// LLVM: llvm.call @mgpuStreamCreate()
// LLVM-NOT: llvm.call @mgpuStreamSynchronize
// LLVM: llvm.call @modrt_cublas_sgemm_strided_batched(
// LLVM-NOT: llvm.call @mgpuStreamSynchronize
// LLVM: llvm.call @mgpuMemFree
// LLVM: llvm.call @mgpuStreamSynchronize
// LLVM-NOT: llvm.call @mgpuStreamSynchronize
// LLVM: llvm.call @mgpuStreamDestroy
// LLVM: llvm.return
// LLVM: gpu.binary @mod_kernels
func.func @forward(%x: tensor<6x4xf32> {mod.name = "x"}, %w: tensor<4x8xf32> {mod.name = "w"})
    -> (tensor<6x8xf32> {mod.name = "y"}) attributes {llvm.emit_c_interface} {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<6x8xf32>
  %c = linalg.fill ins(%zero : f32) outs(%e : tensor<6x8xf32>) -> tensor<6x8xf32>
  %y = linalg.matmul ins(%x, %w : tensor<6x4xf32>, tensor<4x8xf32>) outs(%c : tensor<6x8xf32>) -> tensor<6x8xf32>
  %e2 = tensor.empty() : tensor<6x8xf32>
  %r = linalg.map { math.exp } ins(%y : tensor<6x8xf32>) outs(%e2 : tensor<6x8xf32>)
  return %r : tensor<6x8xf32>
}

func.func @loss(%x: tensor<6x300xf32> {mod.name = "x"}) -> (tensor<f32> {mod.name = "loss"})
    attributes {llvm.emit_c_interface} {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<f32>
  %c = linalg.fill ins(%zero : f32) outs(%e : tensor<f32>) -> tensor<f32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> ()>],
                       iterator_types = ["reduction", "reduction"]}
      ins(%x : tensor<6x300xf32>) outs(%c : tensor<f32>) {
  ^bb0(%in: f32, %acc: f32):
    %sq = arith.mulf %in, %in : f32
    %a = arith.addf %acc, %sq : f32
    linalg.yield %a : f32
  } -> tensor<f32>
  return %s : tensor<f32>
}
