// RUN: mod-opt %s --mod-generate-decode -split-input-file -verify-diagnostics -allow-unregistered-dialect

// Only position-wise work: nothing reads the keys' positions, so unwritten
// cache slots could not be masked.
// expected-error @+1 {{cannot incrementalize @forward: no attention mask reads the positions of the keys}}
func.func @forward(%tokens: tensor<1x4xi32> {mod.name = "tokens"}, %positions: tensor<1x4xi32> {mod.name = "positions"}) -> tensor<1x4x8xf32> {
  %e = tensor.empty() : tensor<1x4x8xf32>
  %x = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s)>, affine_map<(b, s, d) -> (b, s, d)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%tokens : tensor<1x4xi32>) outs(%e : tensor<1x4x8xf32>) {
  ^bb0(%t: i32, %o: f32):
    %f = arith.sitofp %t : i32 to f32
    linalg.yield %f : f32
  } -> tensor<1x4x8xf32>
  return %x : tensor<1x4x8xf32>
}

// -----

// An op with no incrementalization rule on the token axis.
func.func @forward(%tokens: tensor<1x4xi32> {mod.name = "tokens"}, %positions: tensor<1x4xi32> {mod.name = "positions"}) -> tensor<1x4x8xf32> {
  %e = tensor.empty() : tensor<1x4x8xf32>
  // expected-error @+1 {{cannot incrementalize 'test.opaque': no rule for an op whose result runs over tokens}}
  %x = "test.opaque"(%e) : (tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s, d)>, affine_map<(b, s, d) -> (b, s)>, affine_map<(b, s, d) -> (b, s, d)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %positions : tensor<1x4x8xf32>, tensor<1x4xi32>) outs(%e : tensor<1x4x8xf32>) {
  ^bb0(%v: f32, %p: i32, %o: f32):
    %f = arith.sitofp %p : i32 to f32
    %a = arith.addf %v, %f : f32
    linalg.yield %a : f32
  } -> tensor<1x4x8xf32>
  return %y : tensor<1x4x8xf32>
}

// -----

// A body that reads a token's index along the sequence.
func.func @forward(%tokens: tensor<1x4xi32> {mod.name = "tokens"}, %positions: tensor<1x4xi32> {mod.name = "positions"}) -> tensor<1x4x8xf32> {
  %e = tensor.empty() : tensor<1x4x8xf32>
  // expected-error @+1 {{cannot incrementalize 'linalg.generic': its body reads a token's index along the sequence}}
  %x = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s)>, affine_map<(b, s, d) -> (b, s, d)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%positions : tensor<1x4xi32>) outs(%e : tensor<1x4x8xf32>) {
  ^bb0(%p: i32, %o: f32):
    %i = linalg.index 1 : index
    %c = arith.index_cast %i : index to i32
    %f = arith.sitofp %c : i32 to f32
    linalg.yield %f : f32
  } -> tensor<1x4x8xf32>
  return %x : tensor<1x4x8xf32>
}

// -----

// expected-error @+1 {{cannot generate a decode step from @forward: it must return exactly the logits [B,S,V]}}
func.func @forward(%tokens: tensor<1x4xi32> {mod.name = "tokens"}, %positions: tensor<1x4xi32> {mod.name = "positions"}) -> (tensor<1x4xi32>, tensor<1x4xi32>) {
  return %tokens, %positions : tensor<1x4xi32>, tensor<1x4xi32>
}

// -----

// expected-error @+1 {{--mod-generate-decode: no function @forward with a body (set func=<name>)}}
module {
  func.func @model(%positions: tensor<1x4xi32> {mod.name = "positions"}) -> tensor<1x4xi32> {
    return %positions : tensor<1x4xi32>
  }
}

// -----

// expected-error @+1 {{--mod-generate-decode: @forward has no argument named 'positions'}}
func.func @forward(%tokens: tensor<1x4xi32> {mod.name = "tokens"}) -> tensor<1x4xi32> {
  return %tokens : tensor<1x4xi32>
}

// -----

// A routed block whose body mixes no tokens: the body is incrementalized on
// its own, keyed by its gathered positions, and needs an attention mask.
func.func @forward(%x: tensor<1x4x8xf32>, %positions: tensor<1x4xi32> {mod.name = "positions"}, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
  %e = tensor.empty() : tensor<1x4x8xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s)>, affine_map<(b, s, d) -> (b, s, d)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%positions : tensor<1x4xi32>) outs(%e : tensor<1x4x8xf32>) {
  ^bb0(%p: i32, %o: f32):
    %f = arith.sitofp %p : i32 to f32
    linalg.yield %f : f32
  } -> tensor<1x4x8xf32>
  // expected-error @+1 {{cannot incrementalize @routed_block_body: no attention mask reads the positions of the keys}}
  %o = mod.routed_block(%h, %positions, %w) capacity(2)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x2x8xf32>, %pk: tensor<1x2xi32>):
    mod.yield %xk : tensor<1x2x8xf32>
  }
  return %o : tensor<1x4x8xf32>
}

// -----

// A routed block whose body reads a token-indexed value from outside: only
// the routed tokens may enter a block.
func.func @forward(%x: tensor<1x4x8xf32>, %positions: tensor<1x4xi32> {mod.name = "positions"}, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
  %e = tensor.empty() : tensor<1x4x8xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s)>, affine_map<(b, s, d) -> (b, s, d)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%positions : tensor<1x4xi32>) outs(%e : tensor<1x4x8xf32>) {
  ^bb0(%p: i32, %o: f32):
    %f = arith.sitofp %p : i32 to f32
    linalg.yield %f : f32
  } -> tensor<1x4x8xf32>
  // expected-error @+1 {{cannot incrementalize 'mod.routed_block': its body uses a value with a token axis defined outside it ('tensor<1x4x8xf32>'); only the routed tokens may enter the block}}
  %o = mod.routed_block(%h, %positions, %w) capacity(4)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x4x8xf32>, %pk: tensor<1x4xi32>):
    %s = linalg.add ins(%xk, %h : tensor<1x4x8xf32>, tensor<1x4x8xf32>) outs(%e : tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
    mod.yield %s : tensor<1x4x8xf32>
  }
  return %o : tensor<1x4x8xf32>
}

// -----

// A routed block inside another.
func.func @forward(%x: tensor<1x4x8xf32>, %positions: tensor<1x4xi32> {mod.name = "positions"}, %w: tensor<8xf32>) -> tensor<1x4x8xf32> {
  %e = tensor.empty() : tensor<1x4x8xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s)>, affine_map<(b, s, d) -> (b, s, d)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%positions : tensor<1x4xi32>) outs(%e : tensor<1x4x8xf32>) {
  ^bb0(%p: i32, %o: f32):
    %f = arith.sitofp %p : i32 to f32
    linalg.yield %f : f32
  } -> tensor<1x4x8xf32>
  // expected-error @+1 {{cannot incrementalize a 'mod.routed_block' nested in another}}
  %o = mod.routed_block(%h, %positions, %w) capacity(4)
      : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
  ^bb0(%xk: tensor<1x4x8xf32>, %pk: tensor<1x4xi32>):
    %i = mod.routed_block(%xk, %pk, %w) capacity(2)
        : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
    ^bb0(%xk2: tensor<1x2x8xf32>, %pk2: tensor<1x2xi32>):
      mod.yield %xk2 : tensor<1x2x8xf32>
    }
    mod.yield %i : tensor<1x4x8xf32>
  }
  return %o : tensor<1x4x8xf32>
}
