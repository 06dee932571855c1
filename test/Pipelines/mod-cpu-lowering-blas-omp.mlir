// RUN: mod-opt %s --mod-cpu-lowering | FileCheck %s

// On the CPU a linear layer is a cblas_sgemm call (the [out, in] weight read
// through the transpose flag, never copied) and the elementwise epilogue
// (bias + GELU, fused into one loop nest) runs on OpenMP threads over the
// token rows, with the contiguous feature loop inside each thread.
// CHECK-LABEL: llvm.func @forward(
// CHECK:         llvm.call @cblas_sgemm(
// CHECK:         omp.parallel {
// CHECK:           omp.wsloop {
// CHECK:             omp.loop_nest
// CHECK-NOT:     llvm.call @tanhf
// CHECK:         llvm.func @cblas_sgemm(i32, i32, i32, i32, i32, i32, f32, !llvm.ptr, i32, !llvm.ptr, i32, f32, !llvm.ptr, i32)
func.func @forward(%x: tensor<256x64xf32>, %w: tensor<128x64xf32>, %bias: tensor<128xf32>) -> tensor<256x128xf32>
    attributes {llvm.emit_c_interface} {
  %e = tensor.empty() : tensor<64x128xf32>
  %wt = linalg.transpose ins(%w : tensor<128x64xf32>) outs(%e : tensor<64x128xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %z = tensor.empty() : tensor<256x128xf32>
  %c = linalg.fill ins(%zero : f32) outs(%z : tensor<256x128xf32>) -> tensor<256x128xf32>
  %y = linalg.matmul ins(%x, %wt : tensor<256x64xf32>, tensor<64x128xf32>) outs(%c : tensor<256x128xf32>) -> tensor<256x128xf32>
  %o = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%y, %bias : tensor<256x128xf32>, tensor<128xf32>) outs(%z : tensor<256x128xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %s = arith.addf %a, %b : f32
    %t = math.tanh %s : f32
    %g = arith.mulf %s, %t : f32
    linalg.yield %g : f32
  } -> tensor<256x128xf32>
  return %o : tensor<256x128xf32>
}
