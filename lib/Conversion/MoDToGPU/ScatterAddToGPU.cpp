//===- ScatterAddToGPU.cpp - --mod-scatter-add-to-gpu ---------------------===//
//
// A scatter-add (the adjoint of an embedding lookup that --mod-generate-grad
// emits, `table[tokens[b, s], d] += dy[b, s, d]`) is a sequential scf.for
// nest: the row it writes is data, so no linalg op expresses it, and after
// bufferization it is a host loop nest that loads and stores buffers the
// CUDA target keeps on the device. Its iterations only ever *accumulate*
// into their output buffers (`B[i] = B[i] + v`, B read nowhere else), so they
// commute: this pass makes such a nest one kernel with a thread per
// iteration and `memref.atomic_rmw` for the read-modify-writes.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "mod/Conversion/Passes.h"

#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Dialect/Affine/Utils.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace mlir::mod {
#define GEN_PASS_DEF_MODSCATTERADDTOGPU
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod::detail;

namespace {
bool inKernel(Operation *op) {
  return op->getParentOfType<gpu::LaunchOp>() ||
         op->getParentOfType<gpu::GPUModuleOp>();
}

/// The buffer a view is taken from, through any chain of views.
Value rootBuffer(Value v) {
  while (auto view = v.getDefiningOp<ViewLikeOpInterface>()) {
    if (view.getViewSource() == v)
      break;
    v = view.getViewSource();
  }
  return v;
}

/// `store(add(load(B, I), v), B, I)`: the read-modify-write that becomes
/// `atomic_rmw add v, B[I]`.
struct Accumulate {
  memref::LoadOp load;
  Operation *add;
  memref::StoreOp store;
  Value addend;
  arith::AtomicRMWKind kind;
};

/// A host loop nest this pass can make a kernel.
struct ScatterNest {
  SmallVector<scf::ForOp> loops; // outermost first
  SmallVector<int64_t> lbs, steps, trips;
  SmallVector<Accumulate> accumulates;
};

std::optional<Accumulate> matchAccumulate(memref::StoreOp store) {
  Operation *add = store.getValueToStore().getDefiningOp();
  if (!add || !isa<arith::AddFOp, arith::AddIOp>(add) ||
      add->getBlock() != store->getBlock() || !add->hasOneUse())
    return std::nullopt;
  for (unsigned i = 0; i < 2; ++i) {
    auto load = add->getOperand(i).getDefiningOp<memref::LoadOp>();
    if (!load || load.getMemRef() != store.getMemRef() ||
        load.getIndices() != store.getIndices() ||
        load->getBlock() != store->getBlock() || !load->hasOneUse())
      continue;
    Accumulate acc;
    acc.load = load;
    acc.add = add;
    acc.store = store;
    acc.addend = add->getOperand(1 - i);
    acc.kind = isa<arith::AddFOp>(add) ? arith::AtomicRMWKind::addf
                                       : arith::AtomicRMWKind::addi;
    return acc;
  }
  return std::nullopt;
}

/// Accepts the nest rooted at `outer` or explains, on the op at fault, why
/// its iterations cannot run in parallel.
FailureOr<ScatterNest> analyze(scf::ForOp outer) {
  ScatterNest nest;
  scf::ForOp loop = outer;
  while (loop) {
    if (loop.getNumResults() != 0)
      return loop.emitOpError()
             << "in host code carries values between iterations, which "
                "--mod-scatter-add-to-gpu cannot make a kernel (the CUDA "
                "target keeps every buffer on the device)";
    std::optional<int64_t> lb = getConstantIntValue(loop.getLowerBound()),
                           ub = getConstantIntValue(loop.getUpperBound()),
                           step = getConstantIntValue(loop.getStep());
    if (!lb || !ub || !step || *step <= 0)
      return loop.emitOpError()
             << "in host code needs constant bounds and a positive step to "
                "become a GPU kernel";
    nest.loops.push_back(loop);
    nest.lbs.push_back(*lb);
    nest.steps.push_back(*step);
    nest.trips.push_back(*ub > *lb ? (*ub - *lb + *step - 1) / *step : 0);
    scf::ForOp inner;
    for (Operation &op : loop.getBody()->without_terminator()) {
      if (auto child = dyn_cast<scf::ForOp>(op)) {
        if (inner)
          return child.emitOpError()
                 << "is a second loop in a host loop nest; only a perfect "
                    "nest of scf.for loops can become a scatter-add kernel";
        inner = child;
        continue;
      }
      if (op.getNumRegions() != 0)
        return op.emitOpError()
               << "with regions in a host loop nest is not supported by "
                  "--mod-scatter-add-to-gpu";
      if (isa<memref::LoadOp>(op))
        continue;
      if (!isa<memref::StoreOp>(op) && !isMemoryEffectFree(&op))
        return op.emitOpError()
               << "has side effects in a host loop nest, which "
                  "--mod-scatter-add-to-gpu cannot make a kernel";
    }
    if (inner)
      for (Operation &op : loop.getBody()->without_terminator())
        if (isa<memref::StoreOp>(op))
          return op.emitOpError()
                 << "between the loops of a host loop nest is not supported "
                    "by --mod-scatter-add-to-gpu (writes must be in the "
                    "innermost loop)";
    loop = inner;
  }

  // Every write accumulates, and nothing else reads the buffers written.
  llvm::SmallPtrSet<Operation *, 8> matchedLoads;
  llvm::SmallPtrSet<Value, 4> accumulated;
  SmallVector<memref::LoadOp> loads;
  WalkResult walk = outer.getBody()->walk([&](Operation *op) {
    if (auto store = dyn_cast<memref::StoreOp>(op)) {
      std::optional<Accumulate> acc = matchAccumulate(store);
      if (!acc) {
        store.emitOpError()
            << "in a host loop nest is not an accumulation "
               "`B[i] = B[i] + v` of a value loaded from the same element, "
               "so the iterations do not commute and cannot become a "
               "scatter-add kernel (the CUDA target keeps every buffer on "
               "the device)";
        return WalkResult::interrupt();
      }
      Value root = rootBuffer(store.getMemRef());
      if (!root.getDefiningOp<memref::AllocOp>()) {
        store.emitOpError()
            << "in a host loop nest accumulates into a buffer not "
               "allocated in this function, which may alias the buffers "
               "the loop reads; --mod-scatter-add-to-gpu only makes "
               "accumulations into fresh buffers atomic";
        return WalkResult::interrupt();
      }
      accumulated.insert(root);
      matchedLoads.insert(acc->load);
      nest.accumulates.push_back(*acc);
    } else if (auto load = dyn_cast<memref::LoadOp>(op)) {
      loads.push_back(load);
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  for (memref::LoadOp load : loads)
    if (!matchedLoads.contains(load) &&
        accumulated.contains(rootBuffer(load.getMemRef())))
      return load.emitOpError()
             << "in a host loop nest reads a buffer the nest accumulates "
                "into, so its iterations do not commute and cannot become "
                "a scatter-add kernel";
  return nest;
}

/// Replaces the nest by a grid-stride kernel over its flattened iteration
/// space (innermost loop fastest), each thread running one iteration's body
/// with the accumulations made atomic.
void rewrite(ScatterNest &nest, StringRef name, int64_t blockSize,
             int64_t maxBlocks) {
  scf::ForOp outer = nest.loops.front();
  int64_t total = 1;
  for (int64_t t : nest.trips)
    total *= t;
  if (total == 0) {
    outer->erase();
    return;
  }
  OpBuilder b(outer);
  Location loc = outer.getLoc();
  int64_t blocks = std::min((total + blockSize - 1) / blockSize, maxBlocks);
  gpu::LaunchOp launch = createLaunch(b, loc, name, blocks, 1, blockSize, {});
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); };
  Value first = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc, launch.getBlockIds().x, c(blockSize)),
      launch.getThreadIds().x);
  auto grid =
      scf::ForOp::create(b, loc, first, c(total), c(blocks * blockSize));
  b.setInsertionPointToStart(grid.getBody());

  IRMapping mapping;
  Value rest = grid.getInductionVar();
  for (int64_t d = static_cast<int64_t>(nest.trips.size()) - 1; d >= 0; --d) {
    Value i = d == 0 ? rest
                     : arith::RemUIOp::create(b, loc, rest, c(nest.trips[d]))
                           .getResult();
    if (d > 0)
      rest = arith::DivUIOp::create(b, loc, rest, c(nest.trips[d]));
    Value iv = arith::AddIOp::create(
        b, loc, c(nest.lbs[d]),
        arith::MulIOp::create(b, loc, i, c(nest.steps[d])));
    mapping.map(nest.loops[d].getInductionVar(), iv);
  }
  llvm::DenseMap<Operation *, const Accumulate *> byStore;
  llvm::SmallPtrSet<Operation *, 8> skip;
  for (const Accumulate &acc : nest.accumulates) {
    byStore[acc.store] = &acc;
    skip.insert(acc.load);
    skip.insert(acc.add);
  }
  for (scf::ForOp loop : nest.loops)
    for (Operation &op : loop.getBody()->without_terminator()) {
      if (isa<scf::ForOp>(op) || skip.contains(&op))
        continue;
      if (auto it = byStore.find(&op); it != byStore.end()) {
        Accumulate acc = *it->second;
        SmallVector<Value> indices;
        for (Value index : acc.store.getIndices())
          indices.push_back(mapping.lookupOrDefault(index));
        memref::AtomicRMWOp::create(b, acc.store.getLoc(), acc.kind,
                                    mapping.lookupOrDefault(acc.addend),
                                    acc.store.getMemRef(), indices);
        continue;
      }
      b.clone(op, mapping);
    }
  outer->erase();
}

/// Whether every store of the nest rooted at `outer` is an accumulation and
/// the nest holds nothing a scatter-add kernel cannot: such a nest is
/// analyzed (and its errors reported) as a scatter-add; any other nest runs
/// as a one-block kernel.
bool isScatterCandidate(scf::ForOp outer) {
  bool candidate = true;
  outer->walk([&](Operation *op) {
    if (auto store = dyn_cast<memref::StoreOp>(op)) {
      if (!matchAccumulate(store))
        candidate = false;
    } else if (isa<memref::CopyOp, scf::IfOp, scf::IndexSwitchOp>(op)) {
      candidate = false;
    }
  });
  return candidate;
}

/// A host loop nest whose iterations may not commute (per-row cache writes
/// at data-dependent slots, a compaction that appends to a list), run by a
/// single thread block as in the host program's order.
struct BlockNest {
  scf::ForOp outer;
  int64_t threads;
};

/// The static number of elements `copy` moves, or failure with an error.
FailureOr<int64_t> copyElements(memref::CopyOp copy) {
  auto src = dyn_cast<MemRefType>(copy.getSource().getType());
  auto dst = dyn_cast<MemRefType>(copy.getTarget().getType());
  if (!src || !dst || src.getRank() != dst.getRank())
    return copy.emitOpError()
           << "in a host loop nest needs ranked memrefs of one rank to "
              "become part of a GPU kernel";
  // A dynamic shape (the filled slots of one row) is read at run time and
  // gets the whole block.
  if (!src.hasStaticShape())
    return int64_t(1) << 30;
  return src.getNumElements();
}

/// A linalg op a one-block kernel spreads over its threads: buffers, every
/// loop parallel with a static range, a body of loads and pure ops.
FailureOr<int64_t> parallelLinalgElements(linalg::LinalgOp op) {
  auto refuse = [&](StringRef why) {
    return op->emitOpError() << "in a host loop nest cannot run in a GPU "
                                "kernel: "
                             << why;
  };
  if (!op.hasPureBufferSemantics())
    return refuse("it is not on buffers");
  if (op.getNumParallelLoops() != op.getNumLoops())
    return refuse("it has a reduction loop");
  // A dynamic range (a decode step's copy of the filled slots of one row)
  // is read at run time; such an op gets the whole block.
  int64_t total = 1;
  for (int64_t range : op.getStaticLoopRanges()) {
    if (ShapedType::isDynamic(range))
      return int64_t(1) << 30;
    total *= range;
  }
  for (OpOperand &out : op.getDpsInitsMutable())
    if (!op.getMatchingIndexingMap(&out).isProjectedPermutation())
      return refuse("an output's indexing map is not a projected permutation");
  for (Operation &inner : op.getBlock()->without_terminator())
    if (inner.getNumRegions() != 0 ||
        !(isMemoryEffectFree(&inner) || isa<memref::LoadOp>(inner)))
      return refuse("its body has an op with side effects or regions");
  return total;
}

FailureOr<BlockNest> analyzeBlockNest(scf::ForOp outer, int64_t blockSize) {
  BlockNest nest{outer, kWarpSize};
  auto widen = [&](int64_t elements) {
    int64_t threads = (elements + kWarpSize - 1) / kWarpSize * kWarpSize;
    nest.threads = std::max(nest.threads, std::min(threads, blockSize));
  };
  WalkResult walk = outer->walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (isa<scf::ForOp, scf::IfOp, scf::YieldOp, memref::LoadOp,
            memref::StoreOp>(op))
      return WalkResult::advance();
    if (auto copy = dyn_cast<memref::CopyOp>(op)) {
      FailureOr<int64_t> n = copyElements(copy);
      if (failed(n))
        return WalkResult::interrupt();
      widen(*n);
      return WalkResult::advance();
    }
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
      FailureOr<int64_t> n = parallelLinalgElements(linalgOp);
      if (failed(n))
        return WalkResult::interrupt();
      widen(*n);
      return WalkResult::skip();
    }
    // A temporary of static shape: allocated once, before the kernel.
    if (auto alloc = dyn_cast<memref::AllocOp>(op);
        alloc && alloc->getNumOperands() == 0)
      return WalkResult::advance();
    if (op->getNumRegions() != 0 || !isMemoryEffectFree(op)) {
      op->emitOpError()
          << "in a host loop nest that touches memory cannot become a GPU "
             "kernel (the CUDA target keeps every buffer on the device): "
             "only scf.for, scf.if, memref.load/store/copy, static "
             "memref.alloc, parallel linalg ops, views and side-effect-free "
             "ops can";
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  for (Value result : outer.getResults())
    if (!result.use_empty() && !result.getType().isIntOrIndexOrFloat())
      return outer.emitOpError()
             << "in host code yields a " << result.getType()
             << " used after the loop; only scalars can be brought back to "
                "the host once the loop is a GPU kernel";
  return nest;
}

/// Spreads `op` (accepted by parallelLinalgElements) over the block's
/// threads: each thread computes the iterations tid, tid + threads, ...
void distributeLinalg(OpBuilder &b, linalg::LinalgOp op, Value tid,
                      int64_t threads) {
  Location loc = op.getLoc();
  // Loop sizes as values (memref.dim of the operands where dynamic).
  SmallVector<Value> ranges;
  for (Range range : op.createLoopRanges(b, loc))
    ranges.push_back(getValueOrCreateConstantIndexOp(b, loc, range.size));
  auto c = [&](OpBuilder &ob, int64_t v) {
    return arith::ConstantIndexOp::create(ob, loc, v);
  };
  Value total = c(b, 1);
  for (Value r : ranges)
    total = arith::MulIOp::create(b, loc, total, r);
  auto loop = scf::ForOp::create(b, loc, tid, total, c(b, threads));
  OpBuilder lb = OpBuilder::atBlockBegin(loop.getBody());
  SmallVector<Value> ivs(ranges.size());
  Value rest = loop.getInductionVar();
  for (int64_t d = int64_t(ranges.size()) - 1; d >= 0; --d) {
    ivs[d] = d == 0 ? rest
                    : arith::RemUIOp::create(lb, loc, rest, ranges[d])
                          .getResult();
    if (d > 0)
      rest = arith::DivUIOp::create(lb, loc, rest, ranges[d]);
  }
  auto indicesOf = [&](OpOperand *operand) {
    auto indices = affine::expandAffineMap(
        lb, loc, op.getMatchingIndexingMap(operand), ivs);
    return SmallVector<Value>(indices->begin(), indices->end());
  };
  IRMapping mapping;
  for (OpOperand &operand : op->getOpOperands()) {
    BlockArgument arg = op.getMatchingBlockArgument(&operand);
    if (arg.use_empty())
      continue;
    if (!isa<MemRefType>(operand.get().getType())) {
      mapping.map(arg, operand.get());
      continue;
    }
    mapping.map(arg, memref::LoadOp::create(lb, loc, operand.get(),
                                            indicesOf(&operand))
                         .getResult());
  }
  Block *body = op.getBlock();
  for (Operation &inner : body->without_terminator()) {
    if (auto index = dyn_cast<linalg::IndexOp>(inner)) {
      mapping.map(index.getResult(), ivs[index.getDim()]);
      continue;
    }
    lb.clone(inner, mapping);
  }
  for (auto [value, out] :
       llvm::zip(body->getTerminator()->getOperands(),
                 op.getDpsInitsMutable()))
    memref::StoreOp::create(lb, loc, mapping.lookupOrDefault(value),
                            out.get(), indicesOf(&out));
}

constexpr llvm::StringLiteral kHostStagingAttr = "mod.host_staging";

/// Runs the nest in one block: every thread runs its control flow (the same
/// values, read between barriers, so the same path); a store is done by
/// thread 0, a copy and a parallel linalg op are spread over the threads,
/// each between two block barriers, so every read sees the writes before it
/// in program order. Temporaries the nest allocates are allocated once,
/// before the kernel. Scalar results the host uses after the loop are
/// stored by thread 0 into device buffers, copied device -> host into
/// `memref.alloca`s marked `mod.host_staging` and loaded from there.
LogicalResult rewriteBlockNest(BlockNest &nest, StringRef name) {
  scf::ForOp outer = nest.outer;
  SmallVector<memref::AllocOp> temporaries;
  outer->walk([&](memref::AllocOp alloc) { temporaries.push_back(alloc); });
  for (memref::AllocOp alloc : temporaries)
    alloc->moveBefore(outer);
  OpBuilder b(outer);
  Location loc = outer.getLoc();
  SmallVector<std::pair<unsigned, Value>> results;
  for (OpResult result : outer->getResults())
    if (!result.use_empty())
      results.push_back(
          {result.getResultNumber(),
           memref::AllocOp::create(b, loc, MemRefType::get({}, result.getType()))});
  gpu::LaunchOp launch =
      createLaunch(b, loc, name, 1, 1, nest.threads, {});
  Value tid = launch.getThreadIds().x;
  IRMapping mapping;
  Operation *clone = b.clone(*outer, mapping);
  if (!results.empty()) {
    Value first = arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::eq, tid,
        arith::ConstantIndexOp::create(b, loc, 0));
    auto ifOp = scf::IfOp::create(b, loc, first, /*withElseRegion=*/false);
    OpBuilder tb = OpBuilder::atBlockBegin(ifOp.thenBlock());
    for (auto [index, buffer] : results)
      memref::StoreOp::create(tb, loc, clone->getResult(index), buffer,
                              ValueRange());
  }
  SmallVector<Operation *> writes;
  clone->walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (isa<memref::StoreOp, memref::CopyOp, linalg::LinalgOp>(op)) {
      writes.push_back(op);
      return WalkResult::skip();
    }
    return WalkResult::advance();
  });
  for (Operation *op : writes) {
    OpBuilder wb(op);
    Location wloc = op->getLoc();
    auto c = [&](int64_t v) {
      return arith::ConstantIndexOp::create(wb, wloc, v);
    };
    if (!(op->getPrevNode() && isa<gpu::BarrierOp>(op->getPrevNode())))
      gpu::BarrierOp::create(wb, wloc);
    if (auto store = dyn_cast<memref::StoreOp>(op)) {
      Value first = arith::CmpIOp::create(wb, wloc, arith::CmpIPredicate::eq,
                                          tid, c(0));
      auto ifOp = scf::IfOp::create(wb, wloc, first, /*withElseRegion=*/false);
      store->moveBefore(ifOp.thenBlock()->getTerminator());
      wb.setInsertionPointAfter(ifOp);
    } else if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
      distributeLinalg(wb, linalgOp, tid, nest.threads);
    } else {
      auto copy = cast<memref::CopyOp>(op);
      auto type = cast<MemRefType>(copy.getSource().getType());
      SmallVector<Value> sizes;
      Value total = c(1);
      for (OpFoldResult size :
           memref::getMixedSizes(wb, wloc, copy.getSource())) {
        sizes.push_back(getValueOrCreateConstantIndexOp(wb, wloc, size));
        total = arith::MulIOp::create(wb, wloc, total, sizes.back());
      }
      auto loop = scf::ForOp::create(wb, wloc, tid, total, c(nest.threads));
      OpBuilder lb = OpBuilder::atBlockBegin(loop.getBody());
      SmallVector<Value> indices(type.getRank());
      Value rest = loop.getInductionVar();
      for (int64_t d = type.getRank() - 1; d >= 0; --d) {
        Value size = sizes[d];
        indices[d] = d == 0 ? rest
                            : arith::RemUIOp::create(lb, wloc, rest, size)
                                  .getResult();
        if (d > 0)
          rest = arith::DivUIOp::create(lb, wloc, rest, size);
      }
      Value v = memref::LoadOp::create(lb, wloc, copy.getSource(), indices);
      memref::StoreOp::create(lb, wloc, v, copy.getTarget(), indices);
      wb.setInsertionPointAfter(loop);
    }
    gpu::BarrierOp::create(wb, wloc);
    if (!isa<memref::StoreOp>(op))
      op->erase();
  }
  // The host reads the scalar results: one device -> host copy each.
  if (!results.empty()) {
    Block &entry =
        outer->getParentOfType<FunctionOpInterface>().getFunctionBody().front();
    OpBuilder hb(launch);
    hb.setInsertionPointAfter(launch);
    for (auto [index, buffer] : results) {
      OpBuilder eb = OpBuilder::atBlockBegin(&entry);
      auto staging = memref::AllocaOp::create(
          eb, loc, cast<MemRefType>(buffer.getType()));
      staging->setAttr(kHostStagingAttr, eb.getUnitAttr());
      gpu::MemcpyOp::create(hb, loc, /*asyncToken=*/Type(), ValueRange(),
                            staging, buffer);
      Value value = memref::LoadOp::create(hb, loc, staging, ValueRange());
      outer->getResult(index).replaceAllUsesWith(value);
    }
  }
  outer->erase();
  // Views taken inside the nest (a row of a cache at its slot) are folded
  // into the loads and stores, whose indices become arith on the view's
  // offsets: the kernel lowering (convert-gpu-to-nvvm) has no rule for
  // memref.subview.
  RewritePatternSet patterns(launch.getContext());
  memref::populateFoldMemRefAliasOpPatterns(patterns);
  populateAffineToStdConversionPatterns(patterns);
  if (failed(applyPatternsGreedily(launch, std::move(patterns))))
    return launch.emitOpError() << "views in a host loop nest kernel did not "
                                   "fold into its loads and stores";
  WalkResult walk = launch.getBody().walk([](Operation *op) {
    if (!isa<ViewLikeOpInterface>(op))
      return WalkResult::advance();
    op->emitOpError() << "in a host loop nest kernel could not be folded "
                         "into its loads and stores";
    return WalkResult::interrupt();
  });
  return failure(walk.wasInterrupted());
}

struct MoDScatterAddToGPUPass
    : mod::impl::MoDScatterAddToGPUBase<MoDScatterAddToGPUPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (blockSize < kWarpSize || blockSize > 1024 ||
        blockSize % kWarpSize != 0 || maxBlocks < 1) {
      module.emitError() << "--mod-scatter-add-to-gpu: block-size must be a "
                            "multiple of 32 in [32, 1024] and max-blocks "
                            "positive";
      return signalPassFailure();
    }
    // Host loop nests that touch memory: all are checked before any is
    // rewritten, so a failure leaves the IR as it was.
    std::vector<ScatterNest> nests;
    std::vector<BlockNest> blockNests;
    WalkResult walk = module.walk<WalkOrder::PreOrder>([&](Operation *op) {
      if (isa<gpu::LaunchOp, gpu::GPUModuleOp>(op) ||
          isa<linalg::LinalgOp>(op))
        return WalkResult::skip();
      auto loop = dyn_cast<scf::ForOp>(op);
      if (!loop)
        return WalkResult::advance();
      if (inKernel(loop))
        return WalkResult::skip();
      bool touchesMemory = false;
      loop.getBody()->walk([&](Operation *inner) {
        if (isa<memref::LoadOp, memref::StoreOp, memref::AtomicRMWOp>(inner))
          touchesMemory = true;
      });
      if (!touchesMemory)
        return WalkResult::skip();
      if (!isScatterCandidate(loop)) {
        FailureOr<BlockNest> nest = analyzeBlockNest(loop, blockSize);
        if (failed(nest))
          return WalkResult::interrupt();
        blockNests.push_back(*nest);
        return WalkResult::skip();
      }
      FailureOr<ScatterNest> nest = analyze(loop);
      if (failed(nest))
        return WalkResult::interrupt();
      nests.push_back(std::move(*nest));
      return WalkResult::skip();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();
    int64_t counter = 0;
    for (ScatterNest &nest : nests)
      rewrite(nest, "mod_atomic_scatter_" + std::to_string(counter++),
              blockSize, maxBlocks);
    counter = 0;
    for (BlockNest &nest : blockNests)
      if (failed(rewriteBlockNest(nest,
                                  "mod_host_loop_" + std::to_string(counter++))))
        return signalPassFailure();
  }
};
} // namespace
