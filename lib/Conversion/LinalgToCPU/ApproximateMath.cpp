//===- ApproximateMath.cpp - --mod-cpu-approximate-math -------------------===//
//
// math.exp / math.tanh / math.erf / math.log lower to libm calls, one
// scalar call per element, which LLVM cannot vectorize. Softmax and GELU run
// them on every attention score and every MLP activation, so they are
// replaced by MLIR's polynomial approximations (plain arithmetic that
// vectorizes, accurate to a few ulp over the whole f32 range).
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::mod {
#define GEN_PASS_DEF_CPUAPPROXIMATEMATH
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
struct CPUApproximateMathPass
    : mod::impl::CPUApproximateMathBase<CPUApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    // Not sin/cos: their approximations lose accuracy far from zero, and
    // RoPE angles grow with the position.
    populateMathPolynomialApproximationPatterns(
        patterns, [](StringRef name) {
          name.consume_front("math.");
          return llvm::is_contained({"exp", "expm1", "tanh", "erf", "log",
                                     "log1p", "log2"},
                                    name);
        });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
