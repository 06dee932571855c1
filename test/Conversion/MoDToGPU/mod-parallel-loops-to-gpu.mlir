// RUN: mod-opt %s --mod-parallel-loops-to-gpu -split-input-file | FileCheck %s
// RUN: mod-opt %s --mod-parallel-loops-to-gpu=block-size=64 -split-input-file | FileCheck %s --check-prefix=B64
// RUN: mod-opt %s --mod-parallel-loops-to-gpu="block-size=32 max-blocks=2" -split-input-file | FileCheck %s --check-prefix=CAP

// A 2-D loop over 3 x 100 = 300 iterations: ceil(300 / 256) = 2 blocks of
// 256 threads, a grid-stride loop over the flattened space, the innermost
// dimension fastest (j = f mod 100, i = f / 100), and the body inside.
// CHECK-LABEL: func.func @two_d
// CHECK-NOT: scf.parallel
// CHECK: gpu.launch blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[GRID:.*]], %{{.*}} = %[[ONE:.*]], %{{.*}} = %[[ONE]]) threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[BLOCK:.*]], %{{.*}} = %[[ONE]], %{{.*}} = %[[ONE]])
// CHECK: %[[FIRST:.*]] = arith.addi %{{.*}}, %[[TX]] : index
// CHECK: scf.for %[[F:.*]] = %[[FIRST]] to %{{.*}} step %{{.*}} {
// CHECK: %[[J:.*]] = arith.remui %[[F]], %{{.*}} : index
// CHECK: %[[I:.*]] = arith.divui %[[F]], %{{.*}} : index
// CHECK: memref.load %{{.*}}[%{{.*}}, %{{.*}}] : memref<3x100xf32>
// CHECK: memref.store
// CHECK: gpu.terminator
// CHECK-NOT: scf.parallel
// CHECK: return
// B64-LABEL: func.func @two_d
// B64: %[[G:.*]] = arith.constant 5 : index
// B64: gpu.launch blocks({{.*}}) in (%{{.*}} = %[[G]],
// CAP-LABEL: func.func @two_d
// CAP: %[[G:.*]] = arith.constant 2 : index
// CAP: gpu.launch blocks({{.*}}) in (%{{.*}} = %[[G]],
// CAP: %[[STRIDE:.*]] = arith.constant 64 : index
// CAP-NEXT: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[STRIDE]]
func.func @two_d(%x: memref<3x100xf32>, %y: memref<3x100xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c100 = arith.constant 100 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c3, %c100) step (%c1, %c1) {
    %v = memref.load %x[%i, %j] : memref<3x100xf32>
    %e = math.exp %v : f32
    memref.store %e, %y[%i, %j] : memref<3x100xf32>
    scf.reduce
  }
  return
}

// -----

// Lower bounds and steps other than 0 and 1 are applied to each index, and
// an empty loop is dropped without a launch.
// CHECK-LABEL: func.func @offsets
// CHECK: gpu.launch
// CHECK: %[[SCALED:.*]] = arith.muli %{{.*}}, %[[STEP:c3.*]] : index
// CHECK: arith.addi %[[LB:c2.*]], %[[SCALED]] : index
// CHECK-NOT: gpu.launch
// CHECK: return
func.func @offsets(%x: memref<20xf32>) {
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %c5 = arith.constant 5 : index
  %c20 = arith.constant 20 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i) = (%c2) to (%c20) step (%c3) {
    memref.store %zero, %x[%i] : memref<20xf32>
    scf.reduce
  }
  scf.parallel (%i) = (%c5) to (%c5) step (%c3) {
    memref.store %zero, %x[%i] : memref<20xf32>
    scf.reduce
  }
  return
}

// -----

// Loops that are already in a kernel are left alone.
// CHECK-LABEL: func.func @nested
// CHECK: gpu.launch
// CHECK: scf.parallel
func.func @nested(%x: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zero = arith.constant 0.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      memref.store %zero, %x[%i] : memref<4xf32>
      scf.reduce
    }
    gpu.terminator
  }
  return
}
