// RUN: mod-opt %s --mod-linalg-to-cublas -split-input-file | FileCheck %s
// RUN: mod-opt %s --mod-linalg-to-cublas=allow-tf32=true -split-input-file | FileCheck %s --check-prefix=TF32
// RUN: mod-opt %s --mod-linalg-to-cublas=fuse-epilogues=false -split-input-file | FileCheck %s --check-prefix=OFF

// cuBLASLt epilogues: a GEMM whose result only a bias add reads, and the
// tanh GELU after it, become one modrt_cublaslt_matmul call.

// The GPT-2 MLP's first linear layer as bufferization leaves it: C is a
// copy of a zero-filled buffer (so cuBLASLt gets a null C: beta = 0), the
// bias add reads C through the [B*S, N] -> [B, S, N] expand_shape, the GELU
// runs in place on the bias add's output. Everything but the call goes:
// the zeroing, C, both elementwise ops. D = %d with leading dimension 128,
// flags = MODRT_CUBLAS_GELU (8).
// CHECK-LABEL: func.func @mlp_gelu
// CHECK-SAME: (%[[X:.*]]: memref<32x32xf32>, %[[W:.*]]: memref<32x128xf32>, %[[BIAS:.*]]: memref<128xf32>, %[[OUT:.*]]: memref<2x16x128xf32>)
// CHECK-NOT: linalg.fill
// CHECK-NOT: memref.copy
// CHECK: %[[D:.*]] = memref.alloc() {alignment = 64 : i64} : memref<2x16x128xf32>
// CHECK: memref.extract_aligned_pointer_as_index %[[X]]
// CHECK: %[[PX:.*]] = llvm.inttoptr
// CHECK: memref.extract_aligned_pointer_as_index %[[W]]
// CHECK: %[[PW:.*]] = llvm.inttoptr
// CHECK: %[[NOC:.*]] = llvm.mlir.zero : !llvm.ptr
// CHECK: memref.extract_aligned_pointer_as_index %[[D]]
// CHECK: %[[PD:.*]] = llvm.inttoptr
// CHECK: memref.extract_aligned_pointer_as_index %[[BIAS]]
// CHECK: %[[PBIAS:.*]] = llvm.inttoptr
// CHECK-DAG: %[[M:.*]] = arith.constant 32 : i64
// CHECK-DAG: %[[N:.*]] = arith.constant 128 : i64
// CHECK-DAG: %[[LDD:.*]] = arith.constant 128 : i64
// CHECK-DAG: %[[GELU:.*]] = arith.constant 8 : i32
// CHECK: call @modrt_cublaslt_matmul(%[[M]], %[[N]], %{{.*}}, %[[PX]], %{{.*}}, %[[PW]], %{{.*}}, %[[NOC]], %{{.*}}, %[[PD]], %[[LDD]], %[[PBIAS]], %[[GELU]])
// CHECK-NOT: linalg.generic
// CHECK: memref.copy %[[D]], %[[OUT]]
// CHECK-NOT: linalg.generic
// CHECK-NOT: call @modrt_cublas_sgemm_strided_batched
// CHECK: return
// CHECK: func.func private @modrt_cublaslt_matmul(i64, i64, i64, !llvm.ptr, i64, !llvm.ptr, i64, !llvm.ptr, i64, !llvm.ptr, i64, !llvm.ptr, i32) attributes {mod.stream_ordered, mod.written_operands = array<i64: 9>}
// CHECK-NOT: func.func private @modrt_cublas_sgemm_strided_batched
// TF32-LABEL: func.func @mlp_gelu
// TF32: %[[FLAGS:.*]] = arith.constant 9 : i32
// TF32: call @modrt_cublaslt_matmul({{.*}}, %[[FLAGS]])
// OFF-LABEL: func.func @mlp_gelu
// OFF: linalg.fill
// OFF: call @modrt_cublas_sgemm_strided_batched
// OFF: linalg.generic
// OFF: math.tanh
// OFF-NOT: modrt_cublaslt_matmul
func.func @mlp_gelu(%x: memref<32x32xf32>, %w: memref<32x128xf32>, %bias: memref<128xf32>, %out: memref<2x16x128xf32>) {
  %zero = arith.constant 0.000000e+00 : f32
  %cubic = arith.constant 4.471500e-02 : f32
  %scale = arith.constant 0.797884583 : f32
  %half = arith.constant 5.000000e-01 : f32
  %one = arith.constant 1.000000e+00 : f32
  %z = memref.alloc() {alignment = 64 : i64} : memref<32x128xf32>
  linalg.fill ins(%zero : f32) outs(%z : memref<32x128xf32>)
  %c = memref.alloc() {alignment = 64 : i64} : memref<32x128xf32>
  memref.copy %z, %c : memref<32x128xf32> to memref<32x128xf32>
  linalg.matmul ins(%x, %w : memref<32x32xf32>, memref<32x128xf32>) outs(%c : memref<32x128xf32>)
  %ce = memref.expand_shape %c [[0, 1], [2]] output_shape [2, 16, 128] : memref<32x128xf32> into memref<2x16x128xf32>
  %d = memref.alloc() {alignment = 64 : i64} : memref<2x16x128xf32>
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%ce, %bias : memref<2x16x128xf32>, memref<128xf32>) outs(%d : memref<2x16x128xf32>) {
  ^bb0(%in: f32, %b: f32, %o: f32):
    %s = arith.addf %in, %b : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%d : memref<2x16x128xf32>) outs(%d : memref<2x16x128xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.mulf %in, %in : f32
    %1 = arith.mulf %0, %in : f32
    %2 = arith.mulf %1, %cubic : f32
    %3 = arith.addf %in, %2 : f32
    %4 = arith.mulf %3, %scale : f32
    %5 = math.tanh %4 : f32
    %6 = arith.mulf %in, %half : f32
    %7 = arith.addf %5, %one : f32
    %8 = arith.mulf %6, %7 : f32
    linalg.yield %8 : f32
  }
  memref.copy %d, %out : memref<2x16x128xf32> to memref<2x16x128xf32>
  return
}

// -----

// The same GELU written the other way (sqrt(2/pi) x (1 + 0.044715 x^2),
// factors and addends swapped, the bias as the add's first operand), out of
// place into %e while the bias add's output %d is not read again: fused,
// and %d and C go.
// CHECK-LABEL: func.func @gelu_other_form
// CHECK-NOT: linalg.generic
// CHECK: %[[E:.*]] = memref.alloc() : memref<4x8xf32>
// CHECK-NOT: memref.alloc
// CHECK-NOT: linalg.generic
// CHECK: memref.extract_aligned_pointer_as_index %[[E]]
// CHECK: %[[GELU:.*]] = arith.constant 8 : i32
// CHECK: call @modrt_cublaslt_matmul({{.*}}, %[[GELU]])
// CHECK-NOT: linalg.generic
// CHECK-NOT: memref.alloc
// CHECK: memref.copy %[[E]]
// CHECK-NEXT: return
func.func @gelu_other_form(%a: memref<4x6xf32>, %b: memref<6x8xf32>, %bias: memref<8xf32>, %out: memref<4x8xf32>) {
  %e = memref.alloc() : memref<4x8xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %cubic = arith.constant 4.471500e-02 : f32
  %scale = arith.constant 0.797884583 : f32
  %half = arith.constant 5.000000e-01 : f32
  %one = arith.constant 1.000000e+00 : f32
  %c = memref.alloc() : memref<4x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x8xf32>)
  linalg.matmul ins(%a, %b : memref<4x6xf32>, memref<6x8xf32>) outs(%c : memref<4x8xf32>)
  %d = memref.alloc() : memref<4x8xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%bias, %c : memref<8xf32>, memref<4x8xf32>) outs(%d : memref<4x8xf32>) {
  ^bb0(%bv: f32, %in: f32, %o: f32):
    %s = arith.addf %bv, %in : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%d : memref<4x8xf32>) outs(%e : memref<4x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %sq = arith.mulf %in, %in : f32
    %t0 = arith.mulf %cubic, %sq : f32
    %t1 = arith.addf %one, %t0 : f32
    %t2 = arith.mulf %in, %t1 : f32
    %t3 = arith.mulf %scale, %t2 : f32
    %th = math.tanh %t3 : f32
    %t4 = arith.addf %one, %th : f32
    %t5 = arith.mulf %in, %t4 : f32
    %t6 = arith.mulf %half, %t5 : f32
    linalg.yield %t6 : f32
  }
  memref.copy %e, %out : memref<4x8xf32> to memref<4x8xf32>
  return
}

// -----

// Bias only (the attention's QKV projection): C accumulates into a buffer
// that is not known to be zero (a copy of an argument), so C is passed and
// kept; the GELU-less epilogue has flags 0. The output is then read through
// subviews as before.
// CHECK-LABEL: func.func @bias_accumulate
// CHECK-SAME: (%[[A:.*]]: memref<4x6xf32>, %[[B:.*]]: memref<6x8xf32>, %[[BIAS:.*]]: memref<8xf32>, %[[INIT:.*]]: memref<4x8xf32>, %[[KEEP:.*]]: memref<4x4xf32>)
// CHECK: %[[C:.*]] = memref.alloc() : memref<4x8xf32>
// CHECK: memref.copy %[[INIT]], %[[C]]
// CHECK: %[[D:.*]] = memref.alloc() : memref<4x8xf32>
// CHECK: memref.extract_aligned_pointer_as_index %[[C]]
// CHECK: %[[PC:.*]] = llvm.inttoptr
// CHECK: memref.extract_aligned_pointer_as_index %[[D]]
// CHECK: %[[PD:.*]] = llvm.inttoptr
// CHECK: %[[NONE:.*]] = arith.constant 0 : i32
// CHECK: call @modrt_cublaslt_matmul(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[PC]], %{{.*}}, %[[PD]], %{{.*}}, %{{.*}}, %[[NONE]])
// CHECK-NOT: linalg.generic
// CHECK: memref.subview %[[D]]
func.func @bias_accumulate(%a: memref<4x6xf32>, %b: memref<6x8xf32>, %bias: memref<8xf32>, %init: memref<4x8xf32>, %keep: memref<4x4xf32>) {
  %c = memref.alloc() : memref<4x8xf32>
  memref.copy %init, %c : memref<4x8xf32> to memref<4x8xf32>
  linalg.matmul ins(%a, %b : memref<4x6xf32>, memref<6x8xf32>) outs(%c : memref<4x8xf32>)
  %d = memref.alloc() : memref<4x8xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x8xf32>, memref<8xf32>) outs(%d : memref<4x8xf32>) {
  ^bb0(%in: f32, %bv: f32, %o: f32):
    %s = arith.addf %in, %bv : f32
    linalg.yield %s : f32
  }
  %sub = memref.subview %d[0, 4] [4, 4] [1, 1] : memref<4x8xf32> to memref<4x4xf32, strided<[8, 1], offset: 4>>
  memref.copy %sub, %keep : memref<4x4xf32, strided<[8, 1], offset: 4>> to memref<4x4xf32>
  return
}

// -----

// A transposed A (an adjoint's x^T dY shape: the transpose is folded into
// the call) combines with the epilogue and with TF32, flags
// TRANSPOSE_A (2) | GELU (8), and | TF32 (1) with allow-tf32.
// CHECK-LABEL: func.func @transposed_tf32
// CHECK-NOT: linalg.transpose
// CHECK: %[[FLAGS:.*]] = arith.constant 10 : i32
// CHECK: call @modrt_cublaslt_matmul({{.*}}, %[[FLAGS]])
// TF32-LABEL: func.func @transposed_tf32
// TF32: %[[FLAGS:.*]] = arith.constant 11 : i32
// TF32: call @modrt_cublaslt_matmul({{.*}}, %[[FLAGS]])
func.func @transposed_tf32(%x: memref<6x4xf32>, %b: memref<6x8xf32>, %bias: memref<8xf32>, %out: memref<4x8xf32>) {
  %e = memref.alloc() : memref<4x8xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %cubic = arith.constant 4.471500e-02 : f32
  %scale = arith.constant 0.797884583 : f32
  %half = arith.constant 5.000000e-01 : f32
  %one = arith.constant 1.000000e+00 : f32
  %t = memref.alloc() : memref<4x6xf32>
  linalg.transpose ins(%x : memref<6x4xf32>) outs(%t : memref<4x6xf32>) permutation = [1, 0]
  %c = memref.alloc() : memref<4x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x8xf32>)
  linalg.matmul ins(%t, %b : memref<4x6xf32>, memref<6x8xf32>) outs(%c : memref<4x8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x8xf32>, memref<8xf32>) outs(%e : memref<4x8xf32>) {
  ^bb0(%in: f32, %bv: f32, %o: f32):
    %s = arith.addf %in, %bv : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%e : memref<4x8xf32>) outs(%e : memref<4x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.mulf %in, %in : f32
    %1 = arith.mulf %0, %in : f32
    %2 = arith.mulf %1, %cubic : f32
    %3 = arith.addf %in, %2 : f32
    %4 = arith.mulf %3, %scale : f32
    %5 = math.tanh %4 : f32
    %6 = arith.mulf %in, %half : f32
    %7 = arith.addf %5, %one : f32
    %8 = arith.mulf %6, %7 : f32
    linalg.yield %8 : f32
  }
  memref.copy %e, %out : memref<4x8xf32> to memref<4x8xf32>
  return
}

// -----

// Negative: the exact GELU (erf) is not what cuBLASLt's GELU computes. The
// bias is still fused (flags 0) and the erf kernel stays.
// CHECK-LABEL: func.func @gelu_erf
// CHECK: %[[NONE:.*]] = arith.constant 0 : i32
// CHECK: call @modrt_cublaslt_matmul({{.*}}, %[[NONE]])
// CHECK: linalg.generic
// CHECK: math.erf
func.func @gelu_erf(%a: memref<4x6xf32>, %b: memref<6x8xf32>, %bias: memref<8xf32>, %out: memref<4x8xf32>) {
  %e = memref.alloc() : memref<4x8xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %half = arith.constant 5.000000e-01 : f32
  %one = arith.constant 1.000000e+00 : f32
  %rsqrt2 = arith.constant 0.707106769 : f32
  %c = memref.alloc() : memref<4x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x8xf32>)
  linalg.matmul ins(%a, %b : memref<4x6xf32>, memref<6x8xf32>) outs(%c : memref<4x8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x8xf32>, memref<8xf32>) outs(%e : memref<4x8xf32>) {
  ^bb0(%in: f32, %bv: f32, %o: f32):
    %s = arith.addf %in, %bv : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%e : memref<4x8xf32>) outs(%e : memref<4x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.mulf %in, %rsqrt2 : f32
    %1 = math.erf %0 : f32
    %2 = arith.addf %1, %one : f32
    %3 = arith.mulf %in, %half : f32
    %4 = arith.mulf %3, %2 : f32
    linalg.yield %4 : f32
  }
  memref.copy %e, %out : memref<4x8xf32> to memref<4x8xf32>
  return
}

// -----

// Negative: the GELU's input (the pre-activation a backward pass needs) is
// read again after it, so only the bias is fused and the GELU kernel stays.
// CHECK-LABEL: func.func @pre_activation_read
// CHECK: %[[NONE:.*]] = arith.constant 0 : i32
// CHECK: call @modrt_cublaslt_matmul({{.*}}, %[[NONE]])
// CHECK: linalg.generic
// CHECK: math.tanh
// CHECK: memref.copy
func.func @pre_activation_read(%a: memref<4x6xf32>, %b: memref<6x8xf32>, %bias: memref<8xf32>, %out: memref<4x8xf32>, %h: memref<4x8xf32>) {
  %e = memref.alloc() : memref<4x8xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %cubic = arith.constant 4.471500e-02 : f32
  %scale = arith.constant 0.797884583 : f32
  %half = arith.constant 5.000000e-01 : f32
  %one = arith.constant 1.000000e+00 : f32
  %c = memref.alloc() : memref<4x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x8xf32>)
  linalg.matmul ins(%a, %b : memref<4x6xf32>, memref<6x8xf32>) outs(%c : memref<4x8xf32>)
  %d = memref.alloc() : memref<4x8xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x8xf32>, memref<8xf32>) outs(%d : memref<4x8xf32>) {
  ^bb0(%in: f32, %bv: f32, %o: f32):
    %s = arith.addf %in, %bv : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%d : memref<4x8xf32>) outs(%e : memref<4x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.mulf %in, %in : f32
    %1 = arith.mulf %0, %in : f32
    %2 = arith.mulf %1, %cubic : f32
    %3 = arith.addf %in, %2 : f32
    %4 = arith.mulf %3, %scale : f32
    %5 = math.tanh %4 : f32
    %6 = arith.mulf %in, %half : f32
    %7 = arith.addf %5, %one : f32
    %8 = arith.mulf %6, %7 : f32
    linalg.yield %8 : f32
  }
  memref.copy %d, %h : memref<4x8xf32> to memref<4x8xf32>
  memref.copy %e, %out : memref<4x8xf32> to memref<4x8xf32>
  return
}

// -----

// Negative: the bias is broadcast along the wrong axis (one value per row,
// indexed by the first loop): cuBLASLt's bias is per column of C, so
// nothing is fused: an SGEMM call and the bias-add kernel.
// CHECK-LABEL: func.func @bias_per_row
// CHECK: call @modrt_cublas_sgemm_strided_batched
// CHECK: linalg.generic
// CHECK-NOT: modrt_cublaslt_matmul
func.func @bias_per_row(%a: memref<4x6xf32>, %b: memref<6x8xf32>, %bias: memref<4xf32>, %out: memref<4x8xf32>) {
  %d = memref.alloc() : memref<4x8xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %c = memref.alloc() : memref<4x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x8xf32>)
  linalg.matmul ins(%a, %b : memref<4x6xf32>, memref<6x8xf32>) outs(%c : memref<4x8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x8xf32>, memref<4xf32>) outs(%d : memref<4x8xf32>) {
  ^bb0(%in: f32, %bv: f32, %o: f32):
    %s = arith.addf %in, %bv : f32
    linalg.yield %s : f32
  }
  memref.copy %d, %out : memref<4x8xf32> to memref<4x8xf32>
  return
}

// -----

// Negative: C is read again after the bias add (its values are needed), the
// output is read between the GEMM and the bias add, or the output is the
// GEMM's own input: not fused.
// CHECK-LABEL: func.func @c_read_again
// CHECK: call @modrt_cublas_sgemm_strided_batched
// CHECK: linalg.generic
// CHECK-LABEL: func.func @out_read_between
// CHECK: call @modrt_cublas_sgemm_strided_batched
// CHECK: linalg.generic
// CHECK-LABEL: func.func @out_is_input
// CHECK: call @modrt_cublas_sgemm_strided_batched
// CHECK: linalg.generic
// CHECK-NOT: modrt_cublaslt_matmul
func.func @c_read_again(%a: memref<4x6xf32>, %b: memref<6x8xf32>, %bias: memref<8xf32>, %out: memref<4x8xf32>, %keep: memref<4x8xf32>) {
  %d = memref.alloc() : memref<4x8xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %c = memref.alloc() : memref<4x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x8xf32>)
  linalg.matmul ins(%a, %b : memref<4x6xf32>, memref<6x8xf32>) outs(%c : memref<4x8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x8xf32>, memref<8xf32>) outs(%d : memref<4x8xf32>) {
  ^bb0(%in: f32, %bv: f32, %o: f32):
    %s = arith.addf %in, %bv : f32
    linalg.yield %s : f32
  }
  memref.copy %c, %keep : memref<4x8xf32> to memref<4x8xf32>
  memref.copy %d, %out : memref<4x8xf32> to memref<4x8xf32>
  return
}
func.func @out_read_between(%a: memref<4x6xf32>, %b: memref<6x8xf32>, %bias: memref<8xf32>, %out: memref<4x8xf32>, %keep: memref<4x8xf32>) {
  %d = memref.alloc() : memref<4x8xf32>
  %zero = arith.constant 0.000000e+00 : f32
  %c = memref.alloc() : memref<4x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x8xf32>)
  linalg.matmul ins(%a, %b : memref<4x6xf32>, memref<6x8xf32>) outs(%c : memref<4x8xf32>)
  memref.copy %d, %keep : memref<4x8xf32> to memref<4x8xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x8xf32>, memref<8xf32>) outs(%d : memref<4x8xf32>) {
  ^bb0(%in: f32, %bv: f32, %o: f32):
    %s = arith.addf %in, %bv : f32
    linalg.yield %s : f32
  }
  memref.copy %d, %out : memref<4x8xf32> to memref<4x8xf32>
  return
}
func.func @out_is_input(%b: memref<8x8xf32>, %bias: memref<8xf32>) {
  %zero = arith.constant 0.000000e+00 : f32
  %x = memref.alloc() : memref<4x8xf32>
  linalg.fill ins(%zero : f32) outs(%x : memref<4x8xf32>)
  %c = memref.alloc() : memref<4x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x8xf32>)
  linalg.matmul ins(%x, %b : memref<4x8xf32>, memref<8x8xf32>) outs(%c : memref<4x8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x8xf32>, memref<8xf32>) outs(%x : memref<4x8xf32>) {
  ^bb0(%in: f32, %bv: f32, %o: f32):
    %s = arith.addf %in, %bv : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// The bias add in place into C (what bufferization makes of a projection
// whose output buffer is reused): D is C, written by cuBLASLt with
// beta = 0 (null C pointer), and its zero fill goes.
// CHECK-LABEL: func.func @bias_in_place
// CHECK: %[[C:.*]] = memref.alloc() : memref<4x8xf32>
// CHECK-NOT: linalg.fill
// CHECK: %[[NOC:.*]] = llvm.mlir.zero : !llvm.ptr
// CHECK: memref.extract_aligned_pointer_as_index %[[C]]
// CHECK: %[[PD:.*]] = llvm.inttoptr
// CHECK: call @modrt_cublaslt_matmul(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[NOC]], %{{.*}}, %[[PD]], %{{.*}}, %{{.*}}, %{{.*}})
// CHECK-NOT: linalg.generic
// CHECK: memref.copy %[[C]]
func.func @bias_in_place(%a: memref<4x6xf32>, %b: memref<6x8xf32>, %bias: memref<8xf32>, %out: memref<4x8xf32>) {
  %zero = arith.constant 0.000000e+00 : f32
  %c = memref.alloc() : memref<4x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x8xf32>)
  linalg.matmul ins(%a, %b : memref<4x6xf32>, memref<6x8xf32>) outs(%c : memref<4x8xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x8xf32>, memref<8xf32>) outs(%c : memref<4x8xf32>) {
  ^bb0(%in: f32, %bv: f32, %o: f32):
    %s = arith.addf %in, %bv : f32
    linalg.yield %s : f32
  }
  memref.copy %c, %out : memref<4x8xf32> to memref<4x8xf32>
  return
}

// -----

// The training graph: the bias add's adjoint takes C and the bias as
// operands but never reads their values (the derivative of an add is 1), so
// it does not keep C alive as a value and the bias is fused; the GELU's
// adjoint does read the pre-activation %d, so the GELU is not fused.
// CHECK-LABEL: func.func @training_adjoints
// CHECK: %[[NONE:.*]] = arith.constant 0 : i32
// CHECK: call @modrt_cublaslt_matmul({{.*}}, %[[NONE]])
// CHECK: linalg.generic
// CHECK: math.tanh
// CHECK: linalg.generic
// CHECK: math.tanh
// CHECK: linalg.generic
// CHECK-NOT: call @modrt_cublas_sgemm_strided_batched
func.func @training_adjoints(%a: memref<4x6xf32>, %b: memref<6x8xf32>, %bias: memref<8xf32>, %out: memref<4x8xf32>, %dh: memref<4x8xf32>, %dbias: memref<8xf32>) {
  %zero = arith.constant 0.000000e+00 : f32
  %cubic = arith.constant 4.471500e-02 : f32
  %scale = arith.constant 0.797884583 : f32
  %half = arith.constant 5.000000e-01 : f32
  %one = arith.constant 1.000000e+00 : f32
  %c = memref.alloc() : memref<4x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x8xf32>)
  linalg.matmul ins(%a, %b : memref<4x6xf32>, memref<6x8xf32>) outs(%c : memref<4x8xf32>)
  %d = memref.alloc() : memref<4x8xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %bias : memref<4x8xf32>, memref<8xf32>) outs(%d : memref<4x8xf32>) {
  ^bb0(%in: f32, %bv: f32, %o: f32):
    %s = arith.addf %in, %bv : f32
    linalg.yield %s : f32
  }
  %e = memref.alloc() : memref<4x8xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%d : memref<4x8xf32>) outs(%e : memref<4x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.mulf %in, %in : f32
    %1 = arith.mulf %0, %in : f32
    %2 = arith.mulf %1, %cubic : f32
    %3 = arith.addf %in, %2 : f32
    %4 = arith.mulf %3, %scale : f32
    %5 = math.tanh %4 : f32
    %6 = arith.mulf %in, %half : f32
    %7 = arith.addf %5, %one : f32
    %8 = arith.mulf %6, %7 : f32
    linalg.yield %8 : f32
  }
  memref.copy %e, %out : memref<4x8xf32> to memref<4x8xf32>
  // d gelu / d h at %d (reads the pre-activation).
  %g = memref.alloc() : memref<4x8xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%d : memref<4x8xf32>) outs(%g : memref<4x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %5 = math.tanh %in : f32
    linalg.yield %5 : f32
  }
  // The add's adjoint: d bias = sum over rows of dh; C and the bias are
  // operands whose values are not used.
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>],
                  iterator_types = ["reduction", "parallel"]}
      ins(%c, %bias, %dh : memref<4x8xf32>, memref<8xf32>, memref<4x8xf32>) outs(%dbias : memref<8xf32>) {
  ^bb0(%in: f32, %bv: f32, %gr: f32, %acc: f32):
    %s = arith.addf %acc, %gr : f32
    linalg.yield %s : f32
  }
  return
}
