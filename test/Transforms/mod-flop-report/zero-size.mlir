// Issue 13 item 2: a tensor dimension of size 0 (the hidden size in
// @zero_hidden, the sequence in @zero_seq) made the token-axis analysis
// divide by zero (SIGFPE) while it factored dimensions. Both functions are
// counted (zero FLOPs), and a block with D = 0 still converts.
//
// RUN: mod-opt %s --mod-flop-report | FileCheck %s
// CHECK-LABEL: forward FLOPs of @zero_hidden (B=2, S=4)
// CHECK: 0      blocks.0                 dense       4                0                0              0                0                  0            0
// CHECK: total forward FLOPs: 0 (0)
// CHECK-LABEL: forward FLOPs of @zero_seq (B=2, S=0)
// CHECK: 0      blocks.0                 dense       0                0                0              0                0                  0            0
// CHECK: total forward FLOPs: 0 (0)
//
// RUN: not mod-opt %s --split-input-file --mod-dense-to-mod="schedule=list blocks=0 capacity=2" 2>/dev/null | FileCheck %s --check-prefix=CONVERT
// CONVERT: func.func @zero_hidden
// CONVERT: mod.routed_block(%{{.*}}) capacity(2) {mod.block = "blocks.0"} : (tensor<2x4x0xf32>, tensor<2x4xi32>, tensor<0xf32>) -> tensor<2x4x0xf32>
// CONVERT: ^bb0(%{{.*}}: tensor<2x2x0xf32>, %{{.*}}: tensor<2x2xi32>):
//
// S = 0 leaves no capacity to route: an error, not a crash.
// RUN: not mod-opt %s --split-input-file --mod-dense-to-mod="schedule=list blocks=0 capacity=2" 2>&1 >/dev/null | FileCheck %s --check-prefix=SEQ0
// SEQ0: zero-size.mlir:41:1: error: capacity '2' must be a token count in [1, S=0] or a fraction in (0, 1]

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

// -----

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
