// PTX of the two fused routing kernels for sm_90, produced by the LLVM NVPTX
// back end (no CUDA toolkit needed). The PTX is embedded in gpu.binary as an
// escaped string; sed turns it back into lines.
//
// RUN: mod-opt %s --pass-pipeline="builtin.module(mod-expand-routed-blocks,mod-lower-routing-to-gpu,canonicalize,cse,one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map},gpu-kernel-outlining,nvvm-attach-target{chip=sm_90 features=+ptx80 O=3},convert-scf-to-cf,gpu.module(convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),gpu-module-to-binary{format=isa toolkit=%cuda_root})" -o %t.mlir
// RUN: sed -e 's/\\0A/\n/g' -e 's/\\09/ /g' %t.mlir | FileCheck %s
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
