//===- Attention.cpp - causal attention and RoPE for mod-import -----------===//
//
// Everything here that depends on where a token sits in its sequence reads
// the positions tensor: the mask compares positions[b,j] with positions[b,i]
// and RoPE angles are position * inv_freq. Nothing uses the token's index
// along the sequence axis, because --mod-dense-to-mod re-runs these ops on a
// gathered subset of tokens whose positions are no longer 0..K-1.
//
//===----------------------------------------------------------------------===//

#include "TransformerBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <cmath>

using namespace mlir;
using namespace mlir::mod::frontend::detail;

/// Score given to a key the query may not see. Finite rather than -inf so
/// that an online softmax starting from -inf never computes -inf - -inf.
static constexpr double kMaskedScore = -1.0e30;

std::pair<Value, Value> TransformerBuilder::ropeTables(Value positions,
                                                       ArrayRef<double> invFreqs,
                                                       double scaling) {
  // inv_freq is computed in double (see computeRopeFrequencies) and rounded
  // once; the table repeats it over both halves like HF's cat(freqs, freqs).
  int64_t half = invFreqs.size(), headDim = 2 * half;
  SmallVector<float> invFreq(headDim);
  for (int64_t i = 0; i < half; ++i)
    invFreq[i] = invFreq[i + half] = static_cast<float>(invFreqs[i]);
  Value freqs = f32VectorConstant(invFreq);
  SmallVector<int64_t> shape{batchSize, seqLen, headDim};
  float scale = static_cast<float>(scaling);
  SmallVector<Value> tables = generic(
      {positions, freqs},
      {empty(shape, b.getF32Type()), empty(shape, b.getF32Type())},
      {project(3, {0, 1}), project(3, {2}), identity(3), identity(3)}, 0,
      [scale](OpBuilder &nb, Location nl, ValueRange args) {
        Value pos = arith::SIToFPOp::create(nb, nl, nb.getF32Type(), args[0]);
        Value angle = arith::MulFOp::create(nb, nl, pos, args[1]);
        Value c = math::CosOp::create(nb, nl, angle);
        Value s = math::SinOp::create(nb, nl, angle);
        if (scale != 1.0f) {
          // YaRN: cos and sin times the attention factor, as HF does.
          Value factor = arith::ConstantOp::create(
              nb, nl, nb.getF32FloatAttr(scale));
          c = arith::MulFOp::create(nb, nl, c, factor);
          s = arith::MulFOp::create(nb, nl, s, factor);
        }
        linalg::YieldOp::create(nb, nl, ValueRange{c, s});
      });
  return {tables[0], tables[1]};
}

Value TransformerBuilder::applyRope(Value x, Value cos, Value sin) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(x.getType()).getShape();
  int64_t heads = shape[2], headDim = shape[3], half = headDim / 2;
  // Work on [B,S,N,2,hd/2] so that both halves are plain slices: building
  // rotate_half(x) as a concatenated tensor would copy between strided
  // buffers, which the CPU pipeline lowers to a runtime library call.
  SmallVector<int64_t> splitShape{batchSize, seqLen, heads, 2, half};
  Value split = expand(x, splitShape, {{0}, {1}, {2}, {3, 4}});
  auto halfOf = [&](int64_t index) -> Value {
    SmallVector<OpFoldResult> offsets(5, b.getIndexAttr(0));
    offsets[3] = b.getIndexAttr(index);
    SmallVector<OpFoldResult> sizes, strides(5, b.getIndexAttr(1));
    for (int64_t dim : splitShape)
      sizes.push_back(b.getIndexAttr(dim));
    sizes[3] = b.getIndexAttr(1);
    auto type = f32Type({batchSize, seqLen, heads, half});
    return tensor::ExtractSliceOp::create(b, loc, type, split, offsets, sizes,
                                          strides);
  };
  Value low = halfOf(0), high = halfOf(1);
  SmallVector<int64_t> tableShape{batchSize, seqLen, 2, half};
  Value cosSplit = expand(cos, tableShape, {{0}, {1}, {2, 3}});
  Value sinSplit = expand(sin, tableShape, {{0}, {1}, {2, 3}});
  // Loops (b, s, n, t, i): t selects the half, i the frequency; neither is
  // a token axis.
  Value rotated = map(
      {split, low, high, cosSplit, sinSplit},
      {identity(5), project(5, {0, 1, 2, 4}), project(5, {0, 1, 2, 4}),
       project(5, {0, 1, 3, 4}), project(5, {0, 1, 3, 4})},
      splitShape, [](OpBuilder &nb, Location nl, ValueRange args) {
        // rotate_half(x) = cat(-x[hd/2:], x[:hd/2]).
        Value t = linalg::IndexOp::create(nb, nl, 3);
        Value zero = arith::ConstantIndexOp::create(nb, nl, 0);
        Value firstHalf = arith::CmpIOp::create(
            nb, nl, arith::CmpIPredicate::eq, t, zero);
        Value negHigh = arith::NegFOp::create(nb, nl, args[2]);
        Value partner =
            arith::SelectOp::create(nb, nl, firstHalf, negHigh, args[1]);
        Value direct = arith::MulFOp::create(nb, nl, args[0], args[3]);
        Value cross = arith::MulFOp::create(nb, nl, partner, args[4]);
        Value out = arith::AddFOp::create(nb, nl, direct, cross);
        linalg::YieldOp::create(nb, nl, out);
      });
  return collapse(rotated, {{0}, {1}, {2}, {3, 4}});
}

Value TransformerBuilder::repeatKV(Value x, int64_t groups) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(x.getType()).getShape();
  int64_t kvHeads = shape[2], headDim = shape[3];
  // [B,S,KV,G,hd] then merge (KV,G): query head h = kv * G + g reads kv head
  // h / G, as in HF's repeat_kv.
  Value wide = map({x}, {project(5, {0, 1, 2, 4})},
                   {shape[0], shape[1], kvHeads, groups, headDim},
                   [](OpBuilder &nb, Location nl, ValueRange args) {
                     linalg::YieldOp::create(nb, nl, args[0]);
                   });
  return collapse(wide, {{0}, {1}, {2, 3}, {4}});
}

Value TransformerBuilder::causalMask(Value positions) {
  Value init = empty({batchSize, seqLen, seqLen}, b.getI1Type());
  // Loops (b, i, j): query i, key j, both along the token axis.
  return generic({positions, positions}, {init},
                 {project(3, {0, 1}), project(3, {0, 2}), identity(3)}, 0,
                 [](OpBuilder &nb, Location nl, ValueRange args) {
                   Value visible = arith::CmpIOp::create(
                       nb, nl, arith::CmpIPredicate::sle, args[1], args[0]);
                   linalg::YieldOp::create(nb, nl, visible);
                 })[0];
}

Value TransformerBuilder::softmaxLast(Value scores) {
  ArrayRef<int64_t> shape =
      cast<RankedTensorType>(scores.getType()).getShape();
  unsigned rank = shape.size();
  AffineMap rowMap = project(rank, {0, 1, 2});
  Value rowMax = maxLast(scores);
  Value exps = map({scores, rowMax}, {identity(rank), rowMap}, shape,
                   [](OpBuilder &nb, Location nl, ValueRange args) {
                     Value shifted =
                         arith::SubFOp::create(nb, nl, args[0], args[1]);
                     linalg::YieldOp::create(
                         nb, nl, math::ExpOp::create(nb, nl, shifted).getResult());
                   });
  Value rowSum = sumLast(exps, {}, [](OpBuilder &, Location, ValueRange args) {
    return args[0];
  });
  return map({exps, rowSum}, {identity(rank), rowMap}, shape,
             [](OpBuilder &nb, Location nl, ValueRange args) {
               Value p = arith::DivFOp::create(nb, nl, args[0], args[1]);
               linalg::YieldOp::create(nb, nl, p);
             });
}

Value TransformerBuilder::attention(Value q, Value k, Value v,
                                    Value positions) {
  ArrayRef<int64_t> qShape = cast<RankedTensorType>(q.getType()).getShape();
  int64_t heads = qShape[2], headDim = qShape[3];
  int64_t kvHeads = cast<RankedTensorType>(k.getType()).getDimSize(2);
  if (kvHeads != heads) {
    k = repeatKV(k, heads / kvHeads);
    v = repeatKV(v, heads / kvHeads);
  }
  int64_t bh = batchSize * heads;
  // [B,S,H,hd] -> [B,H,S,hd] -> [B*H,S,hd]; keys go to [B*H,hd,S].
  Value qh = collapse(transpose(q, {0, 2, 1, 3}), {{0, 1}, {2}, {3}});
  Value kt = collapse(transpose(k, {0, 2, 3, 1}), {{0, 1}, {2}, {3}});
  Value vh = collapse(transpose(v, {0, 2, 1, 3}), {{0, 1}, {2}, {3}});

  Value scores =
      linalg::BatchMatmulOp::create(b, loc, ValueRange{qh, kt},
                                    ValueRange{filled({bh, seqLen, seqLen}, 0.0)})
          .getResult(0);
  SmallVector<int64_t> scoreShape{batchSize, heads, seqLen, seqLen};
  scores = expand(scores, scoreShape, {{0, 1}, {2}, {3}});

  Value mask = causalMask(positions);
  Value scale = f32Constant(1.0 / std::sqrt(static_cast<double>(headDim)));
  Value masked = f32Constant(kMaskedScore);
  Value logits = map({scores, mask}, {identity(4), project(4, {0, 2, 3})},
                     scoreShape,
                     [&](OpBuilder &nb, Location nl, ValueRange args) {
                       Value scaled =
                           arith::MulFOp::create(nb, nl, args[0], scale);
                       Value out = arith::SelectOp::create(nb, nl, args[1],
                                                           scaled, masked);
                       linalg::YieldOp::create(nb, nl, out);
                     });
  Value probs = collapse(softmaxLast(logits), {{0, 1}, {2}, {3}});

  Value context =
      linalg::BatchMatmulOp::create(b, loc, ValueRange{probs, vh},
                                    ValueRange{filled({bh, seqLen, headDim}, 0.0)})
          .getResult(0);
  context = expand(context, {batchSize, heads, seqLen, headDim},
                   {{0, 1}, {2}, {3}});
  // Back to [B,S,H,hd] and merge heads, h-major like HF's reshape.
  return collapse(transpose(context, {0, 2, 1, 3}), {{0}, {1}, {2, 3}});
}
