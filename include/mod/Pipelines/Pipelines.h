//===- Pipelines.h - modc lowering pipelines --------------------*- C++ -*-===//

#ifndef MOD_PIPELINES_PIPELINES_H
#define MOD_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"

#include <string>
#include <vector>

namespace mlir::mod {

/// The textual pass pipeline that takes a module of func/linalg/tensor/
/// arith/math/mod ops on tensors to the LLVM dialect for the host CPU.
/// Entry points must already carry `llvm.emit_c_interface`; results are
/// turned into caller-allocated out-parameters.
std::string getCPULoweringPipeline();

/// Parses the textual pipeline `pipeline` into `pm`. On failure `error`
/// says which pipeline (`name`) failed and why, and `pm` must not be run.
LogicalResult parsePipelineInto(OpPassManager &pm, StringRef pipeline,
                                StringRef name, std::string &error);

/// Appends the CPU lowering pipeline to `pm`; fails with `error` if it does
/// not parse.
LogicalResult buildCPULoweringPipeline(OpPassManager &pm, std::string &error);

/// Libraries a CPU model.so links besides libm: OpenBLAS (cblas_sgemm from
/// --mod-linalg-to-blas) and LLVM's OpenMP runtime (parallel loops), as
/// arguments for the C compiler driver.
std::vector<std::string> cpuLinkArguments();

/// C source that every CPU model.so is linked with: the buffer allocator
/// the CPU lowering's allocations call (`_mlir_memref_to_llvm_alloc` /
/// `_mlir_memref_to_llvm_free`, from finalize-memref-to-llvm's
/// use-generic-functions). It keeps large freed buffers for the next
/// allocation of about the same size instead of returning them to the
/// system, so a forward does not page-fault its [B,H,S,S] scores and MLP
/// activations in afresh at every call.
llvm::StringRef cpuSupportSource();

/// Registers `--mod-cpu-lowering` with mod-opt.
void registerMoDPipelines();

} // namespace mlir::mod

#endif // MOD_PIPELINES_PIPELINES_H
