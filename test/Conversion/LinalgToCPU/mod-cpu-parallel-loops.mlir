// RUN: mod-opt %s --mod-cpu-parallel-loops --split-input-file | FileCheck %s
// RUN: mod-opt %s --mod-cpu-parallel-loops=min-parallel-iterations=1000 --split-input-file | FileCheck %s --check-prefix=WIDE

// [1,256,768] elementwise: (b, s) stay parallel (256 iterations), the
// contiguous d loop runs sequentially inside each thread's iterations. With
// min-parallel-iterations=1000 all three stay parallel.
// CHECK-LABEL: func.func @elementwise
// CHECK:         scf.parallel (%[[B:.*]], %[[S:.*]]) = (%{{.*}}, %{{.*}}) to (%{{.*}}, %{{.*}}) step
// CHECK:           scf.for %[[D:.*]] = %{{.*}} to %{{.*}} step
// CHECK:             memref.load %{{.*}}[%[[B]], %[[S]], %[[D]]]
// CHECK-NOT:     scf.parallel
// WIDE-LABEL: func.func @elementwise
// WIDE:         scf.parallel (%{{.*}}, %{{.*}}, %{{.*}}) =
// WIDE-NOT:     scf.for
func.func @elementwise(%x: memref<1x256x768xf32>, %y: memref<1x256x768xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c256 = arith.constant 256 : index
  %c768 = arith.constant 768 : index
  scf.parallel (%b, %s, %d) = (%c0, %c0, %c0) to (%c1, %c256, %c768) step (%c1, %c1, %c1) {
    %v = memref.load %x[%b, %s, %d] : memref<1x256x768xf32>
    %e = math.exp %v : f32
    memref.store %e, %y[%b, %s, %d] : memref<1x256x768xf32>
  }
  return
}

// -----

// Too little work for a parallel region: fully sequential.
// CHECK-LABEL: func.func @small
// WIDE-LABEL: func.func @small
// CHECK-NOT:     scf.parallel
// CHECK:         scf.for
// CHECK:           scf.for
func.func @small(%x: memref<8x16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c16 = arith.constant 16 : index
  %f = arith.constant 1.0 : f32
  scf.parallel (%i, %j) = (%c0, %c0) to (%c8, %c16) step (%c1, %c1) {
    memref.store %f, %x[%i, %j] : memref<8x16xf32>
  }
  return
}

// -----

// A reduction loop inside counts towards the work; a nested parallel loop
// runs sequentially inside the outer one.
// CHECK-LABEL: func.func @nested
// WIDE-LABEL: func.func @nested
// CHECK:         scf.parallel (%[[I:.*]]) =
// CHECK-NEXT:      scf.for %[[J:.*]] =
// CHECK-NEXT:        memref.load %{{.*}}[%[[I]], %[[J]]]
// CHECK-NOT:     scf.parallel
func.func @nested(%x: memref<512x512xf32>, %y: memref<512xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c512 = arith.constant 512 : index
  scf.parallel (%i) = (%c0) to (%c512) step (%c1) {
    scf.parallel (%j) = (%c0) to (%c512) step (%c1) {
      %v = memref.load %x[%i, %j] : memref<512x512xf32>
      %a = memref.load %y[%i] : memref<512xf32>
      %s = arith.addf %a, %v : f32
      memref.store %s, %y[%i] : memref<512xf32>
    }
  }
  return
}

// -----

// The chunk loop of --mod-cpu-parallel-reductions stays parallel although
// its static trip count (4) and the unknown trip count of each chunk's loop
// make it look like little work.
// CHECK-LABEL: func.func @reduction_chunks
// CHECK:         scf.parallel (%{{.*}}) = (%{{.*}}) to (%{{.*}}) step (%{{.*}}) {
// CHECK:           scf.for
// CHECK:         } {mod.reduction_chunks}
// WIDE-LABEL: func.func @reduction_chunks
// WIDE:         scf.parallel
func.func @reduction_chunks(%x: memref<1000000xf32>, %p: memref<4xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%c) = (%c0) to (%c4) step (%c1) {
    %lo = arith.muli %c, %n : index
    %hi = arith.addi %lo, %n : index
    %s = scf.for %i = %lo to %hi step %c1 iter_args(%a = %zero) -> (f32) {
      %v = memref.load %x[%i] : memref<1000000xf32>
      %t = arith.addf %a, %v fastmath<reassoc> : f32
      scf.yield %t : f32
    }
    memref.store %s, %p[%c] : memref<4xf32>
  } {mod.reduction_chunks}
  return
}

// -----

// A decode step's key-side row loop (mod.key_rows, from
// --mod-generate-decode): its rows run on the threads, each over its own
// dynamic number of filled slots (which the work estimate cannot see), and
// the loops inside a row run sequentially on its thread.
// CHECK-LABEL: func.func @key_rows
// CHECK:         scf.parallel (%[[ROW:.*]]) = (%{{.*}}) to (%{{.*}}) step (%{{.*}}) {
// CHECK:           %[[LEN:.*]] = memref.load %{{.*}}[%[[ROW]]] : memref<8xi32>
// CHECK:           %[[L:.*]] = arith.index_cast %[[LEN]] : i32 to index
// CHECK:           scf.for %[[H:.*]] = %{{.*}} to %{{.*}} step
// CHECK-NEXT:        scf.for %[[K:.*]] = %{{.*}} to %[[L]] step
// CHECK-NEXT:          memref.load %{{.*}}[%[[ROW]], %[[H]], %[[K]]]
// CHECK:         } {mod.key_rows}
// CHECK-NOT:     scf.parallel
func.func @key_rows(%lengths: memref<8xi32>, %x: memref<8x12x1024xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c12 = arith.constant 12 : index
  scf.for %row = %c0 to %c8 step %c1 {
    %len = memref.load %lengths[%row] : memref<8xi32>
    %l = arith.index_cast %len : i32 to index
    scf.parallel (%h, %k) = (%c0, %c0) to (%c12, %l) step (%c1, %c1) {
      %v = memref.load %x[%row, %h, %k] : memref<8x12x1024xf32>
      %e = math.exp %v : f32
      memref.store %e, %x[%row, %h, %k] : memref<8x12x1024xf32>
    }
  } {mod.key_rows}
  return
}

// -----

// One row: the loop stays sequential, and so does the little loop inside.
// CHECK-LABEL: func.func @one_key_row
// CHECK-NOT:     scf.parallel
// CHECK:         scf.for
// CHECK:         } {mod.key_rows}
func.func @one_key_row(%lengths: memref<1xi32>, %x: memref<1x12x1024xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c12 = arith.constant 12 : index
  scf.for %row = %c0 to %c1 step %c1 {
    %len = memref.load %lengths[%row] : memref<1xi32>
    %l = arith.index_cast %len : i32 to index
    scf.parallel (%h, %k) = (%c0, %c0) to (%c12, %l) step (%c1, %c1) {
      %v = memref.load %x[%row, %h, %k] : memref<1x12x1024xf32>
      %e = math.exp %v : f32
      memref.store %e, %x[%row, %h, %k] : memref<1x12x1024xf32>
    }
  } {mod.key_rows}
  return
}
