// RUN: mod-opt %s --mod-linalg-to-blas --cse --split-input-file | FileCheck %s

// A plain row-major GEMM: no transposes, leading dimensions are the row
// strides. The calls run on the OpenMP threads (an scf.parallel marked for
// --mod-cpu-parallel-loops to leave alone), one column slice of the larger
// dimension (N = 256 here) per thread: N is the runtime slice size and B and
// C advance by the slice start. linalg accumulates into C: beta = 1.
// CHECK-LABEL: func.func @matmul
// CHECK:         %[[T:.*]] = call @omp_get_max_threads() : () -> i32
// CHECK:         scf.parallel (%[[S:.*]]) = (%{{.*}}) to (%{{.*}}) step (%{{.*}}) {
// CHECK:           %[[START:.*]] = arith.muli %[[S]], %[[CHUNK:.*]] : index
// CHECK:           %[[SIZE:.*]] = arith.minsi %[[CHUNK]], %{{.*}} : index
// CHECK:           %[[SIZE32:.*]] = arith.index_cast %[[SIZE]] : index to i32
// CHECK-DAG:       %[[ROW:.*]] = arith.constant 101 : i32
// CHECK-DAG:       %[[N:.*]] = arith.constant 111 : i32
// CHECK-DAG:       %[[C128:.*]] = arith.constant 128 : i32
// CHECK-DAG:       %[[C256:.*]] = arith.constant 256 : i32
// CHECK-DAG:       %[[C64:.*]] = arith.constant 64 : i32
// CHECK-DAG:       %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK:           call @cblas_sgemm(%[[ROW]], %[[N]], %[[N]], %[[C128]], %[[SIZE32]], %[[C64]], %[[ONE]], %{{.*}}, %[[C64]], %{{.*}}, %[[C256]], %[[ONE]], %{{.*}}, %[[C256]])
// CHECK:         } {mod.gemm_tiles}
// CHECK-NOT:     linalg.matmul
// CHECK-DAG:     func.func private @cblas_sgemm(i32, i32, i32, i32, i32, i32, f32, !llvm.ptr, i32, !llvm.ptr, i32, f32, !llvm.ptr, i32)
// CHECK-DAG:     func.func private @omp_get_max_threads() -> i32
func.func @matmul(%a: memref<128x64xf32>, %b: memref<64x256xf32>, %c: memref<128x256xf32>) {
  linalg.matmul ins(%a, %b : memref<128x64xf32>, memref<64x256xf32>) outs(%c : memref<128x256xf32>)
  return
}

// -----

// y = x · Wᵀ with W stored [out, in] (a linear layer's weight): B is passed
// transposed (112) with its own row stride as leading dimension, and the
// [2,3] token dimensions merge into one M of 6.
// CHECK-LABEL: func.func @linear_out_in
// CHECK-NOT:     scf.for
// CHECK:         scf.parallel
// CHECK:           %[[SIZE:.*]] = arith.minsi %{{.*}}, %{{.*}} : index
// CHECK:           %[[SIZE32:.*]] = arith.index_cast %[[SIZE]] : index to i32
// CHECK-DAG:       %[[N:.*]] = arith.constant 111 : i32
// CHECK-DAG:       %[[T:.*]] = arith.constant 112 : i32
// CHECK-DAG:       %[[C5:.*]] = arith.constant 5 : i32
// CHECK-DAG:       %[[C4:.*]] = arith.constant 4 : i32
// CHECK:           call @cblas_sgemm(%{{.*}}, %[[N]], %[[T]], %[[SIZE32]], %[[C5]], %[[C4]], %{{.*}}, %{{.*}}, %[[C4]], %{{.*}}, %[[C4]], %{{.*}}, %{{.*}}, %[[C5]])
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
// batch dims b and h are dimensions of the parallel loop, in front of the
// slice dimension (the pointers advance by their strides); K is read
// transposed. These GEMMs are too small to be worth the OpenMP threads
// (fewer than 2^21 multiply-adds in all): one slice each, and the loop is
// not marked, so --mod-cpu-parallel-loops makes it sequential.
// CHECK-LABEL: func.func @scores_bshd
// CHECK-NOT:     omp_get_max_threads
// CHECK:         scf.parallel (%{{.*}}, %{{.*}}, %{{.*}}) = (%{{.*}}, %{{.*}}, %{{.*}}) to (%c2, %c3, %{{.*}})
// CHECK-NOT:       scf.for
// CHECK-DAG:       %[[N:.*]] = arith.constant 111 : i32
// CHECK-DAG:       %[[T:.*]] = arith.constant 112 : i32
// CHECK-DAG:       %[[S:.*]] = arith.constant 8 : i32
// CHECK-DAG:       %[[HD:.*]] = arith.constant 4 : i32
// CHECK-DAG:       %[[LD:.*]] = arith.constant 12 : i32
// CHECK:           call @cblas_sgemm(%{{.*}}, %[[N]], %[[T]], %{{.*}}, %[[S]], %[[HD]], %{{.*}}, %{{.*}}, %[[LD]], %{{.*}}, %[[LD]], %{{.*}}, %{{.*}}, %[[S]])
// CHECK-NOT:     mod.gemm_tiles
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

// batch_matmul: one call per batch, in parallel.
// CHECK-LABEL: func.func @batch_matmul
// CHECK:         scf.parallel (%{{.*}}, %{{.*}}) =
// CHECK-NOT:       scf.for
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
// CHECK:         scf.parallel
// CHECK-DAG:       %[[T:.*]] = arith.constant 112 : i32
// CHECK-DAG:       %[[C8:.*]] = arith.constant 8 : i32
// CHECK-DAG:       %[[C6:.*]] = arith.constant 6 : i32
// CHECK-DAG:       %[[C4:.*]] = arith.constant 4 : i32
// CHECK:         call @cblas_sgemm(%{{.*}}, %[[T]], %[[T]], %{{.*}}, %[[C6]], %[[C4]], %{{.*}}, %{{.*}}, %[[C8]], %{{.*}}, %[[C4]], %{{.*}}, %{{.*}}, %[[C6]])
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

// -----

// A zero fill of C right before the GEMM is what beta = 0 does: the fill
// goes. So does a copy into C from a buffer just filled with zeros (what
// bufferization makes of one zero init shared by two GEMMs); that buffer's
// own fill stays for its other user.
// CHECK-LABEL: func.func @zero_init
// CHECK:         %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NOT:     linalg.fill
// CHECK:         call @cblas_sgemm({{.*}}, %[[ZERO]], %{{.*}}, %{{.*}})
// CHECK:         %[[SHARED:.*]] = memref.alloc() : memref<6x8xf32>
// CHECK-NEXT:    linalg.fill ins(%[[ZERO]] : f32) outs(%[[SHARED]] : memref<6x8xf32>)
// CHECK-NOT:     memref.copy
// CHECK:         call @cblas_sgemm({{.*}}, %[[ZERO]], %{{.*}}, %{{.*}})
// The third GEMM's C was last written by the second GEMM: beta = 1.
// CHECK:         %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK:         call @cblas_sgemm({{.*}}, %[[ONE]], %{{.*}}, %[[ONE]], %{{.*}}, %{{.*}})
func.func @zero_init(%a: memref<6x4xf32>, %b: memref<4x8xf32>, %c: memref<6x8xf32>,
                     %d: memref<6x8xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<6x8xf32>)
  linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  %shared = memref.alloc() : memref<6x8xf32>
  linalg.fill ins(%zero : f32) outs(%shared : memref<6x8xf32>)
  memref.copy %shared, %d : memref<6x8xf32> to memref<6x8xf32>
  linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%d : memref<6x8xf32>)
  linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%shared : memref<6x8xf32>)
  memref.dealloc %shared : memref<6x8xf32>
  return
}

// -----

// The fill stays (beta = 1) when it is not C's last writer, when it writes
// something else than zero, or when the GEMM has a K dimension that does not
// merge (a loop of calls accumulating into the same C).
// CHECK-LABEL: func.func @keep_init
// CHECK:         linalg.fill
// CHECK:         linalg.fill
// CHECK:         %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK:         call @cblas_sgemm({{.*}}, %[[ONE]], %{{.*}}, %{{.*}}, %[[ONE]], %{{.*}}, %{{.*}})
// CHECK:         linalg.fill
// CHECK:         call @cblas_sgemm({{.*}}, %[[ONE]], %{{.*}}, %{{.*}}, %[[ONE]], %{{.*}}, %{{.*}})
// CHECK:         linalg.fill
// CHECK:         scf.parallel
// CHECK:           scf.for
// CHECK:             call @cblas_sgemm({{.*}}, %[[ONE]], %{{.*}}, %{{.*}}, %[[ONE]], %{{.*}}, %{{.*}})
#xk = affine_map<(m, n, h, d) -> (m, h, d)>
#wk = affine_map<(m, n, h, d) -> (h, d, n)>
#yk = affine_map<(m, n, h, d) -> (m, n)>
func.func @keep_init(%a: memref<6x4xf32>, %b: memref<4x8xf32>, %c: memref<6x8xf32>,
                     %x: memref<6x2x4xf32, strided<[16, 4, 1]>>, %w: memref<2x4x8xf32, strided<[64, 8, 1]>>) {
  %zero = arith.constant 0.0 : f32
  %half = arith.constant 0.5 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<6x8xf32>)
  linalg.fill ins(%half : f32) outs(%b : memref<4x8xf32>)
  linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  linalg.fill ins(%half : f32) outs(%c : memref<6x8xf32>)
  linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  linalg.fill ins(%zero : f32) outs(%c : memref<6x8xf32>)
  linalg.generic {indexing_maps = [#xk, #wk, #yk],
                  iterator_types = ["parallel", "parallel", "reduction", "reduction"]}
      ins(%x, %w : memref<6x2x4xf32, strided<[16, 4, 1]>>, memref<2x4x8xf32, strided<[64, 8, 1]>>)
      outs(%c : memref<6x8xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %m = arith.mulf %p, %q : f32
    %r = arith.addf %acc, %m : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// One row (M = 1, a decode step's projection): cblas_sgemv on the same
// column slices, y = Bᵀx with B [k][n] row-major (RowMajor, Trans, k = 4
// rows, the slice's n columns, lda 8), x unit stride, y unit stride. The
// zero fill of the output stays (beta = 1). (This one is small enough to
// stay on the calling thread: its loop is not marked mod.gemm_tiles.)
// CHECK-LABEL: func.func @one_row
// CHECK:         linalg.fill
// CHECK:         scf.parallel
// CHECK:           %[[SIZE:.*]] = arith.minsi %{{.*}}, %{{.*}} : index
// CHECK:           %[[SIZE32:.*]] = arith.index_cast %[[SIZE]] : index to i32
// CHECK-DAG:       %[[ROW:.*]] = arith.constant 101 : i32
// CHECK-DAG:       %[[T:.*]] = arith.constant 112 : i32
// CHECK-DAG:       %[[C4:.*]] = arith.constant 4 : i32
// CHECK-DAG:       %[[C8:.*]] = arith.constant 8 : i32
// CHECK-DAG:       %[[I1:.*]] = arith.constant 1 : i32
// CHECK-DAG:       %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK:           call @cblas_sgemv(%[[ROW]], %[[T]], %[[C4]], %[[SIZE32]], %[[ONE]], %{{.*}}, %[[C8]], %{{.*}}, %[[I1]], %[[ONE]], %{{.*}}, %[[I1]])
// CHECK-NOT:     cblas_sgemm
// CHECK:         func.func private @cblas_sgemv(i32, i32, i32, i32, f32, !llvm.ptr, i32, !llvm.ptr, i32, f32, !llvm.ptr, i32)
func.func @one_row(%a: memref<1x4xf32>, %b: memref<4x8xf32>, %c: memref<1x8xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<1x8xf32>)
  linalg.matmul ins(%a, %b : memref<1x4xf32>, memref<4x8xf32>) outs(%c : memref<1x8xf32>)
  return
}

// -----

// One row per batch of a batch_matmul with B stored [n][k] (a query times
// cached keys stored key-major): y = Bx, RowMajor, NoTrans, the slice's n
// rows, k = 4 columns, lda 4; the batch is a loop of the scf.parallel.
// CHECK-LABEL: func.func @one_row_batched_transposed
// CHECK:         scf.parallel (%{{.*}}, %{{.*}}) =
// CHECK-DAG:       %[[N:.*]] = arith.constant 111 : i32
// CHECK-DAG:       %[[C4:.*]] = arith.constant 4 : i32
// CHECK:           call @cblas_sgemv(%{{.*}}, %[[N]], %{{.*}}, %[[C4]], %{{.*}}, %{{.*}}, %[[C4]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// CHECK-NOT:     cblas_sgemm
#q = affine_map<(h, m, n, k) -> (h, m, k)>
#kt = affine_map<(h, m, n, k) -> (h, n, k)>
#s = affine_map<(h, m, n, k) -> (h, m, n)>
func.func @one_row_batched_transposed(%q: memref<3x1x4xf32>, %k: memref<3x16x4xf32>, %s: memref<3x1x16xf32>) {
  linalg.generic {indexing_maps = [#q, #kt, #s],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<3x1x4xf32>, memref<3x16x4xf32>) outs(%s : memref<3x1x16xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Dynamic sizes (a decode step's attention over one row's filled cache
// slots, --mod-generate-decode): views of static buffers with static
// strides whose size is min(len, 16). Scores = q·Kᵀ over the first `len`
// keys: one sgemv per head, N = the slice of the run-time length
// (memref.dim); the leading dimension is the buffer's row stride 16, which
// the bound 16 of the length shows is enough.
// CHECK-LABEL: func.func @scores_filled_slots
// CHECK:         %[[L:.*]] = arith.minsi %{{.*}}, %{{.*}} : index
// CHECK:         %[[DIM:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<4x8x?xf32, strided<[128, 16, 1], offset: ?>>
// CHECK:         %[[CHUNK:.*]] = arith.minsi %{{.*}}, %[[DIM]] : index
// CHECK:         scf.parallel (%{{.*}}, %[[S:.*]]) =
// CHECK:           %[[START:.*]] = arith.muli %[[S]], %{{.*}} : index
// CHECK:           %[[LEFT:.*]] = arith.subi %[[DIM]], %[[START]] : index
// CHECK:           %[[SIZE:.*]] = arith.minsi %{{.*}}, %[[LEFT]] : index
// CHECK:           %[[SIZE32:.*]] = arith.index_cast %[[SIZE]] : index to i32
// CHECK-DAG:       %[[T:.*]] = arith.constant 112 : i32
// CHECK-DAG:       %[[C8:.*]] = arith.constant 8 : i32
// CHECK-DAG:       %[[C16:.*]] = arith.constant 16 : i32
// CHECK:           call @cblas_sgemv(%{{.*}}, %[[T]], %[[C8]], %[[SIZE32]], %{{.*}}, %{{.*}}, %[[C16]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// CHECK-NOT:     linalg.batch_matmul
func.func @scores_filled_slots(%q: memref<8x1x8xf32>, %k: memref<8x8x16xf32>, %s: memref<8x1x16xf32>, %row: index, %len: index) {
  %c16 = arith.constant 16 : index
  %l = arith.minsi %len, %c16 : index
  %qr = memref.subview %q[%row, 0, 0] [4, 1, 8] [1, 1, 1] : memref<8x1x8xf32> to memref<4x1x8xf32, strided<[8, 8, 1], offset: ?>>
  %kr = memref.subview %k[%row, 0, 0] [4, 8, %l] [1, 1, 1] : memref<8x8x16xf32> to memref<4x8x?xf32, strided<[128, 16, 1], offset: ?>>
  %sr = memref.subview %s[%row, 0, 0] [4, 1, %l] [1, 1, 1] : memref<8x1x16xf32> to memref<4x1x?xf32, strided<[16, 16, 1], offset: ?>>
  linalg.batch_matmul ins(%qr, %kr : memref<4x1x8xf32, strided<[8, 8, 1], offset: ?>>, memref<4x8x?xf32, strided<[128, 16, 1], offset: ?>>) outs(%sr : memref<4x1x?xf32, strided<[16, 16, 1], offset: ?>>)
  return
}

// -----

// Probabilities times values over the first `len` slots: K is the run-time
// length (memref.dim of an operand dimension its loop runs over).
// CHECK-LABEL: func.func @values_filled_slots
// CHECK:         %[[DIM:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<4x{{.*}}x?xf32, strided<[16, 16, 1], offset: ?>>
// CHECK:         scf.parallel
// CHECK:           %[[K32:.*]] = arith.index_cast %[[DIM]] : index to i32
// CHECK:           call @cblas_sgemv(%{{.*}}, %{{.*}}, %[[K32]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// CHECK-NOT:     linalg.batch_matmul
func.func @values_filled_slots(%p: memref<8x1x16xf32>, %v: memref<8x16x8xf32>, %o: memref<8x1x8xf32>, %row: index, %len: index) {
  %c16 = arith.constant 16 : index
  %l = arith.minsi %len, %c16 : index
  %pr = memref.subview %p[%row, 0, 0] [4, 1, %l] [1, 1, 1] : memref<8x1x16xf32> to memref<4x1x?xf32, strided<[16, 16, 1], offset: ?>>
  %vr = memref.subview %v[%row, 0, 0] [4, %l, 8] [1, 1, 1] : memref<8x16x8xf32> to memref<4x?x8xf32, strided<[128, 8, 1], offset: ?>>
  %or = memref.subview %o[%row, 0, 0] [4, 1, 8] [1, 1, 1] : memref<8x1x8xf32> to memref<4x1x8xf32, strided<[8, 8, 1], offset: ?>>
  linalg.batch_matmul ins(%pr, %vr : memref<4x1x?xf32, strided<[16, 16, 1], offset: ?>>, memref<4x?x8xf32, strided<[128, 8, 1], offset: ?>>) outs(%or : memref<4x1x8xf32, strided<[8, 8, 1], offset: ?>>)
  return
}

// -----

// A dynamic size with no constant bound cannot be checked against the
// leading dimensions: the op stays.
// CHECK-LABEL: func.func @unbounded
// CHECK:         linalg.batch_matmul
// CHECK-NOT:     cblas_sgemv
func.func @unbounded(%q: memref<8x1x8xf32>, %k: memref<8x8x16xf32>, %s: memref<8x1x16xf32>, %l: index) {
  %kr = memref.subview %k[0, 0, 0] [4, 8, %l] [1, 1, 1] : memref<8x8x16xf32> to memref<4x8x?xf32, strided<[128, 16, 1]>>
  %sr = memref.subview %s[0, 0, 0] [4, 1, %l] [1, 1, 1] : memref<8x1x16xf32> to memref<4x1x?xf32, strided<[16, 16, 1]>>
  %qr = memref.subview %q[0, 0, 0] [4, 1, 8] [1, 1, 1] : memref<8x1x8xf32> to memref<4x1x8xf32, strided<[8, 8, 1]>>
  linalg.batch_matmul ins(%qr, %kr : memref<4x1x8xf32, strided<[8, 8, 1]>>, memref<4x8x?xf32, strided<[128, 16, 1]>>) outs(%sr : memref<4x1x?xf32, strided<[16, 16, 1]>>)
  return
}
