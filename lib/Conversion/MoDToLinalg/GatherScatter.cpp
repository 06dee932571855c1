//===- GatherScatter.cpp - mod.gather / mod.scatter_add lowerings ---------===//

#include "Utils.h"
#include "mod/Dialect/MoD/IR/MoDOps.h"
#include "mod/Dialect/MoD/Transforms/Elementwise.h"

#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::mod;
using namespace mlir::mod::detail;

namespace {
/// result[b,j,rest] = input[b, idx[b,j], rest]: a parallel linalg.generic over
/// the result whose body reads the input with tensor.extract.
struct GatherLowering : OpRewritePattern<GatherOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(GatherOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    auto resultType = cast<RankedTensorType>(op.getResult().getType());
    int64_t rank = resultType.getRank();
    Value init = tensor::EmptyOp::create(rewriter, loc, resultType.getShape(),
                                         resultType.getElementType());
    auto idxMap = AffineMap::get(
        rank, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx)}, ctx);
    auto outMap = rewriter.getMultiDimIdentityMap(rank);
    Value input = op.getInput();
    auto generic = linalg::GenericOp::create(
        rewriter, loc, resultType, ValueRange{op.getIndices()},
        ValueRange{init}, ArrayRef<AffineMap>{idxMap, outMap},
        parallelIterators(rank),
        [&](OpBuilder &nb, Location nloc, ValueRange args) {
          SmallVector<Value> coords;
          for (int64_t dim = 0; dim < rank; ++dim)
            coords.push_back(
                dim == 1 ? arith::IndexCastOp::create(nb, nloc,
                                                      nb.getIndexType(), args[0])
                               .getResult()
                         : linalg::IndexOp::create(nb, nloc, dim).getResult());
          Value v = tensor::ExtractOp::create(nb, nloc, input, coords);
          linalg::YieldOp::create(nb, nloc, v);
        });
    rewriter.replaceOp(op, generic.getResults());
    return success();
  }
};

/// out = input; for each (b, j): out[b, idx[b,j], :] += g(scale[b,j]) * update[b,j,:].
/// The row update is a linalg.generic on a [1,1,rest] slice, so it vectorizes;
/// the (b, j) loop is sequential so repeated indices accumulate correctly.
struct ScatterAddLowering : OpRewritePattern<ScatterAddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ScatterAddOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto inType = cast<RankedTensorType>(op.getInput().getType());
    auto updType = cast<RankedTensorType>(op.getUpdate().getType());
    int64_t rank = inType.getRank();
    int64_t batch = updType.getDimSize(0), k = updType.getDimSize(1);

    SmallVector<int64_t> rowShape(inType.getShape());
    rowShape[0] = rowShape[1] = 1;
    auto rowType = inType.clone(rowShape);
    SmallVector<OpFoldResult> sizes, strides;
    for (int64_t extent : rowShape) {
      sizes.push_back(rewriter.getIndexAttr(extent));
      strides.push_back(rewriter.getIndexAttr(1));
    }

    Value c0 = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value c1 = arith::ConstantIndexOp::create(rewriter, loc, 1);
    Value cBatch = arith::ConstantIndexOp::create(rewriter, loc, batch);
    Value cK = arith::ConstantIndexOp::create(rewriter, loc, k);
    Value indices = op.getIndices(), update = op.getUpdate(),
          scale = op.getScale();

    auto outer = scf::ForOp::create(
        rewriter, loc, c0, cBatch, c1, ValueRange{op.getInput()},
        [&](OpBuilder &ob, Location oloc, Value bIv, ValueRange outerIt) {
          auto inner = scf::ForOp::create(
              ob, oloc, c0, cK, c1, ValueRange{outerIt[0]},
              [&](OpBuilder &ib, Location iloc, Value jIv, ValueRange it) {
                Value tok32 = tensor::ExtractOp::create(ib, iloc, indices,
                                                        ValueRange{bIv, jIv});
                Value tok = arith::IndexCastOp::create(ib, iloc,
                                                       ib.getIndexType(), tok32);
                Value s = tensor::ExtractOp::create(ib, iloc, scale,
                                                    ValueRange{bIv, jIv});
                if (op.getGate() == GateKind::Sigmoid)
                  s = buildSigmoid(ib, iloc, s);
                SmallVector<OpFoldResult> dstOffsets{bIv, tok}, srcOffsets{bIv, jIv};
                for (int64_t dim = 2; dim < rank; ++dim) {
                  dstOffsets.push_back(ib.getIndexAttr(0));
                  srcOffsets.push_back(ib.getIndexAttr(0));
                }
                Value dstRow = tensor::ExtractSliceOp::create(
                    ib, iloc, rowType, it[0], dstOffsets, sizes, strides);
                Value srcRow = tensor::ExtractSliceOp::create(
                    ib, iloc, rowType, update, srcOffsets, sizes, strides);
                AffineMap id = ib.getMultiDimIdentityMap(rank);
                auto add = linalg::GenericOp::create(
                    ib, iloc, rowType, ValueRange{srcRow}, ValueRange{dstRow},
                    ArrayRef<AffineMap>{id, id}, parallelIterators(rank),
                    [&](OpBuilder &nb, Location nloc, ValueRange args) {
                      Value scaled = arith::MulFOp::create(nb, nloc, s, args[0]);
                      Value sum = arith::AddFOp::create(nb, nloc, args[1], scaled);
                      linalg::YieldOp::create(nb, nloc, sum);
                    });
                Value updated = tensor::InsertSliceOp::create(
                    ib, iloc, add.getResult(0), it[0], dstOffsets, sizes,
                    strides);
                scf::YieldOp::create(ib, iloc, updated);
              });
          scf::YieldOp::create(ob, oloc, inner.getResults());
        });
    rewriter.replaceOp(op, outer.getResults());
    return success();
  }
};
} // namespace

void mlir::mod::detail::populateGatherScatterLowering(
    RewritePatternSet &patterns) {
  patterns.add<GatherLowering, ScatterAddLowering>(patterns.getContext());
}
