//===- TokenAxisAnalysis.h - which tensor dimensions run over tokens -*- C++ -*-===//
//
// Finds, for every ranked tensor value of a function, which of its dimensions
// run over the token (sequence) axis, by propagating from seeds (axis 1 of the
// token and position inputs) through linalg indexing maps, reshapes, slices
// and elementwise ops, forwards and backwards, to a fixpoint.
//
// A dimension is described by its factors ("atoms"): a plain dimension is one
// atom, a dimension produced by tensor.collapse_shape is the list of the
// collapsed atoms, so [B,S,D] -> [B*S, D] keeps knowing that its first
// dimension holds S. Sizes are never used to guess: a dimension whose size
// happens to equal S is a token axis only if the data flow says so.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_ANALYSIS_TOKENAXISANALYSIS_H
#define MOD_ANALYSIS_TOKENAXISANALYSIS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallBitVector.h"

#include <optional>
#include <string>

namespace mlir::mod {

/// One factor of a tensor dimension.
struct AxisAtom {
  int64_t size;
  bool token;
  /// The batch axis (axis 0 of the seeds), followed the same way so that a
  /// rewrite can index [B,K] tensors such as the gathered positions.
  bool batch = false;
  bool operator==(const AxisAtom &o) const {
    return size == o.size && token == o.token && batch == o.batch;
  }
};

/// The factors of every dimension of one tensor value.
using AxisLayout = SmallVector<SmallVector<AxisAtom, 1>, 4>;

class TokenAxisAnalysis {
public:
  /// Runs the analysis on `root` (a function) from the given seed values,
  /// whose dimension 1 is the token axis.
  TokenAxisAnalysis(Operation *root, ArrayRef<Value> seeds);

  /// Layout of `v`; values the analysis never saw have plain, non-token dims.
  AxisLayout getLayout(Value v) const;

  /// True if any dimension of `v` runs over tokens.
  bool hasTokenAxis(Value v) const;

  /// True if dimension `dim` of `v` holds a token factor.
  bool isTokenDim(Value v, unsigned dim) const;

  /// The type `v` gets when every token factor of size `seqLen` becomes
  /// `capacity`.
  Type resizedType(Value v, int64_t seqLen, int64_t capacity) const;

  /// The sizes of `v`'s dimensions after resizing (see resizedType).
  SmallVector<int64_t> resizedShape(Value v, int64_t seqLen,
                                    int64_t capacity) const;

  /// Loops of a linalg op (or any op with loops in the future) that iterate
  /// over tokens.
  llvm::SmallBitVector getTokenLoops(Operation *linalgOp) const;

  /// Loops of a linalg op that iterate over the batch axis alone (not merged
  /// with another axis).
  llvm::SmallBitVector getBatchLoops(Operation *linalgOp) const;

  /// Why the token axes through `op` could not be followed (a token axis in
  /// a compound indexing expression, a reshape that splits a token factor, a
  /// slice that cuts one), or nullopt when `op` was understood. Only ops that
  /// a rewrite must resize need to be understood.
  std::optional<std::string> getFailure(Operation *op) const;

private:
  bool markToken(Value v, unsigned dim, unsigned atom);
  bool markBatch(Value v, unsigned dim);
  bool setLayout(Value v, const AxisLayout &layout);
  bool propagate(Operation *op);
  bool propagateLinalg(Operation *op);
  bool propagateReshape(Operation *op);
  /// Makes dimension d of `big` and dimension bigToSmall[d] of `small` agree
  /// (-1: d is dropped by a rank-reducing slice; -2: d is not linked, the
  /// concatenated dimension of a tensor.concat).
  bool linkDims(Operation *op, Value big, Value small,
                ArrayRef<int64_t> bigToSmall);
  void fail(Operation *op, const Twine &why);

  DenseMap<Value, AxisLayout> layouts;
  DenseMap<Operation *, std::string> failures;
};

} // namespace mlir::mod

#endif // MOD_ANALYSIS_TOKENAXISANALYSIS_H
