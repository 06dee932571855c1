//===- ExpandRoutedBlocks.cpp - mod.routed_block -> routing primitives ----===//

#include "mod/Dialect/MoD/IR/MoDOps.h"
#include "mod/Dialect/MoD/Transforms/Passes.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::mod {
#define GEN_PASS_DEF_EXPANDROUTEDBLOCKS
#include "mod/Dialect/MoD/Transforms/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod;

static void expandRoutedBlock(RoutedBlockOp op, IRRewriter &rewriter) {
  Location loc = op.getLoc();
  rewriter.setInsertionPoint(op);
  auto inType = cast<RankedTensorType>(op.getInput().getType());
  auto posType = cast<RankedTensorType>(op.getPositions().getType());
  int64_t b = inType.getDimSize(0), d = inType.getDimSize(2),
          k = op.getCapacity();
  Type et = inType.getElementType();

  auto scoreType = RankedTensorType::get({b, inType.getDimSize(1)}, et);
  auto idxType = RankedTensorType::get({b, k}, rewriter.getI32Type());
  auto valType = RankedTensorType::get({b, k}, et);
  Value scores =
      RouterOp::create(rewriter, loc, scoreType, op.getInput(),
                       op.getRouterWeight());
  auto topk = TopKOp::create(rewriter, loc, idxType, valType, scores,
                             rewriter.getI64IntegerAttr(k));
  Value xk = GatherOp::create(rewriter, loc,
                              RankedTensorType::get({b, k, d}, et),
                              op.getInput(), topk.getIndices());
  Value pk = GatherOp::create(
      rewriter, loc, RankedTensorType::get({b, k}, posType.getElementType()),
      op.getPositions(), topk.getIndices());

  Block &body = op.getBody().front();
  auto yield = cast<YieldOp>(body.getTerminator());
  rewriter.inlineBlockBefore(&body, op, ValueRange{xk, pk});
  // Read the yielded value only now: it may have been a block argument,
  // which inlining replaced with the gathered tokens.
  Value update = yield.getValue();
  rewriter.eraseOp(yield);

  // The gate stays an attribute of the scatter: lowerings fuse it and the
  // adjoint reads it, instead of recognizing a separate elementwise op.
  Value out = ScatterAddOp::create(rewriter, loc, inType, op.getInput(),
                                   topk.getIndices(), update,
                                   topk.getValues(), op.getGate());
  rewriter.replaceOp(op, out);
}

namespace {
struct ExpandRoutedBlocksPass
    : mod::impl::ExpandRoutedBlocksBase<ExpandRoutedBlocksPass> {
  void runOnOperation() override {
    SmallVector<RoutedBlockOp> blocks;
    // Post-order: an inner routed block is expanded before the one holding it.
    getOperation()->walk([&](RoutedBlockOp op) { blocks.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (RoutedBlockOp op : blocks)
      expandRoutedBlock(op, rewriter);
  }
};
} // namespace
