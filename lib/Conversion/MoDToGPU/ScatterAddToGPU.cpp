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

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
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
  }
};
} // namespace
