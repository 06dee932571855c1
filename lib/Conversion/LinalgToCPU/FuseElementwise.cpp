//===- FuseElementwise.cpp - --mod-cpu-fuse-elementwise -------------------===//
//
// Producer-consumer fusion on tensors, before bufferization, so that chains
// of elementwise ops become one loop nest (one pass over memory) and
// transposes / broadcasts / reshapes disappear into the indexing maps of the
// ops that read them (in particular into matmuls, which --mod-linalg-to-blas
// then runs with transpose flags and strides instead of copies).
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::mod {
#define GEN_PASS_DEF_CPUFUSEELEMENTWISE
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
/// A generic that only moves data: every result yields an input element
/// unchanged (transpose, broadcast, copy). Fusing it only remaps indices.
bool isDataMovement(linalg::GenericOp op) {
  auto yield = cast<linalg::YieldOp>(op.getBody()->getTerminator());
  if (op.getBody()->getOperations().size() != 1)
    return false;
  return llvm::all_of(yield.getOperands(), [&](Value v) {
    auto arg = dyn_cast<BlockArgument>(v);
    return arg && arg.getOwner() == op.getBody() &&
           op.isDpsInput(&op->getOpOperand(arg.getArgNumber()));
  });
}

/// Fuses when no element of the producer is computed more than once: the
/// producer only moves data, or its only user reads each of its elements
/// in exactly one iteration (a permutation map, e.g. elementwise chains and
/// row reductions), never into a matmul that would recompute it N times.
bool shouldFuse(OpOperand *fused) {
  auto producer = fused->get().getDefiningOp<linalg::GenericOp>();
  auto consumer = dyn_cast<linalg::GenericOp>(fused->getOwner());
  if (!producer || !consumer)
    return false;
  if (isDataMovement(producer))
    return true;
  return producer->hasOneUse() &&
         consumer.getMatchingIndexingMap(fused).isPermutation();
}

/// Folds a reshape into the generic next to it by expanding the generic's
/// iteration space, when the reshape has no other user.
bool shouldFoldReshape(OpOperand *fused) {
  Operation *producer = fused->get().getDefiningOp();
  return producer && producer->hasOneUse();
}

struct GeneralizeNamedOp
    : OpInterfaceRewritePattern<linalg::LinalgOp> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;
  LogicalResult matchAndRewrite(linalg::LinalgOp op,
                                PatternRewriter &rewriter) const override {
    // Fills stay (they lower to plain stores and feed matmul inits).
    if (isa<linalg::GenericOp, linalg::FillOp>(op.getOperation()) ||
        !op.hasPureTensorSemantics())
      return failure();
    return linalg::generalizeNamedOp(rewriter, op);
  }
};

struct CPUFuseElementwisePass
    : mod::impl::CPUFuseElementwiseBase<CPUFuseElementwisePass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<GeneralizeNamedOp>(ctx);
    linalg::populateElementwiseOpsFusionPatterns(patterns, shouldFuse);
    linalg::populateFoldReshapeOpsByExpansionPatterns(patterns,
                                                      shouldFoldReshape);
    linalg::populateEraseUnusedOperandsAndResultsPatterns(patterns);
    tensor::CollapseShapeOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::ExpandShapeOp::getCanonicalizationPatterns(patterns, ctx);
    linalg::GenericOp::getCanonicalizationPatterns(patterns, ctx);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
