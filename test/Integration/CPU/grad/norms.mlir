// Gradient check of reductions (sum and max combiners, results broadcast
// back), as in layer norm, RMS norm and softmax, and of a parallel generic
// that reads its init. Tolerance: relative 1e-6 per direction.
// RUN: mod-opt %s --mod-convert-float-type --mod-generate-grad -o %t.mlir
// RUN: rm -rf %t.dir && mod-compile %t.mlir -o %t.dir
// RUN: mod-gradcheck %t.dir --tol 1e-6 | FileCheck %s
// CHECK: 4 directions, 4 with a nonzero derivative
// CHECK-SAME: 0 failed

#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#row = affine_map<(d0, d1, d2) -> (d0, d1)>
#v = affine_map<(d0, d1, d2) -> (d2)>
func.func @forward(%a: tensor<2x3x6xf32> {mod.name = "a", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %g: tensor<6xf32> {mod.name = "g", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %c: tensor<2x3x6xf32> {mod.name = "c", mod.kind = "parameter", mod.init = "normal:1.0"})
    -> (tensor<2x3x6xf32> {mod.name = "logits"}) {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant -1.0e30 : f32
  %width = arith.constant 6.0 : f32
  %eps = arith.constant 1.0e-5 : f32
  %er = tensor.empty() : tensor<2x3xf32>
  %z = linalg.fill ins(%zero : f32) outs(%er : tensor<2x3xf32>) -> tensor<2x3xf32>
  %sum = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a : tensor<2x3x6xf32>) outs(%z : tensor<2x3xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %s = arith.addf %acc, %x : f32
    linalg.yield %s : f32
  } -> tensor<2x3xf32>
  %sq = linalg.generic {indexing_maps = [#id, #row, #row], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %sum : tensor<2x3x6xf32>, tensor<2x3xf32>) outs(%z : tensor<2x3xf32>) {
  ^bb0(%x: f32, %s: f32, %acc: f32):
    %m = arith.divf %s, %width : f32
    %d = arith.subf %x, %m : f32
    %d2 = arith.mulf %d, %d : f32
    %r = arith.addf %acc, %d2 : f32
    linalg.yield %r : f32
  } -> tensor<2x3xf32>
  %e = tensor.empty() : tensor<2x3x6xf32>
  %ln = linalg.generic {indexing_maps = [#id, #row, #row, #v, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a, %sum, %sq, %g : tensor<2x3x6xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<6xf32>) outs(%e : tensor<2x3x6xf32>) {
  ^bb0(%x: f32, %s: f32, %q: f32, %w: f32, %o: f32):
    %m = arith.divf %s, %width : f32
    %var = arith.divf %q, %width : f32
    %ve = arith.addf %var, %eps : f32
    %sd = math.sqrt %ve : f32
    %d = arith.subf %x, %m : f32
    %n = arith.divf %d, %sd : f32
    %y = arith.mulf %n, %w : f32
    linalg.yield %y : f32
  } -> tensor<2x3x6xf32>
  // Softmax over the last axis: max reduction, exp, sum, divide.
  %mi = linalg.fill ins(%ninf : f32) outs(%er : tensor<2x3xf32>) -> tensor<2x3xf32>
  %mx = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%ln : tensor<2x3x6xf32>) outs(%mi : tensor<2x3xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %m = arith.maximumf %acc, %x : f32
    linalg.yield %m : f32
  } -> tensor<2x3xf32>
  %ex = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%ln, %mx : tensor<2x3x6xf32>, tensor<2x3xf32>) outs(%e : tensor<2x3x6xf32>) {
  ^bb0(%x: f32, %m: f32, %o: f32):
    %d = arith.subf %x, %m : f32
    %y = math.exp %d : f32
    linalg.yield %y : f32
  } -> tensor<2x3x6xf32>
  %se = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%ex : tensor<2x3x6xf32>) outs(%z : tensor<2x3xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %s = arith.addf %acc, %x : f32
    linalg.yield %s : f32
  } -> tensor<2x3xf32>
  // The init %c is read by the body: its gradient flows through the out arg.
  %sm = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%ex, %se : tensor<2x3x6xf32>, tensor<2x3xf32>) outs(%c : tensor<2x3x6xf32>) {
  ^bb0(%x: f32, %s: f32, %o: f32):
    %p = arith.divf %x, %s : f32
    %q = arith.mulf %p, %o : f32
    linalg.yield %q : f32
  } -> tensor<2x3x6xf32>
  // A max over the columns (a reduction over a non-trailing loop).
  %ci = tensor.empty() : tensor<2x6xf32>
  %cm0 = linalg.fill ins(%ninf : f32) outs(%ci : tensor<2x6xf32>) -> tensor<2x6xf32>
  %cm = linalg.generic {indexing_maps = [#id, affine_map<(d0, d1, d2) -> (d0, d2)>], iterator_types = ["parallel", "reduction", "parallel"]}
      ins(%sm : tensor<2x3x6xf32>) outs(%cm0 : tensor<2x6xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %m = arith.maximumf %x, %acc : f32
    linalg.yield %m : f32
  } -> tensor<2x6xf32>
  %out = linalg.generic {indexing_maps = [#id, affine_map<(d0, d1, d2) -> (d0, d2)>, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%sm, %cm : tensor<2x3x6xf32>, tensor<2x6xf32>) outs(%e : tensor<2x3x6xf32>) {
  ^bb0(%x: f32, %m: f32, %o: f32):
    %y = arith.addf %x, %m : f32
    linalg.yield %y : f32
  } -> tensor<2x3x6xf32>
  return %out : tensor<2x3x6xf32>
}
