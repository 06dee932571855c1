// PTX of the two fused routing kernels for sm_90, produced by the LLVM NVPTX
// back end (no CUDA toolkit needed). The PTX is embedded in gpu.binary as an
// escaped string; sed turns it back into lines.
//
// RUN: mod-opt %s --pass-pipeline="builtin.module(mod-expand-routed-blocks,mod-lower-routing-to-gpu{min-blocks=1},canonicalize,cse,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},gpu-kernel-outlining,nvvm-attach-target{chip=sm_90 features=+ptx80 O=3},convert-scf-to-cf,gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa toolkit=%cuda_root})" -o %t.mlir
// RUN: sed -e 's/\\0A/\n/g' -e 's/\\09/ /g' %t.mlir | FileCheck %s
//
// The same block with the default min-blocks (128): B = 4 rows of 2048
// tokens of width 1024 (8 MiB per row) give the router 32 blocks per row and
// the gathers (256 x 1024 floats, 1 MiB per row) 16, in kernels of their
// own around the one-block-per-row top-k.
// RUN: mod-opt %s --pass-pipeline="builtin.module(mod-expand-routed-blocks,mod-lower-routing-to-gpu,canonicalize,cse,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},gpu-kernel-outlining,nvvm-attach-target{chip=sm_90 features=+ptx80 O=3},convert-scf-to-cf,gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa toolkit=%cuda_root})" -o %t.split.mlir
// RUN: sed -e 's/\\0A/\n/g' -e 's/\\09/ /g' %t.split.mlir | FileCheck %s --check-prefix=SPLIT
// RUN: FileCheck %s --check-prefix=SPLIT-HOST < %t.split.mlir
// RUN: %if cuda-toolkit %{ sed -n 's/.*assembly = "\(.*\)">\].*/\1/p' %t.split.mlir | sed -n 1p | sed -e 's/\\0A/\n/g' -e 's/\\09/ /g' -e 's/\\22/"/g' > %t.router.ptx %}
// RUN: %if cuda-toolkit %{ sed -n 's/.*assembly = "\(.*\)">\].*/\1/p' %t.split.mlir | sed -n 3p | sed -e 's/\\0A/\n/g' -e 's/\\09/ /g' -e 's/\\22/"/g' > %t.gather.ptx %}
// RUN: %if cuda-toolkit %{ ptxas -v -arch=sm_90 %t.router.ptx -o %t.router.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS-ROUTER %}
// RUN: %if cuda-toolkit %{ ptxas -v -arch=sm_90 %t.gather.ptx -o %t.gather.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS-GATHER %}
//
// With the toolkit, ptxas assembles each kernel and reports its resources
// (the numbers in the CUDA target's documentation come from here).
// RUN: %if cuda-toolkit %{ sed -n 's/.*assembly = "\(.*\)">\].*/\1/p' %t.mlir | sed -n 1p | sed -e 's/\\0A/\n/g' -e 's/\\09/ /g' -e 's/\\22/"/g' > %t.select.ptx %}
// RUN: %if cuda-toolkit %{ sed -n 's/.*assembly = "\(.*\)">\].*/\1/p' %t.mlir | sed -n 2p | sed -e 's/\\0A/\n/g' -e 's/\\09/ /g' -e 's/\\22/"/g' > %t.scatter.ptx %}
// RUN: %if cuda-toolkit %{ ptxas -v -arch=sm_90 %t.select.ptx -o %t.select.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS-SELECT %}
// RUN: %if cuda-toolkit %{ ptxas -v -arch=sm_90 %t.scatter.ptx -o %t.scatter.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS-SCATTER %}

// Router + radix top-k + gather: the 256-bin histogram (1 KiB), the scan
// scratch and the broadcast slots live in shared memory; the histogram is
// the only atomic, and it is a shared-memory one.
// CHECK-LABEL: .visible .entry mod_router_topk_gather_0(
// CHECK-DAG: .shared .align 4 .b8 __wg_mod_router_topk_gather_0_0[1024];
// CHECK-DAG: .shared .align 4 .b8 __wg_mod_router_topk_gather_0_1[132];
// CHECK-DAG: .shared .align 4 .b8 __wg_mod_router_topk_gather_0_2[8];
// CHECK-NOT: atom.global
// CHECK-DAG: shfl.sync.bfly.b32
// CHECK-DAG: bar.sync
// CHECK-DAG: atom.shared.add.u32
// CHECK-DAG: shfl.sync.up.b32
// CHECK: ret;

// Scale + scatter + residual add: no atomics, no shared memory, and the
// sigmoid gate computed in the kernel (libdevice's expf once linked from the
// toolkit, an external __nv_expf call without one).
// CHECK-LABEL: .visible .entry mod_scale_scatter_add_1(
// CHECK-NOT: atom.
// CHECK-NOT: .shared
// CHECK: {{ex2.approx|__nv_expf}}
// CHECK-NOT: atom.
// CHECK: ret;

// PTXAS-SELECT: Compiling entry function 'mod_router_topk_gather_0' for 'sm_90'
// PTXAS-SELECT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-SELECT: Used {{[0-9]+}} registers, used 1 barriers, 1164 bytes smem
// PTXAS-SCATTER: Compiling entry function 'mod_scale_scatter_add_1' for 'sm_90'
// PTXAS-SCATTER: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-SCATTER: Used {{[0-9]+}} registers, used 0 barriers
// PTXAS-SCATTER-NOT: smem

func.func @block(%x: tensor<4x2048x1024xf32>, %p: tensor<4x2048xi32>, %w: tensor<1024xf32>)
    -> tensor<4x2048x1024xf32> {
  %o = mod.routed_block(%x, %p, %w) capacity(256) gate(sigmoid)
      : (tensor<4x2048x1024xf32>, tensor<4x2048xi32>, tensor<1024xf32>) -> tensor<4x2048x1024xf32> {
  ^bb0(%xk: tensor<4x256x1024xf32>, %pk: tensor<4x256xi32>):
    mod.yield %xk : tensor<4x256x1024xf32>
  }
  return %o : tensor<4x2048x1024xf32>
}

// The split router: the part in ctaid.x, the row in ctaid.y, warp
// shuffles for the dot products, and neither shared memory nor a barrier.
// SPLIT-LABEL: .visible .entry mod_router_0(
// SPLIT-NOT: .shared
// SPLIT-NOT: bar.sync
// SPLIT-DAG: %ctaid.x
// SPLIT-DAG: %ctaid.y
// SPLIT-DAG: shfl.sync.bfly.b32
// SPLIT-NOT: .shared
// SPLIT-NOT: bar.sync
// SPLIT: ret;
// The top-k on one block per row, with the histogram and the scans.
// SPLIT-LABEL: .visible .entry mod_topk_1(
// SPLIT-DAG: .shared .align 4 .b8 __wg_mod_topk_1_0[1024];
// SPLIT-DAG: atom.shared.add.u32
// SPLIT-DAG: bar.sync
// SPLIT-DAG: shfl.sync.up.b32
// SPLIT-NOT: shfl.sync.bfly
// SPLIT: ret;
// The split gathers: part and row from the grid, plain loads and stores.
// SPLIT-LABEL: .visible .entry mod_gather_2(
// SPLIT-NOT: .shared
// SPLIT-NOT: bar.sync
// SPLIT-DAG: %ctaid.x
// SPLIT-DAG: %ctaid.y
// SPLIT-DAG: st.global.b32
// SPLIT-NOT: .shared
// SPLIT-NOT: bar.sync
// SPLIT: ret;
// SPLIT-LABEL: .visible .entry mod_scale_scatter_add_3(

// The launches: 32 x 4 router blocks, 4 top-k blocks, 16 x 4 gather blocks.
// SPLIT-HOST-DAG: %[[C32:.*]] = arith.constant 32 : index
// SPLIT-HOST-DAG: %[[C16:.*]] = arith.constant 16 : index
// SPLIT-HOST-DAG: %[[C4:.*]] = arith.constant 4 : index
// SPLIT-HOST-DAG: %[[C1:.*]] = arith.constant 1 : index
// SPLIT-HOST: gpu.launch_func @mod_router_0::@mod_router_0 blocks in (%[[C32]], %[[C4]], %[[C1]])
// SPLIT-HOST: gpu.launch_func @mod_topk_1::@mod_topk_1 blocks in (%[[C4]], %[[C1]], %[[C1]])
// SPLIT-HOST: gpu.launch_func @mod_gather_2::@mod_gather_2 blocks in (%[[C16]], %[[C4]], %[[C1]])

// PTXAS-ROUTER: Compiling entry function 'mod_router_0' for 'sm_90'
// PTXAS-ROUTER: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-ROUTER: Used {{[0-9]+}} registers, used 0 barriers
// PTXAS-ROUTER-NOT: smem
// PTXAS-GATHER: Compiling entry function 'mod_gather_2' for 'sm_90'
// PTXAS-GATHER: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS-GATHER: Used {{[0-9]+}} registers, used 0 barriers
// PTXAS-GATHER-NOT: smem
