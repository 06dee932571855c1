// Issue 13 item 1: block discovery kept pointers into a local whose
// SmallVector inline storage moved on return when a residual chain had one
// sublayer; --mod-flop-report read freed stack memory (SIGSEGV, or
// stack-use-after-return under ASan) on test/Integration/CPU/mlp-block.mlir
// (its functions, below).
// RUN: mod-opt %s --mod-flop-report
func.func @mlp_identity(%x: tensor<2x8x4xf32> {mod.name = "x"}, %positions: tensor<2x8xi32> {mod.name = "positions"},
    %w: tensor<4xf32> {mod.name = "w"}, %w1: tensor<4x6xf32> {mod.name = "w1"}, %w2: tensor<6x4xf32> {mod.name = "w2"})
    -> (tensor<2x8x4xf32> {mod.name = "block_out"}, tensor<2x3xi32> {mod.name = "block_indices"}) {
  %out = mod.routed_block(%x, %positions, %w) capacity(3)
      : (tensor<2x8x4xf32>, tensor<2x8xi32>, tensor<4xf32>) -> tensor<2x8x4xf32> {
  ^bb0(%xk: tensor<2x3x4xf32>, %pk: tensor<2x3xi32>):
    %rows = tensor.collapse_shape %xk [[0, 1], [2]] : tensor<2x3x4xf32> into tensor<6x4xf32>
    %zero = arith.constant 0.0 : f32
    %e1 = tensor.empty() : tensor<6x6xf32>
    %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<6x6xf32>) -> tensor<6x6xf32>
    %h = linalg.matmul ins(%rows, %w1 : tensor<6x4xf32>, tensor<4x6xf32>) outs(%f1 : tensor<6x6xf32>) -> tensor<6x6xf32>
    %relu = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                            iterator_types = ["parallel", "parallel"]}
        ins(%h : tensor<6x6xf32>) outs(%e1 : tensor<6x6xf32>) {
    ^bb0(%v: f32, %o: f32):
      %m = arith.maximumf %v, %zero : f32
      linalg.yield %m : f32
    } -> tensor<6x6xf32>
    %e2 = tensor.empty() : tensor<6x4xf32>
    %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<6x4xf32>) -> tensor<6x4xf32>
    %y = linalg.matmul ins(%relu, %w2 : tensor<6x6xf32>, tensor<6x4xf32>) outs(%f2 : tensor<6x4xf32>) -> tensor<6x4xf32>
    %d = tensor.expand_shape %y [[0, 1], [2]] output_shape [2, 3, 4] : tensor<6x4xf32> into tensor<2x3x4xf32>
    mod.yield %d : tensor<2x3x4xf32>
  }
  %r = mod.router %x, %w : tensor<2x8x4xf32>, tensor<4xf32> -> tensor<2x8xf32>
  %idx, %val = mod.topk %r k(3) : tensor<2x8xf32> -> tensor<2x3xi32>, tensor<2x3xf32>
  return %out, %idx : tensor<2x8x4xf32>, tensor<2x3xi32>
}

func.func @mlp_sigmoid(%x: tensor<2x8x4xf32> {mod.name = "x"}, %positions: tensor<2x8xi32> {mod.name = "positions"},
    %w: tensor<4xf32> {mod.name = "w"}, %w1: tensor<4x6xf32> {mod.name = "w1"}, %w2: tensor<6x4xf32> {mod.name = "w2"})
    -> (tensor<2x8x4xf32> {mod.name = "block_out"}, tensor<2x2xi32> {mod.name = "block_indices"}) {
  %out = mod.routed_block(%x, %positions, %w) capacity(2) gate(sigmoid)
      : (tensor<2x8x4xf32>, tensor<2x8xi32>, tensor<4xf32>) -> tensor<2x8x4xf32> {
  ^bb0(%xk: tensor<2x2x4xf32>, %pk: tensor<2x2xi32>):
    %rows = tensor.collapse_shape %xk [[0, 1], [2]] : tensor<2x2x4xf32> into tensor<4x4xf32>
    %zero = arith.constant 0.0 : f32
    %e1 = tensor.empty() : tensor<4x6xf32>
    %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<4x6xf32>) -> tensor<4x6xf32>
    %h = linalg.matmul ins(%rows, %w1 : tensor<4x4xf32>, tensor<4x6xf32>) outs(%f1 : tensor<4x6xf32>) -> tensor<4x6xf32>
    %relu = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                            iterator_types = ["parallel", "parallel"]}
        ins(%h : tensor<4x6xf32>) outs(%e1 : tensor<4x6xf32>) {
    ^bb0(%v: f32, %o: f32):
      %m = arith.maximumf %v, %zero : f32
      linalg.yield %m : f32
    } -> tensor<4x6xf32>
    %e2 = tensor.empty() : tensor<4x4xf32>
    %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<4x4xf32>) -> tensor<4x4xf32>
    %y = linalg.matmul ins(%relu, %w2 : tensor<4x6xf32>, tensor<6x4xf32>) outs(%f2 : tensor<4x4xf32>) -> tensor<4x4xf32>
    %d = tensor.expand_shape %y [[0, 1], [2]] output_shape [2, 2, 4] : tensor<4x4xf32> into tensor<2x2x4xf32>
    mod.yield %d : tensor<2x2x4xf32>
  }
  %r = mod.router %x, %w : tensor<2x8x4xf32>, tensor<4xf32> -> tensor<2x8xf32>
  %idx, %val = mod.topk %r k(2) : tensor<2x8xf32> -> tensor<2x2xi32>, tensor<2x2xf32>
  return %out, %idx : tensor<2x8x4xf32>, tensor<2x2xi32>
}

func.func @mlp_k1_b3(%x: tensor<3x5x4xf32> {mod.name = "x"}, %positions: tensor<3x5xi32> {mod.name = "positions"},
    %w: tensor<4xf32> {mod.name = "w"}, %w1: tensor<4x3xf32> {mod.name = "w1"}, %w2: tensor<3x4xf32> {mod.name = "w2"})
    -> (tensor<3x5x4xf32> {mod.name = "block_out"}, tensor<3x1xi32> {mod.name = "block_indices"}) {
  %out = mod.routed_block(%x, %positions, %w) capacity(1)
      : (tensor<3x5x4xf32>, tensor<3x5xi32>, tensor<4xf32>) -> tensor<3x5x4xf32> {
  ^bb0(%xk: tensor<3x1x4xf32>, %pk: tensor<3x1xi32>):
    %rows = tensor.collapse_shape %xk [[0, 1], [2]] : tensor<3x1x4xf32> into tensor<3x4xf32>
    %zero = arith.constant 0.0 : f32
    %e1 = tensor.empty() : tensor<3x3xf32>
    %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<3x3xf32>) -> tensor<3x3xf32>
    %h = linalg.matmul ins(%rows, %w1 : tensor<3x4xf32>, tensor<4x3xf32>) outs(%f1 : tensor<3x3xf32>) -> tensor<3x3xf32>
    %relu = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                            iterator_types = ["parallel", "parallel"]}
        ins(%h : tensor<3x3xf32>) outs(%e1 : tensor<3x3xf32>) {
    ^bb0(%v: f32, %o: f32):
      %m = arith.maximumf %v, %zero : f32
      linalg.yield %m : f32
    } -> tensor<3x3xf32>
    %e2 = tensor.empty() : tensor<3x4xf32>
    %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<3x4xf32>) -> tensor<3x4xf32>
    %y = linalg.matmul ins(%relu, %w2 : tensor<3x3xf32>, tensor<3x4xf32>) outs(%f2 : tensor<3x4xf32>) -> tensor<3x4xf32>
    %d = tensor.expand_shape %y [[0, 1], [2]] output_shape [3, 1, 4] : tensor<3x4xf32> into tensor<3x1x4xf32>
    mod.yield %d : tensor<3x1x4xf32>
  }
  %r = mod.router %x, %w : tensor<3x5x4xf32>, tensor<4xf32> -> tensor<3x5xf32>
  %idx, %val = mod.topk %r k(1) : tensor<3x5xf32> -> tensor<3x1xi32>, tensor<3x1xf32>
  return %out, %idx : tensor<3x5x4xf32>, tensor<3x1xi32>
}
