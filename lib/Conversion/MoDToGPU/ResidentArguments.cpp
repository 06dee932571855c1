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
        // The result remembers the argument it updates, so that
        // --mod-gpu-device-buffers can update that buffer in place.
        fn.setResultAttr(r, kResidentAttr,
                         IntegerAttr::get(IntegerType::get(ctx, 64), arg));
      }
    }
  }
};
} // namespace
