//===- ReadOnlyEntryArguments.cpp - --mod-read-only-entry-arguments -------===//
//
// An entry point is called by the runtime with buffers it owns (user inputs,
// parameters); writing into them silently changes the next call's answer.
// One-shot bufferization reads `bufferization.writable` on function
// arguments, so marking them read-only makes it copy before writing.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::mod {
#define GEN_PASS_DEF_READONLYENTRYARGUMENTS
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
constexpr llvm::StringLiteral kAliasesAttr = "mod.aliases";

struct ReadOnlyEntryArgumentsPass
    : mod::impl::ReadOnlyEntryArgumentsBase<ReadOnlyEntryArgumentsPass> {
  void runOnOperation() override {
    for (auto fn : getOperation().getOps<func::FuncOp>()) {
      if (fn.isPrivate() || fn.isExternal())
        continue;
      unsigned numArgs = fn.getNumArguments();
      llvm::SmallBitVector donated(numArgs);
      for (unsigned r = 0, e = fn.getNumResults(); r < e; ++r) {
        Attribute attr = fn.getResultAttr(r, kAliasesAttr);
        if (!attr)
          continue;
        auto index = dyn_cast<IntegerAttr>(attr);
        if (!index || index.getInt() < 0 ||
            index.getInt() >= static_cast<int64_t>(numArgs) ||
            !isa<TensorType>(fn.getArgumentTypes()[index.getInt()])) {
          fn.emitError() << "entry point @" << fn.getSymName() << ": result "
                         << r << " has " << kAliasesAttr << " = " << attr
                         << ", which must be the i64 index of a tensor "
                            "argument (the function has "
                         << numArgs << " arguments)";
          return signalPassFailure();
        }
        donated.set(index.getInt());
      }
      // Consumed here: past bufferization results become out-parameters and
      // the attribute would describe nothing (the manifest keeps it).
      for (unsigned r = 0, e = fn.getNumResults(); r < e; ++r)
        fn.removeResultAttr(r, StringAttr::get(&getContext(), kAliasesAttr));
      auto writableName = StringAttr::get(
          &getContext(),
          bufferization::BufferizationDialect::kWritableAttrName);
      for (unsigned i = 0; i < numArgs; ++i)
        if (isa<TensorType>(fn.getArgumentTypes()[i]))
          fn.setArgAttr(i, writableName,
                        BoolAttr::get(&getContext(), donated.test(i)));
    }
  }
};
} // namespace
