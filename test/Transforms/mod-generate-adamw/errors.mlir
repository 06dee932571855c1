// RUN: mod-opt %s -split-input-file -verify-diagnostics --mod-generate-adamw

// expected-error @+1 {{--mod-generate-adamw: no function @loss_and_grad to take the parameters from (run --mod-generate-grad first, or name the function with func=<name>)}}
module {
  func.func @forward(%w: tensor<4xf32> {mod.name = "w", mod.kind = "parameter"}) -> tensor<4xf32> {
    return %w : tensor<4xf32>
  }
}

// -----

// expected-error @+1 {{--mod-generate-adamw: @loss_and_grad has no argument with mod.kind = "parameter"}}
func.func @loss_and_grad(%x: tensor<4xf32> {mod.name = "x"}) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

// expected-error @+1 {{--mod-generate-adamw: parameter argument #0 of @loss_and_grad has no mod.name}}
func.func @loss_and_grad(%w: tensor<4xf32> {mod.kind = "parameter"}) -> tensor<4xf32> {
  return %w : tensor<4xf32>
}

// -----

// expected-error @+1 {{--mod-generate-adamw: parameter 'w' must be a statically shaped float tensor, got 'tensor<4xi32>'}}
func.func @loss_and_grad(%w: tensor<4xi32> {mod.name = "w", mod.kind = "parameter"}) -> tensor<4xi32> {
  return %w : tensor<4xi32>
}

// -----

// expected-error @+1 {{--mod-generate-adamw: parameter 'b' has element type 'f64' but 'w' has 'f32'; all parameters must share one float type}}
func.func @loss_and_grad(%w: tensor<4xf32> {mod.name = "w", mod.kind = "parameter"},
                         %b: tensor<4xf64> {mod.name = "b", mod.kind = "parameter"}) -> tensor<4xf32> {
  return %w : tensor<4xf32>
}

// -----

func.func @loss_and_grad(%w: tensor<4xf32> {mod.name = "w", mod.kind = "parameter"}) -> tensor<4xf32> {
  return %w : tensor<4xf32>
}
// expected-error @+1 {{--mod-generate-adamw: the module already has a symbol @adamw_step}}
func.func @adamw_step() {
  return
}
