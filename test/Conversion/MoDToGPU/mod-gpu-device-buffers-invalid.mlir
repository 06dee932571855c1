// RUN: mod-opt %s --mod-gpu-device-buffers -split-input-file -verify-diagnostics

func.func @alloc_in_loop(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %n step %c1 {
    // expected-error @+1 {{'memref.alloc' op inside host control flow is not supported by the CUDA target (buffers are freed after their last use in straight-line code)}}
    %t = memref.alloc() : memref<4xf32>
  }
  return
}

// -----

func.func @host_load(%x: memref<4xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'memref.load' op accesses a buffer on the host; the CUDA target keeps every buffer on the device}}
  %v = memref.load %x[%c0] : memref<4xf32>
  return %v : f32
}

// -----

// expected-error @+1 {{'func.func' op has host control flow between blocks, which the CUDA target does not support}}
func.func @branches(%c: i1) {
  cf.cond_br %c, ^a, ^b
^a:
  return
^b:
  return
}

// -----

// expected-error @+1 {{'func.func' op argument 0 must have an identity layout to be copied to the device}}
func.func @strided_argument(%x: memref<4xf32, strided<[2]>>, %out: memref<4xf32>) {
  linalg.copy ins(%x : memref<4xf32, strided<[2]>>) outs(%out : memref<4xf32>)
  return
}

// -----

func.func @existing_dealloc() {
  %t = memref.alloc() : memref<4xf32>
  // expected-error @+1 {{'memref.dealloc' op is not expected before --mod-gpu-device-buffers, which frees device buffers itself}}
  memref.dealloc %t : memref<4xf32>
  return
}
