// Positions but no residual stream: nothing adds a branch back to a [B,S,D]
// value that it was computed from.
func.func @forward(%emb: tensor<16x4xf32> {mod.name = "embed.weight"},
                   %tokens: tensor<1x4xi32> {mod.name = "tokens"},
                   %positions: tensor<1x4xi32> {mod.name = "positions"}) -> tensor<1x4x4xf32> {
  %e = tensor.empty() : tensor<1x4x4xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s)>, affine_map<(b, s, d) -> (b, s, d)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%tokens : tensor<1x4xi32>) outs(%e : tensor<1x4x4xf32>) {
  ^bb0(%t: i32, %o: f32):
    %i = arith.index_cast %t : i32 to index
    %d = linalg.index 2 : index
    %v = tensor.extract %emb[%i, %d] : tensor<16x4xf32>
    linalg.yield %v : f32
  } -> tensor<1x4x4xf32>
  %m = math.tanh %h : tensor<1x4x4xf32>
  return %m : tensor<1x4x4xf32>
}
