//===- ElideSelfCopies.cpp - --mod-elide-self-copies ----------------------===//
//
// An in-place entry point (mod.aliases) returns the argument it updated; once
// buffer-results-to-out-params has turned results into out-parameters, that
// becomes a memref.copy from the argument into the out-parameter, which the
// runtime binds to the same buffer. The copy is then guarded by a pointer
// comparison so that it costs nothing when it would copy a buffer onto
// itself.
//
// A copy whose source holds nothing but one constant (the last write to it
// before the copy, in the same block, is a linalg.fill of all of it) becomes
// a linalg.fill of its target. CSE merges the zero inits of many GEMMs and reductions into
// one filled tensor, and one-shot bufferization copies that buffer before
// every op that writes into it: a backward pass has hundreds of such copies.
// A fill writes the same bytes without reading any, and one right before a
// GEMM is what --mod-linalg-to-blas folds into beta = 0.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::mod {
#define GEN_PASS_DEF_ELIDESELFCOPIES
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
/// Whether `v` is `root` or a reshape of it (the same elements, all of them).
bool isWholeView(Value v, Value root) {
  while (v != root) {
    Operation *def = v.getDefiningOp();
    if (!isa_and_nonnull<memref::ExpandShapeOp, memref::CollapseShapeOp>(def))
      return false;
    v = def->getOperand(0);
  }
  return true;
}

/// An op that writes a buffer (anything not known to only read it, through
/// views), and whether it is a linalg.fill of all of it. A null op stands
/// for an unknown use after which any write may happen.
struct Write {
  Operation *op;
  bool wholeFill;
};

SmallVector<Write> findWrites(Value root) {
  SmallVector<Write> writes;
  SmallVector<Value> worklist{root};
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    for (OpOperand &use : v.getUses()) {
      Operation *user = use.getOwner();
      if (isa<memref::ExpandShapeOp, memref::CollapseShapeOp,
              memref::SubViewOp>(user)) {
        worklist.push_back(user->getResult(0));
        continue;
      }
      if (auto copy = dyn_cast<memref::CopyOp>(user);
          copy && use.get() == copy.getSource() && copy.getTarget() != v)
        continue;
      if (auto linalgOp = dyn_cast<linalg::LinalgOp>(user);
          linalgOp && !isa<linalg::FillOp>(user) &&
          linalgOp.hasPureBufferSemantics() && linalgOp.isDpsInput(&use) &&
          !llvm::is_contained(linalgOp.getDpsInits(), v))
        continue;
      if (isa<memref::DeallocOp, memref::LoadOp>(user))
        continue;
      // An op with results might alias the buffer (a cast, its address)
      // and write through that later: nothing is known then.
      if (user->getNumResults() != 0)
        return {Write{nullptr, false}};
      writes.push_back({user, isa<linalg::FillOp>(user) && isWholeView(v, root)});
    }
  }
  return writes;
}

/// The value all of whose uses findWrites inspects: the allocation (or
/// function argument) under any reshapes and subviews.
Value rootBuffer(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (!isa<memref::ExpandShapeOp, memref::CollapseShapeOp,
             memref::SubViewOp>(def))
      break;
    v = def->getOperand(0);
  }
  return v;
}

/// The fill that last wrote all of `root` before `copy`, in the copy's
/// block, with no other write in between or at the copy; null otherwise.
linalg::FillOp fillReadBy(memref::CopyOp copy, ArrayRef<Write> writes) {
  Block *block = copy->getBlock();
  Operation *last = nullptr;
  bool lastIsFill = false;
  for (const Write &w : writes) {
    if (!w.op)
      return nullptr;
    Operation *ancestor = block->findAncestorOpInBlock(*w.op);
    if (!ancestor)
      return nullptr; // written outside this block: order unknown here
    if (ancestor == copy)
      return nullptr;
    if (copy->isBeforeInBlock(ancestor))
      continue;
    if (!last || last->isBeforeInBlock(ancestor)) {
      last = ancestor;
      lastIsFill = w.wholeFill && ancestor == w.op;
    }
  }
  return lastIsFill ? cast<linalg::FillOp>(last) : nullptr;
}

/// Replaces each copy out of a buffer that, at the copy, holds only what a
/// fill wrote by a fill of the copy's target.
void copiesOfFillsToFills(func::FuncOp fn) {
  SmallVector<std::pair<memref::CopyOp, linalg::FillOp>> rewrites;
  DenseMap<Value, SmallVector<Write>> writes;
  fn.walk([&](memref::CopyOp copy) {
    Value root = rootBuffer(copy.getSource());
    auto it = writes.find(root);
    if (it == writes.end())
      it = writes.try_emplace(root, findWrites(root)).first;
    if (linalg::FillOp fill = fillReadBy(copy, it->second))
      rewrites.emplace_back(copy, fill);
  });
  for (auto [copy, fill] : rewrites) {
    OpBuilder b(copy);
    linalg::FillOp::create(b, copy.getLoc(), fill.getDpsInputs()[0],
                           copy.getTarget());
    copy->erase();
  }
}

struct ElideSelfCopiesPass
    : mod::impl::ElideSelfCopiesBase<ElideSelfCopiesPass> {
  void runOnOperation() override {
    func::FuncOp fn = getOperation();
    if (fn.isExternal())
      return;
    copiesOfFillsToFills(fn);
    Block *entry = &fn.getBody().front();
    auto isEntryArg = [&](Value v) {
      auto arg = dyn_cast<BlockArgument>(v);
      return arg && arg.getOwner() == entry;
    };
    SmallVector<memref::CopyOp> copies;
    fn.walk([&](memref::CopyOp copy) {
      auto type = dyn_cast<MemRefType>(copy.getSource().getType());
      if (type && type == copy.getTarget().getType() &&
          type.getLayout().isIdentity() && isEntryArg(copy.getSource()) &&
          isEntryArg(copy.getTarget()) &&
          copy.getSource() != copy.getTarget())
        copies.push_back(copy);
    });
    for (memref::CopyOp copy : copies) {
      OpBuilder b(copy);
      Location loc = copy.getLoc();
      Value src = memref::ExtractAlignedPointerAsIndexOp::create(
          b, loc, copy.getSource());
      Value dst = memref::ExtractAlignedPointerAsIndexOp::create(
          b, loc, copy.getTarget());
      Value distinct =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, src, dst);
      auto ifOp = scf::IfOp::create(b, loc, distinct, /*withElseRegion=*/false);
      copy->moveBefore(ifOp.thenBlock()->getTerminator());
    }
  }
};
} // namespace
