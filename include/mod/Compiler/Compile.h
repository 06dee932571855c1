//===- Compile.h - compile a modc program into a model directory -*- C++ -*-===//
//
// The library behind mod-compile. compileFile/compileModule lower a program
// (mod/linalg/tensor MLIR) in-process, emit an object file, link model.so and
// write manifest.json. Everything is produced in a staging directory next to
// the output directory and swapped in as a whole at the end (see
// Artifact.h), so a failed or interrupted compilation leaves the previous
// artifact as it was, and a model.so is never paired with another
// compilation's manifest.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_COMPILER_COMPILE_H
#define MOD_COMPILER_COMPILE_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LLVM.h"

#include <string>
#include <vector>

namespace mlir::mod {

struct CompileOptions {
  /// "cpu" or "cuda".
  std::string target = "cpu";
  /// --target=cuda: compute capability as a number (90 for sm_90).
  unsigned cudaSM = 90;
  /// --target=cuda: toolkit root; empty means $CUDA_ROOT, $CUDA_HOME,
  /// $CUDA_PATH, /usr/local/cuda.
  std::string cudaRoot;
  /// --target=cuda: let cuBLAS use TF32 tensor cores for f32 GEMMs.
  bool cudaTF32 = false;
  /// --target=cuda: GEMM operand precision, "f32" or "bf16" (mixed
  /// precision with f32 accumulation and f32 master weights).
  std::string cudaPrecision = "f32";
  /// LLVM optimization level of the generated host code (0-3).
  unsigned optLevel = 2;
  /// LLVM CPU name for code generation; "host" uses every feature of the
  /// compiling machine.
  std::string cpu = "host";
  /// C compiler driver that links model.so; empty picks $CC, cc, clang-22,
  /// clang or gcc from PATH.
  std::string linker;
  /// Extra arguments appended to the link command line.
  std::vector<std::string> extraLinkArgs;
  /// Also write lowered.mlir, model.ll and model.o into the artifact.
  bool keepIntermediates = false;
  /// Print each stage on stderr.
  bool verbose = false;
  /// Prefix of messages printed on stderr ("<tool>: error: ...").
  std::string toolName = "mod-compile";
};

/// Names of the files an artifact directory may hold; anything else found in
/// an existing output directory belongs to the user and is kept.
ArrayRef<StringRef> getArtifactFileNames();

/// Checks options that need no input (target, CPU name) so that a bad
/// command line fails before anything is read or written.
LogicalResult verifyCompileOptions(const CompileOptions &options);

/// Parses `inputPath` ('-' is stdin) and compiles it into `outputDir`.
/// Diagnostics go to stderr.
LogicalResult compileFile(MLIRContext &context, StringRef inputPath,
                          StringRef outputDir, const CompileOptions &options);

/// Compiles `module` (which is lowered in place) into `outputDir`.
LogicalResult compileModule(ModuleOp module, StringRef outputDir,
                            const CompileOptions &options);

} // namespace mlir::mod

#endif // MOD_COMPILER_COMPILE_H
