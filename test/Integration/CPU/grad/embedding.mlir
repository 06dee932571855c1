// Gradient check of embedding lookups (tensor.extract of a parameter inside
// a linalg.generic, rows chosen by the token and position ids), whose
// adjoint is a scatter-add loop, including a token that repeats.
// Tolerance: relative 1e-6 per direction.
// RUN: mod-opt %s --mod-convert-float-type --mod-generate-grad -o %t.mlir
// RUN: rm -rf %t.dir && mod-compile %t.mlir -o %t.dir
// RUN: mod-gradcheck %t.dir --tol 1e-6 | FileCheck %s
// CHECK: 3 directions, 3 with a nonzero derivative
// CHECK-SAME: 0 failed

#bs = affine_map<(d0, d1, d2) -> (d0, d1)>
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @forward(%wte: tensor<7x7xf32> {mod.name = "wte", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %wpe: tensor<4x7xf32> {mod.name = "wpe", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %tokens: tensor<2x4xi32> {mod.name = "tokens"},
                   %positions: tensor<2x4xi32> {mod.name = "positions"})
    -> (tensor<2x4x7xf32> {mod.name = "logits"}) {
  %e = tensor.empty() : tensor<2x4x7xf32>
  %r = linalg.generic {indexing_maps = [#bs, #bs, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%tokens, %positions : tensor<2x4xi32>, tensor<2x4xi32>) outs(%e : tensor<2x4x7xf32>) {
  ^bb0(%t: i32, %p: i32, %o: f32):
    %lo = arith.constant 0 : i32
    %hi = arith.constant 6 : i32
    %t0 = arith.maxsi %t, %lo : i32
    %t1 = arith.minsi %t0, %hi : i32
    %row = arith.index_cast %t1 : i32 to index
    %prow = arith.index_cast %p : i32 to index
    %col = linalg.index 2 : index
    %v = tensor.extract %wte[%row, %col] : tensor<7x7xf32>
    %u = tensor.extract %wpe[%prow, %col] : tensor<4x7xf32>
    %uv = arith.mulf %u, %v : f32
    %s = arith.addf %v, %uv : f32
    linalg.yield %s : f32
  } -> tensor<2x4x7xf32>
  return %r : tensor<2x4x7xf32>
}
