//===- MoDOps.h - MoD dialect operations ------------------------*- C++ -*-===//

#ifndef MOD_DIALECT_MOD_IR_MODOPS_H
#define MOD_DIALECT_MOD_IR_MODOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "mod/Dialect/MoD/IR/MoDDialect.h"
#include "mod/Dialect/MoD/IR/MoDEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "mod/Dialect/MoD/IR/MoDAttrs.h.inc"

#define GET_OP_CLASSES
#include "mod/Dialect/MoD/IR/MoDOps.h.inc"

#endif // MOD_DIALECT_MOD_IR_MODOPS_H
