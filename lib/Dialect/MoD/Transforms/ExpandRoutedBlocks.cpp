//===- ExpandRoutedBlocks.cpp - mod.routed_block -> routing primitives ----===//

#include "mod/Dialect/MoD/IR/MoDOps.h"
#include "mod/Dialect/MoD/Transforms/Elementwise.h"
#include "mod/Dialect/MoD/Transforms/Passes.h"
#include "mod/Dialect/MoD/Transforms/RoutedBlocks.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
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

/// The routed block's name: its router weight's `mod.name` without
/// `.mod.router.weight`, else "block<N>" (N counting the routed blocks of the
/// function), as --mod-generate-grad and --mod-generate-decode name it.
static std::string blockPrefix(RoutedBlockOp op, func::FuncOp func,
                               unsigned ordinal) {
  if (auto arg = dyn_cast<BlockArgument>(op.getRouterWeight());
      arg && func && arg.getOwner() == &func.getBody().front())
    if (auto name =
            func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "mod.name")) {
      StringRef n = name.getValue();
      if (n.consume_back(".mod.router.weight"))
        return n.str();
    }
  return "block" + std::to_string(ordinal);
}

/// Adds the predictor MLP's parameters of the block named `prefix` to
/// `func`, before its first argument that is not a parameter, named and
/// initialized as --mod-generate-grad=predictor creates them:
/// `<prefix>.mod.predictor.{fc1.weight [D,H], fc1.bias [H], fc2.weight [H],
/// fc2.bias []}`. Returns the four arguments.
static SmallVector<Value> addPredictorParameters(func::FuncOp func,
                                                 StringRef prefix,
                                                 RankedTensorType inType,
                                                 int64_t hidden) {
  OpBuilder b(func.getContext());
  Type et = inType.getElementType();
  int64_t width = inType.getDimSize(2);
  unsigned index = 0;
  while (index < func.getNumArguments()) {
    auto kind = func.getArgAttrOfType<StringAttr>(index, "mod.kind");
    if (!kind || kind.getValue() != "parameter")
      break;
    ++index;
  }
  struct Param {
    const char *name;
    SmallVector<int64_t> shape;
    const char *init;
  } params[] = {{"fc1.weight", {width, hidden}, "normal:0.02"},
                {"fc1.bias", {hidden}, "zeros"},
                {"fc2.weight", {hidden}, "normal:0.02"},
                {"fc2.bias", {}, "zeros"}};
  SmallVector<Value> args;
  for (const Param &param : params) {
    std::string name = (prefix + ".mod.predictor." + param.name).str();
    SmallVector<NamedAttribute> attrs{
        b.getNamedAttr("mod.name", b.getStringAttr(name)),
        b.getNamedAttr("mod.kind", b.getStringAttr("parameter")),
        b.getNamedAttr("mod.init", b.getStringAttr(param.init))};
    // Cannot fail: a func.func takes any argument types.
    (void)func.insertArgument(index, RankedTensorType::get(param.shape, et),
                              b.getDictionaryAttr(attrs), func.getLoc());
    args.push_back(func.getArgument(index));
    ++index;
  }
  return args;
}

/// The predictor's logits tanh(x W1 + b1) . w2 + b2 of every token of
/// x [B,S,D]: [B,S].
static Value buildPredictorLogits(OpBuilder &b, Location loc, Value x,
                                  ArrayRef<Value> params) {
  auto xType = cast<RankedTensorType>(x.getType());
  Type et = xType.getElementType();
  int64_t batch = xType.getDimSize(0), seq = xType.getDimSize(1);
  int64_t hidden = cast<RankedTensorType>(params[0].getType()).getDimSize(1);
  MLIRContext *ctx = b.getContext();
  Value zero = arith::ConstantOp::create(b, loc, et, b.getFloatAttr(et, 0.0));
  auto zeros = [&](ArrayRef<int64_t> shape) {
    return linalg::FillOp::create(
               b, loc, zero,
               ValueRange{tensor::EmptyOp::create(b, loc, shape, et)})
        .getResult(0);
  };
  Value flat = tensor::CollapseShapeOp::create(
      b, loc, x, ArrayRef<ReassociationIndices>{{0, 1}, {2}});
  Value pre = linalg::MatmulOp::create(b, loc, ValueRange{flat, params[0]},
                                       ValueRange{zeros({batch * seq, hidden})})
                  .getResult(0);
  AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, ctx);
  AffineMap d0 = AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx);
  AffineMap d1 = AffineMap::get(2, 0, {getAffineDimExpr(1, ctx)}, ctx);
  AffineMap none = AffineMap::get(2, 0, {}, ctx);
  // Loops (token, hidden): h = tanh(pre + b1); logit = sum_h h * w2, plus b2
  // once (at hidden index 0).
  Value h =
      linalg::GenericOp::create(
          b, loc, pre.getType(), ValueRange{pre, params[1]},
          ValueRange{tensor::EmptyOp::create(
              b, loc, ArrayRef<int64_t>{batch * seq, hidden}, et)},
          ArrayRef<AffineMap>{id2, d1, id2},
          SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
          [](OpBuilder &nb, Location nl, ValueRange args) {
            linalg::YieldOp::create(
                nb, nl,
                math::TanhOp::create(
                    nb, nl, arith::AddFOp::create(nb, nl, args[0], args[1]))
                    .getResult());
          })
          .getResult(0);
  Value logits =
      linalg::GenericOp::create(
          b, loc, RankedTensorType::get({batch * seq}, et),
          ValueRange{h, params[2], params[3]}, ValueRange{zeros({batch * seq})},
          ArrayRef<AffineMap>{id2, d1, none, d0},
          ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                        utils::IteratorType::reduction},
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value j = linalg::IndexOp::create(nb, nl, 1);
            Value first = arith::CmpIOp::create(
                nb, nl, arith::CmpIPredicate::eq, j,
                arith::ConstantIndexOp::create(nb, nl, 0));
            Value term = arith::MulFOp::create(nb, nl, args[0], args[1]);
            Value withBias = arith::AddFOp::create(nb, nl, term, args[2]);
            Value add =
                arith::SelectOp::create(nb, nl, first, withBias, term);
            linalg::YieldOp::create(
                nb, nl, arith::AddFOp::create(nb, nl, args[3], add).getResult());
          })
          .getResult(0);
  return tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get({batch, seq}, et), logits,
      ArrayRef<ReassociationIndices>{{0, 1}});
}

/// Threshold (causal) routing with static shapes: the body runs on all S
/// tokens. A token is routed iff its decision logit is > 0: the router
/// logit, or with a predictor (`predictor` non-empty: its four parameters)
/// the predictor MLP's logit; the router logit always gates. Unrouted tokens
/// get the position max(p[b,:]) + 1, later than every real position of their
/// sequence, so the body's position-causal attention (query i sees key j iff
/// pk[j] <= pk[i]) never shows them to a routed query: exactly the attention
/// over the routed set alone. Their own outputs are dropped by a select, so
/// they pass through unchanged.
static void expandThresholdRoutedBlock(RoutedBlockOp op,
                                       ArrayRef<Value> predictor,
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
  Value decisions =
      predictor.empty() ? scores
                        : buildPredictorLogits(rewriter, loc, x, predictor);

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
          rewriter, loc, posType, ValueRange{p, decisions, rowMax},
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
  // The inputs (x, d, r) and, with a predictor, its logits.
  SmallVector<Value> combineInputs{x, update, scores};
  SmallVector<AffineMap> combineMaps{idN, idN, tokN};
  if (!predictor.empty()) {
    combineInputs.push_back(decisions);
    combineMaps.push_back(tokN);
  }
  combineMaps.push_back(idN);
  Value out =
      linalg::GenericOp::create(
          rewriter, loc, inType, combineInputs, ValueRange{outInit},
          combineMaps,
          SmallVector<utils::IteratorType>(rank,
                                           utils::IteratorType::parallel),
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value zero = arith::ConstantOp::create(nb, nl, et,
                                                   nb.getFloatAttr(et, 0.0));
            Value routed = arith::CmpFOp::create(
                nb, nl, arith::CmpFPredicate::OGT,
                args[predictor.empty() ? 2 : 3], zero);
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
    bool usePredictor = routing == "predictor";
    bool threshold = routing == "threshold" || usePredictor;
    if (!threshold && routing != "topk") {
      getOperation()->emitError()
          << "--mod-expand-routed-blocks: unknown routing '" << routing
          << "' (expected topk, threshold or predictor)";
      return signalPassFailure();
    }
    if (usePredictor && predictorHidden < 1) {
      getOperation()->emitError()
          << "--mod-expand-routed-blocks: predictor-hidden must be positive, "
             "got "
          << static_cast<int64_t>(predictorHidden);
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
    if (usePredictor)
      for (RoutedBlockOp op : blocks) {
        auto func = op->getParentOfType<func::FuncOp>();
        if (!func || op->getParentRegion() != &func.getBody()) {
          op.emitOpError() << "routing=predictor adds the predictor's "
                              "parameters to the enclosing function: the "
                              "block must sit directly in a func.func";
          ok = false;
        }
      }
    if (!ok)
      return signalPassFailure();
    IRRewriter rewriter(&getContext());
    llvm::DenseMap<Operation *, unsigned> ordinals;
    // Names follow the blocks' order in their function (the walk above is
    // post-order, which for blocks directly in a function is program order).
    for (RoutedBlockOp op : blocks) {
      if (!threshold) {
        expandRoutedBlock(op, rewriter);
        continue;
      }
      SmallVector<Value> predictor;
      if (usePredictor) {
        auto func = op->getParentOfType<func::FuncOp>();
        unsigned ordinal = ordinals[func]++;
        predictor = addPredictorParameters(
            func, blockPrefix(op, func, ordinal),
            cast<RankedTensorType>(op.getInput().getType()), predictorHidden);
      }
      expandThresholdRoutedBlock(op, predictor, rewriter);
    }
  }
};
} // namespace
