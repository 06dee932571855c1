// RUN: mod-opt %s --mod-cpu-lowering | FileCheck %s --implicit-check-not=mod. --implicit-check-not=linalg. --implicit-check-not=tensor. --implicit-check-not=scf. --implicit-check-not=memref.
// RUN: not mod-opt %s --mod-cpu-lowering=fast 2>&1 | FileCheck %s --check-prefix=OPTIONS

// The whole CPU pipeline: a routed block ends up as LLVM dialect only, with
// the result turned into a caller-allocated out-parameter and a C interface
// wrapper that takes memref descriptors by pointer.

// No op of a dialect above LLVM is left anywhere in the output (the
// implicit CHECK-NOTs scan all of it).
// Memory is managed by the generated code; nothing leaks to the caller.
// Allocations go through the buffer cache mod-compile links into model.so.
// CHECK: llvm.func @_mlir_memref_to_llvm_free(
// CHECK: llvm.func @_mlir_memref_to_llvm_alloc(
// CHECK-LABEL: llvm.func @forward(
// CHECK-SAME: %{{.*}}: i64) attributes {llvm.emit_c_interface} {
// CHECK: llvm.call @_mlir_memref_to_llvm_alloc
// CHECK: llvm.call @_mlir_memref_to_llvm_free
// CHECK-LABEL: llvm.func @_mlir_ciface_forward(
// CHECK-SAME: %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr)
// CHECK: llvm.call @forward(
func.func @forward(%x: tensor<2x8x4xf32>, %p: tensor<2x8xi32>, %w: tensor<4xf32>) -> tensor<2x8x4xf32>
    attributes {llvm.emit_c_interface} {
  %o = mod.routed_block(%x, %p, %w) capacity(3) gate(sigmoid)
      : (tensor<2x8x4xf32>, tensor<2x8xi32>, tensor<4xf32>) -> tensor<2x8x4xf32> {
  ^bb0(%xk: tensor<2x3x4xf32>, %pk: tensor<2x3xi32>):
    mod.yield %xk : tensor<2x3x4xf32>
  }
  return %o : tensor<2x8x4xf32>
}

// OPTIONS: --mod-cpu-lowering takes no options, got 'fast'
