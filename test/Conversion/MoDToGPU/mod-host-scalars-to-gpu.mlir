// RUN: mod-opt %s --mod-host-scalars-to-gpu -split-input-file | FileCheck %s
//
// Then the scatter-add pass and the device-buffer pass accept the result:
// nothing on the host reads or writes a buffer any more.
// RUN: mod-opt %s --mod-host-scalars-to-gpu --mod-scatter-add-to-gpu --mod-gpu-device-buffers -split-input-file | FileCheck %s --check-prefix=DEVICE

#id = affine_map<(d0) -> (d0)>

// The clipping factor of the AdamW step: max_norm / sqrt(sum g^2). The
// hyperparameter load is one run (before the reduction writes %norm2), the
// norm and the factor another; the alloc between them does not split the
// second run. The consumers read the factor from a rank-0 buffer: the
// generic as a new `()` input, the fill (generalized) as its scalar input;
// the norm is also stored into a result buffer (a tensor.from_elements).
// CHECK-LABEL: func.func @clip
// CHECK-SAME: (%[[G:[^:]*]]: memref<32xf32>, %[[MAX:[^:]*]]: memref<f32>, %[[OUT:[^:]*]]: memref<32xf32>, %[[OUT2:[^:]*]]: memref<32xf32>)
// CHECK: %[[MXBUF:.*]] = memref.alloc() : memref<f64>
// CHECK: gpu.launch blocks({{.*}}) in (%{{[^ ]*}} = %c1{{(_[0-9]+)?}}, {{.*}}) threads({{.*}}) in (%{{[^ ]*}} = %c1{{(_[0-9]+)?}}, {{.*}}) module(@mod_scalar_0) function(@mod_scalar_0) {
// CHECK-NEXT: %[[M:.*]] = memref.load %[[MAX]][] : memref<f32>
// CHECK-NEXT: %[[MX:.*]] = arith.extf %[[M]] : f32 to f64
// CHECK-NEXT: memref.store %[[MX]], %[[MXBUF]][] : memref<f64>
// CHECK-NEXT: gpu.terminator
// CHECK: %[[NORM2:.*]] = memref.alloc() : memref<f64>
// CHECK: linalg.fill
// CHECK: linalg.generic {{.*}} iterator_types = ["reduction"]
// CHECK: %[[NORM:.*]] = memref.alloc() : memref<f32>
// CHECK: %[[FACTOR:.*]] = memref.alloc() : memref<f32>
// CHECK: gpu.launch {{.*}} module(@mod_scalar_1) function(@mod_scalar_1) {
// CHECK-NEXT: %[[MX2:.*]] = memref.load %[[MXBUF]][] : memref<f64>
// CHECK-NEXT: %[[N:.*]] = memref.load %[[NORM2]][] : memref<f64>
// CHECK-NEXT: %[[R:.*]] = math.sqrt %[[N]] : f64
// CHECK-NEXT: %[[Q:.*]] = arith.divf %[[MX2]], %[[R]] : f64
// CHECK-NEXT: %[[C:.*]] = arith.truncf %[[Q]] : f64 to f32
// CHECK-NEXT: %[[RF:.*]] = arith.truncf %[[R]] : f64 to f32
// CHECK-NEXT: memref.store %[[RF]], %[[NORM]][] : memref<f32>
// CHECK-NEXT: memref.store %[[C]], %[[FACTOR]][] : memref<f32>
// CHECK-NEXT: gpu.terminator
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[SCALAR:map[0-9]*]], #{{.*}}], iterator_types = ["parallel"]} ins(%[[G]], %[[FACTOR]] : memref<32xf32>, memref<f32>) outs(%[[OUT]] : memref<32xf32>) {
// CHECK-NEXT: ^bb0(%[[IN:.*]]: f32, %[[CARG:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: arith.mulf %[[IN]], %[[CARG]] : f32
// CHECK: linalg.generic {indexing_maps = [#[[SCALAR]], #{{.*}}], iterator_types = ["parallel"]} ins(%[[FACTOR]] : memref<f32>) outs(%[[OUT2]] : memref<32xf32>)
// CHECK-NOT: memref.load
// CHECK: return %[[NORM]]

// DEVICE-LABEL: func.func @clip
// DEVICE-NOT: memref.load
// DEVICE-NOT: memref.store
// DEVICE: gpu.launch
// DEVICE-NEXT: memref.load
// DEVICE: gpu.launch
// DEVICE-NEXT: memref.load
// DEVICE-NEXT: memref.load
// DEVICE: memref.store
// DEVICE-NEXT: memref.store
// DEVICE-NEXT: gpu.terminator
// DEVICE-NOT: memref.load
// DEVICE-NOT: memref.store
// DEVICE: return
func.func @clip(%g: memref<32xf32>, %maxnorm: memref<f32>, %out: memref<32xf32>, %out2: memref<32xf32>) -> memref<f32> {
  %m = memref.load %maxnorm[] : memref<f32>
  %mx = arith.extf %m : f32 to f64
  %zero = arith.constant 0.0 : f64
  %norm2 = memref.alloc() : memref<f64>
  linalg.fill ins(%zero : f64) outs(%norm2 : memref<f64>)
  linalg.generic {indexing_maps = [#id, affine_map<(d0) -> ()>], iterator_types = ["reduction"]}
      ins(%g : memref<32xf32>) outs(%norm2 : memref<f64>) {
  ^bb0(%in: f32, %acc: f64):
    %e = arith.extf %in : f32 to f64
    %sq = arith.mulf %e, %e : f64
    %a = arith.addf %acc, %sq : f64
    linalg.yield %a : f64
  }
  %n = memref.load %norm2[] : memref<f64>
  %r = math.sqrt %n : f64
  %q = arith.divf %mx, %r : f64
  %c = arith.truncf %q : f64 to f32
  %norm = memref.alloc() : memref<f32>
  %rf = arith.truncf %r : f64 to f32
  memref.store %rf, %norm[] : memref<f32>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%g : memref<32xf32>) outs(%out : memref<32xf32>) {
  ^bb0(%in: f32, %o: f32):
    %s = arith.mulf %in, %c : f32
    linalg.yield %s : f32
  }
  linalg.fill ins(%c : f32) outs(%out2 : memref<32xf32>)
  return %norm : memref<f32>
}

// -----

// A scalar captured by a kernel and by a scatter-add loop nest: each loads
// it from the buffer inside its body.
// CHECK-LABEL: func.func @kernel_and_loop
// CHECK-SAME: (%[[S:[^:]*]]: memref<f32>, %[[IDX:[^:]*]]: memref<8xindex>, %[[X:[^:]*]]: memref<8xf32>)
// CHECK: %[[BUF:.*]] = memref.alloc() : memref<f32>
// CHECK: gpu.launch {{.*}} module(@mod_scalar_0) function(@mod_scalar_0) {
// CHECK-NEXT: %[[V:.*]] = memref.load %[[S]][] : memref<f32>
// CHECK-NEXT: %[[H:.*]] = arith.mulf %[[V]], %[[V]] : f32
// CHECK-NEXT: memref.store %[[H]], %[[BUF]][] : memref<f32>
// CHECK: gpu.launch
// CHECK-NEXT: %[[K:.*]] = memref.load %[[BUF]][] : memref<f32>
// CHECK-NEXT: memref.store %[[K]], %[[X]][%{{.*}}] : memref<8xf32>
// CHECK: scf.for
// CHECK-NEXT: %[[L:.*]] = memref.load %[[BUF]][] : memref<f32>
// CHECK: %[[T:.*]] = arith.addf %{{.*}}, %[[L]] : f32
// CHECK: memref.store %[[T]]

// DEVICE-LABEL: func.func @kernel_and_loop
// DEVICE: gpu.launch {{.*}} module(@mod_scalar_0)
// DEVICE: gpu.launch
// DEVICE: gpu.launch {{.*}} module(@mod_atomic_scatter_0)
// DEVICE: memref.load %{{.*}}[] : memref<f32>
// DEVICE: memref.atomic_rmw addf
func.func @kernel_and_loop(%s: memref<f32>, %idx: memref<8xindex>, %x: memref<8xf32>) -> memref<4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %v = memref.load %s[] : memref<f32>
  %h = arith.mulf %v, %v : f32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
    memref.store %h, %x[%c0] : memref<8xf32>
    gpu.terminator
  }
  %out = memref.alloc() : memref<4xf32>
  scf.for %i = %c0 to %c8 step %c1 {
    %k = memref.load %idx[%i] : memref<8xindex>
    %old = memref.load %out[%k] : memref<4xf32>
    %new = arith.addf %old, %h : f32
    memref.store %new, %out[%k] : memref<4xf32>
  }
  return %out : memref<4xf32>
}
