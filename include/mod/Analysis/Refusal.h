//===- Refusal.h - one-line diagnostics for refused input ----*- C++ -*-===//
//
// Operation::emitError attaches the operation in generic form ("see current
// operation"), and for a function or a module that is the whole program:
// thousands of lines for a real model. A refusal instead reports the
// location, and for an op inside a function a note with that op alone in its
// custom form, its regions elided.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_ANALYSIS_REFUSAL_H
#define MOD_ANALYSIS_REFUSAL_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Operation.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

namespace mlir::mod {

/// An error at `op`'s location; stream the message into it.
InFlightDiagnostic emitRefusal(Operation *op);

} // namespace mlir::mod

#endif // MOD_ANALYSIS_REFUSAL_H
