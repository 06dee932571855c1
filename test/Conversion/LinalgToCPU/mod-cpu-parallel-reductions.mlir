// RUN: mod-opt %s --mod-cpu-parallel-reductions --cse --split-input-file | FileCheck %s
// RUN: mod-opt %s --mod-cpu-parallel-reductions=chunks=7 --split-input-file | FileCheck %s --check-prefix=SEVEN
// RUN: not mod-opt %s --mod-cpu-parallel-reductions=chunks=0 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: --mod-cpu-parallel-reductions: chunks must be at least 1, got 0

// @adamw_step's sum of squares of one gradient, f32 read into an f64
// accumulator: 64 chunks of 12 rows on the OpenMP threads, each folded into
// a register (iter_args) with a reassociable add the vectorizer can split
// into several partial sums, then the partials after the initial value, in
// chunk order.
// CHECK-LABEL: func.func @sum_of_squares
// CHECK:         %[[P:.*]] = memref.alloc() : memref<64xf64>
// CHECK-DAG:     %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG:     %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG:     %[[C64:.*]] = arith.constant 64 : index
// CHECK-DAG:     %[[ZERO:.*]] = arith.constant 0.000000e+00 : f64
// CHECK:         scf.parallel (%[[C:.*]]) = (%[[C0]]) to (%[[C64]]) step (%[[C1]]) {
// CHECK:           %[[LO:.*]] = arith.muli %[[C]], %[[C12:.*]] : index
// CHECK:           %[[END:.*]] = arith.addi %[[LO]], %[[C12]] : index
// CHECK:           %[[HI:.*]] = arith.minsi %[[END]], %{{.*}} : index
// CHECK:           %[[ROWS:.*]] = scf.for %[[I:.*]] = %[[LO]] to %[[HI]] step %{{.*}} iter_args(%[[A:.*]] = %[[ZERO]]) -> (f64) {
// CHECK:             %[[COLS:.*]] = scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[B:.*]] = %[[A]]) -> (f64) {
// CHECK:               %[[X:.*]] = memref.load %{{.*}}[%[[I]], %[[J]]] : memref<768x3072xf32>
// CHECK:               %[[E:.*]] = arith.extf %[[X]] : f32 to f64
// CHECK:               %[[SQ:.*]] = arith.mulf %[[E]], %[[E]] : f64
// CHECK:               %[[S:.*]] = arith.addf %[[B]], %[[SQ]] fastmath<reassoc> : f64
// CHECK:               scf.yield %[[S]] : f64
// CHECK:             scf.yield %[[COLS]] : f64
// CHECK:           memref.store %[[ROWS]], %[[P]][%[[C]]] : memref<64xf64>
// CHECK:         } {mod.reduction_chunks}
// CHECK:         %[[INIT:.*]] = memref.load %[[ACC:.*]][] : memref<f64>
// CHECK:         %[[SUM:.*]] = scf.for %[[K:.*]] = %[[C0]] to %[[C64]] step %[[C1]] iter_args(%[[T:.*]] = %[[INIT]]) -> (f64) {
// CHECK:           %[[PK:.*]] = memref.load %[[P]][%[[K]]] : memref<64xf64>
// CHECK:           %[[TK:.*]] = arith.addf %[[T]], %[[PK]] : f64
// CHECK:           scf.yield %[[TK]] : f64
// CHECK:         memref.store %[[SUM]], %[[ACC]][] : memref<f64>
// CHECK:         memref.dealloc %[[P]] : memref<64xf64>
// CHECK-NOT:     linalg.generic
// 768 rows in 7 chunks: 110 rows per chunk, the last one shorter.
// SEVEN-LABEL: func.func @sum_of_squares
// SEVEN:         memref.alloc() : memref<7xf64>
// SEVEN:         arith.constant 110 : index
func.func @sum_of_squares(%g: memref<768x3072xf32>, %acc: memref<f64>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                   affine_map<(d0, d1) -> ()>],
                  iterator_types = ["reduction", "reduction"]}
      ins(%g : memref<768x3072xf32>) outs(%acc : memref<f64>) {
  ^bb0(%x: f32, %a: f64):
    %e = arith.extf %x : f32 to f64
    %sq = arith.mulf %e, %e : f64
    %s = arith.addf %a, %sq : f64
    linalg.yield %s : f64
  }
  return
}

// -----

// A max over a transposed read of a rank-3 buffer with the accumulator as
// the combiner's second operand: the neutral element is -inf, the outermost
// loop (4 iterations) gives 4 chunks of one, the indexing map picks the
// loads' indices. maxnumf's neutral element is NaN (maxnum(NaN, x) = x).
// CHECK-LABEL: func.func @max_transposed
// CHECK:         memref.alloc() : memref<4xf32>
// CHECK-DAG:     %[[NAN:.*]] = arith.constant 0xFFC00000 : f32
// CHECK-DAG:     %[[C4:.*]] = arith.constant 4 : index
// CHECK:         scf.parallel (%{{.*}}) = (%{{.*}}) to (%[[C4]]) step
// CHECK:           scf.for %[[I:[^ ]*]] = {{.*}} iter_args(%{{.*}} = %[[NAN]])
// CHECK:             scf.for %[[J:[^ ]*]] =
// CHECK:               scf.for %[[K:[^ ]*]] =
// CHECK:                 %[[X:.*]] = memref.load %{{.*}}[%[[K]], %[[J]], %[[I]]] : memref<128x128x4xf32>
// CHECK:                 arith.maxnumf %[[X]], %{{.*}} fastmath<reassoc> : f32
// CHECK:         } {mod.reduction_chunks}
// CHECK:         scf.for
// CHECK:           arith.maxnumf %{{.*}}, %{{.*}} : f32
// SEVEN-LABEL: func.func @max_transposed
// SEVEN:         memref.alloc() : memref<4xf32>
func.func @max_transposed(%x: memref<128x128x4xf32>, %acc: memref<f32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d2, d1, d0)>,
                                   affine_map<(d0, d1, d2) -> ()>],
                  iterator_types = ["reduction", "reduction", "reduction"]}
      ins(%x : memref<128x128x4xf32>) outs(%acc : memref<f32>) {
  ^bb0(%v: f32, %a: f32):
    %m = arith.maxnumf %v, %a : f32
    linalg.yield %m : f32
  }
  return
}

// -----

// Left alone: too few elements (a bias gradient's norm); a reduction with
// a parallel loop (a row sum); a body that is not combine(out, f(ins))
// (out * 2 + x: not associative); a dynamic size.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT:     scf.parallel
// CHECK-COUNT-4: linalg.generic
// CHECK-NOT:     scf.parallel
func.func @left_alone(%b: memref<768xf32>, %m: memref<256x768xf32>,
                      %d: memref<?x768xf32>, %acc: memref<f32>,
                      %rows: memref<256xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>,
                                   affine_map<(d0) -> ()>],
                  iterator_types = ["reduction"]}
      ins(%b : memref<768xf32>) outs(%acc : memref<f32>) {
  ^bb0(%x: f32, %a: f32):
    %s = arith.addf %a, %x : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                   affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%m : memref<256x768xf32>) outs(%rows : memref<256xf32>) {
  ^bb0(%x: f32, %a: f32):
    %s = arith.addf %a, %x : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                   affine_map<(d0, d1) -> ()>],
                  iterator_types = ["reduction", "reduction"]}
      ins(%m : memref<256x768xf32>) outs(%acc : memref<f32>) {
  ^bb0(%x: f32, %a: f32):
    %two = arith.constant 2.0 : f32
    %a2 = arith.mulf %a, %two : f32
    %s = arith.addf %a2, %x : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                   affine_map<(d0, d1) -> ()>],
                  iterator_types = ["reduction", "reduction"]}
      ins(%d : memref<?x768xf32>) outs(%acc : memref<f32>) {
  ^bb0(%x: f32, %a: f32):
    %s = arith.addf %a, %x : f32
    linalg.yield %s : f32
  }
  return
}
