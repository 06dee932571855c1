// RUN: mod-opt %s --mod-generate-adamw=func=forward | FileCheck %s

// f64 parameters (an f64 copy of a model, for gradient checks): the scalars
// are f64 and nothing is converted; the parameters come from func=forward.
func.func @forward(%w: tensor<2x3xf64> {mod.name = "w", mod.kind = "parameter", mod.init = "normal:0.02"},
                   %positions: tensor<1x2xi32> {mod.name = "positions"}) -> tensor<2x3xf64> {
  return %w : tensor<2x3xf64>
}

// CHECK-LABEL: func.func @adamw_step(
// CHECK-SAME: %{{.*}}: tensor<2x3xf64> {mod.init = "normal:0.02", mod.kind = "parameter", mod.name = "w"}, %{{.*}}: tensor<2x3xf64> {mod.name = "grad.w"}, %{{.*}}: tensor<2x3xf64> {mod.name = "m.w"}, %{{.*}}: tensor<2x3xf64> {mod.name = "v.w"}, %{{.*}}: tensor<f64> {mod.name = "lr"}
// CHECK-SAME: %{{.*}}: tensor<i32> {mod.name = "step"})
// CHECK-SAME: -> (tensor<2x3xf64> {mod.aliases = 0 : i64, mod.name = "w"}, tensor<2x3xf64> {mod.aliases = 2 : i64, mod.name = "m.w"}, tensor<2x3xf64> {mod.aliases = 3 : i64, mod.name = "v.w"}, tensor<f64> {mod.name = "grad_norm"})
// CHECK-NOT: arith.extf
// CHECK-NOT: arith.truncf
// CHECK: ^bb0(%{{.*}}: f64, %{{.*}}: f64, %{{.*}}: f64, %{{.*}}: f64, %{{.*}}: f64, %{{.*}}: f64, %{{.*}}: f64):
// CHECK: return
