//===- Router.cpp - mod.router -> linalg.generic --------------------------===//

#include "Utils.h"
#include "mod/Dialect/MoD/IR/MoDOps.h"

using namespace mlir;
using namespace mlir::mod;
using namespace mlir::mod::detail;

namespace {
/// r[b,s] = sum_d x[b,s,d] * w[d], accumulated in the element type.
struct RouterLowering : OpRewritePattern<RouterOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RouterOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto resultType = cast<RankedTensorType>(op.getResult().getType());
    Type et = resultType.getElementType();
    Value acc = createFilled(rewriter, loc, resultType,
                             rewriter.getFloatAttr(et, 0.0));
    MLIRContext *ctx = rewriter.getContext();
    AffineExpr b, s, d;
    bindDims(ctx, b, s, d);
    auto xMap = AffineMap::get(3, 0, {b, s, d}, ctx);
    auto wMap = AffineMap::get(3, 0, {d}, ctx);
    auto rMap = AffineMap::get(3, 0, {b, s}, ctx);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, resultType, ValueRange{op.getInput(), op.getWeight()},
        ValueRange{acc}, ArrayRef<AffineMap>{xMap, wMap, rMap},
        {utils::IteratorType::parallel, utils::IteratorType::parallel,
         utils::IteratorType::reduction},
        [](OpBuilder &nb, Location nloc, ValueRange args) {
          Value prod = arith::MulFOp::create(nb, nloc, args[0], args[1]);
          Value sum = arith::AddFOp::create(nb, nloc, args[2], prod);
          linalg::YieldOp::create(nb, nloc, sum);
        });
    rewriter.replaceOp(op, generic.getResults());
    return success();
  }
};
} // namespace

void mlir::mod::detail::populateRouterLowering(RewritePatternSet &patterns) {
  patterns.add<RouterLowering>(patterns.getContext());
}
