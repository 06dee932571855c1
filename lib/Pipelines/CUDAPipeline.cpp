//===- CUDAPipeline.cpp - modc lowering for NVIDIA GPUs -------------------===//

#include "mod/Pipelines/CUDAPipeline.h"

#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

using namespace mlir;

namespace {
/// PTX ISA the NVPTX back end must emit: LLVM's default for sm_90 predates
/// what ptxas of CUDA 12/13 expects for the features modc uses.
std::string ptxFeatures(unsigned sm) { return sm >= 100 ? "+ptx86" : "+ptx80"; }

/// The directory of libmodrt_cuda.so when the caller names none: lib/ next
/// to the bin/ holding the running tool (true in the build tree and when
/// installed).
std::string defaultRuntimeLibDir() {
  static int anchor;
  std::string exe = llvm::sys::fs::getMainExecutable(nullptr, &anchor);
  SmallString<256> dir(llvm::sys::path::parent_path(exe));
  llvm::sys::path::remove_filename(dir); // bin/ -> prefix
  if (dir.empty())
    dir = ".";
  llvm::sys::path::append(dir, "lib");
  return std::string(dir);
}
} // namespace

FailureOr<std::string> mlir::mod::findCUDAToolkit(const CUDAOptions &options,
                                                  std::string &error) {
  std::string root = options.cudaRoot;
  std::string source = "--cuda-root";
  for (const char *var : {"CUDA_ROOT", "CUDA_HOME", "CUDA_PATH"}) {
    if (!root.empty())
      break;
    if (const char *value = std::getenv(var); value && *value) {
      root = value;
      source = std::string("$") + var;
    }
  }
  if (root.empty()) {
    root = "/usr/local/cuda";
    source = "the default";
  }
  SmallString<256> ptxas(root);
  llvm::sys::path::append(ptxas, "bin", "ptxas");
  if (!llvm::sys::fs::can_execute(ptxas)) {
    error = llvm::formatv("no CUDA toolkit at '{0}' ({1}): {2} is missing; "
                          "pass --cuda-root=PATH or set CUDA_ROOT",
                          root, source, ptxas)
                .str();
    return failure();
  }
  return root;
}

std::string mlir::mod::getCUDALoweringPipeline(const CUDAOptions &options,
                                               StringRef toolkit) {
  std::string chip = "sm_" + std::to_string(options.sm);
  // Kept textual, like the CPU pipeline, so `mod-opt --mod-cuda-lowering`
  // runs exactly what mod-compile runs and any prefix can be replayed.
  return llvm::formatv(
             "mod-expand-routed-blocks,"
             "mod-lower-routing-to-gpu{{block-size={0}},"
             "canonicalize,cse,"
             "one-shot-bufferize{{bufferize-function-boundaries "
             "function-boundary-type-conversion=identity-layout-map},"
             "buffer-results-to-out-params{{modify-public-functions},"
             "canonicalize,"
             "mod-linalg-to-cublas,"
             "mod-gpu-device-buffers,"
             "func.func(convert-linalg-to-parallel-loops),"
             "canonicalize,"
             "mod-parallel-loops-to-gpu{{block-size={0}},"
             "gpu-kernel-outlining,"
             "nvvm-attach-target{{chip={1} features={2} O={3}},"
             "func.func(gpu-async-region),"
             "convert-scf-to-cf,"
             "gpu.module(convert-gpu-to-nvvm,canonicalize,cse,"
             "reconcile-unrealized-casts),"
             "expand-strided-metadata,"
             "lower-affine,"
             "finalize-memref-to-llvm,"
             "convert-math-to-llvm,"
             "convert-arith-to-llvm,"
             "convert-index-to-llvm,"
             "convert-func-to-llvm,"
             "convert-cf-to-llvm,"
             "gpu-to-llvm,"
             // A fatbin in .nv_fatbin is what cuobjdump and other CUDA tools look
             // for in a host binary; cuModuleLoadData accepts it as is.
             "gpu-module-to-binary{{format=fatbin toolkit={4} "
             "section=.nv_fatbin},"
             "canonicalize,"
             "reconcile-unrealized-casts",
             options.blockSize, chip, ptxFeatures(options.sm),
             options.optLevel, toolkit)
      .str();
}

LogicalResult mlir::mod::compileForCUDA(ModuleOp module,
                                        const CUDAOptions &options) {
  std::string error;
  FailureOr<std::string> toolkit = findCUDAToolkit(options, error);
  if (failed(toolkit))
    return module.emitError() << error;
  PassManager pm(module.getContext());
  std::string parseErrors;
  llvm::raw_string_ostream os(parseErrors);
  if (failed(parsePassPipeline(getCUDALoweringPipeline(options, *toolkit), pm,
                               os)))
    return module.emitError()
           << "internal error: bad CUDA lowering pipeline: " << parseErrors;
  return pm.run(module);
}

std::vector<std::string>
mlir::mod::cudaLinkArguments(StringRef runtimeLibDir) {
  std::string dir =
      runtimeLibDir.empty() ? defaultRuntimeLibDir() : runtimeLibDir.str();
  return {"-L" + dir, "-lmodrt_cuda", "-Wl,-rpath," + dir};
}

namespace {
struct CUDAPipelineOptions : PassPipelineOptions<CUDAPipelineOptions> {
  Option<unsigned> sm{*this, "sm",
                      llvm::cl::desc("Compute capability (90 = sm_90)"),
                      llvm::cl::init(90)};
  Option<std::string> cudaRoot{
      *this, "cuda-root",
      llvm::cl::desc("CUDA toolkit root (default: $CUDA_ROOT, $CUDA_HOME, "
                     "$CUDA_PATH, /usr/local/cuda)")};
  Option<unsigned> optLevel{*this, "opt-level",
                            llvm::cl::desc("Kernel optimization level"),
                            llvm::cl::init(3)};
  Option<int64_t> blockSize{*this, "block-size",
                            llvm::cl::desc("Threads per block"),
                            llvm::cl::init(256)};
};
} // namespace

void mlir::mod::registerCUDAPipelines() {
  PassPipelineRegistration<CUDAPipelineOptions>(
      "mod-cuda-lowering",
      "Lower mod/linalg/tensor IR for NVIDIA GPUs: fused routing kernels, "
      "cuBLAS GEMMs, generated loop kernels, device-resident buffers, "
      "embedded cubin, host code on the mgpu* ABI",
      [](OpPassManager &pm, const CUDAPipelineOptions &opts) {
        CUDAOptions options{opts.sm, opts.cudaRoot, opts.optLevel,
                            opts.blockSize};
        std::string error;
        FailureOr<std::string> toolkit = findCUDAToolkit(options, error);
        // Without a toolkit the pipeline still runs up to serialization,
        // where gpu-module-to-binary reports the missing ptxas.
        std::string pipeline = getCUDALoweringPipeline(
            options, succeeded(toolkit) ? StringRef(*toolkit)
                                        : StringRef(options.cudaRoot));
        if (failed(parsePassPipeline(pipeline, pm, llvm::errs())))
          llvm::errs() << "internal error: bad CUDA lowering pipeline\n";
      });
}
