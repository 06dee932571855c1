// RUN: mod-opt %s --mod-generate-grad | FileCheck %s
// Float casts pass the adjoint back through the opposite cast (their
// numerical check in f64 would only measure f16 rounding); integer casts
// and comparisons carry no gradient.

// CHECK-LABEL: func.func @loss_and_grad(
// The adjoint generic of %a recomputes the body, then differentiates it.
// CHECK: linalg.generic
// CHECK: ^bb0(
// CHECK: %[[H:.*]] = arith.truncf %{{.*}} : f32 to f16
// CHECK: %[[W:.*]] = arith.extf %[[H]] : f16 to f64
// CHECK: arith.mulf %[[W]], %[[W]] : f64
// The result's adjoint (f32) is extended to f64 for the truncf it came from.
// CHECK: arith.extf %{{.*}} : f32 to f64
// CHECK: %[[D16:.*]] = arith.truncf %{{.*}} : f64 to f16
// CHECK: %[[D32:.*]] = arith.extf %[[D16]] : f16 to f32
// CHECK: arith.addf %{{.*}}, %[[D32]] : f32
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @forward(%a: tensor<1x2x3xf32> {mod.name = "a", mod.kind = "parameter"}) -> tensor<1x2x3xf32> {
  %e = tensor.empty() : tensor<1x2x3xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a : tensor<1x2x3xf32>) outs(%e : tensor<1x2x3xf32>) {
  ^bb0(%x: f32, %o: f32):
    %h = arith.truncf %x : f32 to f16
    %w = arith.extf %h : f16 to f64
    %sq = arith.mulf %w, %w : f64
    %y = arith.truncf %sq : f64 to f32
    linalg.yield %y : f32
  } -> tensor<1x2x3xf32>
  return %r : tensor<1x2x3xf32>
}
