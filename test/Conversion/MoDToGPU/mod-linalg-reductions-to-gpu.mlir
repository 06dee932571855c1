// RUN: mod-opt %s --mod-linalg-reductions-to-gpu -split-input-file | FileCheck %s
// RUN: mod-opt %s --mod-linalg-reductions-to-gpu=block-size=64 -split-input-file | FileCheck %s --check-prefix=B64
// RUN: not mod-opt %s --mod-linalg-reductions-to-gpu=block-size=100 -split-input-file 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: error: --mod-linalg-reductions-to-gpu: block-size 100 must be a multiple of 32 in [32, 1024]

// A scalar loss: a sum over every element of [8, 300] into a rank-0 buffer.
// One block; each thread folds a strided share starting from the neutral
// element (-0.0 for addf); warps combine with xor shuffles; one slot per warp
// in workgroup memory; warp 0 combines the 8 slots; thread 0 adds the
// initial value of the output and stores it.
// CHECK-LABEL: func.func @scalar_loss
// CHECK-SAME: (%[[X:.*]]: memref<8x300xf32>, %[[LOSS:.*]]: memref<f32>)
// CHECK-NOT: linalg.generic
// CHECK: %[[THREADS:.*]] = arith.constant 256 : index
// CHECK: gpu.launch blocks({{.*}}) in (%{{.*}} = %c1{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}}) threads(%[[TX:[^,]*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[THREADS]], %{{.*}}) module(@mod_reduce_0) function(@mod_reduce_0) workgroup(%[[SLOTS:.*]] : memref<8xf32, #gpu.address_space<workgroup>>)
// CHECK: %[[NEUTRAL:.*]] = arith.constant {{-?}}0.000000e+00 : f32
// CHECK: %[[PARTIAL:.*]] = scf.for %[[F:.*]] = %[[TX]] to %{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %[[NEUTRAL]]) -> (f32) {
// CHECK: %[[COL:.*]] = arith.remui %[[F]], %{{.*}} : index
// CHECK: %[[ROW:.*]] = arith.divui %[[F]], %{{.*}} : index
// CHECK: %[[V:.*]] = memref.load %[[X]][%[[ROW]], %[[COL]]] : memref<8x300xf32>
// CHECK: %[[SQ:.*]] = arith.mulf %[[V]], %[[V]] : f32
// CHECK: %[[NEXT:.*]] = arith.addf %[[ACC]], %[[SQ]] : f32
// CHECK: scf.yield %[[NEXT]] : f32
// CHECK: gpu.shuffle  xor %[[PARTIAL]], %{{.*}}, %{{.*}} : f32
// CHECK-COUNT-4: gpu.shuffle  xor
// CHECK: memref.store %{{.*}}, %[[SLOTS]][%{{.*}}] : memref<8xf32, #gpu.address_space<workgroup>>
// CHECK: gpu.barrier
// CHECK: memref.load %[[SLOTS]]
// CHECK-COUNT-5: gpu.shuffle  xor
// CHECK: %[[INIT:.*]] = memref.load %[[LOSS]][] : memref<f32>
// CHECK: %[[SUM:.*]] = arith.addf %[[INIT]], %{{.*}} : f32
// CHECK: memref.store %[[SUM]], %[[LOSS]][] : memref<f32>
// CHECK: gpu.terminator
// CHECK-NOT: linalg.generic
// CHECK: return
// B64-LABEL: func.func @scalar_loss
// B64: workgroup(%{{.*}} : memref<2xf32, #gpu.address_space<workgroup>>)
func.func @scalar_loss(%x: memref<8x300xf32>, %loss: memref<f32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> ()>],
                  iterator_types = ["reduction", "reduction"]}
      ins(%x : memref<8x300xf32>) outs(%loss : memref<f32>) {
  ^bb0(%in: f32, %acc: f32):
    %sq = arith.mulf %in, %in : f32
    %s = arith.addf %acc, %sq : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A maximum, with the combiner's operands the other way round, and a
// linalg.index in the body: the index becomes the delinearized position.
// CHECK-LABEL: func.func @max_with_index
// CHECK: gpu.launch {{.*}} module(@mod_reduce_0)
// CHECK: %[[NEUTRAL:.*]] = arith.constant 0xFF800000 : f32
// CHECK: scf.for %[[F:.*]] = {{.*}} iter_args(%[[ACC:.*]] = %[[NEUTRAL]])
// CHECK: %[[I:.*]] = arith.index_cast %[[F]] : index to i64
// CHECK: %[[FI:.*]] = arith.uitofp %[[I]]
// CHECK: arith.maximumf %{{.*}}, %[[ACC]] : f32
// CHECK: gpu.shuffle  xor
// CHECK: arith.maximumf
func.func @max_with_index(%x: memref<1000xf32>, %m: memref<f32>) {
  linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>],
                  iterator_types = ["reduction"]}
      ins(%x : memref<1000xf32>) outs(%m : memref<f32>) {
  ^bb0(%in: f32, %acc: f32):
    %i = linalg.index 0 : index
    %i64 = arith.index_cast %i : index to i64
    %fi = arith.uitofp %i64 : i64 to f32
    %v = arith.addf %in, %fi : f32
    %r = arith.maximumf %v, %acc : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// No combiner to split the work by (the body is not combine(out, f(in))),
// and a rank-0 fill with no loop at all: each runs on one thread, the op
// moved into the kernel as it is.
// CHECK-LABEL: func.func @serial
// CHECK: gpu.launch {{.*}} threads({{.*}}) in (%{{.*}} = %c1{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}}) module(@mod_reduce_0) function(@mod_reduce_0) {
// CHECK-NEXT: linalg.fill
// CHECK-NEXT: gpu.terminator
// CHECK: gpu.launch {{.*}} module(@mod_reduce_1) function(@mod_reduce_1)
// CHECK-NEXT: linalg.generic
// CHECK: gpu.terminator
// CHECK-NEXT: }
// CHECK-NEXT: return
func.func @serial(%x: memref<16xf32>, %out: memref<f32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%out : memref<f32>)
  linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>],
                  iterator_types = ["reduction"]}
      ins(%x : memref<16xf32>) outs(%out : memref<f32>) {
  ^bb0(%in: f32, %acc: f32):
    %h = arith.mulf %acc, %acc : f32
    %s = arith.addf %h, %in : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A bias gradient: the sum over B and S of [B, S, D]. The reduction loops
// come first, which convert-linalg-to-parallel-loops would turn into host
// loops around a launch; interchanged, the parallel loop (D) leads.
// CHECK-LABEL: func.func @bias_grad
// CHECK-NOT: gpu.launch
// CHECK: linalg.generic {indexing_maps = [#[[IN:.*]], #[[OUT:.*]]], iterator_types = ["parallel", "reduction", "reduction"]}
// CHECK-NOT: gpu.launch
// CHECK: return
func.func @bias_grad(%dy: memref<2x8x16xf32>, %db: memref<16xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d2)>],
                  iterator_types = ["reduction", "reduction", "parallel"]}
      ins(%dy : memref<2x8x16xf32>) outs(%db : memref<16xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %acc, %in : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Ops already parallel-first, and ops in kernels, are untouched.
// CHECK-LABEL: func.func @untouched
// CHECK-NOT: gpu.launch
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]
// CHECK-NOT: gpu.launch
// CHECK: return
func.func @untouched(%x: memref<4x8xf32>, %r: memref<4xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<4x8xf32>) outs(%r : memref<4xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %acc, %in : f32
    linalg.yield %s : f32
  }
  return
}
