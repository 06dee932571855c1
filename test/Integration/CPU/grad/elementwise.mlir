// Gradient check of the scalar-body rules (arith and math ops, select/cmp,
// broadcast operands) against central finite differences in f64.
// Tolerance: relative 1e-6 per direction (measured ~1e-10).
// RUN: mod-opt %s --mod-convert-float-type --mod-generate-grad -o %t.mlir
// RUN: rm -rf %t.dir && mod-compile %t.mlir -o %t.dir
// RUN: mod-gradcheck %t.dir --tol 1e-6 | FileCheck %s
// CHECK: 3 directions, 3 with a nonzero derivative
// CHECK-SAME: 0 failed

#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#v = affine_map<(d0, d1, d2) -> (d2)>
func.func @forward(%a: tensor<2x3x5xf32> {mod.name = "a", mod.kind = "parameter", mod.init = "normal:1.0"},
                   %w: tensor<5xf32> {mod.name = "w", mod.kind = "parameter", mod.init = "normal:1.0"})
    -> (tensor<2x3x5xf32> {mod.name = "logits"}) {
  %e = tensor.empty() : tensor<2x3x5xf32>
  %one = arith.constant 1.0 : f32
  %r = linalg.generic {indexing_maps = [#id, #v, #id],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a, %w : tensor<2x3x5xf32>, tensor<5xf32>) outs(%e : tensor<2x3x5xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %xx = arith.mulf %x, %x : f32
    %sq = arith.addf %xx, %one : f32
    %s = math.sqrt %sq : f32
    %rs = math.rsqrt %sq : f32
    %t = math.tanh %y : f32
    %ex = math.exp %t : f32
    %lg = math.log %sq : f32
    %er = math.erf %x : f32
    %dv = arith.divf %y, %sq : f32
    %mx = arith.maximumf %x, %y : f32
    %mn = arith.minimumf %x, %t : f32
    %c = arith.cmpf ogt, %x, %y : f32
    %sel = arith.select %c, %er, %dv : f32
    %n = arith.negf %s : f32
    %pw = math.powf %sq, %t : f32
    %ab = math.absf %x : f32
    %sn = math.sin %x : f32
    %cs = math.cos %y : f32
    %s1 = arith.addf %rs, %ex : f32
    %s2 = arith.subf %lg, %sel : f32
    %s3 = arith.mulf %mx, %mn : f32
    %s4 = arith.addf %n, %pw : f32
    %s5 = arith.mulf %ab, %sn : f32
    %s6 = arith.mulf %cs, %dv : f32
    %u1 = arith.addf %s1, %s2 : f32
    %u2 = arith.addf %s3, %s4 : f32
    %u3 = arith.addf %s5, %s6 : f32
    %u4 = arith.addf %u1, %u2 : f32
    %u5 = arith.addf %u4, %u3 : f32
    linalg.yield %u5 : f32
  } -> tensor<2x3x5xf32>
  return %r : tensor<2x3x5xf32>
}
