//===- BlockDiscovery.h - residual chain and transformer blocks -*- C++ -*-===//
//
// Finds the residual stream of a dense transformer written in upstream
// dialects: the chain h[i+1] = h[i] + g[i](...) of elementwise adds on
// [B,S,D] values, the sublayer g[i] behind each add, whether it mixes tokens
// (reduces or contracts over a token axis: attention) or is position-wise
// (an MLP), and groups sublayers into blocks: a token-mixing sublayer followed
// by a position-wise one (sequential pre-norm blocks, or parallel
// attention+MLP blocks whose MLP reads the block input), or a single branch
// that does both.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_ANALYSIS_BLOCKDISCOVERY_H
#define MOD_ANALYSIS_BLOCKDISCOVERY_H

#include "mod/Analysis/TokenAxisAnalysis.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/SetVector.h"

#include <string>

namespace mlir::mod {

/// One residual add and the branch feeding it.
struct Sublayer {
  /// The chain value the branch reads (h[i], or an earlier one for the MLP of
  /// a parallel block).
  Value input;
  /// The add's operand that carries the residual stream.
  Value skip;
  /// The add's other operand: the branch output g(input).
  Value branch;
  /// The elementwise add and its result, the next chain value.
  Operation *add = nullptr;
  Value output;
  /// Ops of the branch that depend on `input`, in program order.
  llvm::SetVector<Operation *> ops;
  /// An op of the branch that reduces or contracts over tokens, if any.
  Operation *tokenMixingOp = nullptr;
  bool isTokenMixing() const { return tokenMixingOp != nullptr; }
};

struct TransformerBlock {
  unsigned index = 0;
  /// One sublayer (a branch that mixes tokens and is the whole block) or two
  /// (token-mixing then position-wise). Copies of the chain's entries, not
  /// pointers into it: the structure is returned by value, and a moved
  /// SmallVector's inline storage moves with it.
  SmallVector<Sublayer, 2> sublayers;
  /// True when the second sublayer reads the block input, not the first
  /// sublayer's output.
  bool parallel = false;
  /// Common Hugging Face-style name prefix of the parameters the block uses
  /// (e.g. "transformer.h.3"), or "blocks.<index>" when they are unnamed.
  std::string prefix;
  Value input() const { return sublayers.front().input; }
  Value output() const { return sublayers.back().output; }
};

struct ResidualStructure {
  SmallVector<Sublayer> chain;
  SmallVector<TransformerBlock> blocks;
};

/// True if `op` adds two tensors elementwise; returns its operands.
bool matchElementwiseAdd(Operation *op, Value &lhs, Value &rhs);

/// Discovers the residual chain and the blocks of `func`. On failure, emits a
/// diagnostic naming the op it could not handle and returns failure.
FailureOr<ResidualStructure> discoverBlocks(func::FuncOp func,
                                            const TokenAxisAnalysis &axes);

} // namespace mlir::mod

#endif // MOD_ANALYSIS_BLOCKDISCOVERY_H
