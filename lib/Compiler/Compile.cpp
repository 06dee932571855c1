//===- Compile.cpp - compile a modc program into a model directory --------===//
//
// Parse, collect the entry points, lower (CPU pipeline or CUDA), translate to
// LLVM IR, add the runtime wrappers, optimize, emit an object file, link
// model.so and write manifest.json, all inside a StagedDirectory that
// replaces the output directory as a whole at the end.
//
//===----------------------------------------------------------------------===//

#include "mod/Compiler/Compile.h"
#include "mod/Compiler/Artifact.h"
#include "mod/Compiler/CodeGen.h"
#include "mod/Compiler/EntryPoints.h"
#include "mod/Conversion/Passes.h"
#include "mod/Pipelines/CUDAPipeline.h"
#include "mod/Pipelines/Pipelines.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/IR/Verifier.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::mod;

static LogicalResult fail(const CompileOptions &options, const Twine &message) {
  llvm::errs() << options.toolName << ": error: " << message << "\n";
  return failure();
}

static void stage(const CompileOptions &options, const Twine &what) {
  if (options.verbose)
    llvm::errs() << options.toolName << ": " << what << "\n";
}

ArrayRef<StringRef> mlir::mod::getArtifactFileNames() {
  static const StringRef names[] = {"model.so", "manifest.json", "lowered.mlir",
                                    "model.ll", "model.o"};
  return names;
}

static CUDAOptions getCUDAOptions(const CompileOptions &options) {
  CUDAOptions cudaOptions;
  cudaOptions.sm = options.cudaSM;
  cudaOptions.cudaRoot = options.cudaRoot;
  cudaOptions.allowTF32 = options.cudaTF32;
  cudaOptions.precision = options.cudaPrecision;
  return cudaOptions;
}

LogicalResult mlir::mod::verifyCompileOptions(const CompileOptions &options) {
  if (options.target != "cpu" && options.target != "cuda")
    return fail(options, "unknown --target '" + options.target +
                             "' (supported: cpu, cuda)");
  if (options.target == "cuda") {
    std::string error;
    if (failed(checkCUDAOptions(getCUDAOptions(options), error)))
      return fail(options, error);
  } else if (options.cudaPrecision != "f32" || options.cudaTF32) {
    // The CPU target's GEMMs are OpenBLAS SGEMMs (Debian's OpenBLAS has no
    // cblas_sbgemm).
    return fail(options, std::string(options.cudaTF32 ? "--cuda-tf32"
                                                      : "--cuda-precision") +
                             " applies to --target=cuda only");
  }
  if (!createTargetMachine(options))
    return failure();
  return success();
}

LogicalResult mlir::mod::compileFile(MLIRContext &context, StringRef inputPath,
                                     StringRef outputDir,
                                     const CompileOptions &options) {
  // Bad code generation options fail before anything is read or written.
  if (failed(verifyCompileOptions(options)))
    return failure();
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagHandler(sourceMgr, &context);
  stage(options, "parsing " + inputPath);
  std::string error;
  auto file = openInputFile(inputPath, &error);
  if (!file)
    return fail(options, error);
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return failure();
  return compileModule(*module, outputDir, options);
}

/// Hex SHA-256 of the file at `path`.
static FailureOr<std::string> hashFile(StringRef path,
                                       const CompileOptions &options) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer) {
    (void)fail(options, "cannot read back " + path + ": " +
                            buffer.getError().message());
    return failure();
  }
  std::array<uint8_t, 32> digest =
      llvm::SHA256::hash(llvm::arrayRefFromStringRef((*buffer)->getBuffer()));
  return llvm::toHex(digest, /*LowerCase=*/true);
}

LogicalResult mlir::mod::compileModule(ModuleOp module, StringRef outputDir,
                                       const CompileOptions &options) {
  if (options.target != "cpu" && options.target != "cuda")
    return verifyCompileOptions(options);
  if (options.target == "cuda" && failed(verifyCompileOptions(options)))
    return failure();
  std::unique_ptr<llvm::TargetMachine> tm = createTargetMachine(options);
  if (!tm)
    return failure();

  if (options.target == "cuda" && getCUDAOptions(options).deviceResident) {
    // Decided on the mod.* attributes that collectEntryPoints strips, so
    // that the manifest records it; the pipeline's own run of the pass then
    // changes nothing.
    PassManager pm(module.getContext());
    pm.addPass(createMoDGPUResidentArguments());
    if (failed(pm.run(module)))
      return failure();
  }
  FailureOr<std::vector<EntryPoint>> entries = collectEntryPoints(module);
  if (failed(entries))
    return failure();

  stage(options, "lowering to the LLVM dialect");
  if (options.target == "cuda") {
    if (failed(compileForCUDA(module, getCUDAOptions(options))))
      return failure();
  } else {
    PassManager pm(module.getContext());
    std::string pipelineError;
    if (failed(buildCPULoweringPipeline(pm, pipelineError)))
      return fail(options, "internal error: " + pipelineError);
    if (failed(pm.run(module)))
      return failure();
  }

  FailureOr<StagedDirectory> staged =
      StagedDirectory::create(outputDir, options.toolName);
  if (failed(staged))
    return failure();
  if (options.keepIntermediates) {
    std::string text;
    llvm::raw_string_ostream os(text);
    module.print(os);
    if (failed(staged->writeFile("lowered.mlir", text)))
      return failure();
  }

  stage(options, "translating to LLVM IR");
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, llvmContext, "model");
  if (!llvmModule)
    return fail(options, "translation to LLVM IR failed");
  llvmModule->setDataLayout(tm->createDataLayout());
  llvmModule->setTargetTriple(tm->getTargetTriple());
  if (failed(addRuntimeWrappers(*llvmModule, *entries, options)))
    return failure();
  if (llvm::verifyModule(*llvmModule, &llvm::errs()))
    return fail(options, "generated LLVM IR is invalid");
  stage(options, "optimizing at -O" + Twine(options.optLevel));
  optimizeModule(*llvmModule, *tm, options);
  if (options.keepIntermediates) {
    std::string text;
    llvm::raw_string_ostream os(text);
    llvmModule->print(os, nullptr);
    if (failed(staged->writeFile("model.ll", text)))
      return failure();
  }

  stage(options, "emitting object code for " + tm->getTargetTriple().str() +
                     " (" + tm->getTargetCPU() + ")");
  std::string object = staged->path("model.o");
  if (failed(emitObjectFile(*llvmModule, *tm, object, options)))
    return failure();
  std::string library = staged->path("model.so");
  if (failed(linkSharedLibrary(object, library, options)))
    return failure();
  if (!options.keepIntermediates)
    (void)llvm::sys::fs::remove(object);

  FailureOr<std::string> sha256 = hashFile(library, options);
  if (failed(sha256))
    return failure();
  ManifestInfo info;
  info.target = options.target;
  if (options.target == "cuda")
    info.gemmPrecision = options.cudaPrecision == "bf16" ? "bf16"
                         : options.cudaTF32             ? "tf32"
                                                        : "f32";
  info.librarySha256 = *sha256;
  if (failed(staged->writeFile("manifest.json", buildManifest(*entries, info))))
    return failure();
  if (failed(staged->commit()))
    return failure();
  stage(options, "wrote model.so and manifest.json to " + outputDir);
  return success();
}
