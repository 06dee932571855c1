//===- CodeGen.cpp - runtime wrappers, optimization, object emission ------===//

#include "mod/Compiler/CodeGen.h"

#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

using namespace mlir;
using namespace mlir::mod;

static LogicalResult fail(const CompileOptions &options, const Twine &message) {
  llvm::errs() << options.toolName << ": error: " << message << "\n";
  return failure();
}

LogicalResult mlir::mod::addRuntimeWrappers(llvm::Module &module,
                                            ArrayRef<EntryPoint> entries,
                                            const CompileOptions &options) {
  llvm::LLVMContext &ctx = module.getContext();
  auto *ptrTy = llvm::PointerType::get(ctx, 0);
  for (const EntryPoint &entry : entries) {
    llvm::Function *callee = module.getFunction("_mlir_ciface_" + entry.name);
    if (!callee)
      return fail(options, "lowering produced no C interface for entry point @" +
                               entry.name);
    size_t expected = entry.inputs.size() + entry.outputs.size();
    if (callee->arg_size() != expected)
      return fail(options, "C interface of @" + entry.name + " takes " +
                               Twine(callee->arg_size()) +
                               " arguments, expected " + Twine(expected) +
                               " (inputs + out-parameters)");
    auto *fnTy = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {ptrTy},
                                         /*isVarArg=*/false);
    auto *wrapper = llvm::Function::Create(fnTy, llvm::Function::ExternalLinkage,
                                           entry.wrapperSymbol(), module);
    llvm::IRBuilder<> builder(llvm::BasicBlock::Create(ctx, "entry", wrapper));
    SmallVector<llvm::Value *> args;
    for (unsigned i = 0; i < expected; ++i) {
      llvm::Value *slot =
          builder.CreateConstGEP1_64(ptrTy, wrapper->getArg(0), i);
      args.push_back(builder.CreateLoad(ptrTy, slot));
    }
    builder.CreateCall(callee, args);
    builder.CreateRetVoid();

    // What the code was compiled for, so that the runtime can refuse a
    // manifest that disagrees (e.g. declares a smaller output buffer).
    llvm::Constant *text =
        llvm::ConstantDataArray::getString(ctx, entry.signature());
    auto *signature = new llvm::GlobalVariable(
        module, text->getType(), /*isConstant=*/true,
        llvm::GlobalValue::ExternalLinkage, text, entry.signatureSymbol());
    signature->setAlignment(llvm::Align(1));
  }
  return success();
}

std::unique_ptr<llvm::TargetMachine>
mlir::mod::createTargetMachine(const CompileOptions &options) {
  std::string triple = llvm::sys::getProcessTriple();
  std::string error;
  const llvm::Target *tgt =
      llvm::TargetRegistry::lookupTarget(llvm::Triple(triple), error);
  if (!tgt) {
    (void)fail(options, "no LLVM target for " + triple + ": " + error);
    return nullptr;
  }
  llvm::SubtargetFeatures features;
  std::string cpuName = options.cpu;
  if (cpuName == "host") {
    cpuName = llvm::sys::getHostCPUName().str();
    for (const auto &[name, enabled] : llvm::sys::getHostCPUFeatures())
      features.AddFeature(name, enabled);
  }
  llvm::CodeGenOptLevel level =
      llvm::CodeGenOpt::getLevel(std::min(options.optLevel, 3u))
          .value_or(llvm::CodeGenOptLevel::Default);
  std::unique_ptr<llvm::TargetMachine> tm(tgt->createTargetMachine(
      llvm::Triple(triple), cpuName, features.getString(),
      llvm::TargetOptions(), llvm::Reloc::PIC_, std::nullopt, level));
  if (tm && !tm->getMCSubtargetInfo()->isCPUStringValid(cpuName)) {
    (void)fail(options, "unknown --cpu '" + cpuName + "' for " + triple);
    return nullptr;
  }
  return tm;
}

void mlir::mod::optimizeModule(llvm::Module &module, llvm::TargetMachine &tm,
                               const CompileOptions &options) {
  if (options.optLevel == 0)
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
  llvm::OptimizationLevel level =
      options.optLevel == 1   ? llvm::OptimizationLevel::O1
      : options.optLevel == 2 ? llvm::OptimizationLevel::O2
                              : llvm::OptimizationLevel::O3;
  pb.buildPerModuleDefaultPipeline(level).run(module, mam);
}

LogicalResult mlir::mod::emitObjectFile(llvm::Module &module,
                                        llvm::TargetMachine &tm, StringRef path,
                                        const CompileOptions &options) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return fail(options, "cannot write " + path + ": " + ec.message());
  llvm::legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr,
                             llvm::CodeGenFileType::ObjectFile))
    return fail(options, "the target cannot emit object files");
  pm.run(module);
  os.close();
  if (os.has_error()) {
    std::string message = os.error().message();
    os.clear_error();
    return fail(options, "writing " + path + " failed: " + message);
  }
  return success();
}
