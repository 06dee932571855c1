// RUN: mod-opt %s --mod-convert-float-type | FileCheck %s
// RUN: mod-opt %s --mod-convert-float-type="from=f32 to=f16" | FileCheck %s --check-prefix=HALF

// Types everywhere (arguments, results, block arguments, tensor types,
// mod ops) and constant values (rounded once) change; integers do not.
// CHECK-LABEL: func.func @f(
// CHECK-SAME: %{{.*}}: tensor<2x4x8xf64> {mod.name = "x"}, %{{.*}}: tensor<8xf64>, %{{.*}}: tensor<2x4xi32>)
// CHECK-SAME: -> (tensor<2x4x8xf64> {mod.name = "logits"})
// CHECK: arith.constant 0.10000000149011612 : f64
// CHECK: arith.constant dense<[1.000000e+00, 2.500000e-01]> : tensor<2xf64>
// CHECK: mod.router %{{.*}}, %{{.*}} : tensor<2x4x8xf64>, tensor<8xf64> -> tensor<2x4xf64>
// CHECK: ^bb0(%{{.*}}: f64, %{{.*}}: f64):
// CHECK: arith.mulf %{{.*}}, %{{.*}} : f64
// CHECK: arith.constant 7 : i32
// HALF: tensor<2x4x8xf16>
// HALF: arith.constant 9.997550e-02 : f16
func.func @f(%x: tensor<2x4x8xf32> {mod.name = "x"}, %w: tensor<8xf32>, %p: tensor<2x4xi32>)
    -> (tensor<2x4x8xf32> {mod.name = "logits"}) {
  %c = arith.constant 0.1 : f32
  %d = arith.constant dense<[1.0, 0.25]> : tensor<2xf32>
  %r = mod.router %x, %w : tensor<2x4x8xf32>, tensor<8xf32> -> tensor<2x4xf32>
  %e = tensor.empty() : tensor<2x4x8xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x : tensor<2x4x8xf32>) outs(%e : tensor<2x4x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.mulf %a, %c : f32
    linalg.yield %m : f32
  } -> tensor<2x4x8xf32>
  %i = arith.constant 7 : i32
  return %y : tensor<2x4x8xf32>
}
