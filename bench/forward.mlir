// One MLP block, B=4, S=2048, D=1024, hidden 4096: @dense runs every token
// through it (out = x + relu(x W1) W2), @mod routes the top 256 tokens per
// sequence (12.5% capacity) through the same MLP.
func.func @dense(%x: tensor<4x2048x1024xf32> {mod.name = "x"},
                 %w1: tensor<1024x4096xf32> {mod.name = "w1"},
                 %w2: tensor<4096x1024xf32> {mod.name = "w2"})
    -> (tensor<4x2048x1024xf32> {mod.name = "out"}) {
  %rows = tensor.collapse_shape %x [[0, 1], [2]] : tensor<4x2048x1024xf32> into tensor<8192x1024xf32>
  %zero = arith.constant 0.0 : f32
  %e1 = tensor.empty() : tensor<8192x4096xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<8192x4096xf32>) -> tensor<8192x4096xf32>
  %h = linalg.matmul ins(%rows, %w1 : tensor<8192x1024xf32>, tensor<1024x4096xf32>) outs(%f1 : tensor<8192x4096xf32>) -> tensor<8192x4096xf32>
  %relu = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                          iterator_types = ["parallel", "parallel"]}
      ins(%h : tensor<8192x4096xf32>) outs(%e1 : tensor<8192x4096xf32>) {
  ^bb0(%v: f32, %o: f32):
    %m = arith.maximumf %v, %zero : f32
    linalg.yield %m : f32
  } -> tensor<8192x4096xf32>
  %y = linalg.matmul ins(%relu, %w2 : tensor<8192x4096xf32>, tensor<4096x1024xf32>) outs(%rows : tensor<8192x1024xf32>) -> tensor<8192x1024xf32>
  %out = tensor.expand_shape %y [[0, 1], [2]] output_shape [4, 2048, 1024] : tensor<8192x1024xf32> into tensor<4x2048x1024xf32>
  return %out : tensor<4x2048x1024xf32>
}

func.func @mod(%x: tensor<4x2048x1024xf32> {mod.name = "x"},
               %p: tensor<4x2048xi32> {mod.name = "positions"},
               %w: tensor<1024xf32> {mod.name = "w"},
               %w1: tensor<1024x4096xf32> {mod.name = "w1"},
               %w2: tensor<4096x1024xf32> {mod.name = "w2"})
    -> (tensor<4x2048x1024xf32> {mod.name = "out"}) {
  %o = mod.routed_block(%x, %p, %w) capacity(256)
      : (tensor<4x2048x1024xf32>, tensor<4x2048xi32>, tensor<1024xf32>) -> tensor<4x2048x1024xf32> {
  ^bb0(%xk: tensor<4x256x1024xf32>, %pk: tensor<4x256xi32>):
    %rows = tensor.collapse_shape %xk [[0, 1], [2]] : tensor<4x256x1024xf32> into tensor<1024x1024xf32>
    %zero = arith.constant 0.0 : f32
    %e1 = tensor.empty() : tensor<1024x4096xf32>
    %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1024x4096xf32>) -> tensor<1024x4096xf32>
    %h = linalg.matmul ins(%rows, %w1 : tensor<1024x1024xf32>, tensor<1024x4096xf32>) outs(%f1 : tensor<1024x4096xf32>) -> tensor<1024x4096xf32>
    %relu = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                            iterator_types = ["parallel", "parallel"]}
        ins(%h : tensor<1024x4096xf32>) outs(%e1 : tensor<1024x4096xf32>) {
    ^bb0(%v: f32, %o2: f32):
      %m = arith.maximumf %v, %zero : f32
      linalg.yield %m : f32
    } -> tensor<1024x4096xf32>
    %e2 = tensor.empty() : tensor<1024x1024xf32>
    %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
    %y = linalg.matmul ins(%relu, %w2 : tensor<1024x4096xf32>, tensor<4096x1024xf32>) outs(%f2 : tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
    %d = tensor.expand_shape %y [[0, 1], [2]] output_shape [4, 256, 1024] : tensor<1024x1024xf32> into tensor<4x256x1024xf32>
    mod.yield %d : tensor<4x256x1024xf32>
  }
  return %o : tensor<4x2048x1024xf32>
}
