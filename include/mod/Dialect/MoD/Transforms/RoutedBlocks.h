//===- RoutedBlocks.h - rewrite helpers for mod.routed_block ----*- C++ -*-===//

#ifndef MOD_DIALECT_MOD_TRANSFORMS_ROUTEDBLOCKS_H
#define MOD_DIALECT_MOD_TRANSFORMS_ROUTEDBLOCKS_H

#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir::mod {

/// Replaces `op` by router, top-k, gather, its inlined body, the gate and
/// scatter_add (what --mod-expand-routed-blocks does with routing=topk).
void expandRoutedBlock(RoutedBlockOp op, IRRewriter &rewriter);

} // namespace mlir::mod

#endif // MOD_DIALECT_MOD_TRANSFORMS_ROUTEDBLOCKS_H
