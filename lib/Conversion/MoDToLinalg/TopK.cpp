//===- TopK.cpp - mod.topk -> per-row radix select + ascending compaction -===//
//
// A static-shape top-k in O(S) per row, without sorting (the CPU counterpart
// of the CUDA routing kernel's radix select). Scores are mapped to unsigned
// integer keys whose order is a total order on floats; W = bits/8 passes of
// an 8-bit histogram, from the most significant digit down, find the key T
// of the K-th largest score and how many tokens with key T are needed; a
// last pass in token order takes every token with key > T and the first of
// those with key == T (ties go to the lower index), so exactly K tokens are
// written, in ascending index order. Per row that is (W + 2) * S steps
// (key, W histograms, compaction), W = 4 for f32; rows run in parallel.
//
// Keys: -0.0 and +0.0 are made equal first; NaNs order above +inf. With
// plain float comparisons a NaN would beat nothing and be beaten by nothing,
// and the row would select the wrong number of tokens.
//
//===----------------------------------------------------------------------===//
#include "Utils.h"
#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
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
Value indexConst(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

Value intConst(OpBuilder &b, Location loc, Type t, int64_t v) {
  return arith::ConstantOp::create(b, loc, t, b.getIntegerAttr(t, v));
}

struct TopKLowering : OpRewritePattern<TopKOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TopKOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto scoreType = cast<RankedTensorType>(op.getInput().getType());
    auto floatType = cast<FloatType>(scoreType.getElementType());
    int64_t batch = scoreType.getDimSize(0), seq = scoreType.getDimSize(1);
    int64_t k = op.getK();
    unsigned width = floatType.getWidth();
    if (width % 8 != 0)
      return rewriter.notifyMatchFailure(op, "score width is not whole bytes");
    unsigned digits = width / 8;
    Type i32 = rewriter.getI32Type(), idx = rewriter.getIndexType();
    Type keyTy = rewriter.getIntegerType(width);
    auto &b = rewriter;

    // The selection runs on buffers: the row loops read and write
    // individual elements, which tensors would express only as chains of
    // tensor.insert. The results go back to tensors for bufferization.
    auto scoreBufTy = MemRefType::get(scoreType.getShape(), floatType);
    Value scores = bufferization::ToBufferOp::create(b, loc, scoreBufTy,
                                                     op.getInput(),
                                                     /*readOnly=*/true);
    auto idxTensorTy = cast<RankedTensorType>(op.getIndices().getType());
    auto valTensorTy = cast<RankedTensorType>(op.getValues().getType());
    auto idxBufTy = MemRefType::get(idxTensorTy.getShape(), i32);
    auto valBufTy = MemRefType::get(valTensorTy.getShape(), floatType);
    Value idxBuf = memref::AllocOp::create(b, loc, idxBufTy);
    Value valBuf = memref::AllocOp::create(b, loc, valBufTy);

    Value c0 = indexConst(b, loc, 0), c1 = indexConst(b, loc, 1);
    Value cSeq = indexConst(b, loc, seq), c256 = indexConst(b, loc, 256);
    Value zeroI32 = intConst(b, loc, i32, 0), oneI32 = intConst(b, loc, i32, 1);
    Value zeroKey = intConst(b, loc, keyTy, 0);
    // Signed total-order key -> unsigned order: flip the sign bit.
    Value signBit = arith::ConstantOp::create(
        b, loc, keyTy,
        b.getIntegerAttr(keyTy, APInt::getSignedMinValue(width)));

    scf::ParallelOp::create(
        b, loc, ValueRange{c0}, ValueRange{indexConst(b, loc, batch)},
        ValueRange{c1}, [&](OpBuilder &rb, Location rl, ValueRange ivs) {
          Value row = ivs[0];
          // Per-row scratch on the owning thread's stack: S keys and the
          // 256-bin histogram.
          Value keys = memref::AllocaOp::create(
              rb, rl, MemRefType::get({seq}, keyTy));
          // Pass 1: keys.
          scf::ForOp::create(
              rb, rl, c0, cSeq, c1, ValueRange{},
              [&](OpBuilder &fb, Location fl, Value i, ValueRange) {
                Value s = memref::LoadOp::create(fb, fl, scores,
                                                 ValueRange{row, i});
                Value key = arith::XOrIOp::create(
                    fb, fl, totalOrderKey(fb, fl, s), signBit);
                memref::StoreOp::create(fb, fl, key, keys, ValueRange{i});
                scf::YieldOp::create(fb, fl);
              });
          Value hist = memref::AllocaOp::create(
              rb, rl, MemRefType::get({256}, i32));
          // Passes 2..W+1: one digit of T per pass, most significant first.
          Value prefix = zeroKey, mask = zeroKey;
          Value remaining = intConst(rb, rl, i32, k);
          for (unsigned d = 0; d < digits; ++d) {
            unsigned shift = width - 8 * (d + 1);
            scf::ForOp::create(
                rb, rl, c0, c256, c1, ValueRange{},
                [&](OpBuilder &fb, Location fl, Value j, ValueRange) {
                  memref::StoreOp::create(fb, fl, zeroI32, hist, ValueRange{j});
                  scf::YieldOp::create(fb, fl);
                });
            Value shiftV = intConst(rb, rl, keyTy, shift);
            Value byteMask = intConst(rb, rl, keyTy, 255);
            scf::ForOp::create(
                rb, rl, c0, cSeq, c1, ValueRange{},
                [&](OpBuilder &fb, Location fl, Value i, ValueRange) {
                  Value key = memref::LoadOp::create(fb, fl, keys, ValueRange{i});
                  Value high = arith::AndIOp::create(fb, fl, key, mask);
                  Value match = arith::CmpIOp::create(
                      fb, fl, arith::CmpIPredicate::eq, high, prefix);
                  scf::IfOp::create(fb, fl, match, [&](OpBuilder &tb,
                                                       Location tl) {
                    Value digit = arith::AndIOp::create(
                        tb, tl, arith::ShRUIOp::create(tb, tl, key, shiftV),
                        byteMask);
                    Value slot = arith::IndexCastUIOp::create(tb, tl, idx,
                                                              digit);
                    Value count = memref::LoadOp::create(tb, tl, hist,
                                                         ValueRange{slot});
                    memref::StoreOp::create(
                        tb, tl, arith::AddIOp::create(tb, tl, count, oneI32),
                        hist, ValueRange{slot});
                    scf::YieldOp::create(tb, tl);
                  });
                  scf::YieldOp::create(fb, fl);
                });
            // Scan digits from 255 down: the digit where the running count
            // of larger keys first reaches `remaining` is T's digit.
            auto scan = scf::ForOp::create(
                rb, rl, c0, c256, c1,
                ValueRange{zeroI32, zeroI32, intConst(rb, rl, i32, 0),
                           arith::ConstantOp::create(rb, rl,
                                                     rb.getBoolAttr(false))},
                [&](OpBuilder &fb, Location fl, Value j, ValueRange it) {
                  Value above = it[0], digitSoFar = it[1], before = it[2],
                        found = it[3];
                  Value digit = arith::SubIOp::create(
                      fb, fl, indexConst(fb, fl, 255), j);
                  Value count = memref::LoadOp::create(fb, fl, hist,
                                                       ValueRange{digit});
                  Value total = arith::AddIOp::create(fb, fl, above, count);
                  Value reaches = arith::CmpIOp::create(
                      fb, fl, arith::CmpIPredicate::sge, total, remaining);
                  Value notFound = arith::XOrIOp::create(
                      fb, fl, found,
                      arith::ConstantOp::create(fb, fl, fb.getBoolAttr(true)));
                  Value hit = arith::AndIOp::create(fb, fl, notFound, reaches);
                  Value digitI32 = arith::IndexCastUIOp::create(fb, fl, i32,
                                                                digit);
                  Value newDigit = arith::SelectOp::create(fb, fl, hit, digitI32,
                                                           digitSoFar);
                  Value newBefore = arith::SelectOp::create(fb, fl, hit, above,
                                                            before);
                  Value newAbove = arith::SelectOp::create(fb, fl, notFound,
                                                           total, above);
                  Value newFound = arith::OrIOp::create(fb, fl, found, hit);
                  scf::YieldOp::create(
                      fb, fl,
                      ValueRange{newAbove, newDigit, newBefore, newFound});
                });
            Value digitKey = scan.getResult(1);
            if (width > 32)
              digitKey = arith::ExtUIOp::create(rb, rl, keyTy, digitKey);
            else if (width < 32)
              digitKey = arith::TruncIOp::create(rb, rl, keyTy, digitKey);
            prefix = arith::OrIOp::create(
                rb, rl, prefix, arith::ShLIOp::create(rb, rl, digitKey, shiftV));
            mask = arith::OrIOp::create(
                rb, rl, mask, arith::ShLIOp::create(rb, rl, byteMask, shiftV));
            remaining = arith::SubIOp::create(rb, rl, remaining,
                                              scan.getResult(2));
          }
          // Last pass: ascending compaction. `prefix` is now T and
          // `remaining` the number of tokens with key T to take.
          Value threshold = prefix, ties = remaining;
          scf::ForOp::create(
              rb, rl, c0, cSeq, c1, ValueRange{c0, zeroI32},
              [&](OpBuilder &fb, Location fl, Value i, ValueRange it) {
                Value slot = it[0], tiesTaken = it[1];
                Value key = memref::LoadOp::create(fb, fl, keys, ValueRange{i});
                Value greater = arith::CmpIOp::create(
                    fb, fl, arith::CmpIPredicate::ugt, key, threshold);
                Value equal = arith::CmpIOp::create(
                    fb, fl, arith::CmpIPredicate::eq, key, threshold);
                Value tieLeft = arith::CmpIOp::create(
                    fb, fl, arith::CmpIPredicate::slt, tiesTaken, ties);
                Value takeTie = arith::AndIOp::create(fb, fl, equal, tieLeft);
                Value take = arith::OrIOp::create(fb, fl, greater, takeTie);
                auto ifOp = scf::IfOp::create(
                    fb, fl, take,
                    [&](OpBuilder &tb, Location tl) {
                      Value tok = arith::IndexCastOp::create(tb, tl, i32, i);
                      Value s = memref::LoadOp::create(tb, tl, scores,
                                                       ValueRange{row, i});
                      memref::StoreOp::create(tb, tl, tok, idxBuf,
                                              ValueRange{row, slot});
                      memref::StoreOp::create(tb, tl, s, valBuf,
                                              ValueRange{row, slot});
                      Value next = arith::AddIOp::create(tb, tl, slot, c1);
                      Value tieInc = arith::ExtUIOp::create(tb, tl, i32,
                                                            takeTie);
                      Value newTies =
                          arith::AddIOp::create(tb, tl, tiesTaken, tieInc);
                      scf::YieldOp::create(tb, tl, ValueRange{next, newTies});
                    },
                    [&](OpBuilder &eb, Location el) {
                      scf::YieldOp::create(eb, el, it);
                    });
                scf::YieldOp::create(fb, fl, ifOp.getResults());
              });
        });
    Value indices = bufferization::ToTensorOp::create(
        b, loc, idxTensorTy, idxBuf, /*restrict=*/true, /*writable=*/true);
    Value values = bufferization::ToTensorOp::create(
        b, loc, valTensorTy, valBuf, /*restrict=*/true, /*writable=*/true);
    rewriter.replaceOp(op, ValueRange{indices, values});
    return success();
  }
};
} // namespace

void mlir::mod::detail::populateTopKLowering(RewritePatternSet &patterns) {
  patterns.add<TopKLowering>(patterns.getContext());
}
