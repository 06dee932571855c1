//===- ResidentArguments.cpp - --mod-gpu-resident-arguments ---------------===//
//
// Decides which entry-point tensors of a CUDA model live on the device
// between calls: the parameters and everything updated in place. The
// decision is an attribute, `mod.device_resident`, that mod-compile writes
// into the manifest ("residency": "device") and --mod-gpu-device-buffers
// reads (no copy for such an argument).
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::mod {
#define GEN_PASS_DEF_MODGPURESIDENTARGUMENTS
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
constexpr llvm::StringLiteral kKindAttr = "mod.kind",
                              kNameAttr = "mod.name",
                              kAliasesAttr = "mod.aliases",
                              kResidentAttr = "mod.device_resident";

struct MoDGPUResidentArgumentsPass
    : mod::impl::MoDGPUResidentArgumentsBase<MoDGPUResidentArgumentsPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    auto resident = UnitAttr::get(ctx);
    for (auto fn : getOperation().getOps<func::FuncOp>()) {
      if (fn.isPrivate() || fn.isExternal())
        continue;
      unsigned numArgs = fn.getNumArguments();
      for (unsigned i = 0; i < numArgs; ++i)
        if (auto kind = fn.getArgAttrOfType<StringAttr>(i, kKindAttr);
            kind && kind.getValue() == "parameter")
          fn.setArgAttr(i, kResidentAttr, resident);
      for (unsigned r = 0, e = fn.getNumResults(); r < e; ++r) {
        auto alias = fn.getResultAttrOfType<IntegerAttr>(r, kAliasesAttr);
        if (!alias)
          continue;
        int64_t arg = alias.getInt();
        if (arg < 0 || arg >= int64_t(numArgs)) {
          fn.emitError() << "entry point @" << fn.getSymName() << ": result "
                         << r << " has " << kAliasesAttr << " = " << arg
                         << ", which is not an argument index (the function "
                            "has "
                         << numArgs << " arguments)";
          return signalPassFailure();
        }
        fn.setArgAttr(arg, kResidentAttr, resident);
        // The index of the argument it updates: once results are
        // out-parameters, --mod-gpu-device-buffers knows from it that the
        // runtime passes one buffer for both.
        fn.setResultAttr(r, kResidentAttr, alias);
      }
    }
    markPassedAlong();
  }

  /// A result another entry point takes as an argument of the same name and
  /// type (@loss_and_grad's `grad.<p>`, @adamw_step's inputs) is passed
  /// from one call to the other in a device buffer: both are marked.
  void markPassedAlong() {
    MLIRContext *ctx = &getContext();
    auto resident = UnitAttr::get(ctx);
    SmallVector<func::FuncOp> entries;
    for (auto fn : getOperation().getOps<func::FuncOp>())
      if (!fn.isPrivate() && !fn.isExternal())
        entries.push_back(fn);
    for (func::FuncOp producer : entries)
      for (unsigned r = 0, e = producer.getNumResults(); r < e; ++r) {
        auto name = producer.getResultAttrOfType<StringAttr>(r, kNameAttr);
        if (!name || producer.getResultAttr(r, kAliasesAttr))
          continue;
        Type type = producer.getResultTypes()[r];
        for (func::FuncOp consumer : entries) {
          if (consumer == producer)
            continue;
          for (unsigned i = 0, n = consumer.getNumArguments(); i < n; ++i)
            if (consumer.getArgAttrOfType<StringAttr>(i, kNameAttr) == name &&
                consumer.getArgumentTypes()[i] == type) {
              consumer.setArgAttr(i, kResidentAttr, resident);
              producer.setResultAttr(r, kResidentAttr, resident);
            }
        }
      }
  }
};
} // namespace
