// RUN: mod-opt %s --mod-cpu-lowering | FileCheck %s

// The LM head as the importer writes it: a 2-D matmul over the flattened
// tokens whose result is expanded to [B,S,V] and returned. The GEMM writes
// straight into the caller's output buffer: the reshaped tensor.empty folds
// into an empty of the returned type, so bufferization allocates no
// temporary that would then be copied into the out-parameter (for
// GPT-2-small at S=1024, B=4 that copy is 800 MB per call).
// CHECK-LABEL: llvm.func @forward(
// CHECK:         llvm.call @cblas_sgemm(
// CHECK-NOT:     llvm.intr.memcpy
// CHECK-NOT:     llvm.call @_mlir_memref_to_llvm_alloc
// CHECK:         llvm.return
func.func @forward(%x: tensor<2x8x64xf32>, %wte: tensor<96x64xf32>) -> tensor<2x8x96xf32>
    attributes {llvm.emit_c_interface} {
  %flat = tensor.collapse_shape %x [[0, 1], [2]] : tensor<2x8x64xf32> into tensor<16x64xf32>
  %e = tensor.empty() : tensor<64x96xf32>
  %wt = linalg.transpose ins(%wte : tensor<96x64xf32>) outs(%e : tensor<64x96xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %z = tensor.empty() : tensor<16x96xf32>
  %c = linalg.fill ins(%zero : f32) outs(%z : tensor<16x96xf32>) -> tensor<16x96xf32>
  %y = linalg.matmul ins(%flat, %wt : tensor<16x64xf32>, tensor<64x96xf32>) outs(%c : tensor<16x96xf32>) -> tensor<16x96xf32>
  %r = tensor.expand_shape %y [[0, 1], [2]] output_shape [2, 8, 96] : tensor<16x96xf32> into tensor<2x8x96xf32>
  return %r : tensor<2x8x96xf32>
}
