//===- Elementwise.h - build elementwise linalg.generic ops -----*- C++ -*-===//

#ifndef MOD_DIALECT_MOD_TRANSFORMS_ELEMENTWISE_H
#define MOD_DIALECT_MOD_TRANSFORMS_ELEMENTWISE_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace mlir::mod {

/// A parallel linalg.generic over `inputs` (all of the same tensor type)
/// producing a tensor of that type; `body` computes one element from the
/// inputs' scalars and returns it.
inline Value
buildElementwise(OpBuilder &b, Location loc, ValueRange inputs,
                 function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  auto type = cast<RankedTensorType>(inputs.front().getType());
  Value init = tensor::EmptyOp::create(b, loc, type.getShape(),
                                       type.getElementType());
  SmallVector<AffineMap> maps(inputs.size() + 1,
                              b.getMultiDimIdentityMap(type.getRank()));
  SmallVector<utils::IteratorType> iters(type.getRank(),
                                         utils::IteratorType::parallel);
  return linalg::GenericOp::create(
             b, loc, type, inputs, ValueRange{init}, maps, iters,
             [&](OpBuilder &nb, Location nloc, ValueRange args) {
               linalg::YieldOp::create(
                   nb, nloc, body(nb, nloc, args.drop_back()));
             })
      .getResult(0);
}

} // namespace mlir::mod

#endif // MOD_DIALECT_MOD_TRANSFORMS_ELEMENTWISE_H
