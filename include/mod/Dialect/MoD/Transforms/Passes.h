//===- Passes.h - MoD dialect transformations -------------------*- C++ -*-===//

#ifndef MOD_DIALECT_MOD_TRANSFORMS_PASSES_H
#define MOD_DIALECT_MOD_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"
#include "mod/Dialect/MoD/IR/MoDDialect.h"

namespace mlir::mod {

#define GEN_PASS_DECL
#include "mod/Dialect/MoD/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "mod/Dialect/MoD/Transforms/Passes.h.inc"

} // namespace mlir::mod

#endif // MOD_DIALECT_MOD_TRANSFORMS_PASSES_H
