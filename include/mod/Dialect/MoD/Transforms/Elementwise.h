//===- Elementwise.h - build elementwise linalg.generic ops -----*- C++ -*-===//

#ifndef MOD_DIALECT_MOD_TRANSFORMS_ELEMENTWISE_H
#define MOD_DIALECT_MOD_TRANSFORMS_ELEMENTWISE_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
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

/// The sigmoid gate of `mod.scatter_add` on one float scalar:
/// `1 / (1 + exp(-v))`. The only definition every lowering uses, so the CPU
/// and GPU paths (and adjoints, `g' = g * (1 - g)`) agree bit for bit.
inline Value buildSigmoid(OpBuilder &b, Location loc, Value v) {
  Type t = v.getType();
  Value one = arith::ConstantOp::create(b, loc, t, b.getFloatAttr(t, 1.0));
  Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, v));
  return arith::DivFOp::create(b, loc, one,
                               arith::AddFOp::create(b, loc, one, e));
}

} // namespace mlir::mod

#endif // MOD_DIALECT_MOD_TRANSFORMS_ELEMENTWISE_H
