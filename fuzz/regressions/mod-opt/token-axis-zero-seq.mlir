// Issue 13 item 2: the same with S = 0, through --mod-dense-to-mod.
// RUN: mod-opt %s --mod-dense-to-mod="schedule=list blocks=0 capacity=2"
func.func @zero_seq(%h0: tensor<2x0x3xf32> {mod.name = "x"}, %positions: tensor<2x0xi32> {mod.name = "positions"}) -> tensor<2x0x3xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x0x3xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<2x0x3xf32>) -> tensor<2x0x3xf32>
  %a = linalg.generic {indexing_maps = [affine_map<(b, i, d, j) -> (b, j, d)>, affine_map<(b, i, d, j) -> (b, i)>, affine_map<(b, i, d, j) -> (b, j)>, affine_map<(b, i, d, j) -> (b, i, d)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%h0, %positions, %positions : tensor<2x0x3xf32>, tensor<2x0xi32>, tensor<2x0xi32>) outs(%z : tensor<2x0x3xf32>) {
  ^bb0(%x: f32, %pi: i32, %pj: i32, %acc: f32):
    %c = arith.cmpi sle, %pj, %pi : i32
    %v = arith.select %c, %x, %zero : f32
    %r = arith.addf %acc, %v : f32
    linalg.yield %r : f32
  } -> tensor<2x0x3xf32>
  %rows = tensor.collapse_shape %a [[0, 1], [2]] : tensor<2x0x3xf32> into tensor<0x3xf32>
  %back = tensor.expand_shape %rows [[0, 1], [2]] output_shape [2, 0, 3] : tensor<0x3xf32> into tensor<2x0x3xf32>
  %h1 = linalg.add ins(%h0, %back : tensor<2x0x3xf32>, tensor<2x0x3xf32>) outs(%e : tensor<2x0x3xf32>) -> tensor<2x0x3xf32>
  return %h1 : tensor<2x0x3xf32>
}
