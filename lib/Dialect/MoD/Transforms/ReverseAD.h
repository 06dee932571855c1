//===- ReverseAD.h - reverse-mode AD over linalg on tensors -----*- C++ -*-===//
//
// The engine behind --mod-generate-grad. A ReverseAD instance lives for one
// function: it knows which values are differentiable (depend on a seed) and
// accumulates one adjoint tensor per value while the caller visits the
// forward ops in reverse order and calls differentiate() on each.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_LIB_DIALECT_MOD_TRANSFORMS_REVERSEAD_H
#define MOD_LIB_DIALECT_MOD_TRANSFORMS_REVERSEAD_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"

#include <functional>

namespace mlir::mod::detail {

/// Builders shared by the gradient pass.
RankedTensorType tensorTypeOf(Value v);
Value floatConstant(OpBuilder &b, Location loc, Type type, double value);
Value filledTensor(OpBuilder &b, Location loc, RankedTensorType type,
                   double value);
/// A linalg.generic with one result: `body` gets the inputs' scalars and the
/// accumulator (the init's scalar) and returns the value to yield.
Value buildGeneric(OpBuilder &b, Location loc, ValueRange inputs,
                   ArrayRef<AffineMap> inputMaps, Value init, AffineMap outMap,
                   ArrayRef<utils::IteratorType> iterators,
                   function_ref<Value(OpBuilder &, Location, ValueRange)> body);
/// `lhs + rhs`, elementwise, same types.
Value addTensors(OpBuilder &b, Location loc, Value lhs, Value rhs);
Value transposeTensor(OpBuilder &b, Location loc, Value input,
                      ArrayRef<int64_t> permutation);

class ReverseAD {
public:
  explicit ReverseAD(OpBuilder &builder) : b(builder) {}

  /// Marks `seeds` and every float tensor computed from them in `block`
  /// (values read inside regions count as operands) as differentiable.
  void computeActivity(Block &block, ArrayRef<Value> seeds);
  bool isActive(Value v) const { return active.contains(v); }

  /// Adjoints arriving at `v` are dropped (the gradient is stopped there).
  void stopGradient(Value v) { stopped.insert(v); }

  Value getAdjoint(Value v) const { return adjoints.lookup(v); }
  /// Accumulates `contribution` into the adjoint of `v` (dropped when `v` is
  /// not differentiable or its gradient is stopped).
  void addAdjoint(Value v, Value contribution);

  /// Emits, at the builder's insertion point, the adjoints of `op`'s
  /// differentiable operands from the adjoints of its results. An op that
  /// has a differentiable operand and no rule is an error on `op`.
  LogicalResult differentiate(Operation *op);

private:
  LogicalResult differentiateGeneric(linalg::GenericOp op);
  LogicalResult differentiateMatmul(linalg::LinalgOp op, bool batched);

  OpBuilder &b;
  llvm::DenseSet<Value> active, stopped;
  llvm::DenseMap<Value, Value> adjoints;
};

} // namespace mlir::mod::detail

#endif // MOD_LIB_DIALECT_MOD_TRANSFORMS_REVERSEAD_H
