//===- HostScalarsToGPU.cpp - --mod-host-scalars-to-gpu -------------------===//
//
// Bufferized host code reads scalars out of buffers (`tensor.extract` of a
// rank-0 tensor: the AdamW hyperparameters, the global gradient norm that
// decides the clipping factor) and computes with them before linalg bodies
// capture the results. On the CUDA target every buffer lives on the device,
// so those host loads would dereference device pointers. This pass moves
// each run of such host scalar code into a single-thread kernel that writes
// the values later code needs into fresh rank-0 buffers, and makes the
// consumers read those buffers on the device: linalg ops get them as extra
// inputs with a `() ` indexing map, kernels and host loop nests load them
// inside their bodies.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::mod {
#define GEN_PASS_DEF_MODHOSTSCALARSTOGPU
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod::detail;

namespace {
/// Host scalar code: loads and stores in the function body (a store is what
/// `tensor.from_elements` bufferizes to), and region-free ops without side
/// effects computing scalars from loaded values.
bool isHostScalarOp(Operation *op, const DenseSet<Operation *> &scalar) {
  if (isa<memref::LoadOp, memref::StoreOp>(op))
    return true;
  if (op->getNumRegions() != 0 || !isMemoryEffectFree(op) ||
      !llvm::all_of(op->getResultTypes(), [](Type t) {
        return t.isIntOrIndexOrFloat();
      }))
    return false;
  return llvm::any_of(op->getOperands(), [&](Value v) {
    Operation *def = v.getDefiningOp();
    return def && scalar.contains(def);
  });
}

/// An op whose only effect is to allocate its results (`memref.alloc`): it
/// touches no existing memory, so scalar code may move across it.
bool onlyAllocates(Operation *op) {
  auto iface = dyn_cast<MemoryEffectOpInterface>(op);
  if (!iface)
    return false;
  SmallVector<MemoryEffects::EffectInstance> effects;
  iface.getEffects(effects);
  return llvm::all_of(effects, [&](const MemoryEffects::EffectInstance &e) {
    return isa<MemoryEffects::Allocate>(e.getEffect()) && e.getValue() &&
           e.getValue().getDefiningOp() == op;
  });
}

/// `linalg` op `op` reads `buffer` (rank 0) as a new input whose block
/// argument replaces the uses of `value` in its body; named ops are
/// generalized first. Returns the rewritten op.
FailureOr<linalg::GenericOp> addScalarInput(IRRewriter &rewriter,
                                            linalg::LinalgOp op, Value value,
                                            Value buffer) {
  rewriter.setInsertionPoint(op);
  auto generic = dyn_cast<linalg::GenericOp>(op.getOperation());
  if (!generic) {
    FailureOr<linalg::GenericOp> generalized =
        linalg::generalizeNamedOp(rewriter, op);
    if (failed(generalized))
      return op->emitOpError()
             << "uses a scalar that the CUDA target computes on the device, "
                "and cannot be generalized to read it from a buffer";
    generic = *generalized;
  }
  // A scalar input operand reads the buffer through the same `()` map.
  SmallVector<Value> inputs(generic.getInputs());
  for (Value &input : inputs)
    if (input == value)
      input = buffer;
  SmallVector<AffineMap> maps = generic.getIndexingMapsArray();
  unsigned numInputs = inputs.size();
  bool capturedInBody = false;
  for (OpOperand &use : value.getUses())
    if (generic->isProperAncestor(use.getOwner()))
      capturedInBody = true;
  if (capturedInBody) {
    inputs.push_back(buffer);
    maps.insert(maps.begin() + numInputs,
                AffineMap::get(generic.getNumLoops(), 0, rewriter.getContext()));
  }
  rewriter.setInsertionPoint(generic);
  auto replacement = linalg::GenericOp::create(
      rewriter, generic.getLoc(), generic.getResultTypes(), inputs,
      generic.getOutputs(), maps, generic.getIteratorTypesArray());
  replacement->setDiscardableAttrs(generic->getDiscardableAttrDictionary());
  rewriter.inlineRegionBefore(generic.getRegion(), replacement.getRegion(),
                              replacement.getRegion().end());
  if (capturedInBody) {
    Block &body = replacement.getRegion().front();
    BlockArgument arg =
        body.insertArgument(numInputs, value.getType(), value.getLoc());
    value.replaceUsesWithIf(arg, [&](OpOperand &use) {
      return replacement->isProperAncestor(use.getOwner());
    });
  }
  rewriter.replaceOp(generic, replacement->getResults());
  return replacement;
}

/// Makes every user of the host load `reload` (of the rank-0 `buffer` a
/// scalar kernel wrote) read `buffer` on the device, then erases `reload`.
LogicalResult rerouteUses(IRRewriter &rewriter, memref::LoadOp reload,
                          Value buffer) {
  llvm::SetVector<Operation *> users;
  for (OpOperand &use : reload->getUses()) {
    Operation *user = use.getOwner();
    Block *hostBlock = reload->getBlock();
    Operation *top = hostBlock->findAncestorOpInBlock(*user);
    users.insert(top ? top : user);
  }
  for (Operation *user : users) {
    // A host branch on the scalar (a decode step's cache write for one
    // row, its loop over the rows folded away) becomes a one-iteration
    // scf.for, which reads the scalar inside and which
    // --mod-scatter-add-to-gpu makes a kernel.
    if (auto ifOp = dyn_cast<scf::IfOp>(user); ifOp && ifOp->getNumResults() == 0) {
      rewriter.setInsertionPoint(ifOp);
      Location loc = ifOp.getLoc();
      Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
      Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
      auto once = scf::ForOp::create(rewriter, loc, zero, one, one);
      rewriter.moveOpBefore(ifOp, once.getBody()->getTerminator());
      user = once;
    }
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(user)) {
      if (failed(addScalarInput(rewriter, linalgOp, reload.getResult(),
                                buffer)))
        return failure();
      continue;
    }
    if (isa<gpu::LaunchOp, scf::ForOp>(user)) {
      bool direct = llvm::any_of(user->getOperands(), [&](Value v) {
        return v == reload.getResult();
      });
      if (direct)
        return user->emitOpError()
               << "takes as an operand a scalar that the CUDA target "
                  "computes on the device; it cannot stay on the host";
      for (Region &region : user->getRegions()) {
        if (region.empty())
          continue;
        rewriter.setInsertionPointToStart(&region.front());
        auto load = memref::LoadOp::create(rewriter, reload.getLoc(), buffer,
                                           ValueRange());
        reload.getResult().replaceUsesWithIf(load, [&](OpOperand &use) {
          return region.isAncestor(use.getOwner()->getParentRegion());
        });
      }
      continue;
    }
    return user->emitOpError()
           << "uses on the host a scalar loaded from a buffer, which the "
              "CUDA target keeps on the device; only linalg ops, kernels "
              "and scatter-add loop nests can consume it";
  }
  if (!reload->use_empty())
    return reload->emitOpError() << "still has host uses after rerouting";
  rewriter.eraseOp(reload);
  return success();
}

/// One run of host scalar ops (consecutive but for side-effect-free ops and
/// allocations that are not part of it) becomes a single-thread kernel.
void outlineRun(IRRewriter &rewriter, ArrayRef<Operation *> run,
                StringRef name, DenseMap<Value, Value> &reloadBuffer,
                SmallVectorImpl<std::pair<memref::LoadOp, Value>> &reloads) {
  DenseSet<Operation *> inRun(run.begin(), run.end());
  SmallVector<Value> escaping;
  for (Operation *op : run)
    for (Value result : op->getResults())
      if (llvm::any_of(result.getUsers(), [&](Operation *user) {
            Operation *top = op->getBlock()->findAncestorOpInBlock(*user);
            return !top || !inRun.contains(top);
          }))
        escaping.push_back(result);

  Location loc = run.back()->getLoc();
  rewriter.setInsertionPointAfter(run.back());
  SmallVector<Value> buffers;
  for (Value v : escaping)
    buffers.push_back(memref::AllocOp::create(
        rewriter, loc, MemRefType::get({}, v.getType())));
  gpu::LaunchOp launch = createLaunch(rewriter, loc, name, 1, 1, 1, {});
  {
    OpBuilder::InsertionGuard guard(rewriter);
    IRMapping mapping;
    // Values earlier kernels computed are read from their buffers.
    for (Operation *op : run)
      for (Value operand : op->getOperands())
        if (auto it = reloadBuffer.find(operand);
            it != reloadBuffer.end() && !mapping.contains(operand))
          mapping.map(operand, memref::LoadOp::create(rewriter, loc,
                                                      it->second, ValueRange())
                                   .getResult());
    for (Operation *op : run)
      rewriter.clone(*op, mapping);
    for (auto [v, buffer] : llvm::zip(escaping, buffers))
      memref::StoreOp::create(rewriter, loc, mapping.lookup(v), buffer,
                              ValueRange());
  }
  rewriter.setInsertionPointAfter(launch);
  for (auto [v, buffer] : llvm::zip(escaping, buffers)) {
    auto reload = memref::LoadOp::create(rewriter, loc, buffer, ValueRange());
    v.replaceUsesWithIf(reload, [&](OpOperand &use) {
      Operation *top = run.front()->getBlock()->findAncestorOpInBlock(
          *use.getOwner());
      return !top || !inRun.contains(top);
    });
    reloadBuffer[reload.getResult()] = buffer;
    reloads.push_back({reload, buffer});
  }
  for (Operation *op : llvm::reverse(run))
    rewriter.eraseOp(op);
}

struct MoDHostScalarsToGPUPass
    : mod::impl::MoDHostScalarsToGPUBase<MoDHostScalarsToGPUPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    IRRewriter rewriter(&getContext());
    int64_t counter = 0;
    for (auto fn : module.getOps<func::FuncOp>()) {
      if (fn.isExternal() || fn.getBody().getBlocks().size() != 1)
        continue;
      // The body and the cases of host scf.index_switch ops (a decode
      // step's copies of a routed block for k rows, which first gather
      // their row indices).
      SmallVector<Block *> blocks{&fn.getBody().front()};
      for (size_t i = 0; i < blocks.size(); ++i)
        for (auto sw : blocks[i]->getOps<scf::IndexSwitchOp>())
          for (Region &region : sw->getRegions())
            for (Block &inner : region)
              blocks.push_back(&inner);
      for (Block *block : blocks)
        if (failed(processBlock(*block, rewriter, counter)))
          return signalPassFailure();
    }
  }

  LogicalResult processBlock(Block &body, IRRewriter &rewriter,
                             int64_t &counter) {
    {
      // Runs of host scalar ops, split by any op that may touch memory.
      DenseSet<Operation *> scalar;
      SmallVector<SmallVector<Operation *>> runs(1);
      for (Operation &op : body.without_terminator()) {
        if (isHostScalarOp(&op, scalar)) {
          scalar.insert(&op);
          runs.back().push_back(&op);
        } else if (op.getNumRegions() != 0 ||
                   (!isMemoryEffectFree(&op) && !onlyAllocates(&op))) {
          if (!runs.back().empty())
            runs.emplace_back();
        }
      }
      // A scalar that only leaves through the terminator stays a host
      // value: refuse it rather than return a device pointer's contents.
      for (Operation *op : scalar)
        for (Operation *user : op->getUsers())
          if (user == body.getTerminator()) {
            return user->emitOpError()
                   << "returns a scalar loaded from a buffer, which the CUDA "
                      "target keeps on the device";
          }
      DenseMap<Value, Value> reloadBuffer;
      SmallVector<std::pair<memref::LoadOp, Value>> reloads;
      for (ArrayRef<Operation *> run : runs)
        if (!run.empty())
          outlineRun(rewriter, run, "mod_scalar_" + std::to_string(counter++),
                     reloadBuffer, reloads);
      for (auto [reload, buffer] : reloads)
        if (failed(rerouteUses(rewriter, reload, buffer)))
          return failure();
    }
    return success();
  }
};
} // namespace
