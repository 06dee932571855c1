// One attention block shaped like torch-mlir's output for a LLaMA with
// head_dim == S (S = 4, two heads of 4): the two batch_matmuls (q.k^T and
// p.v) share one zero-filled init, as the exporter CSEs it, and RoPE builds
// its angle table with tensor.concat (cat(freqs, freqs)) and rotate_half
// with tensor.concat of two halves. The only token axes are those the data
// flow gives: head_dim must stay 4 when S becomes K.
func.func @forward(%h0: tensor<1x4x8xf32> {mod.name = "x"},
                   %positions: tensor<1x4xi32> {mod.name = "positions"},
                   %invf: tensor<2xf32> {mod.name = "layers.0.inv_freq"},
                   %w: tensor<8xf32> {mod.name = "layers.0.mlp.weight"}) -> tensor<1x4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant -1.0e30 : f32
  %e3 = tensor.empty() : tensor<1x4x8xf32>
  %e4 = tensor.empty() : tensor<1x2x4x4xf32>
  %eb = tensor.empty() : tensor<2x4x4xf32>
  // Shared by both batch_matmuls.
  %zb = linalg.fill ins(%zero : f32) outs(%eb : tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  // RoPE angles: pos * inv_freq, concatenated with themselves.
  %ea = tensor.empty() : tensor<1x4x2xf32>
  %ang = linalg.generic {indexing_maps = [affine_map<(b, s, f) -> (b, s)>, affine_map<(b, s, f) -> (f)>, affine_map<(b, s, f) -> (b, s, f)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%positions, %invf : tensor<1x4xi32>, tensor<2xf32>) outs(%ea : tensor<1x4x2xf32>) {
  ^bb0(%p: i32, %f: f32, %o: f32):
    %pf = arith.sitofp %p : i32 to f32
    %a = arith.mulf %pf, %f : f32
    linalg.yield %a : f32
  } -> tensor<1x4x2xf32>
  %cat = tensor.concat dim(2) %ang, %ang : (tensor<1x4x2xf32>, tensor<1x4x2xf32>) -> tensor<1x4x4xf32>
  %ec = tensor.empty() : tensor<1x4x4xf32>
  %cos = linalg.generic {indexing_maps = [affine_map<(b, s, f) -> (b, s, f)>, affine_map<(b, s, f) -> (b, s, f)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%cat : tensor<1x4x4xf32>) outs(%ec : tensor<1x4x4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %c = math.cos %a : f32
    linalg.yield %c : f32
  } -> tensor<1x4x4xf32>
  %sin = linalg.generic {indexing_maps = [affine_map<(b, s, f) -> (b, s, f)>, affine_map<(b, s, f) -> (b, s, f)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%cat : tensor<1x4x4xf32>) outs(%ec : tensor<1x4x4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %c = math.sin %a : f32
    linalg.yield %c : f32
  } -> tensor<1x4x4xf32>
  %cos4 = tensor.expand_shape %cos [[0], [1, 2], [3]] output_shape [1, 1, 4, 4] : tensor<1x4x4xf32> into tensor<1x1x4x4xf32>
  %sin4 = tensor.expand_shape %sin [[0], [1, 2], [3]] output_shape [1, 1, 4, 4] : tensor<1x4x4xf32> into tensor<1x1x4x4xf32>
  // q = k = v = heads of h0: [1,4,8] -> [1,4,2,4] -> [1,2,4,4].
  %hx = tensor.expand_shape %h0 [[0], [1], [2, 3]] output_shape [1, 4, 2, 4] : tensor<1x4x8xf32> into tensor<1x4x2x4xf32>
  %q = linalg.transpose ins(%hx : tensor<1x4x2x4xf32>) outs(%e4 : tensor<1x2x4x4xf32>) permutation = [0, 2, 1, 3]
  // rotate_half: cat(-x2, x1) along head_dim.
  %x1 = tensor.extract_slice %q[0, 0, 0, 0] [1, 2, 4, 2] [1, 1, 1, 1] : tensor<1x2x4x4xf32> to tensor<1x2x4x2xf32>
  %x2 = tensor.extract_slice %q[0, 0, 0, 2] [1, 2, 4, 2] [1, 1, 1, 1] : tensor<1x2x4x4xf32> to tensor<1x2x4x2xf32>
  %eh = tensor.empty() : tensor<1x2x4x2xf32>
  %nx2 = linalg.generic {indexing_maps = [affine_map<(b, h, s, d) -> (b, h, s, d)>, affine_map<(b, h, s, d) -> (b, h, s, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x2 : tensor<1x2x4x2xf32>) outs(%eh : tensor<1x2x4x2xf32>) {
  ^bb0(%a: f32, %o: f32):
    %n = arith.negf %a : f32
    linalg.yield %n : f32
  } -> tensor<1x2x4x2xf32>
  %rot = tensor.concat dim(3) %nx2, %x1 : (tensor<1x2x4x2xf32>, tensor<1x2x4x2xf32>) -> tensor<1x2x4x4xf32>
  %qr = linalg.generic {indexing_maps = [affine_map<(b, h, s, d) -> (b, h, s, d)>, affine_map<(b, h, s, d) -> (0, 0, s, d)>, affine_map<(b, h, s, d) -> (b, h, s, d)>, affine_map<(b, h, s, d) -> (0, 0, s, d)>, affine_map<(b, h, s, d) -> (b, h, s, d)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%q, %cos4, %rot, %sin4 : tensor<1x2x4x4xf32>, tensor<1x1x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x1x4x4xf32>) outs(%e4 : tensor<1x2x4x4xf32>) {
  ^bb0(%a: f32, %c: f32, %r: f32, %s: f32, %o: f32):
    %ac = arith.mulf %a, %c : f32
    %rs = arith.mulf %r, %s : f32
    %y = arith.addf %ac, %rs : f32
    linalg.yield %y : f32
  } -> tensor<1x2x4x4xf32>
  %kt = linalg.transpose ins(%qr : tensor<1x2x4x4xf32>) outs(%e4 : tensor<1x2x4x4xf32>) permutation = [0, 1, 3, 2]
  %qb = tensor.collapse_shape %qr [[0, 1], [2], [3]] : tensor<1x2x4x4xf32> into tensor<2x4x4xf32>
  %kb = tensor.collapse_shape %kt [[0, 1], [2], [3]] : tensor<1x2x4x4xf32> into tensor<2x4x4xf32>
  %sc = linalg.batch_matmul ins(%qb, %kb : tensor<2x4x4xf32>, tensor<2x4x4xf32>) outs(%zb : tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  %sc4 = tensor.expand_shape %sc [[0, 1], [2], [3]] output_shape [1, 2, 4, 4] : tensor<2x4x4xf32> into tensor<1x2x4x4xf32>
  // Causal mask by position, then exp and normalize over the keys.
  %ms = linalg.generic {indexing_maps = [affine_map<(b, h, i, j) -> (b, h, i, j)>, affine_map<(b, h, i, j) -> (b, i)>, affine_map<(b, h, i, j) -> (b, j)>, affine_map<(b, h, i, j) -> (b, h, i, j)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%sc4, %positions, %positions : tensor<1x2x4x4xf32>, tensor<1x4xi32>, tensor<1x4xi32>) outs(%e4 : tensor<1x2x4x4xf32>) {
  ^bb0(%s: f32, %pi: i32, %pj: i32, %o: f32):
    %c = arith.cmpi sle, %pj, %pi : i32
    %v = arith.select %c, %s, %ninf : f32
    %x = math.exp %v : f32
    linalg.yield %x : f32
  } -> tensor<1x2x4x4xf32>
  %es = tensor.empty() : tensor<1x2x4xf32>
  %zs = linalg.fill ins(%zero : f32) outs(%es : tensor<1x2x4xf32>) -> tensor<1x2x4xf32>
  %sum = linalg.generic {indexing_maps = [affine_map<(b, h, i, j) -> (b, h, i, j)>, affine_map<(b, h, i, j) -> (b, h, i)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%ms : tensor<1x2x4x4xf32>) outs(%zs : tensor<1x2x4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.addf %a, %o : f32
    linalg.yield %r : f32
  } -> tensor<1x2x4xf32>
  %pr = linalg.generic {indexing_maps = [affine_map<(b, h, i, j) -> (b, h, i, j)>, affine_map<(b, h, i, j) -> (b, h, i)>, affine_map<(b, h, i, j) -> (b, h, i, j)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%ms, %sum : tensor<1x2x4x4xf32>, tensor<1x2x4xf32>) outs(%e4 : tensor<1x2x4x4xf32>) {
  ^bb0(%a: f32, %s: f32, %o: f32):
    %r = arith.divf %a, %s : f32
    linalg.yield %r : f32
  } -> tensor<1x2x4x4xf32>
  %pb = tensor.collapse_shape %pr [[0, 1], [2], [3]] : tensor<1x2x4x4xf32> into tensor<2x4x4xf32>
  %vb = tensor.collapse_shape %q [[0, 1], [2], [3]] : tensor<1x2x4x4xf32> into tensor<2x4x4xf32>
  %pv = linalg.batch_matmul ins(%pb, %vb : tensor<2x4x4xf32>, tensor<2x4x4xf32>) outs(%zb : tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  %pv4 = tensor.expand_shape %pv [[0, 1], [2], [3]] output_shape [1, 2, 4, 4] : tensor<2x4x4xf32> into tensor<1x2x4x4xf32>
  %e5 = tensor.empty() : tensor<1x4x2x4xf32>
  %pvt = linalg.transpose ins(%pv4 : tensor<1x2x4x4xf32>) outs(%e5 : tensor<1x4x2x4xf32>) permutation = [0, 2, 1, 3]
  %att = tensor.collapse_shape %pvt [[0], [1], [2, 3]] : tensor<1x4x2x4xf32> into tensor<1x4x8xf32>
  %h1 = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s, d)>, affine_map<(b, s, d) -> (b, s, d)>, affine_map<(b, s, d) -> (b, s, d)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%h0, %att : tensor<1x4x8xf32>, tensor<1x4x8xf32>) outs(%e3 : tensor<1x4x8xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.addf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<1x4x8xf32>
  // A position-wise MLP (a scale), sharing the [1,4,8] init with the add.
  %m = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s, d)>, affine_map<(b, s, d) -> (d)>, affine_map<(b, s, d) -> (b, s, d)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%h1, %w : tensor<1x4x8xf32>, tensor<8xf32>) outs(%e3 : tensor<1x4x8xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.mulf %a, %b : f32
    %t = math.tanh %r : f32
    linalg.yield %t : f32
  } -> tensor<1x4x8xf32>
  %h2 = linalg.generic {indexing_maps = [affine_map<(b, s, d) -> (b, s, d)>, affine_map<(b, s, d) -> (b, s, d)>, affine_map<(b, s, d) -> (b, s, d)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%h1, %m : tensor<1x4x8xf32>, tensor<1x4x8xf32>) outs(%e3 : tensor<1x4x8xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.addf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<1x4x8xf32>
  return %h2 : tensor<1x4x8xf32>
}
