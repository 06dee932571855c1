//===- Refusal.cpp - one-line diagnostics for refused input ---------------===//

#include "mod/Analysis/Refusal.h"

#include "mlir/IR/OperationSupport.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

InFlightDiagnostic mlir::mod::emitRefusal(Operation *op) {
  InFlightDiagnostic diag = mlir::emitError(op->getLoc());
  if (isa<ModuleOp, FunctionOpInterface>(op))
    return diag;
  std::string text;
  llvm::raw_string_ostream os(text);
  op->print(os, OpPrintingFlags()
                    .skipRegions()
                    .elideLargeElementsAttrs(16)
                    .useLocalScope()
                    .assumeVerified());
  diag.attachNote(op->getLoc()) << "the op: " << text;
  return diag;
}
