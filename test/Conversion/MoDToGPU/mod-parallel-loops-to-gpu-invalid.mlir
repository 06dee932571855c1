// RUN: mod-opt %s --mod-parallel-loops-to-gpu -split-input-file -verify-diagnostics
// RUN: not mod-opt %s --mod-parallel-loops-to-gpu=block-size=48 -split-input-file 2>&1 | FileCheck %s --check-prefix=BLOCK
// RUN: not mod-opt %s --mod-parallel-loops-to-gpu=max-blocks=0 -split-input-file 2>&1 | FileCheck %s --check-prefix=BLOCK

// BLOCK: error: --mod-parallel-loops-to-gpu: block-size must be a multiple of 32 in [32, 1024] and max-blocks positive

func.func @reduction(%x: memref<4xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zero = arith.constant 0.0 : f32
  // expected-error @+1 {{'scf.parallel' op with reductions cannot be mapped to a GPU kernel}}
  %s = scf.parallel (%i) = (%c0) to (%c4) step (%c1) init (%zero) -> f32 {
    %v = memref.load %x[%i] : memref<4xf32>
    scf.reduce(%v : f32) {
    ^bb0(%a: f32, %b: f32):
      %sum = arith.addf %a, %b : f32
      scf.reduce.return %sum : f32
    }
  }
  return %s : f32
}

// -----

func.func @dynamic_bound(%x: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  // expected-error @+1 {{'scf.parallel' op needs constant bounds and positive steps to be mapped to a GPU kernel}}
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    memref.store %zero, %x[%i] : memref<?xf32>
    scf.reduce
  }
  return
}

// -----

// The first loop is fine, the second is not: nothing is rewritten.
func.func @all_or_nothing(%x: memref<4xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    memref.store %zero, %x[%i] : memref<4xf32>
    scf.reduce
  }
  // expected-error @+1 {{needs constant bounds}}
  scf.parallel (%i) = (%c0) to (%c4) step (%n) {
    memref.store %zero, %x[%i] : memref<4xf32>
    scf.reduce
  }
  return
}

// -----

// What a full reduction left to convert-linalg-to-parallel-loops becomes: a
// host loop reading device memory (issue 11, bug 2). Refused.
func.func @host_loop(%x: memref<4xf32>, %out: memref<f32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.for %i = %c0 to %c4 step %c1 {
    // expected-error @+1 {{'memref.load' op accesses a buffer in host code outside any scf.parallel, which --mod-parallel-loops-to-gpu cannot make a kernel; the CUDA target keeps every buffer on the device (linalg ops without a parallel loop must go through --mod-linalg-reductions-to-gpu first)}}
    %v = memref.load %x[%i] : memref<4xf32>
    %a = memref.load %out[] : memref<f32>
    %s = arith.addf %a, %v : f32
    memref.store %s, %out[] : memref<f32>
  }
  return
}
