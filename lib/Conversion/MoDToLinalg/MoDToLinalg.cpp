//===- MoDToLinalg.cpp - --mod-lower-to-linalg pass ------------------------===//

#include "Utils.h"
#include "mod/Conversion/Passes.h"
#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir::mod {
#define GEN_PASS_DEF_CONVERTMODTOLINALG
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod;

void mlir::mod::populateMoDToLinalgPatterns(RewritePatternSet &patterns) {
  detail::populateRouterLowering(patterns);
  detail::populateTopKLowering(patterns);
  detail::populateGatherScatterLowering(patterns);
}

namespace {
struct ConvertMoDToLinalgPass
    : mod::impl::ConvertMoDToLinalgBase<ConvertMoDToLinalgPass> {
  void runOnOperation() override {
    Operation *root = getOperation();
    // Routed blocks have their own expansion pass; lowering around one would
    // leave a half-converted block behind.
    WalkResult unexpanded = root->walk([](RoutedBlockOp op) {
      op.emitOpError() << "must be expanded before lowering to linalg; run "
                          "--mod-expand-routed-blocks first";
      return WalkResult::interrupt();
    });
    if (unexpanded.wasInterrupted())
      return signalPassFailure();

    ConversionTarget target(getContext());
    target.addIllegalDialect<MoDDialect>();
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    RewritePatternSet patterns(&getContext());
    populateMoDToLinalgPatterns(patterns);
    if (failed(applyPartialConversion(root, target, std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
