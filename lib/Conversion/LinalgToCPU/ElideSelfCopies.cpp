//===- ElideSelfCopies.cpp - --mod-elide-self-copies ----------------------===//
//
// An in-place entry point (mod.aliases) returns the argument it updated; once
// buffer-results-to-out-params has turned results into out-parameters, that
// becomes a memref.copy from the argument into the out-parameter, which the
// runtime binds to the same buffer. The copy is then guarded by a pointer
// comparison so that it costs nothing when it would copy a buffer onto
// itself.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::mod {
#define GEN_PASS_DEF_ELIDESELFCOPIES
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
struct ElideSelfCopiesPass
    : mod::impl::ElideSelfCopiesBase<ElideSelfCopiesPass> {
  void runOnOperation() override {
    func::FuncOp fn = getOperation();
    if (fn.isExternal())
      return;
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
