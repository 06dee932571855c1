// Issue 13 item 3: mod.topk with k == S folded to a B x S iota constant
// whatever its size; 2^40 indices aborted in -canonicalize ("SmallVector
// unable to grow") or exhausted memory.
// RUN: mod-opt %s -canonicalize
func.func @topk_k_equals_s_huge(%x: tensor<1048576x1048576x1xf32>, %r: tensor<1048576x1048576xf32>)
    -> (tensor<1048576x1048576x1xf32>, tensor<1048576x1048576xi32>) {
  %i, %v = mod.topk %r k(1048576) : tensor<1048576x1048576xf32> -> tensor<1048576x1048576xi32>, tensor<1048576x1048576xf32>
  %g = mod.gather %x[%i] : tensor<1048576x1048576x1xf32>, tensor<1048576x1048576xi32> -> tensor<1048576x1048576x1xf32>
  return %g, %i : tensor<1048576x1048576x1xf32>, tensor<1048576x1048576xi32>
}
