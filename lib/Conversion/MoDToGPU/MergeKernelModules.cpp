//===- MergeKernelModules.cpp - --mod-gpu-merge-kernel-modules ------------===//
//
// gpu-kernel-outlining puts every kernel in a gpu.module of its own, and each
// gpu.module becomes one binary: one cuModuleLoadData (and one ptxas run) per
// kernel. A model has dozens of kernels; merged into one gpu.module they are
// one cubin, loaded once.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::mod {
#define GEN_PASS_DEF_MODGPUMERGEKERNELMODULES
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
struct MoDGPUMergeKernelModulesPass
    : mod::impl::MoDGPUMergeKernelModulesBase<MoDGPUMergeKernelModulesPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<gpu::GPUModuleOp> sources(module.getOps<gpu::GPUModuleOp>());
    if (sources.size() < 2)
      return;
    for (gpu::GPUModuleOp source : sources)
      if (source.getTargetsAttr() || source.getOffloadingHandlerAttr()) {
        source.emitOpError() << "already has targets; run "
                                "--mod-gpu-merge-kernel-modules before "
                                "nvvm-attach-target";
        return signalPassFailure();
      }
    std::string name = moduleName;
    if (SymbolTable::lookupSymbolIn(module, name)) {
      module.emitError() << "--mod-gpu-merge-kernel-modules: the symbol @"
                         << name << " is taken";
      return signalPassFailure();
    }

    OpBuilder b(sources.front());
    auto merged = gpu::GPUModuleOp::create(b, sources.front().getLoc(), name);
    SymbolTable mergedSymbols(merged);
    // (old module, old symbol) -> new symbol, for the launches.
    DenseMap<std::pair<StringAttr, StringAttr>, StringAttr> renamed;
    for (gpu::GPUModuleOp source : sources) {
      StringAttr sourceName = source.getSymNameAttr();
      SmallVector<Operation *> ops;
      for (Operation &op : source.getBody()->getOperations())
        ops.push_back(&op);
      // A kernel takes its module's name (unique in the parent, and what
      // the routing kernels are called already); other symbols keep theirs
      // unless taken.
      for (Operation *op : ops) {
        auto symbol = dyn_cast<SymbolOpInterface>(op);
        if (!symbol) {
          op->moveBefore(merged.getBody(), merged.getBody()->end());
          continue;
        }
        StringAttr oldName = symbol.getNameAttr();
        StringAttr wanted =
            isa<gpu::GPUFuncOp>(op) && cast<gpu::GPUFuncOp>(op).isKernel()
                ? sourceName
                : oldName;
        if (mergedSymbols.lookup(wanted))
          wanted = StringAttr::get(&getContext(), sourceName.getValue() + "_" +
                                                      oldName.getValue());
        if (wanted != oldName) {
          if (failed(SymbolTable::replaceAllSymbolUses(op, wanted, source))) {
            op->emitOpError()
                << "could not be renamed to @" << wanted.getValue();
            return signalPassFailure();
          }
          SymbolTable::setSymbolName(op, wanted);
        }
        op->remove();
        mergedSymbols.insert(op);
        // insert() may rename on a clash; record the final name.
        renamed[{sourceName, oldName}] =
            cast<SymbolOpInterface>(op).getNameAttr();
      }
    }

    auto mergedName = merged.getSymNameAttr();
    module.walk([&](gpu::LaunchFuncOp launch) {
      SymbolRefAttr kernel = launch.getKernel();
      auto it =
          renamed.find({kernel.getRootReference(), kernel.getLeafReference()});
      if (it == renamed.end())
        return;
      launch.setKernelAttr(
          SymbolRefAttr::get(mergedName, {FlatSymbolRefAttr::get(it->second)}));
    });
    for (gpu::GPUModuleOp source : sources)
      source.erase();
  }
};
} // namespace
