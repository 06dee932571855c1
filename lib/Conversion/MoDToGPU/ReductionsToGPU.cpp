//===- ReductionsToGPU.cpp - --mod-linalg-reductions-to-gpu ---------------===//
//
// convert-linalg-to-parallel-loops makes an scf.parallel only of the leading
// parallel loops of a linalg op. A linalg op with no parallel loop (a full
// reduction to a rank-0 buffer such as a scalar loss, or a rank-0 fill/copy)
// would become a host loop reading device memory, and a reduction loop in
// front of parallel ones would become a host loop around one launch per
// iteration. This pass runs on bufferized host code before that conversion:
//
//  - ops whose loops are all reductions become a one-block tree-reduction
//    kernel when the body is `out = combine(out, f(ins))` for an associative
//    combiner with a neutral element (addf, mulf, maxnumf, ... and their
//    integer forms) on a 32/64-bit scalar;
//  - other ops without a parallel loop run in a single-thread kernel;
//  - ops with parallel loops behind a reduction loop are interchanged so
//    the parallel loops come first (one thread per output element later).
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "mod/Conversion/Passes.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Affine/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::mod {
#define GEN_PASS_DEF_MODLINALGREDUCTIONSTOGPU
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod::detail;

namespace {
bool inKernel(Operation *op) {
  return op->getParentOfType<gpu::LaunchOp>() ||
         op->getParentOfType<gpu::GPUModuleOp>();
}

/// What a tree reduction needs to know about the body of `op`.
struct Combiner {
  Operation *op = nullptr; // combine(out, value), cloned to merge partials
  unsigned outOperand = 0; // which operand of `op` is the output argument
  TypedAttr neutral;
};

/// The combiner of a body `yield combine(out, f(ins))`, if it has a neutral
/// element and a type gpu.shuffle can move.
std::optional<Combiner> matchCombiner(linalg::LinalgOp op) {
  if (op.getNumDpsInits() != 1 || op.getNumLoops() == 0)
    return std::nullopt;
  Block *body = op.getBlock();
  SmallVector<Operation *> combinerOps;
  SmallVector<BlockArgument> outArgs(op.getRegionOutputArgs());
  if (!matchReduction(outArgs, 0, combinerOps) || combinerOps.size() != 1)
    return std::nullopt;
  Operation *combiner = combinerOps.front();
  if (combiner->getNumOperands() != 2 || combiner->getNumResults() != 1 ||
      combiner->getNumRegions() != 0 ||
      body->getTerminator()->getOperand(0) != combiner->getResult(0))
    return std::nullopt;
  Type t = combiner->getResult(0).getType();
  if (!(t.isF32() || t.isF64() || t.isInteger(32) || t.isInteger(64)))
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

/// Evaluates `map` at `ivs` with arith ops.
SmallVector<Value> applyMap(OpBuilder &b, Location loc, AffineMap map,
                            ValueRange ivs) {
  std::optional<SmallVector<Value, 8>> values =
      affine::expandAffineMap(b, loc, map, ivs);
  return SmallVector<Value>(values->begin(), values->end());
}

/// `for (f = tid; f < total; f += blockSize) acc = body(ivs(f), acc)`: each
/// thread folds its strided share of the iteration space, starting from the
/// neutral element. Returns the thread's partial result.
Value emitThreadPartial(KernelBuilder &kb, linalg::LinalgOp op,
                        const Combiner &combiner) {
  OpBuilder &b = kb.b;
  Location loc = kb.loc;
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  int64_t total = 1;
  for (int64_t r : ranges)
    total *= r;
  Value neutral = arith::ConstantOp::create(b, loc, combiner.neutral);
  Block *body = op.getBlock();
  return kb.forLoop(
      kb.tid, kb.idx(total), kb.idx(kb.blockSize), {neutral},
      [&](Value flat, ValueRange acc) -> SmallVector<Value> {
        SmallVector<Value> ivs(ranges.size());
        Value rest = flat;
        for (int64_t d = static_cast<int64_t>(ranges.size()) - 1; d >= 0; --d) {
          ivs[d] = d == 0
                       ? rest
                       : arith::RemUIOp::create(b, loc, rest, kb.idx(ranges[d]))
                             .getResult();
          if (d > 0)
            rest = arith::DivUIOp::create(b, loc, rest, kb.idx(ranges[d]));
        }
        IRMapping mapping;
        for (OpOperand *input : op.getDpsInputOperands()) {
          BlockArgument arg = op.getMatchingBlockArgument(input);
          Value v = input->get();
          if (isa<MemRefType>(v.getType()))
            v = kb.load(
                v, applyMap(b, loc, op.getMatchingIndexingMap(input), ivs));
          mapping.map(arg, v);
        }
        mapping.map(op.getRegionOutputArgs()[0], acc[0]);
        for (Operation &inner : body->without_terminator()) {
          if (auto index = dyn_cast<linalg::IndexOp>(inner)) {
            mapping.map(index.getResult(), ivs[index.getDim()]);
            continue;
          }
          b.clone(inner, mapping);
        }
        return {mapping.lookup(body->getTerminator()->getOperand(0))};
      })[0];
}

/// combine(a, b) with the body's combiner op.
Value combine(OpBuilder &b, const Combiner &combiner, Value a, Value v) {
  IRMapping mapping;
  mapping.map(combiner.op->getOperand(combiner.outOperand), a);
  mapping.map(combiner.op->getOperand(1 - combiner.outOperand), v);
  return b.clone(*combiner.op, mapping)->getResult(0);
}

Value warpCombine(KernelBuilder &kb, const Combiner &combiner, Value v) {
  for (int64_t offset = kWarpSize / 2; offset > 0; offset /= 2) {
    auto shuffle = gpu::ShuffleOp::create(kb.b, kb.loc, v, offset, kWarpSize,
                                          gpu::ShuffleMode::XOR);
    v = combine(kb.b, combiner, v, shuffle.getShuffleResult());
  }
  return v;
}

/// One block: per-thread partials, a shuffle reduction per warp, one slot
/// per warp in shared memory, a shuffle reduction of the slots in warp 0,
/// then thread 0 combines with the output's initial value and stores.
void buildTreeReduction(OpBuilder &b, linalg::LinalgOp op,
                        const Combiner &combiner, StringRef name,
                        int64_t blockSize) {
  OpBuilder::InsertionGuard guard(b);
  Location loc = op.getLoc();
  Type t = combiner.neutral.getType();
  int64_t warps = blockSize / kWarpSize;
  auto launch = createLaunch(b, loc, name, 1, 1, blockSize,
                             {workgroupMemRef(b, warps, t)});
  Value slots = launch.getWorkgroupAttributions()[0];
  KernelBuilder kb(b, loc, launch, blockSize);
  Value partial =
      warpCombine(kb, combiner, emitThreadPartial(kb, op, combiner));
  kb.ifThen(kb.cmpI(arith::CmpIPredicate::eq, kb.lane, kb.idx(0)),
            [&] { kb.store(partial, slots, kb.warp); });
  kb.barrier();
  kb.ifThen(kb.cmpI(arith::CmpIPredicate::eq, kb.warp, kb.idx(0)), [&] {
    Value inRange = kb.cmpI(arith::CmpIPredicate::ult, kb.lane, kb.idx(warps));
    Value slot = kb.select(inRange, kb.lane, kb.idx(0));
    Value v = kb.select(inRange, kb.load(slots, slot),
                        arith::ConstantOp::create(b, loc, combiner.neutral));
    Value total = warpCombine(kb, combiner, v);
    kb.ifThen(kb.cmpI(arith::CmpIPredicate::eq, kb.lane, kb.idx(0)), [&] {
      OpOperand *init = op.getDpsInitOperand(0);
      SmallVector<Value> zeros(op.getNumLoops(), kb.idx(0));
      SmallVector<Value> at =
          applyMap(b, loc, op.getMatchingIndexingMap(init), zeros);
      Value result = combine(b, combiner, kb.load(init->get(), at), total);
      kb.store(result, init->get(), at);
    });
  });
}

/// The op itself, moved into a one-thread kernel; the linalg lowering later
/// turns it into loops there.
void buildSingleThread(OpBuilder &b, linalg::LinalgOp op, StringRef name) {
  OpBuilder::InsertionGuard guard(b);
  auto launch = createLaunch(b, op.getLoc(), name, 1, 1, 1, {});
  op->moveBefore(launch.getBody().front().getTerminator());
}

/// Loop permutation putting the parallel loops first (stable), or empty if
/// they already are.
SmallVector<unsigned> parallelFirst(linalg::LinalgOp op) {
  SmallVector<unsigned> perm;
  SmallVector<utils::IteratorType> iters = op.getIteratorTypesArray();
  for (unsigned i = 0; i < iters.size(); ++i)
    if (iters[i] == utils::IteratorType::parallel)
      perm.push_back(i);
  for (unsigned i = 0; i < iters.size(); ++i)
    if (iters[i] != utils::IteratorType::parallel)
      perm.push_back(i);
  for (unsigned i = 0; i < perm.size(); ++i)
    if (perm[i] != i)
      return perm;
  return {};
}

struct MoDLinalgReductionsToGPUPass
    : mod::impl::MoDLinalgReductionsToGPUBase<MoDLinalgReductionsToGPUPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (blockSize < kWarpSize || blockSize > 1024 ||
        blockSize % kWarpSize != 0) {
      module.emitError() << "--mod-linalg-reductions-to-gpu: block-size "
                         << static_cast<int64_t>(blockSize)
                         << " must be a multiple of 32 in [32, 1024]";
      return signalPassFailure();
    }
    SmallVector<linalg::LinalgOp> ops;
    WalkResult walk = module.walk([&](linalg::LinalgOp op) {
      if (inKernel(op))
        return WalkResult::advance();
      if (!op.hasPureBufferSemantics()) {
        op->emitOpError() << "must be on buffers before "
                             "--mod-linalg-reductions-to-gpu (run "
                             "one-shot-bufferize first)";
        return WalkResult::interrupt();
      }
      if (op.hasDynamicShape()) {
        op->emitOpError() << "has dynamic shapes, which the CUDA target "
                             "does not support";
        return WalkResult::interrupt();
      }
      ops.push_back(op);
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();

    IRRewriter rewriter(&getContext());
    int64_t counter = 0;
    for (linalg::LinalgOp op : ops) {
      if (op.getNumParallelLoops() == 0) {
        rewriter.setInsertionPoint(op);
        std::string name = "mod_reduce_" + std::to_string(counter++);
        if (std::optional<Combiner> combiner = matchCombiner(op)) {
          buildTreeReduction(rewriter, op, *combiner, name, blockSize);
          rewriter.eraseOp(op);
        } else {
          buildSingleThread(rewriter, op, name);
        }
        continue;
      }
      SmallVector<unsigned> perm = parallelFirst(op);
      if (perm.empty())
        continue;
      rewriter.setInsertionPoint(op);
      auto generic = dyn_cast<linalg::GenericOp>(op.getOperation());
      if (!generic) {
        FailureOr<linalg::GenericOp> generalized =
            linalg::generalizeNamedOp(rewriter, op);
        if (failed(generalized))
          continue; // keeps its loop order: correct, only slower
        generic = *generalized;
      }
      if (failed(linalg::interchangeGenericOp(rewriter, generic, perm))) {
        generic.emitOpError() << "could not be interchanged to put its "
                                 "parallel loops first";
        return signalPassFailure();
      }
    }
  }
};
} // namespace
