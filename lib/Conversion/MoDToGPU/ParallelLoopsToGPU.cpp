//===- ParallelLoopsToGPU.cpp - --mod-parallel-loops-to-gpu ---------------===//
//
// Upstream's gpu-map-parallel-loops maps each dimension of an scf.parallel
// to its own grid or block dimension, which for the single multi-dimensional
// loop that convert-linalg-to-parallel-loops emits gives one thread per
// block. Flattening the whole iteration space over 1-D blocks instead keeps
// every launch full and the innermost (contiguous) dimension coalesced.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::mod {
#define GEN_PASS_DEF_MODPARALLELLOOPSTOGPU
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
LogicalResult checkLoop(scf::ParallelOp loop) {
  if (loop.getNumResults() != 0)
    return loop.emitOpError()
           << "with reductions cannot be mapped to a GPU kernel";
  for (auto [lb, ub, step] : llvm::zip(loop.getLowerBound(),
                                       loop.getUpperBound(), loop.getStep())) {
    std::optional<int64_t> s = getConstantIntValue(step);
    if (!getConstantIntValue(lb) || !getConstantIntValue(ub) || !s || *s <= 0)
      return loop.emitOpError() << "needs constant bounds and positive steps "
                                   "to be mapped to a GPU kernel";
  }
  return success();
}

/// Rewrites a loop checkLoop accepted.
LogicalResult mapLoop(scf::ParallelOp loop, int64_t blockSize,
                      int64_t maxBlocks) {
  if (loop.getNumResults() != 0)
    return loop.emitOpError()
           << "with reductions cannot be mapped to a GPU kernel";
  SmallVector<int64_t> lbs, steps, trips;
  for (auto [lb, ub, step] : llvm::zip(loop.getLowerBound(),
                                       loop.getUpperBound(), loop.getStep())) {
    std::optional<int64_t> l = getConstantIntValue(lb),
                           u = getConstantIntValue(ub),
                           s = getConstantIntValue(step);
    if (!l || !u || !s || *s <= 0)
      return loop.emitOpError() << "needs constant bounds and positive steps "
                                   "to be mapped to a GPU kernel";
    lbs.push_back(*l);
    steps.push_back(*s);
    trips.push_back(*u > *l ? (*u - *l + *s - 1) / *s : 0);
  }
  int64_t total = 1;
  for (int64_t t : trips)
    total *= t;
  if (total == 0) {
    loop->erase();
    return success();
  }

  OpBuilder b(loop);
  Location loc = loop.getLoc();
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); };
  int64_t blocks = std::min((total + blockSize - 1) / blockSize, maxBlocks);
  Value one = c(1);
  auto launch = gpu::LaunchOp::create(b, loc, c(blocks), one, one,
                                      c(blockSize), one, one);
  Block &body = launch.getBody().front();
  b.setInsertionPointToEnd(&body);
  gpu::TerminatorOp::create(b, loc);
  b.setInsertionPointToStart(&body);
  Value first = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc, launch.getBlockIds().x, c(blockSize)),
      launch.getThreadIds().x);
  auto grid = scf::ForOp::create(b, loc, first, c(total), c(blocks * blockSize));
  b.setInsertionPointToStart(grid.getBody());
  IRMapping mapping;
  Value rest = grid.getInductionVar();
  for (int64_t d = static_cast<int64_t>(trips.size()) - 1; d >= 0; --d) {
    Value i = d == 0 ? rest : arith::RemUIOp::create(b, loc, rest, c(trips[d]));
    if (d > 0)
      rest = arith::DivUIOp::create(b, loc, rest, c(trips[d]));
    Value iv = arith::AddIOp::create(
        b, loc, c(lbs[d]), arith::MulIOp::create(b, loc, i, c(steps[d])));
    mapping.map(loop.getInductionVars()[d], iv);
  }
  for (Operation &op : loop.getBody()->without_terminator())
    b.clone(op, mapping);
  loop->erase();
  return success();
}

struct MoDParallelLoopsToGPUPass
    : mod::impl::MoDParallelLoopsToGPUBase<MoDParallelLoopsToGPUPass> {
  using Base::Base;
  void runOnOperation() override {
    if (blockSize < 32 || blockSize > 1024 || blockSize % 32 != 0 ||
        maxBlocks < 1) {
      getOperation().emitError()
          << "--mod-parallel-loops-to-gpu: block-size must be a multiple of "
             "32 in [32, 1024] and max-blocks positive";
      return signalPassFailure();
    }
    // Checked first, so a failure leaves the IR as it was: an access
    // outside a kernel and outside the loops mapped here would touch device
    // memory from the host and crash at run time.
    WalkResult walk = getOperation().walk([](Operation *op) {
      // The host reads the buffers --mod-scatter-add-to-gpu fills device ->
      // host (mod.host_staging).
      if (auto load = dyn_cast<memref::LoadOp>(op)) {
        auto alloca = load.getMemRef().getDefiningOp<memref::AllocaOp>();
        if (alloca && alloca->hasAttr("mod.host_staging"))
          return WalkResult::advance();
      }
      if (!isa<memref::LoadOp, memref::StoreOp, memref::AtomicRMWOp>(op) ||
          op->getParentOfType<scf::ParallelOp>() ||
          op->getParentOfType<gpu::LaunchOp>() ||
          op->getParentOfType<gpu::GPUModuleOp>())
        return WalkResult::advance();
      op->emitOpError()
          << "accesses a buffer in host code outside any "
             "scf.parallel, which --mod-parallel-loops-to-gpu cannot make a "
             "kernel; the CUDA target keeps every "
             "buffer on the device (linalg ops without a parallel loop "
             "must go through --mod-linalg-reductions-to-gpu first)";
      return WalkResult::interrupt();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();
    SmallVector<scf::ParallelOp> loops;
    getOperation().walk([&](scf::ParallelOp loop) {
      if (!loop->getParentOfType<scf::ParallelOp>() &&
          !loop->getParentOfType<gpu::LaunchOp>() &&
          !loop->getParentOfType<gpu::GPUModuleOp>())
        loops.push_back(loop);
    });
    for (scf::ParallelOp loop : loops)
      if (failed(checkLoop(loop)))
        return signalPassFailure();
    for (scf::ParallelOp loop : loops)
      if (failed(mapLoop(loop, blockSize, maxBlocks)))
        return signalPassFailure();
  }
};
} // namespace
