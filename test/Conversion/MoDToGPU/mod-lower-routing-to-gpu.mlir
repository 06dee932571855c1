// RUN: mod-opt %s --mod-expand-routed-blocks --mod-lower-routing-to-gpu -split-input-file | FileCheck %s
// RUN: mod-opt %s --mod-expand-routed-blocks --mod-lower-routing-to-gpu -split-input-file | mod-opt --gpu-kernel-outlining -split-input-file | FileCheck %s --check-prefix=OUTLINED
// RUN: not mod-opt %s --mod-lower-routing-to-gpu=block-size=48 -split-input-file 2>&1 | FileCheck %s --check-prefix=BLOCK

// BLOCK: error: --mod-lower-routing-to-gpu: block-size 48 must be a multiple of 32 in [32, 1024]

// Router -> top-k -> gathers fuse into one kernel, one block per batch row,
// with the radix histogram in workgroup memory; the scatter is a separate
// kernel without atomics (indices from mod.topk are unique and ascending).
// CHECK-LABEL: func.func @routed
// CHECK-SAME: (%[[X:.*]]: tensor<2x64x32xf32>, %[[P:.*]]: tensor<2x64xi32>, %[[W:.*]]: tensor<32xf32>, %[[D:.*]]: tensor<2x8x32xf32>)
// CHECK-NOT: mod.
// CHECK-DAG: %[[XB:.*]] = bufferization.to_buffer %[[X]] read_only
// CHECK-DAG: %[[SCORES:.*]] = memref.alloc() : memref<2x64xf32>
// CHECK-DAG: %[[IDX:.*]] = memref.alloc() : memref<2x8xi32>
// CHECK-DAG: %[[VAL:.*]] = memref.alloc() : memref<2x8xf32>
// CHECK-DAG: %[[PK:.*]] = memref.alloc() : memref<2x8xi32>
// CHECK-DAG: %[[XK:.*]] = memref.alloc() : memref<2x8x32xf32>
// CHECK-DAG: %[[C2:.*]] = arith.constant 2 : index
// CHECK-DAG: %[[C256:.*]] = arith.constant 256 : index
// CHECK: gpu.launch blocks({{[^)]*}}) in ({{%[^ ]*}} = %[[C2]], {{[^)]*}}) threads({{[^)]*}}) in ({{%[^ ]*}} = %[[C256]], {{[^)]*}})
// CHECK-SAME: module(@mod_router_topk_gather_0) function(@mod_router_topk_gather_0)
// CHECK-SAME: workgroup(%[[HIST:.*]] : memref<256xi32, #gpu.address_space<workgroup>>, %{{.*}} : memref<33xi32, #gpu.address_space<workgroup>>, %{{.*}} : memref<2xi32, #gpu.address_space<workgroup>>)
// Router: warp shuffles reduce the dot product.
// CHECK: gpu.shuffle xor
// CHECK: memref.store %{{.*}}, %[[SCORES]]
// CHECK: gpu.barrier
// Radix select: histogram atomics go to workgroup memory only.
// CHECK: memref.atomic_rmw addi %{{.*}}, %[[HIST]]
// CHECK: gpu.shuffle up
// Compaction, then the gathers.
// CHECK: memref.store %{{.*}}, %[[IDX]]
// CHECK: memref.store %{{.*}}, %[[VAL]]
// CHECK: gpu.barrier
// CHECK: gpu.terminator
// CHECK: gpu.launch
// CHECK-SAME: module(@mod_scale_scatter_add_1) function(@mod_scale_scatter_add_1)
// CHECK-NOT: workgroup
// CHECK-NOT: atomic_rmw
// CHECK: gpu.terminator
// CHECK: %[[OUT:.*]] = bufferization.to_tensor %{{.*}} restrict writable : memref<2x64x32xf32>
// CHECK: return %{{.*}}, %{{.*}}, %[[OUT]]

// OUTLINED-LABEL: gpu.module @mod_router_topk_gather_0
// OUTLINED: gpu.func @mod_router_topk_gather_0({{.*}}) workgroup({{.*}}memref<256xi32, #gpu.address_space<workgroup>>{{.*}}) kernel
// OUTLINED-LABEL: gpu.module @mod_scale_scatter_add_1
// OUTLINED: gpu.func @mod_scale_scatter_add_1
// OUTLINED-NOT: atomic_rmw
// OUTLINED: gpu.return
func.func @routed(%x: tensor<2x64x32xf32>, %p: tensor<2x64xi32>, %w: tensor<32xf32>, %d: tensor<2x8x32xf32>)
    -> (tensor<2x8x32xf32>, tensor<2x8xi32>, tensor<2x64x32xf32>) {
  %r = mod.router %x, %w : tensor<2x64x32xf32>, tensor<32xf32> -> tensor<2x64xf32>
  %idx, %val = mod.topk %r k(8) : tensor<2x64xf32> -> tensor<2x8xi32>, tensor<2x8xf32>
  %xk = mod.gather %x[%idx] : tensor<2x64x32xf32>, tensor<2x8xi32> -> tensor<2x8x32xf32>
  %pk = mod.gather %p[%idx] : tensor<2x64xi32>, tensor<2x8xi32> -> tensor<2x8xi32>
  %out = mod.scatter_add %x[%idx], %d scale %val
      : tensor<2x64x32xf32>, tensor<2x8xi32>, tensor<2x8x32xf32>, tensor<2x8xf32> -> tensor<2x64x32xf32>
  return %xk, %pk, %out : tensor<2x8x32xf32>, tensor<2x8xi32>, tensor<2x64x32xf32>
}

// -----

// The gate attribute that --mod-expand-routed-blocks puts on the scatter is
// applied in the scatter kernel: exp appears there and nowhere else.
// CHECK-LABEL: func.func @sigmoid_gate
// CHECK: function(@mod_router_topk_gather_0)
// CHECK-NOT: math.exp
// CHECK: function(@mod_scale_scatter_add_1)
// CHECK-NOT: atomic_rmw
// CHECK: math.exp
// CHECK-NOT: atomic_rmw
// CHECK: gpu.terminator
func.func @sigmoid_gate(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
  %o = mod.routed_block(%x, %p, %w) capacity(1) gate(sigmoid)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x1x8xf32>, %pk: tensor<1x1xi32>):
    mod.yield %xk : tensor<1x1x8xf32>
  }
  return %o : tensor<1x4x8xf32>
}

// -----

// Top-k on scores that are not a router output, a standalone router, a
// gather of indices from elsewhere, and a scatter with indices of unknown
// provenance (may repeat: copy + atomic accumulate).
// CHECK-LABEL: func.func @unfused
// CHECK: function(@mod_topk_0)
// CHECK: function(@mod_router_1)
// CHECK: function(@mod_gather_2)
// CHECK: function(@mod_scatter_add_3_copy)
// CHECK: function(@mod_scatter_add_3_atomic)
// CHECK: memref.atomic_rmw addf
func.func @unfused(%s: tensor<1x8xf32>, %x: tensor<1x8x4xf32>, %w: tensor<4xf32>, %i: tensor<1x3xi32>,
                   %d: tensor<1x3x4xf32>, %g: tensor<1x3xf32>)
    -> (tensor<1x3xi32>, tensor<1x8xf32>, tensor<1x3x4xf32>, tensor<1x8x4xf32>) {
  %idx, %val = mod.topk %s k(3) : tensor<1x8xf32> -> tensor<1x3xi32>, tensor<1x3xf32>
  %r = mod.router %x, %w : tensor<1x8x4xf32>, tensor<4xf32> -> tensor<1x8xf32>
  %xk = mod.gather %x[%i] : tensor<1x8x4xf32>, tensor<1x3xi32> -> tensor<1x3x4xf32>
  %out = mod.scatter_add %x[%i], %d scale %g
      : tensor<1x8x4xf32>, tensor<1x3xi32>, tensor<1x3x4xf32>, tensor<1x3xf32> -> tensor<1x8x4xf32>
  return %idx, %r, %xk, %out : tensor<1x3xi32>, tensor<1x8xf32>, tensor<1x3x4xf32>, tensor<1x8x4xf32>
}

// -----

// The gate is read from the attribute on every scatter path, including the
// atomic one for indices of unknown provenance; the identity gate emits no exp.
// CHECK-LABEL: func.func @gated_atomic_scatter
// CHECK: function(@mod_scatter_add_0_copy)
// CHECK-NOT: math.exp
// CHECK: function(@mod_scatter_add_0_atomic)
// CHECK: math.exp
// CHECK: memref.atomic_rmw addf
// CHECK: function(@mod_scatter_add_1_copy)
// CHECK-NOT: math.exp
// CHECK: function(@mod_scatter_add_1_atomic)
// CHECK-NOT: math.exp
// CHECK: memref.atomic_rmw addf
// CHECK-NOT: math.exp
// CHECK: return
func.func @gated_atomic_scatter(%x: tensor<1x8x4xf32>, %i: tensor<1x3xi32>, %d: tensor<1x3x4xf32>,
                                %g: tensor<1x3xf32>) -> (tensor<1x8x4xf32>, tensor<1x8x4xf32>) {
  %a = mod.scatter_add %x[%i], %d scale %g gate(sigmoid)
      : tensor<1x8x4xf32>, tensor<1x3xi32>, tensor<1x3x4xf32>, tensor<1x3xf32> -> tensor<1x8x4xf32>
  %b = mod.scatter_add %x[%i], %d scale %g
      : tensor<1x8x4xf32>, tensor<1x3xi32>, tensor<1x3x4xf32>, tensor<1x3xf32> -> tensor<1x8x4xf32>
  return %a, %b : tensor<1x8x4xf32>, tensor<1x8x4xf32>
}
