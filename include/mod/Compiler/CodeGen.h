//===- CodeGen.h - LLVM IR to a linked model.so ------------------*- C++ -*-===//
//
// The host side of code generation: the runtime-facing wrappers added to the
// translated LLVM module, the TargetMachine, LLVM's optimization pipeline,
// object emission and the link into a shared library. Errors are printed on
// stderr prefixed with the options' tool name.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_COMPILER_CODEGEN_H
#define MOD_COMPILER_CODEGEN_H

#include "mod/Compiler/Compile.h"
#include "mod/Compiler/EntryPoints.h"

#include "llvm/IR/Module.h"
#include "llvm/Target/TargetMachine.h"

#include <memory>

namespace mlir::mod {

/// Adds `void _modrt_<name>(void **args)` for every entry point, which passes
/// args[i] (a pointer to a memref descriptor) as the i-th argument of
/// `_mlir_ciface_<name>`: one calling convention for every signature; and
/// `const char _modrtsig_<name>[]` holding EntryPoint::signature().
LogicalResult addRuntimeWrappers(llvm::Module &module,
                                 ArrayRef<EntryPoint> entries,
                                 const CompileOptions &options);

/// The TargetMachine for the host triple and `options.cpu`; null (after an
/// error on stderr) for an unknown CPU or a missing target.
std::unique_ptr<llvm::TargetMachine>
createTargetMachine(const CompileOptions &options);

/// Runs LLVM's default module pipeline at `options.optLevel` (none at 0).
void optimizeModule(llvm::Module &module, llvm::TargetMachine &tm,
                    const CompileOptions &options);

/// Writes `module` as an object file to `path`.
LogicalResult emitObjectFile(llvm::Module &module, llvm::TargetMachine &tm,
                             StringRef path, const CompileOptions &options);

/// The arguments after `<driver> -shared -o <output> <object>` that the link
/// of model.so needs for `options.target`.
std::vector<std::string> getLinkArguments(const CompileOptions &options);

/// Links `object` into the shared library `output` with the C compiler
/// driver (options.linker, $CC, cc, clang-22, clang, gcc).
LogicalResult linkSharedLibrary(StringRef object, StringRef output,
                                const CompileOptions &options);

} // namespace mlir::mod

#endif // MOD_COMPILER_CODEGEN_H
