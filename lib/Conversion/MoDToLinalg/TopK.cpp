//===- TopK.cpp - mod.topk -> rank-based selection + ascending compaction -===//
//
// A static-shape top-k without sorting. Every token's rank is the number of
// tokens that beat it under a strict total order (larger score first, ties to
// the lower index); a token is selected iff its rank is < K, so every row
// selects exactly K tokens. A sequential scan then stores the selected
// indices in ascending order.
//
// Scores are compared through an integer key that orders floats totally
// (-0.0 and +0.0 are made equal first; NaNs order above +inf). With plain
// float comparisons a NaN would beat nothing and be beaten by nothing, more
// than K tokens would be selected and the compaction would write out of
// bounds.
//
//===----------------------------------------------------------------------===//

#include "Utils.h"
#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::mod;
using namespace mlir::mod::detail;

/// Maps a float to a signed integer of the same width whose order is a total
/// order on floats that agrees with `<` on non-NaN values.
static Value totalOrderKey(OpBuilder &b, Location loc, Value score) {
  auto ft = cast<FloatType>(score.getType());
  unsigned width = ft.getWidth();
  Type it = b.getIntegerType(width);
  // -0.0 + 0.0 == +0.0, so both zeros get the same key and tie by index.
  Value zero = arith::ConstantOp::create(b, loc, ft, b.getFloatAttr(ft, 0.0));
  Value canon = arith::AddFOp::create(b, loc, score, zero);
  Value bits = arith::BitcastOp::create(b, loc, it, canon);
  // Negative floats order in reverse of their magnitude bits: flip them.
  Value shift = arith::ConstantOp::create(b, loc, it,
                                          b.getIntegerAttr(it, width - 1));
  Value sign = arith::ShRSIOp::create(b, loc, bits, shift); // 0 or all ones
  Value magMask = arith::ConstantOp::create(
      b, loc, it,
      b.getIntegerAttr(it, APInt::getSignedMaxValue(width)));
  Value flip = arith::AndIOp::create(b, loc, sign, magMask);
  return arith::XOrIOp::create(b, loc, bits, flip);
}

namespace {
struct TopKLowering : OpRewritePattern<TopKOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TopKOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    auto scoreType = cast<RankedTensorType>(op.getInput().getType());
    int64_t batch = scoreType.getDimSize(0), seq = scoreType.getDimSize(1);
    int64_t k = op.getK();
    Type i32 = rewriter.getI32Type();

    // key[b,i]: the scores mapped once to totally ordered integers.
    auto keyType = RankedTensorType::get(
        {batch, seq},
        rewriter.getIntegerType(scoreType.getElementTypeBitWidth()));
    Value keyInit = tensor::EmptyOp::create(rewriter, loc, keyType.getShape(),
                                            keyType.getElementType());
    AffineMap id2 = rewriter.getMultiDimIdentityMap(2);
    Value keys =
        linalg::GenericOp::create(
            rewriter, loc, keyType, ValueRange{op.getInput()},
            ValueRange{keyInit}, ArrayRef<AffineMap>{id2, id2},
            parallelIterators(2),
            [](OpBuilder &nb, Location nloc, ValueRange args) {
              linalg::YieldOp::create(nb, nloc,
                                      totalOrderKey(nb, nloc, args[0]));
            })
            .getResult(0);

    // rank[b,i] = #{ j : key[j] > key[i] or (key[j] == key[i] and j < i) }.
    auto rankType = RankedTensorType::get({batch, seq}, i32);
    Value zeros =
        createFilled(rewriter, loc, rankType, rewriter.getI32IntegerAttr(0));
    AffineExpr b, i, j;
    bindDims(ctx, b, i, j);
    auto otherMap = AffineMap::get(3, 0, {b, j}, ctx);
    auto selfMap = AffineMap::get(3, 0, {b, i}, ctx);
    auto ranks = linalg::GenericOp::create(
        rewriter, loc, rankType, ValueRange{keys, keys}, ValueRange{zeros},
        ArrayRef<AffineMap>{otherMap, selfMap, selfMap},
        {utils::IteratorType::parallel, utils::IteratorType::parallel,
         utils::IteratorType::reduction},
        [&](OpBuilder &nb, Location nloc, ValueRange args) {
          Value other = args[0], self = args[1];
          Value jIdx = linalg::IndexOp::create(nb, nloc, 2);
          Value iIdx = linalg::IndexOp::create(nb, nloc, 1);
          Value greater = arith::CmpIOp::create(
              nb, nloc, arith::CmpIPredicate::sgt, other, self);
          Value equal = arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::eq,
                                              other, self);
          Value before = arith::CmpIOp::create(
              nb, nloc, arith::CmpIPredicate::ult, jIdx, iIdx);
          Value tieWin = arith::AndIOp::create(nb, nloc, equal, before);
          Value beats = arith::OrIOp::create(nb, nloc, greater, tieWin);
          Value inc = arith::ExtUIOp::create(nb, nloc, nb.getI32Type(), beats);
          Value sum = arith::AddIOp::create(nb, nloc, args[2], inc);
          linalg::YieldOp::create(nb, nloc, sum);
        });
    Value rankTensor = ranks.getResult(0);

    // Ascending compaction: walk each row in token order and append the
    // selected tokens.
    auto idxType = cast<RankedTensorType>(op.getIndices().getType());
    auto valType = cast<RankedTensorType>(op.getValues().getType());
    Value idxInit = tensor::EmptyOp::create(rewriter, loc, idxType.getShape(), i32);
    Value valInit = tensor::EmptyOp::create(rewriter, loc, valType.getShape(),
                                            valType.getElementType());
    Value c0 = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value c1 = arith::ConstantIndexOp::create(rewriter, loc, 1);
    Value cBatch = arith::ConstantIndexOp::create(rewriter, loc, batch);
    Value cSeq = arith::ConstantIndexOp::create(rewriter, loc, seq);
    Value kI32 = arith::ConstantIntOp::create(rewriter, loc, i32, k);
    Value scores = op.getInput();

    auto outer = scf::ForOp::create(
        rewriter, loc, c0, cBatch, c1, ValueRange{idxInit, valInit},
        [&](OpBuilder &ob, Location oloc, Value bIv, ValueRange rowIter) {
          auto inner = scf::ForOp::create(
              ob, oloc, c0, cSeq, c1, ValueRange{rowIter[0], rowIter[1], c0},
              [&](OpBuilder &ib, Location iloc, Value iIv, ValueRange it) {
                Value rank = tensor::ExtractOp::create(ib, iloc, rankTensor,
                                                       ValueRange{bIv, iIv});
                Value selected = arith::CmpIOp::create(
                    ib, iloc, arith::CmpIPredicate::slt, rank, kI32);
                auto ifOp = scf::IfOp::create(
                    ib, iloc, selected,
                    [&](OpBuilder &tb, Location tloc) {
                      Value slot = it[2];
                      Value tok = arith::IndexCastOp::create(tb, tloc, i32, iIv);
                      Value score = tensor::ExtractOp::create(
                          tb, tloc, scores, ValueRange{bIv, iIv});
                      Value newIdx = tensor::InsertOp::create(
                          tb, tloc, tok, it[0], ValueRange{bIv, slot});
                      Value newVal = tensor::InsertOp::create(
                          tb, tloc, score, it[1], ValueRange{bIv, slot});
                      Value next = arith::AddIOp::create(tb, tloc, slot, c1);
                      scf::YieldOp::create(tb, tloc,
                                           ValueRange{newIdx, newVal, next});
                    },
                    [&](OpBuilder &eb, Location eloc) {
                      scf::YieldOp::create(eb, eloc, it);
                    });
                scf::YieldOp::create(ib, iloc, ifOp.getResults());
              });
          scf::YieldOp::create(
              ob, oloc, ValueRange{inner.getResult(0), inner.getResult(1)});
        });
    rewriter.replaceOp(op, outer.getResults());
    return success();
  }
};
} // namespace

void mlir::mod::detail::populateTopKLowering(RewritePatternSet &patterns) {
  patterns.add<TopKLowering>(patterns.getContext());
}
