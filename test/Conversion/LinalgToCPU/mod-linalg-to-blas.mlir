// RUN: mod-opt %s --mod-linalg-to-blas --cse --split-input-file | FileCheck %s

// A plain row-major GEMM: one call, no transposes, leading dimensions are the
// row strides.
// CHECK-LABEL: func.func @matmul
// CHECK-DAG:     %[[ROW:.*]] = arith.constant 101 : i32
// CHECK-DAG:     %[[N:.*]] = arith.constant 111 : i32
// CHECK-DAG:     %[[C6:.*]] = arith.constant 6 : i32
// CHECK-DAG:     %[[C8:.*]] = arith.constant 8 : i32
// CHECK-DAG:     %[[C4:.*]] = arith.constant 4 : i32
// CHECK:         call @cblas_sgemm(%[[ROW]], %[[N]], %[[N]], %[[C6]], %[[C8]], %[[C4]], %{{.*}}, %{{.*}}, %[[C4]], %{{.*}}, %[[C8]], %{{.*}}, %{{.*}}, %[[C8]])
// CHECK-NOT:     linalg.matmul
// CHECK:         func.func private @cblas_sgemm(i32, i32, i32, i32, i32, i32, f32, !llvm.ptr, i32, !llvm.ptr, i32, f32, !llvm.ptr, i32)
func.func @matmul(%a: memref<6x4xf32>, %b: memref<4x8xf32>, %c: memref<6x8xf32>) {
  linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  return
}

// -----

// y = x · Wᵀ with W stored [out, in] (a linear layer's weight): B is passed
// transposed (112) with its own row stride as leading dimension, and the
// [2,3] token dimensions merge into one M of 6.
// CHECK-LABEL: func.func @linear_out_in
// CHECK-DAG:     %[[N:.*]] = arith.constant 111 : i32
// CHECK-DAG:     %[[T:.*]] = arith.constant 112 : i32
// CHECK-DAG:     %[[C6:.*]] = arith.constant 6 : i32
// CHECK-DAG:     %[[C5:.*]] = arith.constant 5 : i32
// CHECK-DAG:     %[[C4:.*]] = arith.constant 4 : i32
// CHECK-NOT:     scf.for
// CHECK:         call @cblas_sgemm(%{{.*}}, %[[N]], %[[T]], %[[C6]], %[[C5]], %[[C4]], %{{.*}}, %{{.*}}, %[[C4]], %{{.*}}, %[[C4]], %{{.*}}, %{{.*}}, %[[C5]])
// CHECK-NOT:     linalg.generic
#x = affine_map<(b, s, n, k) -> (b, s, k)>
#w = affine_map<(b, s, n, k) -> (n, k)>
#y = affine_map<(b, s, n, k) -> (b, s, n)>
func.func @linear_out_in(%x: memref<2x3x4xf32>, %w: memref<5x4xf32>, %y: memref<2x3x5xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #y],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<2x3x4xf32>, memref<5x4xf32>) outs(%y : memref<2x3x5xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Attention scores on [B,S,H,hd] buffers without materialized transposes:
// batch dims b and h become loops (the pointers advance by their strides),
// K is read transposed.
// CHECK-LABEL: func.func @scores_bshd
// CHECK:         scf.for
// CHECK:           scf.for
// CHECK-DAG:         %[[N:.*]] = arith.constant 111 : i32
// CHECK-DAG:         %[[T:.*]] = arith.constant 112 : i32
// CHECK-DAG:         %[[S:.*]] = arith.constant 8 : i32
// CHECK-DAG:         %[[HD:.*]] = arith.constant 4 : i32
// CHECK-DAG:         %[[LD:.*]] = arith.constant 12 : i32
// CHECK:             call @cblas_sgemm(%{{.*}}, %[[N]], %[[T]], %[[S]], %[[S]], %[[HD]], %{{.*}}, %{{.*}}, %[[LD]], %{{.*}}, %[[LD]], %{{.*}}, %{{.*}}, %[[S]])
#q = affine_map<(b, h, i, j, d) -> (b, i, h, d)>
#k = affine_map<(b, h, i, j, d) -> (b, j, h, d)>
#s = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
func.func @scores_bshd(%q: memref<2x8x3x4xf32>, %k: memref<2x8x3x4xf32>, %out: memref<2x3x8x8xf32>) {
  linalg.generic {indexing_maps = [#q, #k, #s],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<2x8x3x4xf32>, memref<2x8x3x4xf32>) outs(%out : memref<2x3x8x8xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// batch_matmul: one call per batch.
// CHECK-LABEL: func.func @batch_matmul
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step
// CHECK:           call @cblas_sgemm
// CHECK-NOT:     linalg.batch_matmul
func.func @batch_matmul(%a: memref<3x6x4xf32>, %b: memref<3x4x8xf32>, %c: memref<3x6x8xf32>) {
  linalg.batch_matmul ins(%a, %b : memref<3x6x4xf32>, memref<3x4x8xf32>) outs(%c : memref<3x6x8xf32>)
  return
}

// -----

// An output whose M dimension has unit stride is computed as Cᵀ = Bᵀ·Aᵀ:
// B becomes the left operand, M and N swap.
// CHECK-LABEL: func.func @transposed_output
// CHECK-DAG:     %[[T:.*]] = arith.constant 112 : i32
// CHECK-DAG:     %[[C8:.*]] = arith.constant 8 : i32
// CHECK-DAG:     %[[C6:.*]] = arith.constant 6 : i32
// CHECK-DAG:     %[[C4:.*]] = arith.constant 4 : i32
// CHECK:         call @cblas_sgemm(%{{.*}}, %[[T]], %[[T]], %[[C8]], %[[C6]], %[[C4]], %{{.*}}, %{{.*}}, %[[C8]], %{{.*}}, %[[C4]], %{{.*}}, %{{.*}}, %[[C6]])
#a = affine_map<(m, n, k) -> (m, k)>
#b = affine_map<(m, n, k) -> (k, n)>
#ct = affine_map<(m, n, k) -> (n, m)>
func.func @transposed_output(%a: memref<6x4xf32>, %b: memref<4x8xf32>, %c: memref<8x6xf32>) {
  linalg.generic {indexing_maps = [#a, #b, #ct],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<8x6xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Left alone: integer GEMMs, bodies that are not a plain multiply-add, and
// operands with no unit stride.
// CHECK-LABEL: func.func @not_blas
// CHECK-NOT:     cblas_sgemm
// CHECK:         linalg.matmul ins(%{{.*}}, %{{.*}} : memref<6x4xi32>
// CHECK:         linalg.generic
// CHECK:           arith.maximumf
// CHECK:         linalg.matmul ins(%{{.*}}, %{{.*}} : memref<6x4xf32, strided<[8, 2]>>
func.func @not_blas(%ai: memref<6x4xi32>, %bi: memref<4x8xi32>, %ci: memref<6x8xi32>,
                    %a: memref<6x4xf32>, %b: memref<4x8xf32>, %c: memref<6x8xf32>,
                    %as: memref<6x4xf32, strided<[8, 2]>>) {
  linalg.matmul ins(%ai, %bi : memref<6x4xi32>, memref<4x8xi32>) outs(%ci : memref<6x8xi32>)
  linalg.generic {indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (k, n)>, affine_map<(m, n, k) -> (m, n)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %r = arith.maximumf %acc, %p : f32
    linalg.yield %r : f32
  }
  linalg.matmul ins(%as, %b : memref<6x4xf32, strided<[8, 2]>>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  return
}
