// Issue 13 item 2: a tensor dimension of size 0 made the token-axis analysis
// divide by zero (SIGFPE) while it factored dimensions (D = 0 here).
// RUN: mod-opt %s --mod-flop-report
func.func @zero_hidden(%h0: tensor<2x4x0xf32> {mod.name = "x"}, %positions: tensor<2x4xi32> {mod.name = "positions"}) -> tensor<2x4x0xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x4x0xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<2x4x0xf32>) -> tensor<2x4x0xf32>
  %a = linalg.generic {indexing_maps = [affine_map<(b, i, d, j) -> (b, j, d)>, affine_map<(b, i, d, j) -> (b, i)>, affine_map<(b, i, d, j) -> (b, j)>, affine_map<(b, i, d, j) -> (b, i, d)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%h0, %positions, %positions : tensor<2x4x0xf32>, tensor<2x4xi32>, tensor<2x4xi32>) outs(%z : tensor<2x4x0xf32>) {
  ^bb0(%x: f32, %pi: i32, %pj: i32, %acc: f32):
    %c = arith.cmpi sle, %pj, %pi : i32
    %v = arith.select %c, %x, %zero : f32
    %r = arith.addf %acc, %v : f32
    linalg.yield %r : f32
  } -> tensor<2x4x0xf32>
  %h1 = linalg.add ins(%h0, %a : tensor<2x4x0xf32>, tensor<2x4x0xf32>) outs(%e : tensor<2x4x0xf32>) -> tensor<2x4x0xf32>
  return %h1 : tensor<2x4x0xf32>
}
