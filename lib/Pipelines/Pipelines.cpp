//===- Pipelines.cpp - modc lowering pipelines ----------------------------===//

#include "mod/Pipelines/Pipelines.h"

#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

std::string mlir::mod::getCPULoweringPipeline() {
  // Kept textual so `mod-opt --mod-cpu-lowering` and mod-compile run exactly
  // the same passes and a user can replay any prefix of it with mod-opt.
  return "mod-expand-routed-blocks,"
         "mod-lower-to-linalg,"
         "canonicalize,cse,"
         "mod-cpu-fuse-elementwise,"
         "canonicalize,cse,"
         "mod-read-only-entry-arguments,"
         "one-shot-bufferize{bufferize-function-boundaries "
         "function-boundary-type-conversion=identity-layout-map},"
         "buffer-results-to-out-params{hoist-static-allocs modify-public-functions},"
         "buffer-deallocation-pipeline,"
         "canonicalize,"
         "mod-linalg-to-blas,"
         "mod-strided-copies-to-linalg,"
         "func.func(convert-linalg-to-parallel-loops),"
         "mod-cpu-parallel-loops,"
         "convert-scf-to-openmp,"
         "mod-cpu-approximate-math,"
         // Memref ops lower before scf: the memref.alloca_scope that
         // convert-scf-to-openmp puts in each parallel body must still hold
         // a single block when it is inlined.
         "expand-strided-metadata,"
         "lower-affine,"
         "finalize-memref-to-llvm,"
         "convert-scf-to-cf,"
         "convert-math-to-llvm,"
         "convert-math-to-libm,"
         "convert-arith-to-llvm,"
         "convert-index-to-llvm,"
         "convert-func-to-llvm,"
         "convert-cf-to-llvm,"
         "convert-openmp-to-llvm,"
         "reconcile-unrealized-casts";
}

LogicalResult mlir::mod::parsePipelineInto(OpPassManager &pm,
                                           StringRef pipeline, StringRef name,
                                           std::string &error) {
  std::string errors;
  llvm::raw_string_ostream os(errors);
  if (succeeded(parsePassPipeline(pipeline, pm, os)))
    return success();
  StringRef why = StringRef(errors).trim();
  error = ("the " + name + " pipeline does not parse: " +
           (why.empty() ? StringRef("unknown error") : why) + " (pipeline: " +
           pipeline + ")")
              .str();
  return failure();
}

LogicalResult mlir::mod::buildCPULoweringPipeline(OpPassManager &pm,
                                                  std::string &error) {
  return parsePipelineInto(pm, getCPULoweringPipeline(), "CPU lowering",
                           error);
}

std::vector<std::string> mlir::mod::cpuLinkArguments() {
  // libomp comes with LLVM (Debian's libomp-22-dev), outside the default
  // library path, hence the rpath.
  return {"-lopenblas", "-L" MODC_LLVM_LIBRARY_DIR, "-lomp",
          "-Wl,-rpath," MODC_LLVM_LIBRARY_DIR};
}

void mlir::mod::registerMoDPipelines() {
  // Registered by hand so that a pipeline that fails to parse fails mod-opt
  // instead of running whatever prefix parsed.
  registerPassPipeline(
      "mod-cpu-lowering",
      "Lower mod/linalg/tensor IR to the LLVM dialect for the host CPU "
      "(expand routed blocks, lower mod ops, bufferize, results to "
      "out-parameters, loops, LLVM)",
      [](OpPassManager &pm, StringRef options,
         function_ref<LogicalResult(const Twine &)> errorHandler) {
        if (!options.empty())
          return errorHandler("--mod-cpu-lowering takes no options, got '" +
                              options + "'");
        std::string error;
        if (failed(buildCPULoweringPipeline(pm, error)))
          return errorHandler(error);
        return success();
      },
      [](function_ref<void(const detail::PassOptions &)>) {});
}
