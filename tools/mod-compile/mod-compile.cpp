//===- mod-compile.cpp - compile a modc program to a loadable artifact ----===//
//
// mod-compile in.mlir --target=cpu -o out/
//
// Runs the whole CPU lowering in-process (expand routed blocks, lower mod ops,
// bufferize, lower to the LLVM dialect, translate, optimize, emit an object
// file with the host TargetMachine), links out/model.so with the system C
// compiler driver and writes out/manifest.json describing every entry point.
// Outputs are written to temporaries and renamed, so a failed run never
// leaves a half-written artifact behind.
//
//===----------------------------------------------------------------------===//

#include "mod/InitAllModc.h"
#include "mod/Pipelines/CUDAPipeline.h"
#include "mod/Pipelines/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

#include <optional>

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory category("mod-compile options");
static cl::opt<std::string> inputFile(cl::Positional, cl::Required,
                                      cl::desc("<input .mlir file>"),
                                      cl::cat(category));
static cl::opt<std::string>
    outputDir("o", cl::Required, cl::value_desc("directory"),
              cl::desc("Output directory; receives model.so and manifest.json "
                       "(created if missing)"),
              cl::cat(category));
static cl::opt<std::string>
    target("target", cl::init("cpu"), cl::value_desc("cpu|cuda"),
           cl::desc("Code generation target (default: cpu)"),
           cl::cat(category));
static cl::opt<unsigned>
    cudaSM("sm", cl::init(90), cl::value_desc("N"),
           cl::desc("--target=cuda: compute capability to compile the "
                    "kernels for (default: 90, i.e. sm_90); one of 75, 80, "
                    "86, 87, 88, 89, 90, 100, 103, 110, 120, 121"),
           cl::cat(category));
static cl::opt<std::string>
    cudaRoot("cuda-root", cl::init(""), cl::value_desc("path"),
             cl::desc("--target=cuda: CUDA toolkit root holding bin/ptxas "
                      "(default: $CUDA_ROOT, $CUDA_HOME, $CUDA_PATH, "
                      "/usr/local/cuda)"),
             cl::cat(category));
static cl::opt<bool>
    cudaTF32("cuda-tf32", cl::init(false),
             cl::desc("--target=cuda: let cuBLAS run the f32 matrix "
                      "multiplications on TF32 tensor cores (inputs rounded "
                      "to 10 mantissa bits, f32 accumulation; faster on "
                      "sm_80 and newer). Default: off, exact f32 GEMMs"),
             cl::cat(category));
static cl::opt<unsigned>
    optLevel("O", cl::init(2), cl::Prefix, cl::value_desc("0-3"),
             cl::desc("LLVM optimization level for the generated code "
                      "(default: 2)"),
             cl::cat(category));
static cl::opt<std::string>
    cpu("cpu", cl::init("host"), cl::value_desc("name"),
        cl::desc("CPU to generate code for, as LLVM names it (e.g. x86-64-v3, "
                 "znver4); 'host' (the default) tunes for and uses every "
                 "feature of the compiling machine, so the model.so may not "
                 "run on an older CPU"),
        cl::cat(category));
static cl::opt<std::string>
    linker("linker", cl::init(""), cl::value_desc("path"),
           cl::desc("C compiler driver used to link model.so (default: the "
                    "first of $CC, cc, clang-22, clang, gcc on PATH)"),
           cl::cat(category));
static cl::opt<bool>
    keepIntermediates("keep-intermediates", cl::init(false),
                      cl::desc("Also write lowered.mlir, model.ll and model.o "
                               "to the output directory"),
                      cl::cat(category));
static cl::opt<bool> verbose("v", cl::init(false),
                             cl::desc("Print each compilation stage"),
                             cl::cat(category));

namespace {
/// What the runtime needs to know about one argument or result.
struct TensorSpec {
  std::string name;
  std::string dtype;
  SmallVector<int64_t> shape;
  /// "parameter" for model weights (from `mod.kind`), empty for data inputs.
  std::string kind;
  /// How the runtime initializes a missing parameter (from `mod.init`).
  std::string init;
  /// A seed fixed for this parameter's initialization (`mod.init_seed`),
  /// any value in [0, 2^64 - 1].
  std::optional<uint64_t> initSeed;
  /// Results only: the name of the argument this result replaces in place
  /// (from `mod.aliases = <argument index>`).
  std::string aliasOf;
};

/// Argument attributes that carry runtime metadata into the manifest.
constexpr llvm::StringLiteral kNameAttr = "mod.name", kKindAttr = "mod.kind",
                              kInitAttr = "mod.init",
                              kInitSeedAttr = "mod.init_seed",
                              kAliasesAttr = "mod.aliases";

struct EntryPoint {
  std::string name;
  std::vector<TensorSpec> inputs, outputs;
};

void stage(const Twine &what) {
  if (verbose)
    llvm::errs() << "mod-compile: " << what << "\n";
}

std::optional<std::string> dtypeName(Type t) {
  if (t.isF32())
    return "f32";
  if (t.isF64())
    return "f64";
  if (t.isSignlessInteger(32))
    return "i32";
  if (t.isSignlessInteger(64))
    return "i64";
  return std::nullopt;
}

/// Describes one entry-point tensor, or reports why the runtime cannot pass it.
FailureOr<TensorSpec> describe(func::FuncOp fn, Type type, std::string name,
                               StringRef role) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return fn.emitError() << "entry point @" << fn.getSymName() << ": " << role
                          << " '" << name
                          << "' must be a tensor with a static shape, got "
                          << type;
  std::optional<std::string> dtype = dtypeName(tensor.getElementType());
  if (!dtype)
    return fn.emitError() << "entry point @" << fn.getSymName() << ": " << role
                          << " '" << name << "' has element type "
                          << tensor.getElementType()
                          << ", which the runtime does not support (use f32, "
                             "f64, i32 or i64)";
  return TensorSpec{std::move(name), *dtype,
                    SmallVector<int64_t>(tensor.getShape()), "", "", std::nullopt,
                    ""};
}

/// Entry points are the public functions with a body. Argument names come
/// from a `mod.name` argument attribute when present.
FailureOr<std::vector<EntryPoint>> collectEntryPoints(ModuleOp module) {
  std::vector<EntryPoint> entries;
  for (auto fn : module.getOps<func::FuncOp>()) {
    if (fn.isPrivate() || fn.isExternal())
      continue;
    EntryPoint entry{fn.getSymName().str(), {}, {}};
    for (auto [i, type] : llvm::enumerate(fn.getArgumentTypes())) {
      std::string name = "arg" + std::to_string(i);
      if (auto attr = fn.getArgAttrOfType<StringAttr>(i, kNameAttr))
        name = attr.str();
      FailureOr<TensorSpec> spec = describe(fn, type, name, "argument");
      if (failed(spec))
        return failure();
      if (auto attr = fn.getArgAttrOfType<StringAttr>(i, kKindAttr))
        spec->kind = attr.str();
      if (auto attr = fn.getArgAttrOfType<StringAttr>(i, kInitAttr))
        spec->init = attr.str();
      if (Attribute attr = fn.getArgAttr(i, kInitSeedAttr)) {
        // ui64 as --mod-dense-to-mod writes it, or a non-negative i64.
        auto seed = dyn_cast<IntegerAttr>(attr);
        auto seedType = seed ? dyn_cast<IntegerType>(seed.getType()) : nullptr;
        if (!seedType || seedType.getWidth() > 64 ||
            (!seedType.isUnsigned() && seed.getValue().isNegative()))
          return fn.emitError()
                 << "entry point @" << fn.getSymName() << ": argument '"
                 << spec->name << "' has " << kInitSeedAttr << " = " << attr
                 << "; expected an integer in [0, 2^64-1]";
        spec->initSeed = seed.getValue().getZExtValue();
      }
      entry.inputs.push_back(*spec);
    }
    for (auto [i, type] : llvm::enumerate(fn.getResultTypes())) {
      std::string name = "result" + std::to_string(i);
      if (auto attr = fn.getResultAttrOfType<StringAttr>(i, kNameAttr))
        name = attr.str();
      FailureOr<TensorSpec> spec = describe(fn, type, name, "result");
      if (failed(spec))
        return failure();
      if (auto alias = fn.getResultAttrOfType<IntegerAttr>(i, kAliasesAttr)) {
        int64_t arg = alias.getInt();
        if (arg < 0 || arg >= int64_t(fn.getNumArguments()) ||
            fn.getArgumentTypes()[arg] != type)
          return fn.emitError()
                 << "entry point @" << fn.getSymName() << ": result '" << name
                 << "' has mod.aliases = " << arg
                 << ", which is not an argument of the same type " << type;
        for (const TensorSpec &other : entry.outputs)
          if (other.aliasOf == entry.inputs[arg].name)
            return fn.emitError()
                   << "entry point @" << fn.getSymName() << ": argument '"
                   << other.aliasOf << "' is aliased by two results";
        spec->aliasOf = entry.inputs[arg].name;
      }
      entry.outputs.push_back(*spec);
    }
    // The metadata now lives in the manifest; LLVM has no use for it.
    // mod.aliases stays for --mod-read-only-entry-arguments, which consumes
    // it (the aliased arguments are the only writable ones).
    for (StringRef attrName : {kNameAttr, kKindAttr, kInitAttr, kInitSeedAttr}) {
      auto key = StringAttr::get(module.getContext(), attrName);
      for (unsigned i = 0, e = fn.getNumArguments(); i < e; ++i)
        fn.removeArgAttr(i, key);
      for (unsigned i = 0, e = fn.getNumResults(); i < e; ++i)
        fn.removeResultAttr(i, key);
    }
    fn->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                UnitAttr::get(module.getContext()));
    entries.push_back(std::move(entry));
  }
  if (entries.empty()) {
    module.emitError() << "no entry point: the module has no public func.func "
                          "with a body";
    return failure();
  }
  return entries;
}

/// Adds `void _modrt_<name>(void **args)`, which passes args[i] (a pointer to
/// a memref descriptor) as the i-th argument of `_mlir_ciface_<name>`. This
/// gives the runtime one calling convention for every signature.
LogicalResult addRuntimeWrappers(llvm::Module &module,
                                 ArrayRef<EntryPoint> entries) {
  llvm::LLVMContext &ctx = module.getContext();
  auto *ptrTy = llvm::PointerType::get(ctx, 0);
  for (const EntryPoint &entry : entries) {
    llvm::Function *callee = module.getFunction("_mlir_ciface_" + entry.name);
    if (!callee) {
      llvm::errs() << "mod-compile: error: lowering produced no C interface "
                      "for entry point @"
                   << entry.name << "\n";
      return failure();
    }
    size_t expected = entry.inputs.size() + entry.outputs.size();
    if (callee->arg_size() != expected) {
      llvm::errs() << "mod-compile: error: C interface of @" << entry.name
                   << " takes " << callee->arg_size() << " arguments, expected "
                   << expected << " (inputs + out-parameters)\n";
      return failure();
    }
    auto *fnTy = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {ptrTy},
                                         /*isVarArg=*/false);
    auto *wrapper = llvm::Function::Create(
        fnTy, llvm::Function::ExternalLinkage, "_modrt_" + entry.name, module);
    llvm::IRBuilder<> builder(llvm::BasicBlock::Create(ctx, "entry", wrapper));
    SmallVector<llvm::Value *> args;
    for (unsigned i = 0; i < expected; ++i) {
      llvm::Value *slot = builder.CreateConstGEP1_64(ptrTy, wrapper->getArg(0), i);
      args.push_back(builder.CreateLoad(ptrTy, slot));
    }
    builder.CreateCall(callee, args);
    builder.CreateRetVoid();
  }
  return success();
}

llvm::json::Value toJson(const TensorSpec &spec) {
  llvm::json::Array shape;
  for (int64_t d : spec.shape)
    shape.push_back(d);
  llvm::json::Object object{{"name", spec.name},
                            {"dtype", spec.dtype},
                            {"shape", std::move(shape)}};
  if (!spec.kind.empty())
    object["kind"] = spec.kind;
  if (!spec.init.empty())
    object["init"] = spec.init;
  if (spec.initSeed)
    object["init_seed"] = *spec.initSeed;
  if (!spec.aliasOf.empty())
    object["alias_of"] = spec.aliasOf;
  return object;
}

std::string buildManifest(ArrayRef<EntryPoint> entries) {
  llvm::json::Array entryArray;
  for (const EntryPoint &entry : entries) {
    llvm::json::Array inputs, outputs;
    for (const TensorSpec &s : entry.inputs)
      inputs.push_back(toJson(s));
    for (const TensorSpec &s : entry.outputs)
      outputs.push_back(toJson(s));
    entryArray.push_back(llvm::json::Object{{"name", entry.name},
                                            {"symbol", "_modrt_" + entry.name},
                                            {"inputs", std::move(inputs)},
                                            {"outputs", std::move(outputs)}});
  }
  llvm::json::Object manifest{{"format", "modc-manifest"},
                              {"version", 1},
                              {"target", target.getValue()},
                              {"library", "model.so"},
                              {"entry_points", std::move(entryArray)}};
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(manifest))) << "\n";
  return text;
}

/// Writes `contents` to `path` through a temporary in the same directory.
LogicalResult writeAtomically(StringRef path, StringRef contents) {
  std::string tmp = (path + ".tmp").str();
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(tmp, ec);
    if (ec) {
      llvm::errs() << "mod-compile: error: cannot write " << tmp << ": "
                   << ec.message() << "\n";
      return failure();
    }
    os << contents;
    os.close();
    if (os.has_error()) {
      llvm::errs() << "mod-compile: error: writing " << tmp << " failed\n";
      llvm::sys::fs::remove(tmp);
      return failure();
    }
  }
  if (std::error_code ec = llvm::sys::fs::rename(tmp, path)) {
    llvm::errs() << "mod-compile: error: cannot rename " << tmp << " to "
                 << path << ": " << ec.message() << "\n";
    llvm::sys::fs::remove(tmp);
    return failure();
  }
  return success();
}

std::unique_ptr<llvm::TargetMachine> createHostTargetMachine() {
  std::string triple = llvm::sys::getProcessTriple();
  std::string error;
  const llvm::Target *tgt = llvm::TargetRegistry::lookupTarget(llvm::Triple(triple), error);
  if (!tgt) {
    llvm::errs() << "mod-compile: error: no LLVM target for " << triple << ": "
                 << error << "\n";
    return nullptr;
  }
  llvm::SubtargetFeatures features;
  std::string cpuName = cpu;
  if (cpuName == "host") {
    cpuName = llvm::sys::getHostCPUName().str();
    for (const auto &[name, enabled] : llvm::sys::getHostCPUFeatures())
      features.AddFeature(name, enabled);
  }
  llvm::CodeGenOptLevel level =
      llvm::CodeGenOpt::getLevel(std::min(optLevel.getValue(), 3u))
          .value_or(llvm::CodeGenOptLevel::Default);
  std::unique_ptr<llvm::TargetMachine> tm(tgt->createTargetMachine(
      llvm::Triple(triple), cpuName, features.getString(),
      llvm::TargetOptions(), llvm::Reloc::PIC_, std::nullopt, level));
  if (tm && !tm->getMCSubtargetInfo()->isCPUStringValid(cpuName)) {
    llvm::errs() << "mod-compile: error: unknown --cpu '" << cpuName
                 << "' for " << triple << "\n";
    return nullptr;
  }
  return tm;
}

void optimize(llvm::Module &module, llvm::TargetMachine &tm) {
  if (optLevel == 0)
    return;
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::OptimizationLevel level = optLevel == 1   ? llvm::OptimizationLevel::O1
                                  : optLevel == 2 ? llvm::OptimizationLevel::O2
                                                  : llvm::OptimizationLevel::O3;
  pb.buildPerModuleDefaultPipeline(level).run(module, mam);
}

LogicalResult emitObject(llvm::Module &module, llvm::TargetMachine &tm,
                         StringRef path) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec) {
    llvm::errs() << "mod-compile: error: cannot write " << path << ": "
                 << ec.message() << "\n";
    return failure();
  }
  llvm::legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::ObjectFile)) {
    llvm::errs() << "mod-compile: error: the target cannot emit object files\n";
    return failure();
  }
  pm.run(module);
  os.flush();
  return success();
}

std::optional<std::string> findLinker() {
  if (!linker.empty())
    return linker.getValue();
  SmallVector<std::string> candidates;
  if (const char *cc = std::getenv("CC"); cc && *cc)
    candidates.push_back(cc);
  candidates.append({"cc", "clang-22", "clang", "gcc"});
  for (const std::string &name : candidates)
    if (auto path = llvm::sys::findProgramByName(name))
      return *path;
  return std::nullopt;
}

LogicalResult linkSharedObject(StringRef object, StringRef output) {
  std::optional<std::string> driver = findLinker();
  if (!driver) {
    llvm::errs() << "mod-compile: error: no C compiler driver found to link "
                    "model.so (set --linker or $CC)\n";
    return failure();
  }
  std::string tmp = (output + ".tmp").str();
  SmallVector<StringRef> args{*driver, "-shared", "-o", tmp, object, "-lm"};
  std::vector<std::string> cudaArgs;
  if (target == "cuda")
    cudaArgs = mod::cudaLinkArguments();
  else
    cudaArgs = mod::cpuLinkArguments();
  args.append(cudaArgs.begin(), cudaArgs.end());
  stage("linking with " + *driver);
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(*driver, args, std::nullopt, {}, 0, 0,
                                     &error);
  if (rc != 0) {
    llvm::errs() << "mod-compile: error: linking model.so failed (" << *driver
                 << " exited with " << rc << (error.empty() ? "" : ": ")
                 << error << ")\n";
    llvm::sys::fs::remove(tmp);
    return failure();
  }
  if (std::error_code ec = llvm::sys::fs::rename(tmp, output)) {
    llvm::errs() << "mod-compile: error: cannot rename " << tmp << ": "
                 << ec.message() << "\n";
    llvm::sys::fs::remove(tmp);
    return failure();
  }
  return success();
}

mod::CUDAOptions cudaOptionsFromFlags() {
  mod::CUDAOptions options;
  options.sm = cudaSM;
  options.cudaRoot = cudaRoot;
  options.allowTF32 = cudaTF32;
  return options;
}

LogicalResult compile(MLIRContext &context) {
  if (target != "cpu" && target != "cuda") {
    llvm::errs() << "mod-compile: error: unknown --target '" << target
                 << "' (supported: cpu, cuda)\n";
    return failure();
  }
  // Bad code generation options fail before anything is read or written.
  std::unique_ptr<llvm::TargetMachine> tm = createHostTargetMachine();
  if (!tm)
    return failure();
  if (target == "cuda") {
    std::string error;
    if (failed(mod::checkCUDAOptions(cudaOptionsFromFlags(), error))) {
      llvm::errs() << "mod-compile: error: " << error << "\n";
      return failure();
    }
  }
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagHandler(sourceMgr, &context);
  stage("parsing " + inputFile);
  std::string error;
  auto file = openInputFile(inputFile, &error);
  if (!file) {
    llvm::errs() << "mod-compile: error: " << error << "\n";
    return failure();
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return failure();

  FailureOr<std::vector<EntryPoint>> entries = collectEntryPoints(*module);
  if (failed(entries))
    return failure();

  stage("lowering to the LLVM dialect");
  PassManager pm(&context);
  if (target == "cuda") {
    if (failed(mod::compileForCUDA(*module, cudaOptionsFromFlags())))
      return failure();
  } else {
    std::string pipelineError;
    if (failed(mod::buildCPULoweringPipeline(pm, pipelineError))) {
      llvm::errs() << "mod-compile: internal error: " << pipelineError << "\n";
      return failure();
    }
    if (failed(pm.run(*module)))
      return failure();
  }

  if (std::error_code ec = llvm::sys::fs::create_directories(outputDir)) {
    llvm::errs() << "mod-compile: error: cannot create " << outputDir << ": "
                 << ec.message() << "\n";
    return failure();
  }
  auto outPath = [](StringRef name) {
    SmallString<256> p(outputDir);
    llvm::sys::path::append(p, name);
    return std::string(p);
  };
  if (keepIntermediates) {
    std::string text;
    llvm::raw_string_ostream os(text);
    module->print(os);
    if (failed(writeAtomically(outPath("lowered.mlir"), text)))
      return failure();
  }

  stage("translating to LLVM IR");
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(*module, llvmContext, "model");
  if (!llvmModule) {
    llvm::errs() << "mod-compile: error: translation to LLVM IR failed\n";
    return failure();
  }
  llvmModule->setDataLayout(tm->createDataLayout());
  llvmModule->setTargetTriple(tm->getTargetTriple());
  if (failed(addRuntimeWrappers(*llvmModule, *entries)))
    return failure();
  if (llvm::verifyModule(*llvmModule, &llvm::errs())) {
    llvm::errs() << "mod-compile: error: generated LLVM IR is invalid\n";
    return failure();
  }
  stage("optimizing at -O" + std::to_string(optLevel));
  optimize(*llvmModule, *tm);
  if (keepIntermediates) {
    std::string text;
    llvm::raw_string_ostream os(text);
    llvmModule->print(os, nullptr);
    if (failed(writeAtomically(outPath("model.ll"), text)))
      return failure();
  }

  stage("emitting object code for " + tm->getTargetTriple().str() + " (" +
        tm->getTargetCPU() + ")");
  std::string object = outPath(keepIntermediates ? "model.o" : "model.o.tmp");
  if (failed(emitObject(*llvmModule, *tm, object)))
    return failure();
  LogicalResult linked = linkSharedObject(object, outPath("model.so"));
  if (!keepIntermediates)
    llvm::sys::fs::remove(object);
  if (failed(linked))
    return failure();
  if (failed(writeAtomically(outPath("manifest.json"), buildManifest(*entries))))
    return failure();
  stage("wrote " + outPath("model.so") + " and " + outPath("manifest.json"));
  return success();
}
} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  mod::registerModcPasses();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "mod-compile: compile a modc program (mod/linalg/tensor MLIR) into a "
      "loadable model.so plus manifest.json for libmodrt and mod-run\n");
  DialectRegistry registry;
  mod::registerModcDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  return failed(compile(context)) ? 1 : 0;
}
