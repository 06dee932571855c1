//===- ExpandRoutedBlocks.cpp - mod.routed_block -> routing primitives ----===//

#include "mod/Dialect/MoD/IR/MoDOps.h"
#include "mod/Dialect/MoD/Transforms/Elementwise.h"
#include "mod/Dialect/MoD/Transforms/Passes.h"
#include "mod/Dialect/MoD/Transforms/RoutedBlocks.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::mod {
#define GEN_PASS_DEF_EXPANDROUTEDBLOCKS
#include "mod/Dialect/MoD/Transforms/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod;

/// The gate g(r) of a scalar router score.
static Value buildGateScalar(OpBuilder &b, Location loc, GateKind gate,
                             Value r) {
  return gate == GateKind::Sigmoid ? buildSigmoid(b, loc, r) : r;
}

/// Inlines the body of `op` on (`tokens`, `positions`) before `op` and
/// returns the yielded residual contribution.
static Value inlineBody(RoutedBlockOp op, IRRewriter &rewriter, Value tokens,
                        Value positions) {
  Block &body = op.getBody().front();
  auto yield = cast<YieldOp>(body.getTerminator());
  rewriter.inlineBlockBefore(&body, op, ValueRange{tokens, positions});
  // Read the yielded value only now: it may have been a block argument,
  // which inlining replaced with the gathered tokens.
  Value update = yield.getValue();
  rewriter.eraseOp(yield);
  return update;
}

TopKOp mlir::mod::expandRoutedBlockOn(RoutedBlockOp op, Value scores,
                                      bool unitScale, IRRewriter &rewriter) {
  Location loc = op.getLoc();
  rewriter.setInsertionPoint(op);
  auto inType = cast<RankedTensorType>(op.getInput().getType());
  auto posType = cast<RankedTensorType>(op.getPositions().getType());
  int64_t b = inType.getDimSize(0), d = inType.getDimSize(2),
          k = op.getCapacity();
  Type et = inType.getElementType();

  auto idxType = RankedTensorType::get({b, k}, rewriter.getI32Type());
  auto valType = RankedTensorType::get({b, k}, et);
  auto topk = TopKOp::create(rewriter, loc, idxType, valType, scores,
                             rewriter.getI64IntegerAttr(k));
  Value xk = GatherOp::create(rewriter, loc,
                              RankedTensorType::get({b, k, d}, et),
                              op.getInput(), topk.getIndices());
  Value pk = GatherOp::create(
      rewriter, loc, RankedTensorType::get({b, k}, posType.getElementType()),
      op.getPositions(), topk.getIndices());

  Value update = inlineBody(op, rewriter, xk, pk);

  // The gate stays an attribute of the scatter: lowerings fuse it and the
  // adjoint reads it, instead of recognizing a separate elementwise op.
  Value scale = topk.getValues();
  GateKind gate = op.getGate();
  if (unitScale) {
    scale = arith::ConstantOp::create(
        rewriter, loc, valType,
        DenseElementsAttr::get(valType, rewriter.getFloatAttr(et, 1.0)));
    gate = GateKind::Identity;
  }
  Value out = ScatterAddOp::create(rewriter, loc, inType, op.getInput(),
                                   topk.getIndices(), update, scale, gate);
  rewriter.replaceOp(op, out);
  return topk;
}

void mlir::mod::expandRoutedBlock(RoutedBlockOp op, IRRewriter &rewriter) {
  rewriter.setInsertionPoint(op);
  auto inType = cast<RankedTensorType>(op.getInput().getType());
  auto scoreType = RankedTensorType::get(
      {inType.getDimSize(0), inType.getDimSize(1)}, inType.getElementType());
  Value scores = RouterOp::create(rewriter, op.getLoc(), scoreType,
                                  op.getInput(), op.getRouterWeight());
  (void)expandRoutedBlockOn(op, scores, /*unitScale=*/false, rewriter);
}

/// Threshold (causal) routing with static shapes: the body runs on all S
/// tokens. A token is routed iff its router logit is > 0. Unrouted tokens
/// get the position max(p[b,:]) + 1, later than every real position of their
/// sequence, so the body's position-causal attention (query i sees key j iff
/// pk[j] <= pk[i]) never shows them to a routed query: exactly the attention
/// over the routed set alone. Their own outputs are dropped by a select, so
/// they pass through unchanged.
static void expandThresholdRoutedBlock(RoutedBlockOp op,
                                       IRRewriter &rewriter) {
  Location loc = op.getLoc();
  rewriter.setInsertionPoint(op);
  Value x = op.getInput(), p = op.getPositions();
  auto inType = cast<RankedTensorType>(x.getType());
  auto posType = cast<RankedTensorType>(p.getType());
  int64_t b = inType.getDimSize(0), s = inType.getDimSize(1);
  int64_t rank = inType.getRank();
  Type et = inType.getElementType();
  auto posElt = cast<IntegerType>(posType.getElementType());
  MLIRContext *ctx = rewriter.getContext();

  Value scores = RouterOp::create(rewriter, loc,
                                  RankedTensorType::get({b, s}, et), x,
                                  op.getRouterWeight());

  // Row maxima of the positions: a [B] reduction.
  Value minPos = arith::ConstantOp::create(
      rewriter, loc, posElt,
      rewriter.getIntegerAttr(posElt,
                              APInt::getSignedMinValue(posElt.getWidth())));
  Value rowMaxInit = linalg::FillOp::create(
                         rewriter, loc, minPos,
                         ValueRange{tensor::EmptyOp::create(
                             rewriter, loc, ArrayRef<int64_t>{b}, posElt)})
                         .getResult(0);
  AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, ctx);
  AffineMap row2 = AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx);
  Value rowMax =
      linalg::GenericOp::create(
          rewriter, loc, rowMaxInit.getType(), ValueRange{p},
          ValueRange{rowMaxInit}, ArrayRef<AffineMap>{id2, row2},
          ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                        utils::IteratorType::reduction},
          [](OpBuilder &nb, Location nl, ValueRange args) {
            linalg::YieldOp::create(
                nb, nl,
                arith::MaxSIOp::create(nb, nl, args[0], args[1]).getResult());
          })
          .getResult(0);

  // pk = routed ? p : rowMax + 1.
  Value pkInit = tensor::EmptyOp::create(rewriter, loc, posType.getShape(),
                                         posElt);
  Value pk =
      linalg::GenericOp::create(
          rewriter, loc, posType, ValueRange{p, scores, rowMax},
          ValueRange{pkInit}, ArrayRef<AffineMap>{id2, id2, row2, id2},
          SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value zero = arith::ConstantOp::create(nb, nl, et,
                                                   nb.getFloatAttr(et, 0.0));
            Value routed = arith::CmpFOp::create(
                nb, nl, arith::CmpFPredicate::OGT, args[1], zero);
            Value one = arith::ConstantOp::create(
                nb, nl, posElt, nb.getIntegerAttr(posElt, 1));
            Value later = arith::AddIOp::create(nb, nl, args[2], one);
            linalg::YieldOp::create(
                nb, nl,
                arith::SelectOp::create(nb, nl, routed, args[0], later)
                    .getResult());
          })
          .getResult(0);

  Value update = inlineBody(op, rewriter, x, pk);

  // out = routed ? x + g(r) * d : x.
  AffineMap idN = AffineMap::getMultiDimIdentityMap(rank, ctx);
  AffineMap tokN = AffineMap::get(
      rank, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx)}, ctx);
  Value outInit = tensor::EmptyOp::create(rewriter, loc, inType.getShape(), et);
  GateKind gate = op.getGate();
  Value out =
      linalg::GenericOp::create(
          rewriter, loc, inType, ValueRange{x, update, scores},
          ValueRange{outInit}, ArrayRef<AffineMap>{idN, idN, tokN, idN},
          SmallVector<utils::IteratorType>(rank,
                                           utils::IteratorType::parallel),
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value zero = arith::ConstantOp::create(nb, nl, et,
                                                   nb.getFloatAttr(et, 0.0));
            Value routed = arith::CmpFOp::create(
                nb, nl, arith::CmpFPredicate::OGT, args[2], zero);
            Value g = buildGateScalar(nb, nl, gate, args[2]);
            Value scaled = arith::MulFOp::create(nb, nl, g, args[1]);
            Value sum = arith::AddFOp::create(nb, nl, args[0], scaled);
            linalg::YieldOp::create(
                nb, nl,
                arith::SelectOp::create(nb, nl, routed, sum, args[0])
                    .getResult());
          })
          .getResult(0);
  rewriter.replaceOp(op, out);
}

namespace {
struct ExpandRoutedBlocksPass
    : mod::impl::ExpandRoutedBlocksBase<ExpandRoutedBlocksPass> {
  using Base::Base;

  void runOnOperation() override {
    bool threshold = routing == "threshold";
    if (!threshold && routing != "topk") {
      getOperation()->emitError()
          << "--mod-expand-routed-blocks: unknown routing '" << routing
          << "' (expected topk or threshold)";
      return signalPassFailure();
    }
    SmallVector<RoutedBlockOp> blocks;
    // Post-order: an inner routed block is expanded before the one holding it.
    getOperation()->walk([&](RoutedBlockOp op) { blocks.push_back(op); });
    // Check every block before rewriting any, so a failure leaves the IR as
    // it was.
    bool ok = true;
    if (threshold)
      for (RoutedBlockOp op : blocks) {
        int64_t s =
            cast<RankedTensorType>(op.getInput().getType()).getDimSize(1);
        if (static_cast<int64_t>(op.getCapacity()) != s) {
          op.emitOpError()
              << "threshold routing needs capacity equal to the sequence "
                 "length "
              << s << " (the block runs on every token and masks the "
                      "unrouted ones), got capacity "
              << op.getCapacity();
          ok = false;
        }
      }
    if (!ok)
      return signalPassFailure();
    IRRewriter rewriter(&getContext());
    for (RoutedBlockOp op : blocks) {
      if (threshold)
        expandThresholdRoutedBlock(op, rewriter);
      else
        expandRoutedBlock(op, rewriter);
    }
  }
};
} // namespace
