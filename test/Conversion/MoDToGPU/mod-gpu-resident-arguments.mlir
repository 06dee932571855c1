// RUN: mod-opt %s --mod-gpu-resident-arguments -split-input-file -verify-diagnostics | FileCheck %s

// Parameters and the arguments updated in place (with their results, which
// name the argument) are device-resident; data inputs, gradients no entry
// point produces and other results are not.
// CHECK-LABEL: func.func @adamw_like(
// CHECK-SAME: %{{.*}}: tensor<4xf32> {mod.device_resident, mod.kind = "parameter", mod.name = "w"}
// CHECK-SAME: %{{.*}}: tensor<4xf32> {mod.name = "grad.w"}
// CHECK-SAME: %{{.*}}: tensor<4xf32> {mod.device_resident, mod.name = "m.w"}
// CHECK-SAME: %{{.*}}: tensor<f32> {mod.name = "lr"}
// CHECK-SAME: -> (tensor<4xf32> {mod.aliases = 0 : i64, mod.device_resident = 0 : i64, mod.name = "w"}, tensor<4xf32> {mod.aliases = 2 : i64, mod.device_resident = 2 : i64, mod.name = "m.w"}, tensor<f32> {mod.name = "grad_norm"})
func.func @adamw_like(%w: tensor<4xf32> {mod.kind = "parameter", mod.name = "w"},
                      %g: tensor<4xf32> {mod.name = "grad.w"},
                      %m: tensor<4xf32> {mod.name = "m.w"},
                      %lr: tensor<f32> {mod.name = "lr"})
    -> (tensor<4xf32> {mod.aliases = 0 : i64, mod.name = "w"},
        tensor<4xf32> {mod.aliases = 2 : i64, mod.name = "m.w"},
        tensor<f32> {mod.name = "grad_norm"}) {
  return %w, %m, %lr : tensor<4xf32>, tensor<4xf32>, tensor<f32>
}

// A forward: the weights only. Private functions are left alone.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %{{.*}}: tensor<2x4xf32> {mod.device_resident, mod.kind = "parameter"}
// CHECK-SAME: %{{.*}}: tensor<2xi32>)
// CHECK-SAME: -> tensor<2x4xf32> {
// CHECK-LABEL: func.func private @helper(
// CHECK-NOT: mod.device_resident
// CHECK-SAME: {
func.func @forward(%w: tensor<2x4xf32> {mod.kind = "parameter"}, %t: tensor<2xi32>) -> tensor<2x4xf32> {
  return %w : tensor<2x4xf32>
}
func.func private @helper(%w: tensor<4xf32> {mod.kind = "parameter"}) -> (tensor<4xf32> {mod.aliases = 0 : i64}) {
  return %w : tensor<4xf32>
}

// -----

// A result another entry point takes as an argument of the same name and
// type (the gradients, from @loss_and_grad to @adamw_step) is resident on
// both sides; the loss, and a same-named result of another type, are not.
// CHECK-LABEL: func.func @loss_and_grad(
// CHECK-SAME: -> (tensor<f32> {mod.name = "loss"}, tensor<4xf32> {mod.device_resident, mod.name = "grad.w"}, tensor<2xf32> {mod.name = "grad.v"})
// CHECK-LABEL: func.func @adamw_step(
// CHECK-SAME: %{{.*}}: tensor<4xf32> {mod.device_resident, mod.name = "grad.w"}
// CHECK-SAME: %{{.*}}: tensor<4xf32> {mod.name = "grad.v"}
func.func @loss_and_grad(%w: tensor<4xf32> {mod.kind = "parameter", mod.name = "w"})
    -> (tensor<f32> {mod.name = "loss"}, tensor<4xf32> {mod.name = "grad.w"},
        tensor<2xf32> {mod.name = "grad.v"}) {
  %l = tensor.empty() : tensor<f32>
  %v = tensor.empty() : tensor<2xf32>
  return %l, %w, %v : tensor<f32>, tensor<4xf32>, tensor<2xf32>
}
func.func @adamw_step(%w: tensor<4xf32> {mod.kind = "parameter", mod.name = "w"},
                      %g: tensor<4xf32> {mod.name = "grad.w"},
                      %gv: tensor<4xf32> {mod.name = "grad.v"})
    -> (tensor<4xf32> {mod.aliases = 0 : i64, mod.name = "w"}) {
  return %w : tensor<4xf32>
}

// -----

// expected-error @+1 {{entry point @bad: result 0 has mod.aliases = 3, which is not an argument index (the function has 1 arguments)}}
func.func @bad(%w: tensor<4xf32>) -> (tensor<4xf32> {mod.aliases = 3 : i64}) {
  return %w : tensor<4xf32>
}
