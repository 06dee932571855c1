//===- Utils.h - Helpers shared by the mod-to-linalg lowerings --*- C++ -*-===//

#ifndef MOD_LIB_CONVERSION_MODTOLINALG_UTILS_H
#define MOD_LIB_CONVERSION_MODTOLINALG_UTILS_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::mod::detail {

/// A tensor of `type` filled with `value` (an attribute of its element type).
inline Value createFilled(OpBuilder &b, Location loc, RankedTensorType type,
                          TypedAttr value) {
  Value empty = tensor::EmptyOp::create(b, loc, type.getShape(),
                                        type.getElementType());
  Value cst = arith::ConstantOp::create(b, loc, value);
  return linalg::FillOp::create(b, loc, cst, empty).getResult(0);
}

inline SmallVector<utils::IteratorType> parallelIterators(int64_t n) {
  return SmallVector<utils::IteratorType>(n, utils::IteratorType::parallel);
}

void populateRouterLowering(RewritePatternSet &patterns);
void populateTopKLowering(RewritePatternSet &patterns);
void populateGatherScatterLowering(RewritePatternSet &patterns);

} // namespace mlir::mod::detail

#endif // MOD_LIB_CONVERSION_MODTOLINALG_UTILS_H
