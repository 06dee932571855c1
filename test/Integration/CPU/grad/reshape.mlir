// Gradient check of the tensor op rules: collapse/expand_shape,
// extract_slice (rank-reducing and strided), linalg.transpose, and named ops
// that are generalized first (linalg.broadcast, linalg.add, linalg.mul).
// Tolerance: relative 1e-6 per direction. (tensor.concat and insert_slice
// are checked in concat.mlir: their forward needs memrefCopy, which the CPU
// pipeline does not link yet.)
// RUN: mod-opt %s --mod-convert-float-type --mod-generate-grad -o %t.mlir
// RUN: rm -rf %t.dir && mod-compile %t.mlir -o %t.dir
// RUN: mod-gradcheck %t.dir --tol 1e-6 | FileCheck %s
// CHECK: 4 directions, 4 with a nonzero derivative
// CHECK-SAME: 0 failed

func.func @forward(%a: tensor<2x3x6xf32> {mod.name = "a", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %b: tensor<6xf32> {mod.name = "b", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %c: tensor<3x3xf32> {mod.name = "c", mod.kind = "parameter", mod.init = "normal:1.0"})
    -> (tensor<2x3x3xf32> {mod.name = "logits"}) {
  %eb = tensor.empty() : tensor<2x3x6xf32>
  %bb = linalg.broadcast ins(%b : tensor<6xf32>) outs(%eb : tensor<2x3x6xf32>) dimensions = [0, 1]
  %s = linalg.add ins(%a, %bb : tensor<2x3x6xf32>, tensor<2x3x6xf32>) outs(%eb : tensor<2x3x6xf32>) -> tensor<2x3x6xf32>
  %p = linalg.mul ins(%s, %a : tensor<2x3x6xf32>, tensor<2x3x6xf32>) outs(%eb : tensor<2x3x6xf32>) -> tensor<2x3x6xf32>
  %x = tensor.expand_shape %p [[0], [1], [2, 3]] output_shape [2, 3, 2, 3] : tensor<2x3x6xf32> into tensor<2x3x2x3xf32>
  %lo = tensor.extract_slice %x[0, 0, 0, 0] [2, 3, 1, 3] [1, 1, 1, 1] : tensor<2x3x2x3xf32> to tensor<2x3x3xf32>
  %hi = tensor.extract_slice %x[0, 0, 1, 0] [2, 3, 1, 3] [1, 1, 1, 1] : tensor<2x3x2x3xf32> to tensor<2x3x3xf32>
  %et = tensor.empty() : tensor<3x2x3xf32>
  %ht = linalg.transpose ins(%hi : tensor<2x3x3xf32>) outs(%et : tensor<3x2x3xf32>) permutation = [1, 0, 2]
  %hc = tensor.collapse_shape %ht [[0, 1], [2]] : tensor<3x2x3xf32> into tensor<6x3xf32>
  %hx = tensor.expand_shape %hc [[0, 1], [2]] output_shape [2, 3, 3] : tensor<6x3xf32> into tensor<2x3x3xf32>
  %em = tensor.empty() : tensor<2x3x3xf32>
  %m = linalg.mul ins(%lo, %hx : tensor<2x3x3xf32>, tensor<2x3x3xf32>) outs(%em : tensor<2x3x3xf32>) -> tensor<2x3x3xf32>
  // A strided slice and a broadcast parameter.
  %st = tensor.extract_slice %p[0, 0, 1] [2, 3, 3] [1, 1, 2] : tensor<2x3x6xf32> to tensor<2x3x3xf32>
  %cb = linalg.broadcast ins(%c : tensor<3x3xf32>) outs(%em : tensor<2x3x3xf32>) dimensions = [0]
  %mc = linalg.mul ins(%m, %cb : tensor<2x3x3xf32>, tensor<2x3x3xf32>) outs(%em : tensor<2x3x3xf32>) -> tensor<2x3x3xf32>
  %out = linalg.add ins(%mc, %st : tensor<2x3x3xf32>, tensor<2x3x3xf32>) outs(%em : tensor<2x3x3xf32>) -> tensor<2x3x3xf32>
  return %out : tensor<2x3x3xf32>
}
