//===- CUDAPipeline.cpp - modc lowering for NVIDIA GPUs -------------------===//

#include "mod/Pipelines/CUDAPipeline.h"
#include "mod/Pipelines/Pipelines.h"

#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstdlib>

using namespace mlir;

namespace {
/// The GPUs modc compiles for: the SMs that both LLVM 22's NVPTX back end and
/// ptxas of CUDA 13 accept (CUDA 13 dropped everything before sm_75 and
/// renamed sm_101 to sm_110), with the first PTX ISA version that can target
/// each one (PTX ISA manual, "PTX ISA Version" / target table). LLVM's
/// default ISA for a chip can be older than the chip (sm_120 gets 8.6 and the
/// back end aborts), so the version is always passed explicitly.
struct SMInfo {
  unsigned sm;
  unsigned ptx; // 87 = PTX ISA 8.7
};
constexpr SMInfo kSupportedSMs[] = {
    {75, 63},  {80, 70},  {86, 71},  {87, 74},  {88, 90},  {89, 78},
    {90, 78},  {100, 86}, {103, 88}, {110, 90}, {120, 87}, {121, 88},
};
/// PTX 8.0 (CUDA 12.0) is the floor: what the generated kernels were first
/// validated with, and older ISAs gain nothing with a CUDA 12/13 ptxas.
constexpr unsigned kMinPTX = 80;

const SMInfo *findSM(unsigned sm) {
  for (const SMInfo &info : kSupportedSMs)
    if (info.sm == sm)
      return &info;
  return nullptr;
}

/// Pass options are space-separated `key=value`s; quoting keeps a path with
/// spaces (or `=`/`,`) one value.
std::string quoteOption(StringRef value) {
  return value.contains('"') ? ("'" + value + "'").str()
                             : ("\"" + value + "\"").str();
}

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

std::string mlir::mod::supportedCUDASMs() {
  std::string list;
  for (const SMInfo &info : kSupportedSMs)
    list += (list.empty() ? "" : ", ") + std::to_string(info.sm);
  return list;
}

FailureOr<std::string> mlir::mod::ptxFeatures(unsigned sm,
                                              std::string &error) {
  const SMInfo *info = findSM(sm);
  if (!info) {
    error = llvm::formatv("unsupported compute capability sm_{0} (--sm={0}); "
                          "the CUDA target supports --sm={1}",
                          sm, supportedCUDASMs())
                .str();
    return failure();
  }
  return "+ptx" + std::to_string(std::max(info->ptx, kMinPTX));
}

LogicalResult mlir::mod::checkCUDAOptions(const CUDAOptions &options,
                                          std::string &error) {
  if (failed(ptxFeatures(options.sm, error)))
    return failure();
  if (options.blockSize < 32 || options.blockSize > 1024 ||
      options.blockSize % 32 != 0) {
    error = llvm::formatv("block size {0} must be a multiple of 32 in "
                          "[32, 1024]",
                          options.blockSize)
                .str();
    return failure();
  }
  if (options.precision != "f32" && options.precision != "bf16") {
    error = llvm::formatv("unknown GEMM precision '{0}' (supported: f32, "
                          "bf16)",
                          options.precision)
                .str();
    return failure();
  }
  if (options.precision == "bf16" && options.sm < 80) {
    error = llvm::formatv("bf16 GEMMs need compute capability 8.0 or newer "
                          "(bf16 tensor cores); sm_{0} has none",
                          options.sm)
                .str();
    return failure();
  }
  if (options.precision == "bf16" && options.allowTF32) {
    error = "TF32 applies to f32 GEMMs; it cannot be combined with bf16 "
            "GEMM precision";
    return failure();
  }
  if (options.optLevel > 3) {
    error = llvm::formatv("kernel optimization level {0} is not in 0-3",
                          options.optLevel)
                .str();
    return failure();
  }
  return success();
}

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

FailureOr<std::string>
mlir::mod::getCUDALoweringPipeline(const CUDAOptions &options,
                                  StringRef toolkit, std::string &error) {
  if (failed(checkCUDAOptions(options, error)))
    return failure();
  std::string chip = "sm_" + std::to_string(options.sm);
  std::string features = *ptxFeatures(options.sm, error);
  // Kept textual, like the CPU pipeline, so `mod-opt --mod-cuda-lowering`
  // runs exactly what mod-compile runs and any prefix can be replayed.
  return llvm::formatv(
             // Before anything consumes mod.kind / mod.aliases.
             "{6}"
             "mod-expand-routed-blocks,"
             "mod-lower-routing-to-gpu{{block-size={0}},"
             "canonicalize,cse,"
             // Consumes mod.aliases: only donated arguments are writable.
             "mod-read-only-entry-arguments,"
             "one-shot-bufferize{{bufferize-function-boundaries "
             "function-boundary-type-conversion=identity-layout-map},"
             "buffer-results-to-out-params{{modify-public-functions},"
             "canonicalize,"
             "mod-linalg-to-cublas{{allow-tf32={5} precision={7}},"
             "mod-host-scalars-to-gpu,"
             "mod-scatter-add-to-gpu{{block-size={0}},"
             "mod-gpu-device-buffers,"
             "mod-linalg-reductions-to-gpu{{block-size={0}},"
             // Canonicalized before the loops exist: canonicalize inlines
             // an scf.parallel of one iteration (a linalg op on [1, 1],
             // e.g. a decode step's block copy for one routed row) into
             // host code, where its loads and stores would touch device
             // memory.
             "canonicalize,"
             "func.func(convert-linalg-to-parallel-loops),"
             "mod-parallel-loops-to-gpu{{block-size={0}},"
             // Constants and index computations go into the kernels instead
             // of being passed as kernel parameters (canonicalize hoists
             // them out of the gpu.launch bodies).
             "gpu-launch-sink-index-computations,"
             "gpu-kernel-outlining,"
             "mod-gpu-merge-kernel-modules,"
             "nvvm-attach-target{{chip={1} features={2} O={3}},"
             "func.func(gpu-async-region),"
             "mod-gpu-stream-order,"
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
             options.blockSize, chip, features, options.optLevel,
             quoteOption(toolkit), options.allowTF32 ? "true" : "false",
             options.deviceResident ? "mod-gpu-resident-arguments," : "",
             options.precision)
      .str();
}

LogicalResult mlir::mod::buildCUDALoweringPipeline(OpPassManager &pm,
                                                   const CUDAOptions &options,
                                                   StringRef toolkit,
                                                   std::string &error) {
  FailureOr<std::string> pipeline =
      getCUDALoweringPipeline(options, toolkit, error);
  if (failed(pipeline))
    return failure();
  return parsePipelineInto(pm, *pipeline, "CUDA lowering", error);
}

LogicalResult mlir::mod::compileForCUDA(ModuleOp module,
                                        const CUDAOptions &options) {
  std::string error;
  if (failed(checkCUDAOptions(options, error)))
    return module.emitError() << error;
  FailureOr<std::string> toolkit = findCUDAToolkit(options, error);
  if (failed(toolkit))
    return module.emitError() << error;
  PassManager pm(module.getContext());
  if (failed(buildCUDALoweringPipeline(pm, options, *toolkit, error)))
    return module.emitError() << error;
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
                      llvm::cl::desc("Compute capability (90 = sm_90); one of "
                                     "75, 80, 86-90, 100, 103, 110, 120, 121"),
                      llvm::cl::init(90)};
  Option<std::string> cudaRoot{
      *this, "cuda-root",
      llvm::cl::desc("CUDA toolkit root (default: $CUDA_ROOT, $CUDA_HOME, "
                     "$CUDA_PATH, /usr/local/cuda)")};
  Option<unsigned> optLevel{*this, "opt-level",
                            llvm::cl::desc("Kernel optimization level (0-3)"),
                            llvm::cl::init(3)};
  Option<int64_t> blockSize{*this, "block-size",
                            llvm::cl::desc("Threads per block (a multiple of "
                                           "32 in [32, 1024])"),
                            llvm::cl::init(256)};
  Option<bool> tf32{*this, "tf32",
                    llvm::cl::desc("Let cuBLAS use TF32 tensor cores for f32 "
                                   "GEMMs (default: off, exact f32)"),
                    llvm::cl::init(false)};
  Option<std::string> precision{
      *this, "precision",
      llvm::cl::desc("GEMM operand precision: f32 (default) or bf16 (mixed "
                     "precision: bf16 operands converted by generated "
                     "kernels, f32 accumulation, f32 master weights; sm_80+, "
                     "not with tf32)"),
      llvm::cl::init("f32")};
  Option<bool> resident{
      *this, "resident",
      llvm::cl::desc("Keep parameters and in-place updated state on the GPU "
                     "between calls (--mod-gpu-resident-arguments; default: "
                     "on). Off, every call copies them host <-> device"),
      llvm::cl::init(true)};
};
} // namespace

void mlir::mod::registerCUDAPipelines() {
  // Registered by hand rather than with PassPipelineRegistration so that a
  // bad option or a pipeline that fails to parse fails mod-opt instead of
  // running a partial pipeline.
  registerPassPipeline(
      "mod-cuda-lowering",
      "Lower mod/linalg/tensor IR for NVIDIA GPUs: fused routing kernels, "
      "cuBLAS GEMMs, generated loop kernels, device-resident buffers, "
      "embedded cubin, host code on the mgpu* ABI",
      [](OpPassManager &pm, StringRef optionsText,
         function_ref<LogicalResult(const Twine &)> errorHandler) {
        CUDAPipelineOptions opts;
        if (failed(opts.parseFromString(optionsText)))
          return failure();
        CUDAOptions options{opts.sm,        opts.cudaRoot, opts.optLevel,
                            opts.blockSize, opts.tf32,     opts.precision,
                            opts.resident};
        std::string error;
        FailureOr<std::string> toolkit = findCUDAToolkit(options, error);
        // Without a toolkit the pipeline still runs up to serialization,
        // where gpu-module-to-binary reports the missing ptxas.
        StringRef root = succeeded(toolkit) ? StringRef(*toolkit)
                                            : StringRef(options.cudaRoot);
        if (failed(buildCUDALoweringPipeline(pm, options, root, error)))
          return errorHandler("--mod-cuda-lowering: " + error);
        return success();
      },
      [](function_ref<void(const detail::PassOptions &)> optHandler) {
        optHandler(CUDAPipelineOptions());
      });
}
