// RUN: mod-opt %s --mod-lower-routing-to-gpu -split-input-file | FileCheck %s
// RUN: mod-opt %s --mod-lower-routing-to-gpu=min-blocks=1 -split-input-file | FileCheck %s --check-prefix=FUSED
// RUN: mod-opt %s --mod-lower-routing-to-gpu=min-blocks=4 -split-input-file | FileCheck %s --check-prefix=FOUR
// RUN: not mod-opt %s --mod-lower-routing-to-gpu=min-blocks=0 2>&1 | FileCheck %s --check-prefix=ZERO

// ZERO: error: --mod-lower-routing-to-gpu: min-blocks must be at least 1, got 0

// One sequence (B = 1) of 1024 tokens of width 64: the router reads
// 256 KiB per row, the hidden-state gather 128 x 64 x 4 = 32 KiB. With the
// default min-blocks (128), the router gets min(128, 256 KiB / 64 KiB) = 4
// blocks (grid 4 x 1, no shared memory, each block starting at its own
// group of 8 tokens and striding by 4 x 8), then the top-k runs on one
// block with its histogram, and the gathers, too small to split (32 KiB),
// stay in the top-k kernel.
// CHECK-LABEL: func.func @one_row
// CHECK: %[[SCORES:.*]] = memref.alloc() : memref<1x1024xf32>
// CHECK: gpu.launch blocks(%[[PART:.*]], %[[ROW:.*]], %{{.*}}) in (%{{.*}} = %c4{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}})
// CHECK-SAME: module(@mod_router_0) function(@mod_router_0) {
// CHECK: %[[FIRST:.*]] = arith.muli %[[PART]], %c8{{(_[0-9]+)?}} : index
// CHECK: %[[START:.*]] = arith.addi %[[FIRST]], %{{.*}} : index
// CHECK: scf.for %[[S:.*]] = %[[START]] to %c1024 step %c32{{(_[0-9]+)?}}
// CHECK: gpu.shuffle xor
// CHECK: memref.store %{{.*}}, %[[SCORES]][%[[ROW]], %[[S]]]
// CHECK-NOT: gpu.barrier
// CHECK: gpu.terminator
// CHECK: gpu.launch blocks({{.*}}) in (%{{.*}} = %c1{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}})
// CHECK-SAME: module(@mod_topk_gather_1) function(@mod_topk_gather_1)
// CHECK-SAME: workgroup(%[[HIST:.*]] : memref<256xi32, #gpu.address_space<workgroup>>
// CHECK-NOT: gpu.shuffle xor
// CHECK: memref.atomic_rmw addi %{{.*}}, %[[HIST]]
// CHECK: gpu.terminator
// CHECK-NOT: gpu.launch
// CHECK: return

// Everything fused when one block per row is asked for.
// FUSED-LABEL: func.func @one_row
// FUSED: gpu.launch
// FUSED-SAME: module(@mod_router_topk_gather_0)
// FUSED-NOT: gpu.launch
// FUSED: return

// FOUR-LABEL: func.func @one_row
// FOUR: module(@mod_router_0)
// FOUR: module(@mod_topk_gather_1)
func.func @one_row(%x: tensor<1x1024x64xf32>, %w: tensor<32xf32>, %w64: tensor<64xf32>)
    -> (tensor<1x128x64xf32>, tensor<1x128xf32>) {
  %r = mod.router %x, %w64 : tensor<1x1024x64xf32>, tensor<64xf32> -> tensor<1x1024xf32>
  %idx, %val = mod.topk %r k(128) : tensor<1x1024xf32> -> tensor<1x128xi32>, tensor<1x128xf32>
  %xk = mod.gather %x[%idx] : tensor<1x1024x64xf32>, tensor<1x128xi32> -> tensor<1x128x64xf32>
  return %xk, %val : tensor<1x128x64xf32>, tensor<1x128xf32>
}

// -----

// Two sequences of 2048 tokens of width 256 (2 MiB per row), 512 kept: the
// router gets min(ceil(128 / 2), 2 MiB / 64 KiB) = 32 blocks per row, the
// gather (512 KiB per row) min(64, 8) = 8 blocks per row (grid 8 x 2),
// block p copying slices p, p + 8, ... (256 elements each) of the row's
// 512 x 256 elements; the top-k kernel between them gathers nothing.
// CHECK-LABEL: func.func @two_rows
// CHECK: gpu.launch blocks({{.*}}) in (%{{.*}} = %c32{{(_[0-9]+)?}}, %{{.*}} = %c2{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}})
// CHECK-SAME: module(@mod_router_0)
// CHECK: gpu.launch blocks({{.*}}) in (%{{.*}} = %c2{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}})
// CHECK-SAME: module(@mod_topk_1)
// CHECK: gpu.terminator
// CHECK: gpu.launch blocks(%[[PART:.*]], %[[ROW:.*]], %{{.*}}) in (%{{.*}} = %c8{{(_[0-9]+)?}}, %{{.*}} = %c2{{(_[0-9]+)?}}, %{{.*}} = %c1{{(_[0-9]+)?}})
// CHECK-SAME: module(@mod_gather_2)
// CHECK: %[[FIRST:.*]] = arith.muli %[[PART]], %c256{{(_[0-9]+)?}} : index
// CHECK: %[[START:.*]] = arith.addi %[[FIRST]], %{{.*}} : index
// CHECK: scf.for %{{.*}} = %[[START]] to %c131072 step %c2048
// CHECK: memref.load %{{.*}}[%[[ROW]], %{{.*}}] : memref<2x512xi32>
// CHECK: gpu.terminator
// CHECK: return
func.func @two_rows(%x: tensor<2x2048x256xf32>, %w: tensor<256xf32>)
    -> (tensor<2x512x256xf32>, tensor<2x512xf32>) {
  %r = mod.router %x, %w : tensor<2x2048x256xf32>, tensor<256xf32> -> tensor<2x2048xf32>
  %idx, %val = mod.topk %r k(512) : tensor<2x2048xf32> -> tensor<2x512xi32>, tensor<2x512xf32>
  %xk = mod.gather %x[%idx] : tensor<2x2048x256xf32>, tensor<2x512xi32> -> tensor<2x512x256xf32>
  return %xk, %val : tensor<2x512x256xf32>, tensor<2x512xf32>
}
