// RUN: mod-opt %s --mod-cpu-lowering | FileCheck %s

// The whole CPU pipeline: a routed block ends up as LLVM dialect only, with
// the result turned into a caller-allocated out-parameter and a C interface
// wrapper that takes memref descriptors by pointer.

// CHECK-NOT: mod.
// CHECK-NOT: linalg.
// CHECK-NOT: tensor.
// CHECK-NOT: scf.
// Memory is managed by the generated code; nothing leaks to the caller.
// CHECK: llvm.func @free(
// CHECK: llvm.func @malloc(
// CHECK-LABEL: llvm.func @forward(
// CHECK-SAME: %{{.*}}: i64) attributes {llvm.emit_c_interface} {
// CHECK: llvm.call @free
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
