// RUN: mod-opt %s --mod-scatter-add-to-gpu -split-input-file -verify-diagnostics

// Negative cases: host loop nests whose iterations do not commute, or that
// this pass cannot make a kernel for another reason. Each is refused with
// the reason, and the function is left as it was.

// A nest that is not a scatter-add runs as one block in program order
// (mod_host_loop_<n>), but only with ops a kernel can run.
func.func private @log(f32)

func.func @ordered_with_call(%idx: memref<8xindex>, %v: memref<8xf32>) -> memref<4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %out = memref.alloc() : memref<4xf32>
  scf.for %i = %c0 to %c8 step %c1 {
    %k = memref.load %idx[%i] : memref<8xindex>
    %x = memref.load %v[%i] : memref<8xf32>
    memref.store %x, %out[%k] : memref<4xf32>
    // expected-error @+1 {{'func.call' op in a host loop nest that touches memory cannot become a GPU kernel (the CUDA target keeps every buffer on the device): only scf.for, scf.if, memref.load/store/copy, static memref.alloc, parallel linalg ops, views and side-effect-free ops can}}
    func.call @log(%x) : (f32) -> ()
  }
  return %out : memref<4xf32>
}

// -----

func.func @row_contraction(%q: memref<4x8xf32>, %k: memref<4x8x16xf32>, %s: memref<4x16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.for %b = %c0 to %c4 step %c1 {
    %qb = memref.subview %q[%b, 0] [1, 8] [1, 1] : memref<4x8xf32> to memref<1x8xf32, strided<[8, 1], offset: ?>>
    %kb = memref.subview %k[%b, 0, 0] [1, 8, 16] [1, 1, 1] : memref<4x8x16xf32> to memref<8x16xf32, strided<[16, 1], offset: ?>>
    %sb = memref.subview %s[%b, 0] [1, 16] [1, 1] : memref<4x16xf32> to memref<1x16xf32, strided<[16, 1], offset: ?>>
    // A per-row contraction (attention over one row's filled slots).
    // expected-error @+1 {{'linalg.matmul' op in a host loop nest cannot run in a GPU kernel: it has a reduction loop}}
    linalg.matmul ins(%qb, %kb : memref<1x8xf32, strided<[8, 1], offset: ?>>, memref<8x16xf32, strided<[16, 1], offset: ?>>) outs(%sb : memref<1x16xf32, strided<[16, 1], offset: ?>>)
    %l = memref.load %q[%b, %c0] : memref<4x8xf32>
    memref.store %l, %q[%b, %c1] : memref<4x8xf32>
  }
  return
}

// -----

func.func @buffer_used_on_host(%flags: memref<4xi32>, %a: memref<4xindex>, %b: memref<4xindex>) -> memref<4xindex> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c0_i32 = arith.constant 0 : i32
  // A loop choosing a buffer: only scalar results can come back.
  // expected-error @+1 {{'scf.for' op in host code yields a 'memref<4xindex>' used after the loop; only scalars can be brought back to the host once the loop is a GPU kernel}}
  %r = scf.for %i = %c0 to %c4 step %c1 iter_args(%m = %a) -> (memref<4xindex>) {
    %f = memref.load %flags[%i] : memref<4xi32>
    %on = arith.cmpi ne, %f, %c0_i32 : i32
    %next = arith.select %on, %b, %m : memref<4xindex>
    memref.store %i, %next[%i] : memref<4xindex>
    scf.yield %next : memref<4xindex>
  }
  return %r : memref<4xindex>
}

// -----

func.func @reads_accumulator(%idx: memref<8xindex>, %v: memref<8xf32>) -> (memref<4xf32>, memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %out = memref.alloc() : memref<4xf32>
  %seen = memref.alloc() : memref<8xf32>
  scf.for %i = %c0 to %c8 step %c1 {
    %k = memref.load %idx[%i] : memref<8xindex>
    %x = memref.load %v[%i] : memref<8xf32>
    // expected-error @+1 {{'memref.load' op in a host loop nest reads a buffer the nest accumulates into, so its iterations do not commute}}
    %peek = memref.load %out[%c0] : memref<4xf32>
    %s0 = memref.load %seen[%i] : memref<8xf32>
    %s1 = arith.addf %s0, %peek : f32
    memref.store %s1, %seen[%i] : memref<8xf32>
    %old = memref.load %out[%k] : memref<4xf32>
    %new = arith.addf %old, %x : f32
    memref.store %new, %out[%k] : memref<4xf32>
  }
  return %out, %seen : memref<4xf32>, memref<8xf32>
}

// -----

func.func @argument_accumulator(%idx: memref<8xindex>, %v: memref<8xf32>, %out: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  scf.for %i = %c0 to %c8 step %c1 {
    %k = memref.load %idx[%i] : memref<8xindex>
    %x = memref.load %v[%i] : memref<8xf32>
    %old = memref.load %out[%k] : memref<4xf32>
    %new = arith.addf %old, %x : f32
    // %out may alias %v.
    // expected-error @+1 {{'memref.store' op in a host loop nest accumulates into a buffer not allocated in this function}}
    memref.store %new, %out[%k] : memref<4xf32>
  }
  return
}

// -----

func.func @carried(%v: memref<8xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  // expected-error @+1 {{'scf.for' op in host code carries values between iterations}}
  %s = scf.for %i = %c0 to %c8 step %c1 iter_args(%a = %zero) -> (f32) {
    %x = memref.load %v[%i] : memref<8xf32>
    %a1 = arith.addf %a, %x : f32
    scf.yield %a1 : f32
  }
  return %s : f32
}

// -----

func.func @dynamic_bound(%idx: memref<?xindex>, %n: index) -> memref<4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %one = arith.constant 1.0 : f32
  %out = memref.alloc() : memref<4xf32>
  // expected-error @+1 {{'scf.for' op in host code needs constant bounds and a positive step to become a GPU kernel}}
  scf.for %i = %c0 to %n step %c1 {
    %k = memref.load %idx[%i] : memref<?xindex>
    %old = memref.load %out[%k] : memref<4xf32>
    %new = arith.addf %old, %one : f32
    memref.store %new, %out[%k] : memref<4xf32>
  }
  return %out : memref<4xf32>
}

// -----

func.func @two_inner_loops(%idx: memref<8xindex>) -> memref<4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %one = arith.constant 1.0 : f32
  %out = memref.alloc() : memref<4xf32>
  scf.for %i = %c0 to %c8 step %c1 {
    scf.for %j = %c0 to %c8 step %c1 {
      %k = memref.load %idx[%j] : memref<8xindex>
      %old = memref.load %out[%k] : memref<4xf32>
      %new = arith.addf %old, %one : f32
      memref.store %new, %out[%k] : memref<4xf32>
    }
    // expected-error @+1 {{'scf.for' op is a second loop in a host loop nest; only a perfect nest of scf.for loops can become a scatter-add kernel}}
    scf.for %j = %c0 to %c8 step %c1 {
      %k = memref.load %idx[%j] : memref<8xindex>
      %old = memref.load %out[%k] : memref<4xf32>
      %new = arith.addf %old, %one : f32
      memref.store %new, %out[%k] : memref<4xf32>
    }
  }
  return %out : memref<4xf32>
}

// -----

func.func @store_between_loops(%idx: memref<8xindex>) -> memref<4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %one = arith.constant 1.0 : f32
  %out = memref.alloc() : memref<4xf32>
  scf.for %i = %c0 to %c8 step %c1 {
    %k = memref.load %idx[%i] : memref<8xindex>
    %old = memref.load %out[%k] : memref<4xf32>
    %new = arith.addf %old, %one : f32
    // expected-error @+1 {{'memref.store' op between the loops of a host loop nest is not supported by --mod-scatter-add-to-gpu}}
    memref.store %new, %out[%k] : memref<4xf32>
    scf.for %j = %c0 to %c8 step %c1 {
      %x = memref.load %idx[%j] : memref<8xindex>
    }
  }
  return %out : memref<4xf32>
}

// -----

func.func private @log(f32)

func.func @side_effect(%v: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  scf.for %i = %c0 to %c8 step %c1 {
    %x = memref.load %v[%i] : memref<8xf32>
    // expected-error @+1 {{'func.call' op has side effects in a host loop nest, which --mod-scatter-add-to-gpu cannot make a kernel}}
    func.call @log(%x) : (f32) -> ()
  }
  return
}

// -----

// The first nest would be accepted; the second is refused on its own.
func.func private @log(f32)

func.func @all_or_nothing(%idx: memref<8xindex>, %v: memref<8xf32>) -> (memref<4xf32>, memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %a = memref.alloc() : memref<4xf32>
  %b = memref.alloc() : memref<4xf32>
  scf.for %i = %c0 to %c8 step %c1 {
    %k = memref.load %idx[%i] : memref<8xindex>
    %x = memref.load %v[%i] : memref<8xf32>
    %old = memref.load %a[%k] : memref<4xf32>
    %new = arith.addf %old, %x : f32
    memref.store %new, %a[%k] : memref<4xf32>
  }
  scf.for %i = %c0 to %c8 step %c1 {
    %k = memref.load %idx[%i] : memref<8xindex>
    %x = memref.load %v[%i] : memref<8xf32>
    %old = memref.load %b[%k] : memref<4xf32>
    // A product does not accumulate with an atomic add: the nest runs in
    // order in one block, which the call prevents.
    %new = arith.mulf %old, %x : f32
    memref.store %new, %b[%k] : memref<4xf32>
    // expected-error @+1 {{'func.call' op in a host loop nest that touches memory cannot become a GPU kernel}}
    func.call @log(%new) : (f32) -> ()
  }
  return %a, %b : memref<4xf32>, memref<4xf32>
}
