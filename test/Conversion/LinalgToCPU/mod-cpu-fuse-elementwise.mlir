// RUN: mod-opt %s --mod-cpu-fuse-elementwise --split-input-file | FileCheck %s

// A transposed weight feeding a matmul: the transpose disappears into the
// matmul's indexing map (read as [N,K]); no copy remains.
// CHECK-DAG: #[[A:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[W:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-LABEL: func.func @linear_out_in
// CHECK-SAME:    %[[X:.*]]: tensor<3x4xf32>, %[[WT:.*]]: tensor<5x4xf32>
// CHECK-NOT:     linalg.transpose
// CHECK:         linalg.generic {indexing_maps = [#[[A]], #[[W]], {{.*}}], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME:        ins(%[[X]], %[[WT]] : tensor<3x4xf32>, tensor<5x4xf32>)
func.func @linear_out_in(%x: tensor<3x4xf32>, %w: tensor<5x4xf32>) -> tensor<3x5xf32> {
  %e = tensor.empty() : tensor<4x5xf32>
  %t = linalg.transpose ins(%w : tensor<5x4xf32>) outs(%e : tensor<4x5xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %z = tensor.empty() : tensor<3x5xf32>
  %c = linalg.fill ins(%zero : f32) outs(%z : tensor<3x5xf32>) -> tensor<3x5xf32>
  %y = linalg.matmul ins(%x, %t : tensor<3x4xf32>, tensor<4x5xf32>) outs(%c : tensor<3x5xf32>) -> tensor<3x5xf32>
  return %y : tensor<3x5xf32>
}

// -----

// An elementwise chain becomes one loop nest; the exp is not fused into the
// matmul that reads it (it would be recomputed for every output column).
// CHECK-LABEL: func.func @chain
// CHECK:         %[[EW:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK:           arith.mulf
// CHECK:           math.exp
// CHECK-NOT:     linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// CHECK-SAME:        ins(%[[EW]], %{{.*}} : tensor<3x4xf32>, tensor<4x5xf32>)
func.func @chain(%x: tensor<3x4xf32>, %w: tensor<4x5xf32>) -> tensor<3x5xf32> {
  %e = tensor.empty() : tensor<3x4xf32>
  %sq = linalg.map { arith.mulf } ins(%x, %x : tensor<3x4xf32>, tensor<3x4xf32>) outs(%e : tensor<3x4xf32>)
  %ex = linalg.map { math.exp } ins(%sq : tensor<3x4xf32>) outs(%e : tensor<3x4xf32>)
  %zero = arith.constant 0.0 : f32
  %z = tensor.empty() : tensor<3x5xf32>
  %c = linalg.fill ins(%zero : f32) outs(%z : tensor<3x5xf32>) -> tensor<3x5xf32>
  %y = linalg.matmul ins(%ex, %w : tensor<3x4xf32>, tensor<4x5xf32>) outs(%c : tensor<3x5xf32>) -> tensor<3x5xf32>
  return %y : tensor<3x5xf32>
}

// -----

// Softmax over masked, scaled scores: the cheap mask/scale op feeds both the
// row max and the exp, and is recomputed in each (no [.., S, S] logits
// tensor); the exp (not cheap, two users) stays materialized.
// CHECK-LABEL: func.func @softmax
// CHECK-SAME:    %[[S:[a-z0-9]+]]: tensor<4x8xf32>
// CHECK:         %[[MAX:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]} ins(%[[S]] : tensor<4x8xf32>)
// CHECK:           arith.mulf
// CHECK:           arith.maximumf
// CHECK:         %[[EXP:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} ins(%[[S]], %[[MAX]] : tensor<4x8xf32>, tensor<4xf32>)
// CHECK:           arith.mulf
// CHECK:           math.exp
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]} ins(%[[EXP]] : tensor<4x8xf32>)
#id = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (i)>
func.func @softmax(%s: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4xf32>) {
  %scale = arith.constant 0.125 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %r = tensor.empty() : tensor<4xf32>
  %logits = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%s : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    %y = arith.mulf %x, %scale : f32
    linalg.yield %y : f32
  } -> tensor<4x8xf32>
  %m0 = linalg.fill ins(%ninf : f32) outs(%r : tensor<4xf32>) -> tensor<4xf32>
  %max = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%logits : tensor<4x8xf32>) outs(%m0 : tensor<4xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %y = arith.maximumf %x, %acc : f32
    linalg.yield %y : f32
  } -> tensor<4xf32>
  %exp = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]}
      ins(%logits, %max : tensor<4x8xf32>, tensor<4xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%x: f32, %m: f32, %o: f32):
    %d = arith.subf %x, %m : f32
    %y = math.exp %d : f32
    linalg.yield %y : f32
  } -> tensor<4x8xf32>
  %s0 = linalg.fill ins(%zero : f32) outs(%r : tensor<4xf32>) -> tensor<4xf32>
  %sum = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%exp : tensor<4x8xf32>) outs(%s0 : tensor<4xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %y = arith.addf %x, %acc : f32
    linalg.yield %y : f32
  } -> tensor<4xf32>
  return %exp, %sum : tensor<4x8xf32>, tensor<4xf32>
}

// -----

// Attention's head merge: the transpose of one matmul's [H,S,hd] result read
// by the output projection stays a copy. Fused, it would split that GEMM's
// K = H*hd into H GEMMs with K = hd.
// CHECK-LABEL: func.func @head_merge
// (The collapse folds into the projection by expansion: K = (h, d), which
// --mod-linalg-to-blas merges back into one K because T is contiguous.)
// CHECK:         %[[CTX:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
// CHECK:         %[[T:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel"]} ins(%[[CTX]] : tensor<2x8x4xf32>) outs(%{{.*}} : tensor<8x2x4xf32>)
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction", "reduction"]} ins(%[[T]], %{{.*}} : tensor<8x2x4xf32>, tensor<2x4x5xf32>)
func.func @head_merge(%p: tensor<2x8x8xf32>, %v: tensor<2x8x4xf32>, %w: tensor<8x5xf32>) -> tensor<8x5xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x8x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  %ctx = linalg.batch_matmul ins(%p, %v : tensor<2x8x8xf32>, tensor<2x8x4xf32>) outs(%z : tensor<2x8x4xf32>) -> tensor<2x8x4xf32>
  %te = tensor.empty() : tensor<8x2x4xf32>
  %t = linalg.transpose ins(%ctx : tensor<2x8x4xf32>) outs(%te : tensor<8x2x4xf32>) permutation = [1, 0, 2]
  %merged = tensor.collapse_shape %t [[0], [1, 2]] : tensor<8x2x4xf32> into tensor<8x8xf32>
  %oe = tensor.empty() : tensor<8x5xf32>
  %o0 = linalg.fill ins(%zero : f32) outs(%oe : tensor<8x5xf32>) -> tensor<8x5xf32>
  %o = linalg.matmul ins(%merged, %w : tensor<8x8xf32>, tensor<8x5xf32>) outs(%o0 : tensor<8x5xf32>) -> tensor<8x5xf32>
  return %o : tensor<8x5xf32>
}

// -----

// The causal mask [B,S,S] compares two broadcast position rows: cheaper to
// recompute in each user than to store as i1 and load back, so it fuses into
// all of its users (two layers' masking here), even those that broadcast it
// over heads. No i1 tensor remains; each user compares positions itself.
// CHECK-LABEL: func.func @causal_mask
// CHECK-NOT:     tensor<2x8x8xi1>
// CHECK:         linalg.generic
// CHECK:           arith.cmpi sle
// CHECK:           arith.select
// CHECK:         linalg.generic
// CHECK:           arith.cmpi sle
// CHECK:           arith.select
// CHECK-NOT:     tensor<2x8x8xi1>
#pj = affine_map<(b, i, j) -> (b, j)>
#pi = affine_map<(b, i, j) -> (b, i)>
#id3 = affine_map<(b, i, j) -> (b, i, j)>
#mask4 = affine_map<(b, h, i, j) -> (b, i, j)>
#id4 = affine_map<(b, h, i, j) -> (b, h, i, j)>
func.func @causal_mask(%pos: tensor<2x8xi32>, %s1: tensor<2x3x8x8xf32>, %s2: tensor<2x3x8x8xf32>)
    -> (tensor<2x3x8x8xf32>, tensor<2x3x8x8xf32>) {
  %masked = arith.constant -1.0e30 : f32
  %e = tensor.empty() : tensor<2x8x8xi1>
  %mask = linalg.generic {indexing_maps = [#pi, #pj, #id3],
                          iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%pos, %pos : tensor<2x8xi32>, tensor<2x8xi32>) outs(%e : tensor<2x8x8xi1>) {
  ^bb0(%qi: i32, %kj: i32, %out: i1):
    %v = arith.cmpi sle, %kj, %qi : i32
    linalg.yield %v : i1
  } -> tensor<2x8x8xi1>
  %o = tensor.empty() : tensor<2x3x8x8xf32>
  %r1 = linalg.generic {indexing_maps = [#id4, #mask4, #id4],
                        iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s1, %mask : tensor<2x3x8x8xf32>, tensor<2x8x8xi1>) outs(%o : tensor<2x3x8x8xf32>) {
  ^bb0(%s: f32, %m: i1, %out: f32):
    %v = arith.select %m, %s, %masked : f32
    linalg.yield %v : f32
  } -> tensor<2x3x8x8xf32>
  %r2 = linalg.generic {indexing_maps = [#id4, #mask4, #id4],
                        iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s2, %mask : tensor<2x3x8x8xf32>, tensor<2x8x8xi1>) outs(%o : tensor<2x3x8x8xf32>) {
  ^bb0(%s: f32, %m: i1, %out: f32):
    %v = arith.select %m, %s, %masked : f32
    linalg.yield %v : f32
  } -> tensor<2x3x8x8xf32>
  return %r1, %r2 : tensor<2x3x8x8xf32>, tensor<2x3x8x8xf32>
}

// -----

// A decode step's row of the keys: the transpose of the row's L filled
// cache slots, reshaped into the scores' batch_matmul, fuses into it as an
// indexing map over the cache slice (--mod-linalg-to-blas: strides of the
// cache), and nothing keeps the transpose alive for its dynamic size: the
// expanded init's size is the slice's %len, not a tensor.dim of the
// transposed tensor.
// CHECK:       #[[KMAP:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d3, d1, d4)>
// CHECK-LABEL: func.func @transpose_into_gemv
// CHECK-SAME:    (%[[Q:.*]]: tensor<1x1x12x64xf32>, %[[CACHE:.*]]: tensor<1x1024x12x64xf32>, %[[LEN:.*]]: index)
// CHECK-NOT:     tensor.dim
// CHECK-DAG:     %[[ROWS:.*]] = tensor.extract_slice %[[CACHE]][0, 0, 0, 0] [1, %[[LEN]], 12, 64]
// CHECK-DAG:     tensor.expand_shape %{{.*}} {{\[}}[0, 1], [2], [3]] output_shape [1, 12, 1, %[[LEN]]]
// CHECK:         linalg.generic {indexing_maps = [#{{.*}}, #[[KMAP]], #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[Q]], %[[ROWS]] : tensor<1x1x12x64xf32>, tensor<1x?x12x64xf32>)
// CHECK-NOT:     linalg.generic
// CHECK-NOT:     linalg.transpose
// CHECK:         return
func.func @transpose_into_gemv(%q: tensor<1x1x12x64xf32>, %cache: tensor<1x1024x12x64xf32>, %len: index) -> tensor<12x1x1024xf32> {
  %qe = tensor.empty() : tensor<1x12x1x64xf32>
  %qt = linalg.transpose ins(%q : tensor<1x1x12x64xf32>) outs(%qe : tensor<1x12x1x64xf32>) permutation = [0, 2, 1, 3]
  %qc = tensor.collapse_shape %qt [[0, 1], [2], [3]] : tensor<1x12x1x64xf32> into tensor<12x1x64xf32>
  %acc = tensor.empty() : tensor<12x1x1024xf32>
  %rows = tensor.extract_slice %cache[0, 0, 0, 0] [1, %len, 12, 64] [1, 1, 1, 1] : tensor<1x1024x12x64xf32> to tensor<1x?x12x64xf32>
  %e = tensor.empty(%len) : tensor<1x12x64x?xf32>
  %t = linalg.transpose ins(%rows : tensor<1x?x12x64xf32>) outs(%e : tensor<1x12x64x?xf32>) permutation = [0, 2, 3, 1]
  %c = tensor.collapse_shape %t [[0, 1], [2], [3]] : tensor<1x12x64x?xf32> into tensor<12x64x?xf32>
  %o = tensor.extract_slice %acc[0, 0, 0] [12, 1, %len] [1, 1, 1] : tensor<12x1x1024xf32> to tensor<12x1x?xf32>
  %zero = arith.constant 0.0 : f32
  %f = linalg.fill ins(%zero : f32) outs(%o : tensor<12x1x?xf32>) -> tensor<12x1x?xf32>
  %r = linalg.batch_matmul ins(%qc, %c : tensor<12x1x64xf32>, tensor<12x64x?xf32>) outs(%f : tensor<12x1x?xf32>) -> tensor<12x1x?xf32>
  %out = tensor.insert_slice %r into %acc[0, 0, 0] [12, 1, %len] [1, 1, 1] : tensor<12x1x?xf32> into tensor<12x1x1024xf32>
  return %out : tensor<12x1x1024xf32>
}

// -----

// The tied embedding's gradient: the LM head's weight gradient is a [D,V]
// GEMM from zeros (xᵀ·dlogits), transposed and added to the [V,D] gradient
// of the embedding lookup. The GEMM accumulates onto that gradient
// directly, its output map transposed ([V,D] written through (n, m)): no
// [D,V] temporary, no zero fill, no add.
// CHECK-DAG: #[[XT:.*]] = affine_map<(d0, d1, d2) -> (d2, d0)>
// CHECK-DAG: #[[DL:.*]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// CHECK-DAG: #[[OUT:.*]] = affine_map<(d0, d1, d2) -> (d1, d0)>
// CHECK-LABEL: func.func @tied_embedding_grad
// CHECK-SAME:    %[[X:.*]]: tensor<16x8xf32>, %[[DLOG:.*]]: tensor<16x32xf32>, %[[EMB:.*]]: tensor<32x8xf32>
// CHECK-NOT:     linalg.fill
// CHECK:         %[[G:.*]] = linalg.generic {indexing_maps = [#[[XT]], #[[DL]], #[[OUT]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME:        ins(%[[X]], %[[DLOG]] : tensor<16x8xf32>, tensor<16x32xf32>) outs(%[[EMB]] : tensor<32x8xf32>)
// CHECK:           arith.mulf
// CHECK:           arith.addf
// CHECK-NOT:     linalg.generic
// CHECK:         return %[[G]]
func.func @tied_embedding_grad(%x: tensor<16x8xf32>, %dlogits: tensor<16x32xf32>,
                               %emb: tensor<32x8xf32>) -> tensor<32x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e0 = tensor.empty() : tensor<8x16xf32>
  %xt = linalg.transpose ins(%x : tensor<16x8xf32>) outs(%e0 : tensor<8x16xf32>) permutation = [1, 0]
  %e1 = tensor.empty() : tensor<8x32xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e1 : tensor<8x32xf32>) -> tensor<8x32xf32>
  %dw = linalg.matmul ins(%xt, %dlogits : tensor<8x16xf32>, tensor<16x32xf32>) outs(%z : tensor<8x32xf32>) -> tensor<8x32xf32>
  %e2 = tensor.empty() : tensor<32x8xf32>
  %dwt = linalg.transpose ins(%dw : tensor<8x32xf32>) outs(%e2 : tensor<32x8xf32>) permutation = [1, 0]
  %e3 = tensor.empty() : tensor<32x8xf32>
  %sum = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                          affine_map<(d0, d1) -> (d0, d1)>,
                                          affine_map<(d0, d1) -> (d0, d1)>],
                         iterator_types = ["parallel", "parallel"]}
      ins(%emb, %dwt : tensor<32x8xf32>, tensor<32x8xf32>) outs(%e3 : tensor<32x8xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  } -> tensor<32x8xf32>
  return %sum : tensor<32x8xf32>
}

// -----

// Not accumulated: the GEMM result has a second user (it must exist on its
// own), or the GEMM does not start from zeros (its init is another tensor).
// CHECK-LABEL: func.func @not_accumulated
// CHECK:         linalg.fill
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK:         linalg.fill
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
func.func @not_accumulated(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>,
                           %x: tensor<4x4xf32>, %init: tensor<4x4xf32>)
    -> (tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  %e0 = tensor.empty() : tensor<4x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e0 : tensor<4x4xf32>) -> tensor<4x4xf32>
  %c = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%z : tensor<4x4xf32>) -> tensor<4x4xf32>
  %s = linalg.add ins(%x, %c : tensor<4x4xf32>, tensor<4x4xf32>) outs(%e0 : tensor<4x4xf32>) -> tensor<4x4xf32>
  %o = linalg.fill ins(%one : f32) outs(%e0 : tensor<4x4xf32>) -> tensor<4x4xf32>
  %c2 = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%o : tensor<4x4xf32>) -> tensor<4x4xf32>
  %s2 = linalg.add ins(%x, %c2 : tensor<4x4xf32>, tensor<4x4xf32>) outs(%e0 : tensor<4x4xf32>) -> tensor<4x4xf32>
  return %s, %c, %s2 : tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>
}

// -----

// A transposing copy of a GEMM result that nothing fuses into (here it is
// returned; in a train step it is the init of the embedding's scatter
// loop): the GEMM writes in the copy's order from a zero fill of the
// copy's shape, and no copy remains.
// CHECK-DAG: #[[XT:.*]] = affine_map<(d0, d1, d2) -> (d2, d0)>
// CHECK-DAG: #[[DL:.*]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// CHECK-DAG: #[[OUT:.*]] = affine_map<(d0, d1, d2) -> (d1, d0)>
// CHECK-LABEL: func.func @transposed_gemm_result
// CHECK:         %[[Z:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<32x8xf32>)
// CHECK:         %[[G:.*]] = linalg.generic {indexing_maps = [#[[XT]], #[[DL]], #[[OUT]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME:        outs(%[[Z]] : tensor<32x8xf32>)
// CHECK-NOT:     linalg.generic
// CHECK:         return %[[G]]
func.func @transposed_gemm_result(%x: tensor<16x8xf32>, %dlogits: tensor<16x32xf32>) -> tensor<32x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e0 = tensor.empty() : tensor<8x16xf32>
  %xt = linalg.transpose ins(%x : tensor<16x8xf32>) outs(%e0 : tensor<8x16xf32>) permutation = [1, 0]
  %e1 = tensor.empty() : tensor<8x32xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e1 : tensor<8x32xf32>) -> tensor<8x32xf32>
  %dw = linalg.matmul ins(%xt, %dlogits : tensor<8x16xf32>, tensor<16x32xf32>) outs(%z : tensor<8x32xf32>) -> tensor<8x32xf32>
  %e2 = tensor.empty() : tensor<32x8xf32>
  %dwt = linalg.transpose ins(%dw : tensor<8x32xf32>) outs(%e2 : tensor<32x8xf32>) permutation = [1, 0]
  return %dwt : tensor<32x8xf32>
}
