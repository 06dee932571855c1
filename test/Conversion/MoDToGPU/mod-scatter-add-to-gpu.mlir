// RUN: mod-opt %s --mod-scatter-add-to-gpu -split-input-file | FileCheck %s
// RUN: mod-opt %s --mod-scatter-add-to-gpu=max-blocks=2 -split-input-file | FileCheck %s --check-prefix=MAX2
// RUN: not mod-opt %s --mod-scatter-add-to-gpu=block-size=48 -split-input-file 2>&1 | FileCheck %s --check-prefix=BAD
//
// The PTX of the embedding-gradient kernel (LLVM's NVPTX back end, no
// toolkit needed): the accumulation is a global atomic add.
// RUN: mod-opt %s -split-input-file --pass-pipeline="builtin.module(mod-scatter-add-to-gpu,gpu-launch-sink-index-computations,gpu-kernel-outlining,nvvm-attach-target{chip=sm_90 features=+ptx80 O=3},convert-scf-to-cf,gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa toolkit=%cuda_root})" -o %t.mlir
// RUN: sed -e 's/\\0A/\n/g' -e 's/\\09/ /g' %t.mlir | FileCheck %s --check-prefix=PTX

// BAD: error: --mod-scatter-add-to-gpu: block-size must be a multiple of 32 in [32, 1024] and max-blocks positive

// The embedding adjoint --mod-generate-grad emits, bufferized:
// dW[tokens[b, s], d] += dy[b, s, d] over (b, s, d) = (2, 16, 32). One
// kernel, 1024 threads (4 blocks of 256), the innermost loop (d) fastest,
// the read-modify-write an atomic add; nothing stays on the host.
// CHECK-LABEL: func.func @embedding_grad
// CHECK-SAME: (%[[TOK:.*]]: memref<2x16xi32>, %[[DY:.*]]: memref<2x16x32xf32>)
// CHECK: %[[DW:.*]] = memref.alloc() : memref<64x32xf32>
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[DW]] : memref<64x32xf32>)
// CHECK-NOT: scf.for
// CHECK: gpu.launch blocks(%[[BX:[^,]*]], %{{[^)]*}}) in (%{{[^ ]*}} = %c4{{(_[0-9]+)?}}, %{{[^)]*}}) threads(%[[TX:[^,]*]], %{{[^)]*}}) in (%{{[^ ]*}} = %c256{{(_[0-9]+)?}}, %{{[^)]*}}) module(@mod_atomic_scatter_0) function(@mod_atomic_scatter_0) {
// CHECK: %[[BASE:.*]] = arith.muli %[[BX]], %{{.*}} : index
// CHECK: %[[FIRST:.*]] = arith.addi %[[BASE]], %[[TX]] : index
// CHECK: %[[N:.*]] = arith.constant 1024 : index
// CHECK: %[[STRIDE:.*]] = arith.constant 1024 : index
// CHECK: scf.for %[[F:.*]] = %[[FIRST]] to %[[N]] step %[[STRIDE]] {
// CHECK: %[[DI:.*]] = arith.remui %[[F]], %{{.*}} : index
// CHECK: %[[REST:.*]] = arith.divui %[[F]], %{{.*}} : index
// CHECK: %[[D:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// CHECK: %[[SI:.*]] = arith.remui %[[REST]], %{{.*}} : index
// CHECK: %[[BI:.*]] = arith.divui %[[REST]], %{{.*}} : index
// CHECK: %[[S:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// CHECK: %[[B:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// CHECK: %[[T:.*]] = memref.load %[[TOK]][%[[B]], %[[S]]] : memref<2x16xi32>
// CHECK: %[[G:.*]] = memref.load %[[DY]][%[[B]], %[[S]], %[[D]]] : memref<2x16x32xf32>
// CHECK: %[[ROW:.*]] = arith.index_cast %{{.*}} : i32 to index
// CHECK-NOT: memref.load %[[DW]]
// CHECK: memref.atomic_rmw addf %[[G]], %[[DW]][%[[ROW]], %[[D]]] : (f32, memref<64x32xf32>) -> f32
// CHECK-NOT: memref.store
// CHECK: }
// CHECK-NEXT: gpu.terminator
// CHECK-NEXT: }
// CHECK-NEXT: return %[[DW]]

// MAX2-LABEL: func.func @embedding_grad
// MAX2: gpu.launch blocks({{.*}}) in (%{{[^ ]*}} = %c2{{(_[0-9]+)?}},
// MAX2: %[[N:.*]] = arith.constant 1024 : index
// MAX2: %[[STRIDE:.*]] = arith.constant 512 : index
// MAX2: scf.for %{{.*}} = %{{.*}} to %[[N]] step %[[STRIDE]] {
// MAX2: memref.atomic_rmw addf

// PTX-LABEL: .visible .entry mod_atomic_scatter_0(
// PTX: ld.global.b32
// PTX: ld.global.b32
// PTX: atom.global.add.f32
// PTX-NOT: st.global
// PTX: ret;

func.func @embedding_grad(%tokens: memref<2x16xi32>, %dy: memref<2x16x32xf32>) -> memref<64x32xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c16 = arith.constant 16 : index
  %c32 = arith.constant 32 : index
  %c0_i32 = arith.constant 0 : i32
  %c63_i32 = arith.constant 63 : i32
  %zero = arith.constant 0.0 : f32
  %dw = memref.alloc() : memref<64x32xf32>
  linalg.fill ins(%zero : f32) outs(%dw : memref<64x32xf32>)
  scf.for %b = %c0 to %c2 step %c1 {
    scf.for %s = %c0 to %c16 step %c1 {
      scf.for %d = %c0 to %c32 step %c1 {
        %t = memref.load %tokens[%b, %s] : memref<2x16xi32>
        %g = memref.load %dy[%b, %s, %d] : memref<2x16x32xf32>
        %lo = arith.maxsi %t, %c0_i32 : i32
        %hi = arith.minsi %lo, %c63_i32 : i32
        %row = arith.index_cast %hi : i32 to index
        %old = memref.load %dw[%row, %d] : memref<64x32xf32>
        %new = arith.addf %old, %g : f32
        memref.store %new, %dw[%row, %d] : memref<64x32xf32>
      }
    }
  }
  return %dw : memref<64x32xf32>
}

// -----

// Two accumulations (one integer, one through a subview, addend first) in a
// nest with a non-zero lower bound and a step of 2 (3 x 5 = 15 iterations:
// one block); the load of a buffer the nest does not write stays a load.
// CHECK-LABEL: func.func @two_accumulations
// CHECK-SAME: (%[[IDX:.*]]: memref<8xindex>, %[[V:.*]]: memref<8x5xf32>)
// CHECK: %[[COUNT:.*]] = memref.alloc() : memref<4xi32>
// CHECK: %[[SUM:.*]] = memref.alloc() : memref<4x8xf32>
// CHECK: %[[VIEW:.*]] = memref.subview %[[SUM]][0, 3] [4, 5] [1, 1]
// CHECK: gpu.launch blocks({{.*}}) in (%{{[^ ]*}} = %c1{{(_[0-9]+)?}}, {{.*}} module(@mod_atomic_scatter_0) function(@mod_atomic_scatter_0) {
// CHECK: %[[N:.*]] = arith.constant 15 : index
// CHECK: scf.for %[[F:.*]] = %{{.*}} to %[[N]] step %{{.*}} {
// CHECK: %[[JI:.*]] = arith.remui %[[F]], %{{.*}} : index
// CHECK: %[[II:.*]] = arith.divui %[[F]], %{{.*}} : index
// CHECK: %[[J:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// CHECK: %[[ISTEP:.*]] = arith.muli %[[II]], %{{.*}} : index
// CHECK: %[[I:.*]] = arith.addi %{{.*}}, %[[ISTEP]] : index
// CHECK: %[[K:.*]] = memref.load %[[IDX]][%[[I]]] : memref<8xindex>
// CHECK: memref.atomic_rmw addi %{{.*}}, %[[COUNT]][%[[K]]] : (i32, memref<4xi32>) -> i32
// CHECK: %[[X:.*]] = memref.load %[[V]][%[[I]], %[[J]]] : memref<8x5xf32>
// CHECK: memref.atomic_rmw addf %[[X]], %[[VIEW]][%[[K]], %[[J]]]
// CHECK-NOT: memref.store
// CHECK: gpu.terminator
func.func @two_accumulations(%idx: memref<8xindex>, %v: memref<8x5xf32>) -> (memref<4xi32>, memref<4x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c5 = arith.constant 5 : index
  %c7 = arith.constant 7 : index
  %one = arith.constant 1 : i32
  %count = memref.alloc() : memref<4xi32>
  %sum = memref.alloc() : memref<4x8xf32>
  %view = memref.subview %sum[0, 3] [4, 5] [1, 1] : memref<4x8xf32> to memref<4x5xf32, strided<[8, 1], offset: 3>>
  scf.for %i = %c1 to %c7 step %c2 {
    scf.for %j = %c0 to %c5 step %c1 {
      %k = memref.load %idx[%i] : memref<8xindex>
      %n = memref.load %count[%k] : memref<4xi32>
      %n1 = arith.addi %n, %one : i32
      memref.store %n1, %count[%k] : memref<4xi32>
      %x = memref.load %v[%i, %j] : memref<8x5xf32>
      %s = memref.load %view[%k, %j] : memref<4x5xf32, strided<[8, 1], offset: 3>>
      %s1 = arith.addf %x, %s : f32
      memref.store %s1, %view[%k, %j] : memref<4x5xf32, strided<[8, 1], offset: 3>>
    }
  }
  return %count, %sum : memref<4xi32>, memref<4x8xf32>
}

// -----

// Host loops that touch no memory, and loops already in kernels, are left
// alone.
// CHECK-LABEL: func.func @untouched
// CHECK-NOT: gpu.launch
// CHECK: scf.for
// CHECK: return
func.func @untouched(%n: index) -> index {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%a = %c0) -> (index) {
    %a1 = arith.addi %a, %i : index
    scf.yield %a1 : index
  }
  return %r : index
}
