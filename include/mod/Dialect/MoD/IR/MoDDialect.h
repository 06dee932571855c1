//===- MoDDialect.h - MoD dialect -------------------------------*- C++ -*-===//

#ifndef MOD_DIALECT_MOD_IR_MODDIALECT_H
#define MOD_DIALECT_MOD_IR_MODDIALECT_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"

#include "mod/Dialect/MoD/IR/MoDOpsDialect.h.inc"

#endif // MOD_DIALECT_MOD_IR_MODDIALECT_H
