//===- ParallelLoops.cpp - --mod-cpu-parallel-loops -----------------------===//
//
// convert-linalg-to-parallel-loops makes every parallel dimension of every
// linalg op an scf.parallel dimension. Handed as is to convert-scf-to-openmp
// that would open a parallel region for tiny loops, nest regions, and
// collapse the innermost (contiguous) dimension into the work-shared loop,
// where its index is recomputed by division and LLVM no longer vectorizes
// it. This pass decides, per loop nest, what runs on the OpenMP threads.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::mod {
#define GEN_PASS_DEF_CPUPARALLELLOOPS
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
std::optional<int64_t> tripCount(Value lb, Value ub, Value step) {
  std::optional<int64_t> l = getConstantIntValue(lb),
                         u = getConstantIntValue(ub),
                         s = getConstantIntValue(step);
  if (!l || !u || !s || *s <= 0)
    return std::nullopt;
  return *u > *l ? (*u - *l + *s - 1) / *s : 0;
}

/// Scalar iterations of the innermost bodies of `region`, counting an
/// unknown trip count as 1 (loop nests from linalg have static bounds).
int64_t work(Region &region) {
  int64_t total = 0;
  for (Operation &op : region.getOps()) {
    int64_t trips = 1;
    if (auto forOp = dyn_cast<scf::ForOp>(op)) {
      trips = tripCount(forOp.getLowerBound(), forOp.getUpperBound(),
                        forOp.getStep())
                  .value_or(1);
    } else if (auto par = dyn_cast<scf::ParallelOp>(op)) {
      for (auto [l, u, s] : llvm::zip(par.getLowerBound(), par.getUpperBound(),
                                      par.getStep()))
        trips *= tripCount(l, u, s).value_or(1);
    }
    int64_t inner = 0;
    for (Region &r : op.getRegions())
      inner += work(r);
    total += trips * std::max<int64_t>(inner, 1);
  }
  return total;
}

/// Rebuilds `par` with its first `keep` dimensions still parallel and the
/// others as nested scf.for loops inside (keep == 0: fully sequential).
void sequentialize(scf::ParallelOp par, unsigned keep) {
  unsigned rank = par.getNumLoops();
  if (keep >= rank)
    return;
  OpBuilder b(par);
  Location loc = par.getLoc();
  auto lbs = par.getLowerBound(), ubs = par.getUpperBound(),
       steps = par.getStep();
  Block *body = par.getBody();
  auto buildInner = [&](OpBuilder &nb, Location nl, ValueRange outerIvs) {
    scf::buildLoopNest(
        nb, nl, lbs.drop_front(keep), ubs.drop_front(keep),
        steps.drop_front(keep),
        [&](OpBuilder &ib, Location, ValueRange innerIvs) {
          IRMapping mapping;
          SmallVector<Value> ivs(outerIvs);
          ivs.append(innerIvs.begin(), innerIvs.end());
          mapping.map(body->getArguments(), ivs);
          for (Operation &op : body->without_terminator())
            ib.clone(op, mapping);
        });
  };
  if (keep == 0)
    buildInner(b, loc, {});
  else
    scf::ParallelOp::create(b, loc, lbs.take_front(keep), ubs.take_front(keep),
                            steps.take_front(keep), buildInner);
  par->erase();
}

constexpr llvm::StringLiteral kKeyRowsAttr = "mod.key_rows";

/// A decode step's loop over batch rows (--mod-generate-decode marks it
/// mod.key_rows: an iteration writes only its own row of every result) as an
/// scf.parallel over the rows, marked the same way.
void parallelizeRows(scf::ForOp loop) {
  OpBuilder b(loop);
  Block *body = loop.getBody();
  auto par = scf::ParallelOp::create(
      b, loop.getLoc(), ValueRange{loop.getLowerBound()},
      ValueRange{loop.getUpperBound()}, ValueRange{loop.getStep()},
      [&](OpBuilder &nb, Location, ValueRange ivs) {
        IRMapping mapping;
        mapping.map(loop.getInductionVar(), ivs.front());
        for (Operation &op : body->without_terminator())
          nb.clone(op, mapping);
      });
  par->setAttr(kKeyRowsAttr, b.getUnitAttr());
  loop->erase();
}

struct CPUParallelLoopsPass
    : mod::impl::CPUParallelLoopsBase<CPUParallelLoopsPass> {
  using Base::Base;
  void runOnOperation() override {
    // Rows of a decode step's key side: at least two rows run on the
    // threads (their bodies' dynamic trip counts would count as 1 below).
    SmallVector<scf::ForOp> rows;
    getOperation()->walk([&](scf::ForOp loop) {
      std::optional<int64_t> trips = tripCount(
          loop.getLowerBound(), loop.getUpperBound(), loop.getStep());
      if (loop->hasAttr(kKeyRowsAttr) && loop.getNumResults() == 0 &&
          trips && *trips >= 2 && !loop->getParentOfType<scf::ParallelOp>())
        rows.push_back(loop);
    });
    for (scf::ForOp loop : rows)
      parallelizeRows(loop);

    SmallVector<scf::ParallelOp> outermost;
    getOperation()->walk<WalkOrder::PreOrder>([&](scf::ParallelOp par) {
      outermost.push_back(par);
      return WalkResult::skip();
    });
    for (scf::ParallelOp par : outermost) {
      if (!par.getInitVals().empty())
        continue; // reductions: left to convert-scf-to-openmp as they are
      // One parallel region per nest: inner parallel loops run sequentially
      // on the thread that owns the outer iteration.
      SmallVector<scf::ParallelOp> nested;
      par.getBody()->walk([&](scf::ParallelOp inner) {
        if (inner.getInitVals().empty())
          nested.push_back(inner);
      });
      for (scf::ParallelOp inner : llvm::reverse(nested))
        sequentialize(inner, 0);
      if (par->hasAttr("mod.gemm_tiles") || par->hasAttr(kKeyRowsAttr) ||
          par->hasAttr("mod.reduction_chunks"))
        continue; // GEMM calls, attention tiles or rows, reduction chunks:
                  // each is heavy

      int64_t total = 1;
      for (auto [l, u, s] : llvm::zip(par.getLowerBound(), par.getUpperBound(),
                                      par.getStep()))
        total *= tripCount(l, u, s).value_or(1);
      int64_t nestWork = total * std::max<int64_t>(work(par.getRegion()), 1);
      if (nestWork < minWork) {
        sequentialize(par, 0);
        continue;
      }
      // Keep the shortest prefix of dimensions that gives the threads
      // enough iterations; the rest (the contiguous inner ones) run as
      // plain loops that LLVM can vectorize.
      unsigned keep = 0;
      int64_t iterations = 1;
      while (keep < par.getNumLoops() && iterations < minParallelIterations) {
        iterations *= tripCount(par.getLowerBound()[keep],
                                par.getUpperBound()[keep], par.getStep()[keep])
                          .value_or(1);
        ++keep;
      }
      sequentialize(par, keep);
    }
  }
};
} // namespace
