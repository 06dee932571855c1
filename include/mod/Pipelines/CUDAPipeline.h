//===- CUDAPipeline.h - modc lowering for NVIDIA GPUs -----------*- C++ -*-===//
//
// The CUDA target: routing ops become fused generated kernels, GEMMs become
// cuBLAS calls, every other linalg op becomes a generated loop kernel, all
// buffers live on the device, and the kernels are compiled to a cubin that is
// embedded in the host code, which calls the mgpu* ABI of libmodrt_cuda.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_PIPELINES_CUDAPIPELINE_H
#define MOD_PIPELINES_CUDAPIPELINE_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"

#include <string>
#include <vector>

namespace mlir::mod {

struct CUDAOptions {
  /// Compute capability as a number: 90 for sm_90 (H100/H200).
  unsigned sm = 90;
  /// CUDA toolkit root holding bin/ptxas and nvvm/libdevice; empty means
  /// $CUDA_ROOT, then $CUDA_HOME, then $CUDA_PATH, then /usr/local/cuda.
  std::string cudaRoot;
  /// LLVM optimization level of the kernels.
  unsigned optLevel = 3;
  /// Threads per block of the generated kernels.
  int64_t blockSize = 256;
  /// Let cuBLAS run the f32 GEMMs on TF32 tensor cores.
  bool allowTF32 = false;
  /// GEMM operand precision: "f32", or "bf16" for mixed precision (bf16
  /// operands converted by generated kernels, f32 accumulation and results;
  /// parameters, gradients and every other op stay f32). bf16 needs sm_80+
  /// and excludes allowTF32.
  std::string precision = "f32";
  /// Keep parameters and in-place state on the device between calls
  /// (--mod-gpu-resident-arguments); off, every call copies them.
  bool deviceResident = true;
};

/// The toolkit `options` designate, checked to contain bin/ptxas; on failure
/// `error` says which directory was tried and how to choose another one.
FailureOr<std::string> findCUDAToolkit(const CUDAOptions &options,
                                       std::string &error);

/// The compute capabilities the CUDA target supports, as "75, 80, ...".
std::string supportedCUDASMs();

/// The NVPTX target features for `sm` (the PTX ISA version, e.g. "+ptx87"
/// for sm_120) from modc's table of supported GPUs; fails with `error`
/// naming the supported values for any other SM.
FailureOr<std::string> ptxFeatures(unsigned sm, std::string &error);

/// Checks the SM, block size, optimization level and GEMM precision before
/// any work.
LogicalResult checkCUDAOptions(const CUDAOptions &options, std::string &error);

/// The textual pass pipeline from mod/linalg/tensor IR to the LLVM dialect
/// with an embedded cubin. Entry points must carry `llvm.emit_c_interface`;
/// results become caller-allocated (host) out-parameters, as on the CPU.
/// Fails (with `error`) for options checkCUDAOptions rejects.
FailureOr<std::string> getCUDALoweringPipeline(const CUDAOptions &options,
                                               StringRef toolkit,
                                               std::string &error);

/// Appends the CUDA lowering pipeline to `pm`; fails with `error` if the
/// options are invalid or the pipeline does not parse.
LogicalResult buildCUDALoweringPipeline(OpPassManager &pm,
                                        const CUDAOptions &options,
                                        StringRef toolkit, std::string &error);

/// Runs the CUDA lowering on `module` (errors are reported as diagnostics
/// or on stderr). Afterwards the module is LLVM dialect + gpu.binary, ready
/// for translateModuleToLLVMIR; link the result with cudaLinkArguments().
LogicalResult compileForCUDA(ModuleOp module, const CUDAOptions &options);

/// Extra arguments for the C compiler driver that links model.so: the
/// libmodrt_cuda runtime (mgpu* ABI, cuBLAS wrappers) and an rpath to it.
/// `runtimeLibDir` is where libmodrt_cuda.so lives (by default the lib/
/// directory next to the running tool's bin/).
std::vector<std::string> cudaLinkArguments(StringRef runtimeLibDir = "");

/// Registers `--mod-cuda-lowering` with mod-opt.
void registerCUDAPipelines();

} // namespace mlir::mod

#endif // MOD_PIPELINES_CUDAPIPELINE_H
