// Linear layers whose bias add and tanh GELU --mod-linalg-to-cublas fuses
// into cuBLASLt epilogues (epilogue-gpu.test): an MLP (GELU_BIAS, then
// BIAS) and a projection whose output is read through column slices (BIAS).
// Sizes are odd on purpose: rows, leading dimensions and the bias are not
// multiples of 4 floats, so cuBLASLt must take the pointers' real alignment.
func.func @forward(%x: tensor<3x7x33xf32> {mod.name = "x"},
                   %w1: tensor<33x50xf32> {mod.name = "w1"}, %b1: tensor<50xf32> {mod.name = "b1"},
                   %w2: tensor<50x33xf32> {mod.name = "w2"}, %b2: tensor<33xf32> {mod.name = "b2"},
                   %wq: tensor<33x45xf32> {mod.name = "wq"}, %bq: tensor<45xf32> {mod.name = "bq"})
    -> (tensor<3x7x33xf32> {mod.name = "mlp"}, tensor<21x15xf32> {mod.name = "q_slice"}) {
  %zero = arith.constant 0.000000e+00 : f32
  %cubic = arith.constant 4.471500e-02 : f32
  %scale = arith.constant 0.797884583 : f32
  %half = arith.constant 5.000000e-01 : f32
  %one = arith.constant 1.000000e+00 : f32
  %rows = tensor.collapse_shape %x [[0, 1], [2]] : tensor<3x7x33xf32> into tensor<21x33xf32>

  %e1 = tensor.empty() : tensor<21x50xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<21x50xf32>) -> tensor<21x50xf32>
  %h = linalg.matmul ins(%rows, %w1 : tensor<21x33xf32>, tensor<33x50xf32>) outs(%f1 : tensor<21x50xf32>) -> tensor<21x50xf32>
  %h3 = tensor.expand_shape %h [[0, 1], [2]] output_shape [3, 7, 50] : tensor<21x50xf32> into tensor<3x7x50xf32>
  %e1b = tensor.empty() : tensor<3x7x50xf32>
  %hb = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                        iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%h3, %b1 : tensor<3x7x50xf32>, tensor<50xf32>) outs(%e1b : tensor<3x7x50xf32>) {
  ^bb0(%in: f32, %b: f32, %o: f32):
    %s = arith.addf %in, %b : f32
    linalg.yield %s : f32
  } -> tensor<3x7x50xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%hb : tensor<3x7x50xf32>) outs(%e1b : tensor<3x7x50xf32>) {
  ^bb0(%in: f32, %o: f32):
    %0 = arith.mulf %in, %in : f32
    %1 = arith.mulf %0, %in : f32
    %2 = arith.mulf %1, %cubic : f32
    %3 = arith.addf %in, %2 : f32
    %4 = arith.mulf %3, %scale : f32
    %5 = math.tanh %4 : f32
    %6 = arith.mulf %in, %half : f32
    %7 = arith.addf %5, %one : f32
    %8 = arith.mulf %6, %7 : f32
    linalg.yield %8 : f32
  } -> tensor<3x7x50xf32>

  %grows = tensor.collapse_shape %g [[0, 1], [2]] : tensor<3x7x50xf32> into tensor<21x50xf32>
  %e2 = tensor.empty() : tensor<21x33xf32>
  %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<21x33xf32>) -> tensor<21x33xf32>
  %y = linalg.matmul ins(%grows, %w2 : tensor<21x50xf32>, tensor<50x33xf32>) outs(%f2 : tensor<21x33xf32>) -> tensor<21x33xf32>
  %y3 = tensor.expand_shape %y [[0, 1], [2]] output_shape [3, 7, 33] : tensor<21x33xf32> into tensor<3x7x33xf32>
  %e2b = tensor.empty() : tensor<3x7x33xf32>
  %mlp = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                         iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%y3, %b2 : tensor<3x7x33xf32>, tensor<33xf32>) outs(%e2b : tensor<3x7x33xf32>) {
  ^bb0(%in: f32, %b: f32, %o: f32):
    %s = arith.addf %in, %b : f32
    linalg.yield %s : f32
  } -> tensor<3x7x33xf32>

  %e3 = tensor.empty() : tensor<21x45xf32>
  %f3 = linalg.fill ins(%zero : f32) outs(%e3 : tensor<21x45xf32>) -> tensor<21x45xf32>
  %q = linalg.matmul ins(%rows, %wq : tensor<21x33xf32>, tensor<33x45xf32>) outs(%f3 : tensor<21x45xf32>) -> tensor<21x45xf32>
  %qb = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                        iterator_types = ["parallel", "parallel"]}
      ins(%q, %bq : tensor<21x45xf32>, tensor<45xf32>) outs(%e3 : tensor<21x45xf32>) {
  ^bb0(%in: f32, %b: f32, %o: f32):
    %s = arith.addf %in, %b : f32
    linalg.yield %s : f32
  } -> tensor<21x45xf32>
  %slice = tensor.extract_slice %qb[0, 15] [21, 15] [1, 1] : tensor<21x45xf32> to tensor<21x15xf32>
  return %mlp, %slice : tensor<3x7x33xf32>, tensor<21x15xf32>
}
