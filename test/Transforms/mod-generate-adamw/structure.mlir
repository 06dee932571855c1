// RUN: mod-opt %s --mod-generate-adamw | FileCheck %s

// Three parameters: a matrix (decayed), a bias (rank 1: not decayed), and a
// router weight of rank 2 (not decayed: routers never are). Data arguments
// (tokens) are not parameters.
func.func @loss_and_grad(
    %w: tensor<4x8xf32> {mod.name = "h.0.w", mod.kind = "parameter", mod.init = "normal:0.02"},
    %b: tensor<8xf32> {mod.name = "h.0.b", mod.kind = "parameter", mod.init = "zeros"},
    %r: tensor<8x1xf32> {mod.name = "h.1.mod.router.weight", mod.kind = "parameter", mod.init = "normal:0.02", mod.init_seed = 7 : i64},
    %tokens: tensor<2x4xi32> {mod.name = "tokens"}) -> (tensor<f32> {mod.name = "loss"}) {
  %c = arith.constant dense<0.0> : tensor<f32>
  return %c : tensor<f32>
}

// The source function is kept; the step comes after it.
// CHECK-LABEL: func.func @loss_and_grad(
// CHECK-LABEL: func.func @adamw_step(
// CHECK-SAME: %[[W:[^:]+]]: tensor<4x8xf32> {mod.init = "normal:0.02", mod.kind = "parameter", mod.name = "h.0.w"}
// CHECK-SAME: %[[B:[^:]+]]: tensor<8xf32> {mod.init = "zeros", mod.kind = "parameter", mod.name = "h.0.b"}
// CHECK-SAME: %[[R:[^:]+]]: tensor<8x1xf32> {mod.init = "normal:0.02", mod.init_seed = 7 : i64, mod.kind = "parameter", mod.name = "h.1.mod.router.weight"}
// CHECK-SAME: %[[GW:[^:]+]]: tensor<4x8xf32> {mod.name = "grad.h.0.w"}
// CHECK-SAME: {mod.name = "grad.h.0.b"}
// CHECK-SAME: {mod.name = "grad.h.1.mod.router.weight"}
// CHECK-SAME: %[[MW:[^:]+]]: tensor<4x8xf32> {mod.name = "m.h.0.w"}
// CHECK-SAME: {mod.name = "m.h.0.b"}
// CHECK-SAME: {mod.name = "m.h.1.mod.router.weight"}
// CHECK-SAME: %[[VW:[^:]+]]: tensor<4x8xf32> {mod.name = "v.h.0.w"}
// CHECK-SAME: {mod.name = "v.h.0.b"}
// CHECK-SAME: {mod.name = "v.h.1.mod.router.weight"}
// CHECK-SAME: tensor<f32> {mod.name = "lr"}, %{{.*}}: tensor<f32> {mod.name = "beta1"}, %{{.*}}: tensor<f32> {mod.name = "beta2"}, %{{.*}}: tensor<f32> {mod.name = "eps"}, %{{.*}}: tensor<f32> {mod.name = "weight_decay"}, %{{.*}}: tensor<f32> {mod.name = "max_norm"}, %{{.*}}: tensor<i32> {mod.name = "step"})
// Results replace arguments 0-2 (parameters), 6-8 (m) and 9-11 (v).
// CHECK-SAME: -> (tensor<4x8xf32> {mod.aliases = 0 : i64, mod.name = "h.0.w"}, tensor<8xf32> {mod.aliases = 1 : i64, mod.name = "h.0.b"}, tensor<8x1xf32> {mod.aliases = 2 : i64, mod.name = "h.1.mod.router.weight"},
// CHECK-SAME: tensor<4x8xf32> {mod.aliases = 6 : i64, mod.name = "m.h.0.w"}, tensor<8xf32> {mod.aliases = 7 : i64, mod.name = "m.h.0.b"}, tensor<8x1xf32> {mod.aliases = 8 : i64, mod.name = "m.h.1.mod.router.weight"},
// CHECK-SAME: tensor<4x8xf32> {mod.aliases = 9 : i64, mod.name = "v.h.0.w"}, tensor<8xf32> {mod.aliases = 10 : i64, mod.name = "v.h.0.b"}, tensor<8x1xf32> {mod.aliases = 11 : i64, mod.name = "v.h.1.mod.router.weight"},
// CHECK-SAME: tensor<f32> {mod.name = "grad_norm"})

// The global norm: one f64 sum of squares threaded through every gradient.
// CHECK: %[[FILL:.*]] = linalg.fill ins(%{{.*}} : f64) outs(%{{.*}} : tensor<f64>)
// CHECK: %[[S0:.*]] = linalg.generic {{.*}}iterator_types = ["reduction", "reduction"]{{.*}} ins(%[[GW]] : tensor<4x8xf32>) outs(%[[FILL]] : tensor<f64>)
// CHECK: arith.extf
// CHECK: %[[S1:.*]] = linalg.generic {{.*}} outs(%[[S0]] : tensor<f64>)
// CHECK: %[[S2:.*]] = linalg.generic {{.*}} outs(%[[S1]] : tensor<f64>)
// CHECK: %[[SUM:.*]] = tensor.extract %[[S2]][] : tensor<f64>
// CHECK: %[[NORM:.*]] = math.sqrt %[[SUM]] : f64
// A non-finite norm keeps the state.
// CHECK: %[[FINITE:.*]] = arith.cmpf olt, %[[NORM]]
// CHECK: math.powf
// CHECK: math.powf

// The matrix is decayed: its update multiplies p by the decay factor.
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]{{.*}} ins(%[[W]], %[[GW]], %[[MW]], %[[VW]] : {{.*}}) outs(
// CHECK: ^bb0(%[[P:[^:]+]]: f32,
// CHECK: math.sqrt
// CHECK: %[[KEPT:.*]] = arith.mulf %[[P]], %{{.*}} : f32
// CHECK: %[[NEW:.*]] = arith.subf %[[KEPT]], %{{.*}} : f32
// CHECK: arith.select %[[FINITE]], %[[NEW]], %[[P]] : f32
// The bias and the router weight are not.
// CHECK: linalg.generic {{.*}} ins(%[[B]],
// CHECK: ^bb0(%[[PB:[^:]+]]: f32,
// CHECK: math.sqrt
// CHECK-NOT: arith.mulf %[[PB]],
// CHECK: %[[NEWB:.*]] = arith.subf %[[PB]], %{{.*}} : f32
// CHECK: arith.select %[[FINITE]], %[[NEWB]], %[[PB]] : f32
// CHECK: linalg.generic {{.*}} ins(%[[R]],
// CHECK: ^bb0(%[[PR:[^:]+]]: f32,
// CHECK: math.sqrt
// CHECK-NOT: arith.mulf %[[PR]],
// CHECK: arith.subf %[[PR]], %{{.*}} : f32
// CHECK: %[[GN:.*]] = tensor.from_elements %{{.*}} : tensor<f32>
// CHECK: return {{.*}}, %[[GN]] :
