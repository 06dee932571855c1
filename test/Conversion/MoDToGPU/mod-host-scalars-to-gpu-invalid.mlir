// RUN: mod-opt %s --mod-host-scalars-to-gpu -split-input-file -verify-diagnostics

// Host scalar code whose result the host itself needs cannot move to the
// device: each case is refused with the op that needs it.

func.func @returned(%s: memref<f32>) -> f32 {
  %v = memref.load %s[] : memref<f32>
  // expected-error @+1 {{'func.return' op returns a scalar loaded from a buffer, which the CUDA target keeps on the device}}
  return %v : f32
}

// -----

func.func @loop_bound(%n: memref<index>, %out: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %one = arith.constant 1.0 : f32
  %ub = memref.load %n[] : memref<index>
  %alloc = memref.alloc() : memref<8xf32>
  // expected-error @+1 {{'scf.for' op takes as an operand a scalar that the CUDA target computes on the device; it cannot stay on the host}}
  scf.for %i = %c0 to %ub step %c1 {
    %old = memref.load %alloc[%i] : memref<8xf32>
    %new = arith.addf %old, %one : f32
    memref.store %new, %alloc[%i] : memref<8xf32>
  }
  return
}

// -----

func.func @view_offset(%n: memref<index>, %x: memref<8xf32>, %out: memref<4xf32>) {
  %off = memref.load %n[] : memref<index>
  %a = memref.alloc() : memref<4xf32>
  // expected-error @+1 {{'memref.subview' op uses on the host a scalar loaded from a buffer, which the CUDA target keeps on the device; only linalg ops, kernels and scatter-add loop nests can consume it}}
  %v = memref.subview %x[%off] [4] [1] : memref<8xf32> to memref<4xf32, strided<[1], offset: ?>>
  memref.copy %v, %out : memref<4xf32, strided<[1], offset: ?>> to memref<4xf32>
  return
}
