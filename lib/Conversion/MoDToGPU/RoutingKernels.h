//===- RoutingKernels.h - gpu.launch builders for the mod ops ---*- C++ -*-===//
//
// Each builder emits one `gpu.launch` at the builder's insertion point that
// reads and writes the given memrefs (identity layout, default memory space,
// so they are device buffers once the CUDA pipeline moves allocations to the
// GPU). Row-shaped operands are passed as 3-D views `[B, S|K, E]` with every
// trailing dimension folded into E.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_LIB_CONVERSION_MODTOGPU_ROUTINGKERNELS_H
#define MOD_LIB_CONVERSION_MODTOGPU_ROUTINGKERNELS_H

#include "mlir/IR/Builders.h"

#include <string>

namespace mlir::mod::detail {

/// out[b, j, e] = in[b, indices[b, j], e].
struct GatherOperands {
  Value input;  // [B, S, E]
  Value output; // [B, K, E]
};

/// Router, radix top-k and gathers for one routed block: one thread block per
/// batch row.
struct SelectKernel {
  std::string name;
  int64_t blockSize = 256;
  /// Router operands `[B,S,D]` and `[D]`; null when the scores are an input.
  Value x, w;
  /// `[B,S]` f32: written by the router phase when `x` is set, read otherwise.
  Value scores;
  /// `[B,K]` i32 ascending indices and `[B,K]` f32 scores; null when `k` is 0
  /// (a router-only kernel).
  Value indices, values;
  int64_t k = 0;
  SmallVector<GatherOperands> gathers;
  /// Thread blocks per batch row (grid `parts x B`). Only for a router-only
  /// kernel (`k` == 0): the row's tokens are split among its blocks.
  int64_t parts = 1;
};
void buildSelectKernel(OpBuilder &b, Location loc, const SelectKernel &spec);

/// Gathers rows with indices computed elsewhere: `parts` thread blocks per
/// row (grid `parts x B`; one block per row, grid `B`, when `parts` is 1),
/// each copying every `parts`-th block-sized slice of the row's K x E
/// elements.
void buildGatherKernel(OpBuilder &b, Location loc, StringRef name,
                       int64_t blockSize, Value indices,
                       ArrayRef<GatherOperands> gathers, int64_t parts = 1);

/// out = input; out[b, indices[b,j], :] += g(scale[b,j]) * update[b,j,:].
struct ScatterKernel {
  std::string name;
  int64_t blockSize = 256;
  Value input, indices, update, scale, output; // [B,S,E] [B,K] [B,K,E] [B,K] [B,S,E]
  /// g = sigmoid instead of the identity.
  bool sigmoidGate = false;
  /// Indices are unique and ascending in every row (they come from
  /// mod.topk): every output row is then written by exactly one warp, found
  /// by binary search, with no atomics. Otherwise two launches copy and then
  /// accumulate with atomic adds, which is what repeated indices need.
  bool sortedUnique = false;
};
void buildScatterKernel(OpBuilder &b, Location loc, const ScatterKernel &spec);

} // namespace mlir::mod::detail

#endif // MOD_LIB_CONVERSION_MODTOGPU_ROUTINGKERNELS_H
