// RUN: mod-opt %s --mod-scatter-add-to-gpu -split-input-file -verify-diagnostics

// Negative cases: host loop nests whose iterations do not commute, or that
// this pass cannot make a kernel for another reason. Each is refused with
// the reason, and the function is left as it was.

func.func @not_an_accumulation(%idx: memref<8xindex>, %v: memref<8xf32>) -> memref<4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %out = memref.alloc() : memref<4xf32>
  scf.for %i = %c0 to %c8 step %c1 {
    %k = memref.load %idx[%i] : memref<8xindex>
    %x = memref.load %v[%i] : memref<8xf32>
    // A plain scatter: the last writer wins, so the order matters.
    // expected-error @+1 {{'memref.store' op in a host loop nest is not an accumulation `B[i] = B[i] + v` of a value loaded from the same element, so the iterations do not commute}}
    memref.store %x, %out[%k] : memref<4xf32>
  }
  return %out : memref<4xf32>
}

// -----

func.func @other_index(%idx: memref<8xindex>, %v: memref<8xf32>) -> memref<4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %out = memref.alloc() : memref<4xf32>
  scf.for %i = %c0 to %c8 step %c1 {
    %k = memref.load %idx[%i] : memref<8xindex>
    %x = memref.load %v[%i] : memref<8xf32>
    %old = memref.load %out[%c0] : memref<4xf32>
    %new = arith.addf %old, %x : f32
    // Reads one element and writes another: a prefix sum, not a scatter-add.
    // expected-error @+1 {{'memref.store' op in a host loop nest is not an accumulation}}
    memref.store %new, %out[%k] : memref<4xf32>
  }
  return %out : memref<4xf32>
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
    // A product does not accumulate with an atomic add.
    %new = arith.mulf %old, %x : f32
    // expected-error @+1 {{'memref.store' op in a host loop nest is not an accumulation}}
    memref.store %new, %b[%k] : memref<4xf32>
  }
  return %a, %b : memref<4xf32>, memref<4xf32>
}
