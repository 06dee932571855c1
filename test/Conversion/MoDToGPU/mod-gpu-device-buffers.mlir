// RUN: mod-opt %s --mod-linalg-to-cublas --mod-gpu-device-buffers -split-input-file | FileCheck %s

// One matmul through cuBLAS (issue 11, bug 1): the call reads its operands
// through pointers extracted from the buffers, so each operand is freed
// after the call, never between the extraction and the call.
// CHECK-LABEL: func.func @one_matmul
// CHECK-SAME: (%[[A:.*]]: memref<6x4xf32>, %[[B:.*]]: memref<4x8xf32>, %[[OUT:.*]]: memref<6x8xf32>)
// CHECK: %[[DA:.*]] = gpu.alloc () : memref<6x4xf32>
// CHECK-NEXT: gpu.memcpy %[[DA]], %[[A]] : memref<6x4xf32>, memref<6x4xf32>
// CHECK-NEXT: %[[DB:.*]] = gpu.alloc () : memref<4x8xf32>
// CHECK-NEXT: gpu.memcpy %[[DB]], %[[B]] : memref<4x8xf32>, memref<4x8xf32>
// CHECK-NOT: gpu.dealloc
// CHECK: %[[DC:.*]] = gpu.alloc () : memref<6x8xf32>
// CHECK-NOT: gpu.dealloc
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[DC]] : memref<6x8xf32>)
// CHECK-NOT: gpu.dealloc
// CHECK: memref.extract_aligned_pointer_as_index %[[DA]]
// CHECK-NOT: gpu.dealloc
// CHECK: memref.extract_aligned_pointer_as_index %[[DB]]
// CHECK-NOT: gpu.dealloc
// CHECK: memref.extract_aligned_pointer_as_index %[[DC]]
// CHECK-NOT: gpu.dealloc
// CHECK: call @modrt_cublas_sgemm_strided_batched(
// CHECK-DAG: gpu.dealloc %[[DA]] : memref<6x4xf32>
// CHECK-DAG: gpu.dealloc %[[DB]] : memref<4x8xf32>
// CHECK: gpu.memcpy %[[OUT]], %[[DC]] : memref<6x8xf32>, memref<6x8xf32>
// CHECK-NEXT: gpu.dealloc %[[DC]] : memref<6x8xf32>
// CHECK-NEXT: return
func.func @one_matmul(%a: memref<6x4xf32>, %b: memref<4x8xf32>, %out: memref<6x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %c = memref.alloc() : memref<6x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<6x8xf32>)
  linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  memref.copy %c, %out : memref<6x8xf32> to memref<6x8xf32>
  return
}

// -----

// The weight is a constant (memref.get_global): copied to the device once,
// and read by cuBLAS through a view (a transpose-free subview of rows): the
// lifetime follows the view to the pointer and the pointer to the call.
// CHECK-LABEL: func.func @constant_weight_view
// CHECK: %[[G:.*]] = memref.get_global @w : memref<8x4xf32>
// CHECK-NEXT: %[[DW:.*]] = gpu.alloc () : memref<8x4xf32>
// CHECK-NEXT: gpu.memcpy %[[DW]], %[[G]]
// CHECK-NOT: gpu.dealloc %[[DW]]
// CHECK: %[[V:.*]] = memref.subview %[[DW]]
// CHECK-NOT: gpu.dealloc %[[DW]]
// CHECK: memref.extract_aligned_pointer_as_index %[[V]]
// CHECK-NOT: gpu.dealloc %[[DW]]
// CHECK: call @modrt_cublas_sgemm_strided_batched(
// CHECK-NEXT: gpu.dealloc %[[DW]]
memref.global "private" constant @w : memref<8x4xf32> = dense<1.0>
func.func @constant_weight_view(%x: memref<6x4xf32>, %out: memref<6x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %w = memref.get_global @w : memref<8x4xf32>
  %wv = memref.subview %w[2, 0] [4, 4] [1, 1] : memref<8x4xf32> to memref<4x4xf32, strided<[4, 1], offset: 8>>
  %c = memref.alloc() : memref<6x4xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<6x4xf32>)
  linalg.matmul ins(%x, %wv : memref<6x4xf32>, memref<4x4xf32, strided<[4, 1], offset: 8>>) outs(%c : memref<6x4xf32>)
  memref.copy %c, %out : memref<6x4xf32> to memref<6x4xf32>
  return
}

// -----

// A private function is called with device buffers: no copies; a buffer it
// returns is the caller's to free. memref.copy between device buffers
// becomes a linalg.copy (a kernel later).
// CHECK-LABEL: func.func private @helper
// CHECK-NOT: gpu.memcpy
// CHECK: %[[T:.*]] = gpu.alloc () : memref<4xf32>
// CHECK-NEXT: linalg.copy ins(%{{.*}} : memref<4xf32>) outs(%[[T]] : memref<4xf32>)
// CHECK-NOT: gpu.dealloc
// CHECK: return %[[T]]
func.func private @helper(%x: memref<4xf32>) -> memref<4xf32> {
  %t = memref.alloc() : memref<4xf32>
  memref.copy %x, %t : memref<4xf32> to memref<4xf32>
  return %t : memref<4xf32>
}

// -----

// An out-parameter fed from a strided view: the view is first compacted on
// the device, then copied to the host in one piece.
// CHECK-LABEL: func.func @strided_result
// CHECK: %[[DX:.*]] = gpu.alloc () : memref<4x4xf32>
// CHECK: %[[V:.*]] = memref.subview %[[DX]]
// CHECK: %[[TMP:.*]] = gpu.alloc () : memref<4x2xf32>
// CHECK-NEXT: linalg.copy ins(%[[V]] : {{.*}}) outs(%[[TMP]] : memref<4x2xf32>)
// CHECK-NEXT: gpu.dealloc %[[DX]]
// CHECK-NEXT: gpu.memcpy %{{.*}}, %[[TMP]]
// CHECK-NEXT: gpu.dealloc %[[TMP]]
// CHECK-NEXT: return
func.func @strided_result(%x: memref<4x4xf32>, %out: memref<4x2xf32>) {
  %v = memref.subview %x[0, 1] [4, 2] [1, 1] : memref<4x4xf32> to memref<4x2xf32, strided<[4, 1], offset: 1>>
  memref.copy %v, %out : memref<4x2xf32, strided<[4, 1], offset: 1>> to memref<4x2xf32>
  return
}

// -----

// Device-resident arguments (--mod-gpu-resident-arguments): a weight that
// is only read, here by cuBLAS through its address (the declaration lists C
// as the only operand cuBLAS writes), is used where it is: no copy, no
// free. A data input is still copied in; the result still goes out to the
// host. The marks move from the arguments to one function attribute.
// CHECK-LABEL: func.func @resident_weight
// CHECK-SAME: (%[[X:.*]]: memref<6x4xf32>, %[[W:.*]]: memref<4x8xf32>, %[[OUT:.*]]: memref<6x8xf32>) attributes {mod.device_resident_args = array<i64: 1>}
// CHECK: %[[DX:.*]] = gpu.alloc () : memref<6x4xf32>
// CHECK-NEXT: gpu.memcpy %[[DX]], %[[X]]
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: gpu.alloc () : memref<4x8xf32>
// CHECK: memref.extract_aligned_pointer_as_index %[[W]]
// CHECK: call @modrt_cublas_sgemm_strided_batched(
// CHECK-NOT: gpu.dealloc %[[W]]
// CHECK: gpu.memcpy %[[OUT]], %{{.*}} : memref<6x8xf32>, memref<6x8xf32>
// CHECK-NOT: gpu.dealloc %[[W]]
// CHECK: return
func.func @resident_weight(%x: memref<6x4xf32>, %w: memref<4x8xf32> {mod.device_resident}, %out: memref<6x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %c = memref.alloc() : memref<6x8xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<6x8xf32>)
  linalg.matmul ins(%x, %w : memref<6x4xf32>, memref<4x8xf32>) outs(%c : memref<6x8xf32>)
  memref.copy %c, %out : memref<6x8xf32> to memref<6x8xf32>
  return
}

// -----

// An in-place update (adamw_step's parameter, `mod.device_resident = 0`:
// the runtime passes %p's buffer as %pout): the elementwise kernel reads
// each element of %p before it writes that element, so it writes the
// out-parameter directly; no copy of %p, no result buffer, no copy out.
// CHECK-LABEL: func.func @resident_update
// CHECK-SAME: (%[[P:.*]]: memref<4xf32>, %[[G:.*]]: memref<4xf32>, %[[POUT:.*]]: memref<4xf32>) attributes {mod.device_resident_args = array<i64: 0, 2>}
// CHECK: %[[DG:.*]] = gpu.alloc () : memref<4xf32>
// CHECK-NEXT: gpu.memcpy %[[DG]], %[[G]]
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: gpu.alloc
// CHECK: linalg.generic {{.*}} ins(%[[P]], %[[DG]] : memref<4xf32>, memref<4xf32>) outs(%[[POUT]] : memref<4xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: arith.subf
// CHECK-NEXT: linalg.yield
// CHECK-NEXT: }
// CHECK-NEXT: gpu.dealloc %[[DG]]
// CHECK-NEXT: return
#id = affine_map<(d0) -> (d0)>
func.func @resident_update(%p: memref<4xf32> {mod.device_resident}, %g: memref<4xf32>, %pout: memref<4xf32> {mod.device_resident = 0 : i64}) {
  %t = memref.alloc() : memref<4xf32>
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]}
      ins(%p, %g : memref<4xf32>, memref<4xf32>) outs(%t : memref<4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.subf %a, %b : f32
    linalg.yield %s : f32
  }
  memref.copy %t, %pout : memref<4xf32> to memref<4xf32>
  return
}

// -----

// A resident argument the body writes in place (bufferization may do that
// with a donated argument), and one it copies straight into an
// out-parameter (which at run time can be the same buffer): both are first
// copied device -> device into fresh buffers, so the caller's buffers change
// only through the out-parameters. So is a resident operand a call may
// write through (a callee without mod.written_operands).
// CHECK-LABEL: func.func @resident_written
// CHECK-SAME: (%[[P:.*]]: memref<4xf32>, %[[Q:.*]]: memref<4xf32>, %[[R:.*]]: memref<4xf32>, %[[POUT:.*]]: memref<4xf32>, %[[QOUT:.*]]: memref<4xf32>) attributes {mod.device_resident_args = array<i64: 0, 1, 2, 3, 4>}
// CHECK: %[[DP:.*]] = gpu.alloc () : memref<4xf32>
// CHECK-NEXT: gpu.memcpy %[[DP]], %[[P]]
// CHECK-NEXT: %[[DQ:.*]] = gpu.alloc () : memref<4xf32>
// CHECK-NEXT: gpu.memcpy %[[DQ]], %[[Q]]
// CHECK-NEXT: %[[DR:.*]] = gpu.alloc () : memref<4xf32>
// CHECK-NEXT: gpu.memcpy %[[DR]], %[[R]]
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[DP]] : memref<4xf32>)
// CHECK: gpu.memcpy %[[POUT]], %[[DP]]
// CHECK: gpu.memcpy %[[QOUT]], %[[DQ]]
func.func private @opaque(index)
func.func @resident_written(%p: memref<4xf32> {mod.device_resident}, %q: memref<4xf32> {mod.device_resident}, %r: memref<4xf32> {mod.device_resident}, %pout: memref<4xf32> {mod.device_resident}, %qout: memref<4xf32> {mod.device_resident}) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%p : memref<4xf32>)
  %addr = memref.extract_aligned_pointer_as_index %r : memref<4xf32> -> index
  func.call @opaque(%addr) : (index) -> ()
  memref.copy %p, %pout : memref<4xf32> to memref<4xf32>
  memref.copy %q, %qout : memref<4xf32> to memref<4xf32>
  return
}

// -----

// State updated in place (a decode cache, written by a kernel, and an
// optimizer moment, written by a linalg op): the out-parameters are marked
// with the index of the argument they alias (--mod-gpu-resident-arguments),
// which the runtime binds to the same device buffer. The body writes the
// arguments where they are: no device -> device copy in, no copy out.
// A resident out-parameter marked with another argument's index still
// receives its copy.
// CHECK-LABEL: func.func @in_place_state
// CHECK-SAME: (%[[C:.*]]: memref<4xf32>, %[[M:.*]]: memref<4xf32>, %[[Q:.*]]: memref<4xf32>, %[[COUT:.*]]: memref<4xf32>, %[[MOUT:.*]]: memref<4xf32>, %[[QOUT:.*]]: memref<4xf32>) attributes {mod.device_resident_args = array<i64: 0, 1, 2, 3, 4, 5>}
// CHECK-NEXT: %[[DQ:.*]] = gpu.alloc () : memref<4xf32>
// CHECK-NEXT: gpu.memcpy %[[DQ]], %[[Q]]
// CHECK-NOT: gpu.memcpy
// CHECK: gpu.launch
// CHECK: memref.store %{{.*}}, %[[C]][%{{.*}}] : memref<4xf32>
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[M]] : memref<4xf32>)
// CHECK-NOT: linalg.copy
// CHECK: gpu.memcpy %[[QOUT]], %[[DQ]]
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: linalg.copy
// CHECK: return
func.func @in_place_state(%c: memref<4xf32> {mod.device_resident}, %m: memref<4xf32> {mod.device_resident}, %q: memref<4xf32> {mod.device_resident}, %cout: memref<4xf32> {mod.device_resident = 0 : i64}, %mout: memref<4xf32> {mod.device_resident = 1 : i64}, %qout: memref<4xf32> {mod.device_resident = 1 : i64}) {
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %c1_f = arith.constant 1.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1) threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
    memref.store %c1_f, %c[%tx] : memref<4xf32>
    gpu.terminator
  }
  linalg.fill ins(%zero : f32) outs(%m : memref<4xf32>)
  memref.copy %c, %cout : memref<4xf32> to memref<4xf32>
  memref.copy %m, %mout : memref<4xf32> to memref<4xf32>
  memref.copy %q, %qout : memref<4xf32> to memref<4xf32>
  return
}

// -----

// Not in place when the update is not elementwise: the result reads %p at
// another index (a reversal) than it writes, so writing %p's buffer while
// reading it would read overwritten elements. The result is computed in a
// fresh buffer and copied device -> device at the end.
// CHECK-LABEL: func.func @resident_update_reversed
// CHECK: %[[T:.*]] = gpu.alloc () : memref<4xf32>
// CHECK: linalg.generic {{.*}} outs(%[[T]] : memref<4xf32>)
// CHECK: gpu.memcpy %{{.*}}, %[[T]] : memref<4xf32>, memref<4xf32>
// CHECK-NEXT: gpu.dealloc %[[T]]
#id = affine_map<(d0) -> (d0)>
#rev = affine_map<(d0) -> (3 - d0)>
func.func @resident_update_reversed(%p: memref<4xf32> {mod.device_resident}, %pout: memref<4xf32> {mod.device_resident = 0 : i64}) {
  %t = memref.alloc() : memref<4xf32>
  linalg.generic {indexing_maps = [#rev, #id], iterator_types = ["parallel"]}
      ins(%p : memref<4xf32>) outs(%t : memref<4xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  }
  memref.copy %t, %pout : memref<4xf32> to memref<4xf32>
  return
}

// -----

// Nor when %p is read after the result's first write: a later op reading
// %p would see the new values.
// CHECK-LABEL: func.func @resident_read_after_write
// CHECK: %[[T:.*]] = gpu.alloc () : memref<4xf32>
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[T]] : memref<4xf32>)
// CHECK: gpu.memcpy %{{.*}}, %[[T]] : memref<4xf32>, memref<4xf32>
#id = affine_map<(d0) -> (d0)>
func.func @resident_read_after_write(%p: memref<4xf32> {mod.device_resident}, %pout: memref<4xf32> {mod.device_resident = 0 : i64}, %sum: memref<4xf32>) {
  %zero = arith.constant 0.0 : f32
  %t = memref.alloc() : memref<4xf32>
  linalg.fill ins(%zero : f32) outs(%t : memref<4xf32>)
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%p : memref<4xf32>) outs(%t : memref<4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %o : f32
    linalg.yield %s : f32
  }
  %s = memref.alloc() : memref<4xf32>
  linalg.copy ins(%p : memref<4xf32>) outs(%s : memref<4xf32>)
  memref.copy %t, %pout : memref<4xf32> to memref<4xf32>
  memref.copy %s, %sum : memref<4xf32> to memref<4xf32>
  return
}

// -----

// A device-resident result that updates no argument (a gradient the
// runtime keeps on the device for @adamw_step) is computed in the
// out-parameter itself, even when it is written several times; a host
// result (the loss) still goes out through a device -> host copy.
// CHECK-LABEL: func.func @resident_gradient
// CHECK-SAME: (%[[X:.*]]: memref<4xf32>, %[[GOUT:.*]]: memref<4xf32>, %[[LOUT:.*]]: memref<f32>)
// CHECK-NOT: gpu.alloc () : memref<4xf32>
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[GOUT]] : memref<4xf32>)
// CHECK: linalg.generic {{.*}} ins(%[[X]] : memref<4xf32>) outs(%[[GOUT]] : memref<4xf32>)
// CHECK: %[[L:.*]] = gpu.alloc () : memref<f32>
// CHECK: gpu.memcpy %[[LOUT]], %[[L]] : memref<f32>, memref<f32>
// CHECK-NOT: gpu.memcpy
// CHECK: return
#id = affine_map<(d0) -> (d0)>
func.func @resident_gradient(%x: memref<4xf32> {mod.device_resident}, %gout: memref<4xf32> {mod.device_resident}, %lout: memref<f32>) {
  %zero = arith.constant 0.0 : f32
  %g = memref.alloc() : memref<4xf32>
  linalg.fill ins(%zero : f32) outs(%g : memref<4xf32>)
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%x : memref<4xf32>) outs(%g : memref<4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %o : f32
    linalg.yield %s : f32
  }
  %l = memref.alloc() : memref<f32>
  linalg.fill ins(%zero : f32) outs(%l : memref<f32>)
  memref.copy %g, %gout : memref<4xf32> to memref<4xf32>
  memref.copy %l, %lout : memref<f32> to memref<f32>
  return
}
