// RUN: mod-opt %s -split-input-file -verify-diagnostics -allow-unregistered-dialect

// mod.router

func.func @router_input_rank(%x: tensor<4x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expected input to be a rank-3 tensor [B,S,D], got 'tensor<4x8xf32>'}}
  %r = mod.router %x, %w : tensor<4x8xf32>, tensor<8xf32> -> tensor<4xf32>
  return
}

// -----

func.func @router_dynamic(%x: tensor<1x?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expected input to have a static shape, got 'tensor<1x?x8xf32>'}}
  %r = mod.router %x, %w : tensor<1x?x8xf32>, tensor<8xf32> -> tensor<1x4xf32>
  return
}

// -----

func.func @router_int_input(%x: tensor<1x4x8xi32>, %w: tensor<8xi32>) {
  // expected-error @+1 {{expected input to have a floating-point element type, got 'tensor<1x4x8xi32>'}}
  %r = mod.router %x, %w : tensor<1x4x8xi32>, tensor<8xi32> -> tensor<1x4xi32>
  return
}

// -----

func.func @router_weight_rank(%x: tensor<1x4x8xf32>, %w: tensor<1x8xf32>) {
  // expected-error @+1 {{expected router weight to be a rank-1 tensor [D], got 'tensor<1x8xf32>'}}
  %r = mod.router %x, %w : tensor<1x4x8xf32>, tensor<1x8xf32> -> tensor<1x4xf32>
  return
}

// -----

func.func @router_weight_size(%x: tensor<1x4x8xf32>, %w: tensor<7xf32>) {
  // expected-error @+1 {{expected router weight of type 'tensor<8xf32>' (hidden size D of input), got 'tensor<7xf32>'}}
  %r = mod.router %x, %w : tensor<1x4x8xf32>, tensor<7xf32> -> tensor<1x4xf32>
  return
}

// -----

func.func @router_result(%x: tensor<1x4x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expected result of type 'tensor<1x4xf32>' ([B,S] of input), got 'tensor<4xf32>'}}
  %r = mod.router %x, %w : tensor<1x4x8xf32>, tensor<8xf32> -> tensor<4xf32>
  return
}

// mod.topk

// -----

func.func @topk_rank(%r: tensor<4xf32>) {
  // expected-error @+1 {{expected input to be a rank-2 tensor [B,S], got 'tensor<4xf32>'}}
  %i, %v = mod.topk %r k(1) : tensor<4xf32> -> tensor<1xi32>, tensor<1xf32>
  return
}

// -----

func.func @topk_int(%r: tensor<1x4xi32>) {
  // expected-error @+1 {{expected input to have a floating-point element type, got 'tensor<1x4xi32>'}}
  %i, %v = mod.topk %r k(1) : tensor<1x4xi32> -> tensor<1x1xi32>, tensor<1x1xi32>
  return
}

// -----

func.func @topk_k_zero(%r: tensor<1x4xf32>) {
  // expected-error @+1 {{attribute 'k' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %i, %v = mod.topk %r k(0) : tensor<1x4xf32> -> tensor<1x0xi32>, tensor<1x0xf32>
  return
}

// -----

func.func @topk_k_too_large(%r: tensor<1x4xf32>) {
  // expected-error @+1 {{k = 5 exceeds the sequence length S = 4 of input 'tensor<1x4xf32>'}}
  %i, %v = mod.topk %r k(5) : tensor<1x4xf32> -> tensor<1x5xi32>, tensor<1x5xf32>
  return
}

// -----

func.func @topk_indices_type(%r: tensor<2x4xf32>) {
  // expected-error @+1 {{expected indices of type 'tensor<2x2xi32>' ([B,K] i32), got 'tensor<2x2xi64>'}}
  %i, %v = mod.topk %r k(2) : tensor<2x4xf32> -> tensor<2x2xi64>, tensor<2x2xf32>
  return
}

// -----

func.func @topk_values_type(%r: tensor<2x4xf32>) {
  // expected-error @+1 {{expected values of type 'tensor<2x2xf32>' ([B,K] of input), got 'tensor<2x3xf32>'}}
  %i, %v = mod.topk %r k(2) : tensor<2x4xf32> -> tensor<2x2xi32>, tensor<2x3xf32>
  return
}

// mod.gather

// -----

func.func @gather_rank(%x: tensor<4xf32>, %i: tensor<1x2xi32>) {
  // expected-error @+1 {{expected input to be a tensor of rank >= 2 [B,S,...], got 'tensor<4xf32>'}}
  %g = mod.gather %x[%i] : tensor<4xf32>, tensor<1x2xi32> -> tensor<2xf32>
  return
}

// -----

func.func @gather_indices_rank(%x: tensor<1x4x8xf32>, %i: tensor<2xi32>) {
  // expected-error @+1 {{expected indices to be a rank-2 tensor [B,K], got 'tensor<2xi32>'}}
  %g = mod.gather %x[%i] : tensor<1x4x8xf32>, tensor<2xi32> -> tensor<1x2x8xf32>
  return
}

// -----

func.func @gather_indices_i64(%x: tensor<1x4x8xf32>, %i: tensor<1x2xi64>) {
  // expected-error @+1 {{expected indices to have element type i32, got 'tensor<1x2xi64>'}}
  %g = mod.gather %x[%i] : tensor<1x4x8xf32>, tensor<1x2xi64> -> tensor<1x2x8xf32>
  return
}

// -----

func.func @gather_batch(%x: tensor<1x4x8xf32>, %i: tensor<2x2xi32>) {
  // expected-error @+1 {{indices batch size B=2 of 'tensor<2x2xi32>' does not match input batch size B=1 of 'tensor<1x4x8xf32>'}}
  %g = mod.gather %x[%i] : tensor<1x4x8xf32>, tensor<2x2xi32> -> tensor<1x2x8xf32>
  return
}

// -----

func.func @gather_result(%x: tensor<1x4x8xf32>, %i: tensor<1x2xi32>) {
  // expected-error @+1 {{expected result of type 'tensor<1x2x8xf32>' (input with its token axis resized to K), got 'tensor<1x2x4xf32>'}}
  %g = mod.gather %x[%i] : tensor<1x4x8xf32>, tensor<1x2xi32> -> tensor<1x2x4xf32>
  return
}

// mod.scatter_add

// -----

func.func @scatter_rank(%x: tensor<4xf32>, %i: tensor<1x2xi32>, %d: tensor<2xf32>, %g: tensor<1x2xf32>) {
  // expected-error @+1 {{expected input to be a tensor of rank >= 2 [B,S,...], got 'tensor<4xf32>'}}
  %o = mod.scatter_add %x[%i], %d scale %g : tensor<4xf32>, tensor<1x2xi32>, tensor<2xf32>, tensor<1x2xf32> -> tensor<4xf32>
  return
}

// -----

func.func @scatter_int(%x: tensor<1x4xi32>, %i: tensor<1x2xi32>, %d: tensor<1x2xi32>, %g: tensor<1x2xi32>) {
  // expected-error @+1 {{expected input to have a floating-point element type, got 'tensor<1x4xi32>'}}
  %o = mod.scatter_add %x[%i], %d scale %g : tensor<1x4xi32>, tensor<1x2xi32>, tensor<1x2xi32>, tensor<1x2xi32> -> tensor<1x4xi32>
  return
}

// -----

func.func @scatter_batch(%x: tensor<1x4x8xf32>, %i: tensor<3x2xi32>, %d: tensor<1x2x8xf32>, %g: tensor<1x2xf32>) {
  // expected-error @+1 {{indices batch size B=3 of 'tensor<3x2xi32>' does not match input batch size B=1 of 'tensor<1x4x8xf32>'}}
  %o = mod.scatter_add %x[%i], %d scale %g : tensor<1x4x8xf32>, tensor<3x2xi32>, tensor<1x2x8xf32>, tensor<1x2xf32> -> tensor<1x4x8xf32>
  return
}

// -----

func.func @scatter_update(%x: tensor<1x4x8xf32>, %i: tensor<1x2xi32>, %d: tensor<1x3x8xf32>, %g: tensor<1x2xf32>) {
  // expected-error @+1 {{expected update of type 'tensor<1x2x8xf32>' (input with its token axis resized to K), got 'tensor<1x3x8xf32>'}}
  %o = mod.scatter_add %x[%i], %d scale %g : tensor<1x4x8xf32>, tensor<1x2xi32>, tensor<1x3x8xf32>, tensor<1x2xf32> -> tensor<1x4x8xf32>
  return
}

// -----

func.func @scatter_scale(%x: tensor<1x4x8xf32>, %i: tensor<1x2xi32>, %d: tensor<1x2x8xf32>, %g: tensor<1x2xf16>) {
  // expected-error @+1 {{expected scale of type 'tensor<1x2xf32>' ([B,K] of input's element type), got 'tensor<1x2xf16>'}}
  %o = mod.scatter_add %x[%i], %d scale %g : tensor<1x4x8xf32>, tensor<1x2xi32>, tensor<1x2x8xf32>, tensor<1x2xf16> -> tensor<1x4x8xf32>
  return
}

// -----

func.func @scatter_result(%x: tensor<1x4x8xf32>, %i: tensor<1x2xi32>, %d: tensor<1x2x8xf32>, %g: tensor<1x2xf32>) {
  // expected-error @+1 {{all of {input, result} have same type}}
  %o = mod.scatter_add %x[%i], %d scale %g : tensor<1x4x8xf32>, tensor<1x2xi32>, tensor<1x2x8xf32>, tensor<1x2xf32> -> tensor<1x4x4xf32>
  return
}

// mod.routed_block

// -----

func.func @block_input_rank(%x: tensor<4x8xf32>, %p: tensor<4xi32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expected input to be a rank-3 tensor [B,S,D], got 'tensor<4x8xf32>'}}
  %o = mod.routed_block(%x, %p, %w) capacity(1) : (tensor<4x8xf32>, tensor<4xi32>, tensor<8xf32>) -> tensor<4x8xf32> {
  ^bb0(%xk: tensor<1x8xf32>, %pk: tensor<1xi32>):
    mod.yield %xk : tensor<1x8xf32>
  }
  return
}

// -----

func.func @block_int(%x: tensor<1x4x8xi32>, %p: tensor<1x4xi32>, %w: tensor<8xi32>) {
  // expected-error @+1 {{expected input to have a floating-point element type, got 'tensor<1x4x8xi32>'}}
  %o = mod.routed_block(%x, %p, %w) capacity(1) : (tensor<1x4x8xi32>, tensor<1x4xi32>, tensor<8xi32>) -> tensor<1x4x8xi32> {
  ^bb0(%xk: tensor<1x1x8xi32>, %pk: tensor<1x1xi32>):
    mod.yield %xk : tensor<1x1x8xi32>
  }
  return
}

// -----

func.func @block_positions(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi64>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expected positions of type 'tensor<1x4xi32>' ([B,S] i32 of input), got 'tensor<1x4xi64>'}}
  %o = mod.routed_block(%x, %p, %w) capacity(1) : (tensor<1x4x8xf32>, tensor<1x4xi64>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x1x8xf32>, %pk: tensor<1x1xi32>):
    mod.yield %xk : tensor<1x1x8xf32>
  }
  return
}

// -----

func.func @block_weight(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{expected router weight of type 'tensor<8xf32>' (hidden size D of input), got 'tensor<4xf32>'}}
  %o = mod.routed_block(%x, %p, %w) capacity(1) : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<4xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x1x8xf32>, %pk: tensor<1x1xi32>):
    mod.yield %xk : tensor<1x1x8xf32>
  }
  return
}

// -----

func.func @block_capacity_zero(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{attribute 'capacity' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %o = mod.routed_block(%x, %p, %w) capacity(0) : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x0x8xf32>, %pk: tensor<1x0xi32>):
    mod.yield %xk : tensor<1x0x8xf32>
  }
  return
}

// -----

func.func @block_capacity_too_large(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{capacity 5 exceeds the sequence length S = 4 of input 'tensor<1x4x8xf32>'}}
  %o = mod.routed_block(%x, %p, %w) capacity(5) : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x5x8xf32>, %pk: tensor<1x5xi32>):
    mod.yield %xk : tensor<1x5x8xf32>
  }
  return
}

// -----

func.func @block_num_args(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expected the body to take 2 arguments (xk, pk), got 1}}
  %o = mod.routed_block(%x, %p, %w) capacity(1) : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x1x8xf32>):
    mod.yield %xk : tensor<1x1x8xf32>
  }
  return
}

// -----

func.func @block_xk_type(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expected body argument #0 (xk) of type 'tensor<1x2x8xf32>' ([B,K,D] of input), got 'tensor<1x4x8xf32>'}}
  %o = mod.routed_block(%x, %p, %w) capacity(2) : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x4x8xf32>, %pk: tensor<1x2xi32>):
    mod.yield %xk : tensor<1x4x8xf32>
  }
  return
}

// -----

func.func @block_pk_type(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expected body argument #1 (pk) of type 'tensor<1x2xi32>' ([B,K] i32), got 'tensor<1x2xf32>'}}
  %o = mod.routed_block(%x, %p, %w) capacity(2) : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x2x8xf32>, %pk: tensor<1x2xf32>):
    mod.yield %xk : tensor<1x2x8xf32>
  }
  return
}

// -----

func.func @block_terminator(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expected the body to end with mod.yield}}
  %o = mod.routed_block(%x, %p, %w) capacity(2) : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x2x8xf32>, %pk: tensor<1x2xi32>):
    "test.terminator"(%xk) : (tensor<1x2x8xf32>) -> ()
  }
  return
}

// -----

func.func @block_yield_type(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>, %d: tensor<1x2x4xf32>) {
  // expected-error @+1 {{expected body to yield a value of type 'tensor<1x2x8xf32>' ([B,K,D] of input), got 'tensor<1x2x4xf32>'}}
  %o = mod.routed_block(%x, %p, %w) capacity(2) : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x2x8xf32>, %pk: tensor<1x2xi32>):
    mod.yield %d : tensor<1x2x4xf32>
  }
  return
}

// -----

func.func @block_unknown_gate(%x: tensor<1x4x8xf32>, %p: tensor<1x4xi32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{unknown gate 'relu' (expected identity or sigmoid)}}
  %o = mod.routed_block(%x, %p, %w) capacity(2) gate(relu) : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x2x8xf32>, %pk: tensor<1x2xi32>):
    mod.yield %xk : tensor<1x2x8xf32>
  }
  return
}

// mod.yield

// -----

func.func @yield_outside(%d: tensor<1x2x8xf32>) {
  // expected-error @+1 {{'mod.yield' op expects parent op 'mod.routed_block'}}
  mod.yield %d : tensor<1x2x8xf32>
}

// -----

func.func @scatter_unknown_gate(%x: tensor<1x4x8xf32>, %i: tensor<1x2xi32>, %d: tensor<1x2x8xf32>, %g: tensor<1x2xf32>) {
  // expected-error @+1 {{unknown gate 'tanh' (expected identity or sigmoid)}}
  %o = mod.scatter_add %x[%i], %d scale %g gate(tanh) : tensor<1x4x8xf32>, tensor<1x2xi32>, tensor<1x2x8xf32>, tensor<1x2xf32> -> tensor<1x4x8xf32>
  return
}
