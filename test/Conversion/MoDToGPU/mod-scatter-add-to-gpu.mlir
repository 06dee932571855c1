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

// -----

// A decode step's per-row cache write (--mod-generate-decode, bufferized):
// row b's new key goes to slot lengths[b] of the cache if it is in range.
// The slot is data, so the nest is no scatter-add; it runs as one block of
// 32 threads (the copy moves 4x8 = 32 elements) in program order: every
// thread runs the loop and the branch, the copy is spread over the threads
// between two barriers. The plain scatter's store is done by thread 0,
// also between barriers, and the last writer wins as on the host.
// CHECK-LABEL: func.func @cache_write
// CHECK-SAME: (%[[NEW:.*]]: memref<4x1x4x8xf32>, %[[LEN:.*]]: memref<4xi32>, %[[CACHE:.*]]: memref<4x16x4x8xf32>)
// CHECK-NOT: scf.for
// CHECK: gpu.launch blocks(%{{[^)]*}}) in (%{{[^ ]*}} = %c1{{(_[0-9]+)?}}, %{{[^)]*}}) threads(%[[TX:[^,]*]], %{{[^)]*}}) in (%{{[^ ]*}} = %c32{{(_[0-9]+)?}}, %{{[^)]*}}) module(@mod_host_loop_0) function(@mod_host_loop_0) {
// CHECK: scf.for %[[B:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK: %[[L:.*]] = memref.load %[[LEN]][%[[B]]] : memref<4xi32>
// CHECK: %[[SLOT:.*]] = arith.index_cast %[[L]] : i32 to index
// CHECK: scf.if
// CHECK-NEXT: gpu.barrier
// CHECK: scf.for %[[E:.*]] = %[[TX]] to %c32{{(_[0-9]+)?}} step %c32{{(_[0-9]+)?}} {
// The row views are folded into the indices (no memref.subview in a
// kernel: convert-gpu-to-nvvm cannot lower it).
// CHECK-NOT: memref.subview
// CHECK: %[[X:.*]] = memref.load %[[NEW]][%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : memref<4x1x4x8xf32>
// CHECK: memref.store %[[X]], %[[CACHE]][%{{.*}}, %[[SLOT]], %{{.*}}, %{{.*}}] : memref<4x16x4x8xf32>
// CHECK: }
// CHECK-NEXT: gpu.barrier
// CHECK-NOT: memref.copy
// CHECK: gpu.terminator
// CHECK-NOT: scf.for
// CHECK: gpu.launch {{.*}} threads(%[[TX2:[^,]*]], %{{[^)]*}}) in (%{{[^ ]*}} = %c32{{(_[0-9]+)?}}, %{{[^)]*}}) module(@mod_host_loop_1) function(@mod_host_loop_1) {
// CHECK: scf.for
// CHECK: gpu.barrier
// CHECK: %[[FIRST:.*]] = arith.cmpi eq, %[[TX2]], %{{.*}} : index
// CHECK-NEXT: scf.if %[[FIRST]] {
// CHECK-NEXT: memref.store
// CHECK-NEXT: }
// CHECK-NEXT: gpu.barrier
// CHECK: return
func.func @cache_write(%new: memref<4x1x4x8xf32>, %lengths: memref<4xi32>, %cache: memref<4x16x4x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c16 = arith.constant 16 : index
  scf.for %b = %c0 to %c4 step %c1 {
    %l = memref.load %lengths[%b] : memref<4xi32>
    %slot = arith.index_cast %l : i32 to index
    %in = arith.cmpi slt, %slot, %c16 : index
    scf.if %in {
      %src = memref.subview %new[%b, 0, 0, 0] [1, 1, 4, 8] [1, 1, 1, 1] : memref<4x1x4x8xf32> to memref<1x1x4x8xf32, strided<[32, 32, 8, 1], offset: ?>>
      %dst = memref.subview %cache[%b, %slot, 0, 0] [1, 1, 4, 8] [1, 1, 1, 1] : memref<4x16x4x8xf32> to memref<1x1x4x8xf32, strided<[512, 32, 8, 1], offset: ?>>
      memref.copy %src, %dst : memref<1x1x4x8xf32, strided<[32, 32, 8, 1], offset: ?>> to memref<1x1x4x8xf32, strided<[512, 32, 8, 1], offset: ?>>
    }
  }
  // A plain scatter (the last writer wins).
  %out = memref.alloc() : memref<4xi32>
  scf.for %b = %c0 to %c4 step %c1 {
    %l = memref.load %lengths[%b] : memref<4xi32>
    %slot = arith.index_cast %l : i32 to index
    %k = arith.remui %slot, %c4 : index
    memref.store %l, %out[%k] : memref<4xi32>
  }
  return
}

// PTX-LABEL: .visible .entry mod_host_loop_0(
// PTX: bar.sync 0;
// PTX: ld.global
// PTX: st.global
// PTX: bar.sync 0;
// PTX: ret;

// -----

// A decode step's routed-row compaction (mod.routed_rows): the rows whose
// router logit is > 0 are appended to a list, and the host needs their
// count n after the loop (it chooses the copy of the block built for k >= n
// rows). The loop runs in one block; thread 0 stores n into a device
// buffer, which is copied device -> host into a host staging buffer that
// the host then reads: one small copy and a synchronization per routed
// block and step. A parallel linalg op in a nest (the write-back of a
// routed row's output) is spread over the threads, and a temporary it
// writes is allocated once, before the kernel.
// CHECK-LABEL: func.func @compaction
// CHECK-SAME: (%[[LOGITS:.*]]: memref<4x1xf32>, %[[ROWS:.*]]: memref<4xi32>, %[[X:.*]]: memref<4x8xf32>)
// CHECK: %[[STAGING:.*]] = memref.alloca() {mod.host_staging} : memref<index>
// CHECK: %[[COUNT:.*]] = memref.alloc() : memref<index>
// CHECK: gpu.launch {{.*}} module(@mod_host_loop_0) function(@mod_host_loop_0) {
// CHECK: %[[N:.*]] = scf.for {{.*}} -> (index) {
// CHECK: memref.store %{{.*}}, %[[ROWS]][%{{.*}}] : memref<4xi32>
// CHECK: }
// CHECK: scf.if %{{.*}} {
// CHECK-NEXT: memref.store %[[N]], %[[COUNT]][] : memref<index>
// CHECK: gpu.terminator
// CHECK-NEXT: }
// CHECK-NEXT: gpu.memcpy  %[[STAGING]], %[[COUNT]] : memref<index>, memref<index>
// CHECK-NEXT: %[[HOSTN:.*]] = memref.load %[[STAGING]][] : memref<index>
// CHECK: %[[TMP:.*]] = memref.alloc() : memref<8xf32>
// CHECK: gpu.launch {{.*}} threads(%[[TX:[^,]*]], %{{[^)]*}}) in (%{{[^ ]*}} = %c32{{(_[0-9]+)?}}, %{{[^)]*}}) module(@mod_host_loop_1) function(@mod_host_loop_1) {
// CHECK: scf.for %[[J:.*]] = %{{.*}} to %[[HOSTN]] step
// CHECK: gpu.barrier
// CHECK: scf.for %[[E:.*]] = %[[TX]] to %c8{{(_[0-9]+)?}} step %c32{{(_[0-9]+)?}} {
// CHECK: arith.mulf
// CHECK: memref.store %{{.*}}, %[[TMP]][%[[E]]] : memref<8xf32>
// CHECK: }
// CHECK-NEXT: gpu.barrier
// CHECK: return %[[HOSTN]]
func.func @compaction(%logits: memref<4x1xf32>, %rows: memref<4xi32>, %x: memref<4x8xf32>) -> index {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zero = arith.constant 0.0 : f32
  %n = scf.for %b = %c0 to %c4 step %c1 iter_args(%k = %c0) -> (index) {
    %r = memref.load %logits[%b, %c0] : memref<4x1xf32>
    %on = arith.cmpf ogt, %r, %zero : f32
    %next = scf.if %on -> (index) {
      %row = arith.index_cast %b : index to i32
      memref.store %row, %rows[%k] : memref<4xi32>
      %k1 = arith.addi %k, %c1 : index
      scf.yield %k1 : index
    } else {
      scf.yield %k : index
    }
    scf.yield %next : index
  } {mod.routed_rows}
  scf.for %j = %c0 to %n step %c1 {
    %row32 = memref.load %rows[%j] : memref<4xi32>
    %row = arith.index_cast %row32 : i32 to index
    %g = memref.load %logits[%row, %c0] : memref<4x1xf32>
    %tmp = memref.alloc() : memref<8xf32>
    %xrow = memref.subview %x[%row, 0] [1, 8] [1, 1] : memref<4x8xf32> to memref<8xf32, strided<[1], offset: ?>>
    linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
        ins(%xrow : memref<8xf32, strided<[1], offset: ?>>) outs(%tmp : memref<8xf32>) {
    ^bb0(%in: f32, %out: f32):
      %s = arith.mulf %in, %g : f32
      linalg.yield %s : f32
    }
    memref.copy %tmp, %xrow : memref<8xf32> to memref<8xf32, strided<[1], offset: ?>>
  }
  return %n : index
}
