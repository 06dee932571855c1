//===- MoDDialect.cpp - MoD dialect registration --------------------------===//

#include "mod/Dialect/MoD/IR/MoDDialect.h"
#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::mod;

#include "mod/Dialect/MoD/IR/MoDOpsDialect.cpp.inc"
#include "mod/Dialect/MoD/IR/MoDEnums.cpp.inc"
#define GET_ATTRDEF_CLASSES
#include "mod/Dialect/MoD/IR/MoDAttrs.cpp.inc"

void MoDDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "mod/Dialect/MoD/IR/MoDAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "mod/Dialect/MoD/IR/MoDOps.cpp.inc"
      >();
}

// Folders produce index constants (mod.topk with k == S).
Operation *MoDDialect::materializeConstant(OpBuilder &builder, Attribute value,
                                           Type type, Location loc) {
  auto typed = dyn_cast<TypedAttr>(value);
  if (!typed || typed.getType() != type)
    return nullptr;
  return arith::ConstantOp::create(builder, loc, type, typed);
}
