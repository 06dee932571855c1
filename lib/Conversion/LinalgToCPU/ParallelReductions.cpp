//===- ParallelReductions.cpp - --mod-cpu-parallel-reductions -------------===//
//
// A linalg op whose loops are all reductions (a rank-0 result: a scalar
// loss, @adamw_step's global gradient norm) has no parallel loop, so
// convert-linalg-to-parallel-loops makes it one sequential loop nest whose
// accumulator goes through memory in every iteration, on one thread, one
// add at a time (an f64 add waits for the previous one). This pass splits
// such an op, when its combiner is associative with a neutral element, into
// a fixed number of chunks of its outermost loop, each folded on its own
// into a register accumulator (an scf.for iter_arg) and stored in a small
// partials buffer, followed by a sequential fold of the partials into the
// result. The chunk loop is an scf.parallel; the combiner inside a chunk
// carries `reassoc`, so LLVM vectorizes the innermost loop.
//
// The chunk count is static, so the result (the order of the additions)
// does not depend on the number of threads.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Affine/Utils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::mod {
#define GEN_PASS_DEF_CPUPARALLELREDUCTIONS
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
/// Marks the chunk loop: --mod-cpu-parallel-loops keeps it parallel (its
/// trip counts are not static, it would count each chunk as one iteration).
constexpr llvm::StringLiteral kChunksAttr = "mod.reduction_chunks";

/// The body's `out = combine(out, value)` op.
struct Combiner {
  Operation *op = nullptr;
  unsigned outOperand = 0;
  TypedAttr neutral;
};

std::optional<Combiner> matchCombiner(linalg::LinalgOp op) {
  Block *body = op.getBlock();
  SmallVector<BlockArgument> outArgs(op.getRegionOutputArgs());
  SmallVector<Operation *> combinerOps;
  if (outArgs.size() != 1 || !matchReduction(outArgs, 0, combinerOps) ||
      combinerOps.size() != 1)
    return std::nullopt;
  Operation *combiner = combinerOps.front();
  if (combiner->getNumOperands() != 2 || combiner->getNumResults() != 1 ||
      combiner->getNumRegions() != 0 ||
      body->getTerminator()->getOperand(0) != combiner->getResult(0))
    return std::nullopt;
  std::optional<TypedAttr> neutral = arith::getNeutralElement(combiner);
  if (!neutral)
    return std::nullopt;
  Combiner c;
  c.op = combiner;
  c.outOperand = combiner->getOperand(0) == outArgs[0] ? 0 : 1;
  c.neutral = *neutral;
  return c;
}

/// combine(acc, v) with the body's combiner; `reassoc` added when asked and
/// the op takes fast-math flags.
Value combine(OpBuilder &b, const Combiner &c, Value acc, Value v,
              bool reassoc) {
  IRMapping mapping;
  mapping.map(c.op->getOperand(c.outOperand), acc);
  mapping.map(c.op->getOperand(1 - c.outOperand), v);
  Operation *clone = b.clone(*c.op, mapping);
  if (reassoc)
    if (auto fm = dyn_cast<arith::ArithFastMathInterface>(clone))
      clone->setAttr(fm.getFastMathAttrName(),
                     arith::FastMathFlagsAttr::get(
                         b.getContext(), fm.getFastMathFlagsAttr().getValue() |
                                             arith::FastMathFlags::reassoc));
  return clone->getResult(0);
}

struct CPUParallelReductionsPass
    : mod::impl::CPUParallelReductionsBase<CPUParallelReductionsPass> {
  using Base::Base;

  void runOnOperation() override {
    if (chunks < 1) {
      getOperation()->emitError()
          << "--mod-cpu-parallel-reductions: chunks must be at least 1, got "
          << static_cast<int64_t>(chunks);
      return signalPassFailure();
    }
    SmallVector<std::pair<linalg::LinalgOp, Combiner>> candidates;
    getOperation()->walk([&](linalg::LinalgOp op) {
      if (std::optional<Combiner> c = match(op))
        candidates.emplace_back(op, *c);
    });
    for (auto &[op, c] : candidates)
      rewrite(op, c);
  }

  std::optional<Combiner> match(linalg::LinalgOp op) {
    if (!op.hasPureBufferSemantics() || op.getNumDpsInits() != 1 ||
        op.getNumLoops() == 0 ||
        op.getNumLoops() != op.getNumReductionLoops())
      return std::nullopt;
    auto outType = dyn_cast<MemRefType>(op.getDpsInits()[0].getType());
    if (!outType || outType.getRank() != 0)
      return std::nullopt;
    if (op->getParentOfType<scf::ParallelOp>())
      return std::nullopt; // already on a thread of a parallel loop
    int64_t total = 1;
    for (int64_t size : op.getStaticLoopRanges()) {
      if (ShapedType::isDynamic(size))
        return std::nullopt;
      total *= size;
    }
    if (total < minElements)
      return std::nullopt;
    for (OpOperand *input : op.getDpsInputOperands())
      if (!isa<MemRefType>(input->get().getType()) &&
          !input->get().getType().isIntOrIndexOrFloat())
        return std::nullopt;
    return matchCombiner(op);
  }

  void rewrite(linalg::LinalgOp op, const Combiner &c) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    auto idx = [&](int64_t v) -> Value {
      return arith::ConstantIndexOp::create(b, loc, v);
    };
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    const int64_t outer = ranges.front();
    const int64_t numChunks = std::min<int64_t>(chunks, outer);
    const int64_t chunk = (outer + numChunks - 1) / numChunks;
    Type accType = c.op->getResult(0).getType();
    Value out = op.getDpsInits()[0];
    Block *body = op.getBlock();

    // (A heap buffer, not an alloca: the op may sit in a loop.)
    auto partialsType = MemRefType::get({numChunks}, accType);
    Value partials = memref::AllocOp::create(b, loc, partialsType);
    Value neutral = arith::ConstantOp::create(b, loc, c.neutral);

    auto par = scf::ParallelOp::create(
        b, loc, ValueRange{idx(0)}, ValueRange{idx(numChunks)},
        ValueRange{idx(1)},
        [&](OpBuilder &pb, Location, ValueRange chunkIv) {
          auto pidx = [&](int64_t v) -> Value {
            return arith::ConstantIndexOp::create(pb, loc, v);
          };
          Value lo = arith::MulIOp::create(pb, loc, chunkIv[0], pidx(chunk));
          Value hi = arith::MinSIOp::create(
              pb, loc, arith::AddIOp::create(pb, loc, lo, pidx(chunk)),
              pidx(outer));
          SmallVector<Value> lbs{lo}, ubs{hi}, steps{pidx(1)};
          for (int64_t size : ArrayRef(ranges).drop_front()) {
            lbs.push_back(pidx(0));
            ubs.push_back(pidx(size));
            steps.push_back(pidx(1));
          }
          scf::LoopNest nest = scf::buildLoopNest(
              pb, loc, lbs, ubs, steps, ValueRange{neutral},
              [&](OpBuilder &nb, Location nl, ValueRange ivs,
                  ValueRange acc) -> scf::ValueVector {
                IRMapping mapping;
                for (OpOperand *input : op.getDpsInputOperands()) {
                  Value v = input->get();
                  if (isa<MemRefType>(v.getType())) {
                    std::optional<SmallVector<Value, 8>> indices =
                        affine::expandAffineMap(
                            nb, nl, op.getMatchingIndexingMap(input), ivs);
                    v = memref::LoadOp::create(nb, nl, v, *indices);
                  }
                  mapping.map(op.getMatchingBlockArgument(input), v);
                }
                Value value;
                for (Operation &inner : body->without_terminator()) {
                  if (&inner == c.op) {
                    value = mapping.lookupOrDefault(
                        c.op->getOperand(1 - c.outOperand));
                    continue;
                  }
                  if (auto index = dyn_cast<linalg::IndexOp>(inner)) {
                    mapping.map(index.getResult(), ivs[index.getDim()]);
                    continue;
                  }
                  nb.clone(inner, mapping);
                }
                return {combine(nb, c, acc[0], value, /*reassoc=*/true)};
              });
          memref::StoreOp::create(pb, loc, nest.results.front(), partials,
                                  chunkIv);
        });
    par->setAttr(kChunksAttr, b.getUnitAttr());

    // The partials in chunk order, after the result's initial value.
    Value init = memref::LoadOp::create(b, loc, out, ValueRange{});
    auto fold = scf::ForOp::create(
        b, loc, idx(0), idx(numChunks), idx(1), ValueRange{init},
        [&](OpBuilder &fb, Location, Value iv, ValueRange acc) {
          Value partial = memref::LoadOp::create(fb, loc, partials, iv);
          scf::YieldOp::create(
              fb, loc, combine(fb, c, acc[0], partial, /*reassoc=*/false));
        });
    memref::StoreOp::create(b, loc, fold.getResult(0), out, ValueRange{});
    memref::DeallocOp::create(b, loc, partials);
    op->erase();
  }
};
} // namespace
