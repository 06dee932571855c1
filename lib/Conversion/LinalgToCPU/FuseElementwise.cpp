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

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
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

bool hasReduction(linalg::LinalgOp op) {
  return op.getNumReductionLoops() > 0;
}

/// A transpose of a matmul's result read by another matmul (attention's
/// head merge: [B,H,S,hd] -> [B,S,H*hd] into the output projection). Fused,
/// it would split the second matmul's K into a loop of small GEMMs (H of
/// them with K = hd); materialized, it is one S*D copy and one GEMM.
bool movesContractionResultIntoContraction(linalg::GenericOp producer,
                                           linalg::GenericOp consumer) {
  if (!hasReduction(consumer))
    return false;
  for (Value in : producer.getDpsInputs()) {
    while (Operation *def = in.getDefiningOp()) {
      if (auto expand = dyn_cast<tensor::ExpandShapeOp>(def)) {
        in = expand.getSrc();
        continue;
      }
      if (auto collapse = dyn_cast<tensor::CollapseShapeOp>(def)) {
        in = collapse.getSrc();
        continue;
      }
      if (auto linalgOp = dyn_cast<linalg::LinalgOp>(def))
        if (hasReduction(linalgOp))
          return true;
      break;
    }
  }
  return false;
}

/// A body of plain arithmetic (no math-dialect calls such as exp): cheap
/// enough to recompute in each consumer instead of storing it.
bool isCheap(linalg::GenericOp op) {
  return llvm::all_of(op.getBody()->getOperations(), [](Operation &inner) {
    return !isa<math::MathDialect>(inner.getDialect());
  });
}

/// Whether every user of `producer` is a generic reading it through a
/// permutation map (each element read in exactly one iteration).
bool allUsesArePermutations(linalg::GenericOp producer) {
  return llvm::all_of(producer->getUses(), [](OpOperand &use) {
    auto consumer = dyn_cast<linalg::GenericOp>(use.getOwner());
    return consumer && consumer.isDpsInput(&use) &&
           consumer.getMatchingIndexingMap(&use).isPermutation();
  });
}

/// A cheap generic whose inputs are all broadcast into its iteration space
/// (every input map drops a dimension), such as the causal mask
/// `positions[b,j] <= positions[b,i]` over [B,S,S]: recomputing an element
/// reads a few small, cache-resident inputs, which is cheaper than reading
/// the stored result (for an i1 mask, one byte per element that the
/// vectorizer assembles into a predicate one bit at a time).
bool isCheapOuterProduct(linalg::GenericOp op) {
  bool reads = llvm::any_of(op.getBody()->getOperations(), [](Operation &o) {
    return isa<tensor::ExtractOp>(o); // a gather, e.g. an embedding lookup
  });
  return op.getNumDpsInputs() > 0 && isCheap(op) && !reads &&
         llvm::all_of(op.getDpsInputOperands(), [&](OpOperand *in) {
           AffineMap map = op.getMatchingIndexingMap(in);
           return map.getNumResults() < op.getNumLoops();
         });
}

/// Fuses when no element of the producer is computed more than once per
/// consumer: the producer only moves data; or every user reads each of its
/// elements in exactly one iteration (a permutation map: elementwise chains
/// and row reductions) and it has one user, or two users and a cheap body
/// (the masked, scaled attention scores feed both softmax's max and its
/// exp). More users would let recomputation snowball (the residual stream
/// feeds four ops per block). A cheap outer product of smaller inputs is
/// fused into any number of users, broadcast or not. Never into a matmul, which would
/// recompute an element for every output column.
bool shouldFuse(OpOperand *fused) {
  auto producer = fused->get().getDefiningOp<linalg::GenericOp>();
  auto consumer = dyn_cast<linalg::GenericOp>(fused->getOwner());
  if (!producer || !consumer)
    return false;
  if (isDataMovement(producer))
    return !movesContractionResultIntoContraction(producer, consumer);
  if (isCheapOuterProduct(producer))
    return true;
  if (!consumer.getMatchingIndexingMap(fused).isPermutation())
    return false;
  if (producer->hasOneUse())
    return true;
  return llvm::range_size(producer->getUses()) == 2 && isCheap(producer) &&
         allUsesArePermutations(producer);
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

/// A statically shaped reshape of a tensor.empty becomes a tensor.empty of
/// the reshaped type. The importer computes the LM head as a 2-D matmul
/// whose result is expanded to [B,S,V]: left as is, bufferization returns a
/// reshape of an allocation, which buffer-results-to-out-params cannot hoist
/// into the caller's output buffer, so the whole logits tensor would be
/// copied into it on every call.
template <typename ReshapeOp>
struct FoldReshapedEmpty : OpRewritePattern<ReshapeOp> {
  using OpRewritePattern<ReshapeOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(ReshapeOp op,
                                PatternRewriter &rewriter) const override {
    auto type = op.getResultType();
    if (!op.getSrc().template getDefiningOp<tensor::EmptyOp>() ||
        !type.hasStaticShape())
      return failure();
    rewriter.replaceOpWithNewOp<tensor::EmptyOp>(op, type.getShape(),
                                                 type.getElementType(),
                                                 type.getEncoding());
    return success();
  }
};

/// `tensor.dim` of a collapse_shape whose collapsed group holds one dynamic
/// source dimension: that dimension's `tensor.dim` times the group's static
/// sizes. With the ranked-shape resolution below it reaches the init of the
/// op that made the source (reshape fusion asks a transpose fused into a
/// GEMM for its dynamic size this way).
struct DimOfCollapseShape : OpRewritePattern<tensor::DimOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tensor::DimOp op,
                                PatternRewriter &rewriter) const override {
    auto collapse = op.getSource().getDefiningOp<tensor::CollapseShapeOp>();
    std::optional<int64_t> index = op.getConstantIndex();
    if (!collapse || !index)
      return failure();
    ReassociationIndices group = collapse.getReassociationIndices()[*index];
    RankedTensorType srcType = collapse.getSrcType();
    int64_t dynamicDim = -1, product = 1;
    for (int64_t d : group) {
      if (!srcType.isDynamicDim(d)) {
        product *= srcType.getDimSize(d);
        continue;
      }
      if (dynamicDim >= 0)
        return failure();
      dynamicDim = d;
    }
    if (dynamicDim < 0)
      return failure();
    Location loc = op.getLoc();
    Value size = tensor::DimOp::create(rewriter, loc, collapse.getSrc(),
                                       dynamicDim);
    if (product != 1)
      size = arith::MulIOp::create(
          rewriter, loc, size,
          arith::ConstantIndexOp::create(rewriter, loc, product));
    rewriter.replaceOp(op, size);
    return success();
  }
};

/// Whether `v` is a tensor of zeros: a linalg.fill of +0.0 or -0.0.
bool isZeroFill(Value v) {
  auto fill = v.getDefiningOp<linalg::FillOp>();
  FloatAttr value;
  return fill && matchPattern(fill.getDpsInputs()[0], m_Constant(&value)) &&
         value.getValue().isZero();
}

/// The contraction (matmul) computing `operand` of `consumer` from zeros,
/// when the consumer, with an identity output map, reads it through a
/// permutation and is its only user.
linalg::GenericOp zeroInitContraction(linalg::GenericOp consumer,
                                      OpOperand *operand) {
  auto contraction = operand->get().getDefiningOp<linalg::GenericOp>();
  if (!contraction || !contraction->hasOneUse() ||
      contraction.getNumDpsInits() != 1 ||
      !linalg::isaContractionOpInterface(contraction) ||
      !isZeroFill(contraction.getDpsInits()[0]) ||
      !consumer.getMatchingIndexingMap(operand).isPermutation() ||
      !consumer.getIndexingMapsArray().back().isIdentity())
    return nullptr;
  // No batch loops (read by both inputs): every result dimension is an M
  // or N loop, so any order of them is a GEMM with a strided C. (Batched
  // GEMMs are attention's, whose results --mod-cpu-causal-attention and
  // the head-merge rule above expect in their own layout.)
  for (unsigned d = 0, e = contraction.getNumLoops(); d < e; ++d) {
    if (!linalg::isParallelIterator(contraction.getIteratorTypesArray()[d]))
      continue;
    unsigned readers = 0;
    for (OpOperand *in : contraction.getDpsInputOperands())
      readers += contraction.getMatchingIndexingMap(in).isFunctionOfDim(d);
    if (readers != 1)
      return nullptr;
  }
  return contraction;
}

/// Replaces `consumer` by `contraction` writing its result in the
/// consumer's iteration order (C[outMap(d)] lands at
/// out[readMap^-1(outMap(d))]) into `init`.
void rebuildContraction(PatternRewriter &rewriter, linalg::GenericOp consumer,
                        OpOperand *read, linalg::GenericOp contraction,
                        Value init) {
  SmallVector<AffineMap> maps = contraction.getIndexingMapsArray();
  maps.back() = inversePermutation(consumer.getMatchingIndexingMap(read))
                    .compose(maps.back());
  auto fused = linalg::GenericOp::create(
      rewriter, contraction.getLoc(), consumer.getResult(0).getType(),
      contraction.getDpsInputs(), ValueRange{init}, maps,
      contraction.getIteratorTypesArray());
  rewriter.inlineRegionBefore(contraction.getRegion(), fused.getRegion(),
                              fused.getRegion().begin());
  rewriter.replaceOp(consumer, fused.getResults());
  rewriter.eraseOp(contraction);
}

/// `x + C` elementwise, where C is the only use of a contraction (matmul)
/// that starts from zeros, becomes the contraction accumulating onto x:
/// its init is x, and its output map is composed with the permutation the
/// add reads C through. --mod-linalg-to-blas then writes the GEMM straight
/// into x's buffer with beta = 1 and transpose flags: no temporary, no
/// strided read of it, no separate add pass.
struct AccumulateIntoContraction : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp add,
                                PatternRewriter &rewriter) const override {
    if (add.getNumDpsInputs() != 2 || add.getNumDpsInits() != 1 ||
        add.getNumParallelLoops() != add.getNumLoops() ||
        !add.hasPureTensorSemantics())
      return failure();
    Block *body = add.getBody();
    auto yield = cast<linalg::YieldOp>(body->getTerminator());
    auto sum = yield.getOperand(0).getDefiningOp<arith::AddFOp>();
    if (body->getOperations().size() != 2 || !sum)
      return failure();
    auto lhs = dyn_cast<BlockArgument>(sum.getLhs());
    auto rhs = dyn_cast<BlockArgument>(sum.getRhs());
    if (!lhs || !rhs || lhs == rhs || lhs.getArgNumber() > 1 ||
        rhs.getArgNumber() > 1)
      return failure();
    for (unsigned cIndex : {0u, 1u}) {
      OpOperand *cOperand = add.getDpsInputOperand(cIndex);
      OpOperand *xOperand = add.getDpsInputOperand(1 - cIndex);
      linalg::GenericOp contraction = zeroInitContraction(add, cOperand);
      if (!contraction ||
          !add.getMatchingIndexingMap(xOperand).isIdentity() ||
          xOperand->get().getType() != add.getResult(0).getType())
        continue;
      rebuildContraction(rewriter, add, cOperand, contraction,
                         xOperand->get());
      return success();
    }
    return failure();
  }
};

/// A transposing copy of a contraction's result, its only use (the copy
/// stays when its user is not a generic it could fuse into, such as the
/// scatter loop of an embedding gradient), becomes the contraction writing
/// in the copy's order: --mod-linalg-to-blas expresses that with the
/// operands swapped and transpose flags.
struct PermuteContractionResult : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::GenericOp copy,
                                PatternRewriter &rewriter) const override {
    if (copy.getNumDpsInputs() != 1 || copy.getNumDpsInits() != 1 ||
        copy.getNumParallelLoops() != copy.getNumLoops() ||
        !copy.hasPureTensorSemantics() || !isDataMovement(copy))
      return failure();
    OpOperand *read = copy.getDpsInputOperand(0);
    linalg::GenericOp contraction = zeroInitContraction(copy, read);
    if (!contraction || copy.getMatchingIndexingMap(read).isIdentity())
      return failure();
    auto fill = contraction.getDpsInits()[0].getDefiningOp<linalg::FillOp>();
    auto type = cast<RankedTensorType>(copy.getResult(0).getType());
    Value empty = tensor::EmptyOp::create(rewriter, copy.getLoc(),
                                          type.getShape(),
                                          type.getElementType());
    Value zeros = linalg::FillOp::create(rewriter, copy.getLoc(),
                                         fill.getDpsInputs()[0], empty)
                      .getResult(0);
    rebuildContraction(rewriter, copy, read, contraction, zeros);
    return success();
  }
};

struct CPUFuseElementwisePass
    : mod::impl::CPUFuseElementwiseBase<CPUFuseElementwisePass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<GeneralizeNamedOp, FoldReshapedEmpty<tensor::ExpandShapeOp>,
                 FoldReshapedEmpty<tensor::CollapseShapeOp>>(ctx);
    linalg::populateElementwiseOpsFusionPatterns(patterns, shouldFuse);
    linalg::populateFoldReshapeOpsByExpansionPatterns(patterns,
                                                      shouldFoldReshape);
    linalg::populateEraseUnusedOperandsAndResultsPatterns(patterns);
    tensor::CollapseShapeOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::ExpandShapeOp::getCanonicalizationPatterns(patterns, ctx);
    linalg::GenericOp::getCanonicalizationPatterns(patterns, ctx);
    // Sizes that reshape fusion reads off a fused producer's result
    // (`tensor.dim` of a transpose fused into its consumer, for the
    // consumer's expanded init) are taken from the producer's own init, so
    // the producer does not stay alive, materialized, just for its shape (a
    // decode step's transposes of the filled cache slots, whose size is
    // dynamic).
    patterns.add<DimOfCollapseShape>(ctx);
    memref::populateResolveRankedShapedTypeResultDimsPatterns(patterns);
    tensor::DimOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::EmptyOp::getCanonicalizationPatterns(patterns, ctx);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    // Once transposes are fused into the adds that read GEMM results.
    RewritePatternSet accumulate(ctx);
    accumulate.add<AccumulateIntoContraction, PermuteContractionResult>(ctx);
    if (failed(applyPatternsGreedily(getOperation(), std::move(accumulate))))
      signalPassFailure();
  }
};
} // namespace
