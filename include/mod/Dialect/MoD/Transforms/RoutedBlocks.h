//===- RoutedBlocks.h - rewrite helpers for mod.routed_block ----*- C++ -*-===//

#ifndef MOD_DIALECT_MOD_TRANSFORMS_ROUTEDBLOCKS_H
#define MOD_DIALECT_MOD_TRANSFORMS_ROUTEDBLOCKS_H

#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir::mod {

/// Replaces `op` by router, top-k, gather, its inlined body, the gate and
/// scatter_add (what --mod-expand-routed-blocks does with routing=topk).
void expandRoutedBlock(RoutedBlockOp op, IRRewriter &rewriter);

/// Like expandRoutedBlock, but the top-k runs on the given `[B,S]` `scores`
/// instead of the router's logits (the router weight operand is not read).
/// With `unitScale` the block output is added with scale 1 and no gate;
/// otherwise it is scaled by the gated selected scores. Returns the top-k.
TopKOp expandRoutedBlockOn(RoutedBlockOp op, Value scores, bool unitScale,
                           IRRewriter &rewriter);

} // namespace mlir::mod

#endif // MOD_DIALECT_MOD_TRANSFORMS_ROUTEDBLOCKS_H
