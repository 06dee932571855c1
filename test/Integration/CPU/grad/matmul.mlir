// Gradient check of linalg.matmul, linalg.batch_matmul (through reshapes and
// linalg.transpose, as attention uses them) and a matmul whose init is a
// differentiable tensor. Tolerance: relative 1e-6 per direction.
// RUN: mod-opt %s --mod-convert-float-type --mod-generate-grad -o %t.mlir
// RUN: rm -rf %t.dir && mod-compile %t.mlir -o %t.dir
// RUN: mod-gradcheck %t.dir --tol 1e-6 | FileCheck %s
// CHECK: 5 directions, 5 with a nonzero derivative
// CHECK-SAME: 0 failed

func.func @forward(%x: tensor<2x3x4xf32> {mod.name = "x", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %w: tensor<5x4xf32> {mod.name = "w", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %k: tensor<2x3x4xf32> {mod.name = "k", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %bias: tensor<6x5xf32> {mod.name = "bias", mod.kind = "parameter", mod.init = "normal:1.0"})
    -> (tensor<2x3x5xf32> {mod.name = "logits"}) {
  %zero = arith.constant 0.0 : f32
  // Linear layer with an [out, in] weight: x W^T + bias (bias is the init).
  %et = tensor.empty() : tensor<4x5xf32>
  %wt = linalg.transpose ins(%w : tensor<5x4xf32>) outs(%et : tensor<4x5xf32>) permutation = [1, 0]
  %flat = tensor.collapse_shape %x [[0, 1], [2]] : tensor<2x3x4xf32> into tensor<6x4xf32>
  // 2 * bias, not bias itself: a matmul accumulating into an entry argument
  // would write into it.
  %eb = tensor.empty() : tensor<6x5xf32>
  %b0 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                        iterator_types = ["parallel", "parallel"]}
      ins(%bias : tensor<6x5xf32>) outs(%eb : tensor<6x5xf32>) {
  ^bb0(%v: f32, %o: f32):
    %two = arith.constant 2.0 : f32
    %t = arith.mulf %v, %two : f32
    linalg.yield %t : f32
  } -> tensor<6x5xf32>
  %mm = linalg.matmul ins(%flat, %wt : tensor<6x4xf32>, tensor<4x5xf32>) outs(%b0 : tensor<6x5xf32>) -> tensor<6x5xf32>
  %y = tensor.expand_shape %mm [[0, 1], [2]] output_shape [2, 3, 5] : tensor<6x5xf32> into tensor<2x3x5xf32>
  // Scores x k^T per batch, then scores . y.
  %ekt = tensor.empty() : tensor<2x4x3xf32>
  %kt = linalg.transpose ins(%k : tensor<2x3x4xf32>) outs(%ekt : tensor<2x4x3xf32>) permutation = [0, 2, 1]
  %es = tensor.empty() : tensor<2x3x3xf32>
  %zs = linalg.fill ins(%zero : f32) outs(%es : tensor<2x3x3xf32>) -> tensor<2x3x3xf32>
  %s = linalg.batch_matmul ins(%x, %kt : tensor<2x3x4xf32>, tensor<2x4x3xf32>) outs(%zs : tensor<2x3x3xf32>) -> tensor<2x3x3xf32>
  %eo = tensor.empty() : tensor<2x3x5xf32>
  %zo = linalg.fill ins(%zero : f32) outs(%eo : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %o = linalg.batch_matmul ins(%s, %y : tensor<2x3x3xf32>, tensor<2x3x5xf32>) outs(%zo : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  return %o : tensor<2x3x5xf32>
}
