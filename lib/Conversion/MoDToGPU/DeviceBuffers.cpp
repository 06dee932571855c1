//===- DeviceBuffers.cpp - --mod-gpu-device-buffers -----------------------===//
//
// Makes every buffer of the bufferized host code a device buffer, so that
// tensors stay on the GPU between kernels and the only host <-> device
// traffic is one copy per entry-point input and output.
//
// Deallocation is done here rather than by the ownership-based buffer
// deallocation pipeline: that pipeline reasons about memref.alloc and emits
// host-side helper code, while these buffers are gpu.alloc'd and host code is
// straight-line (checked), where "free after the last use of any view" is
// exact.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace mlir::mod {
#define GEN_PASS_DEF_MODGPUDEVICEBUFFERS
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
bool inKernel(Operation *op) {
  return op->getParentOfType<gpu::LaunchOp>() ||
         op->getParentOfType<gpu::GPUModuleOp>();
}

/// An argument the body only ever writes through memref.copy: an
/// out-parameter added by buffer-results-to-out-params.
bool isOutParam(BlockArgument arg) {
  return !arg.use_empty() && llvm::all_of(arg.getUses(), [](OpOperand &use) {
    auto copy = dyn_cast<memref::CopyOp>(use.getOwner());
    return copy && copy.getTarget() == use.get();
  });
}

constexpr llvm::StringLiteral kResidentAttr = "mod.device_resident",
                              kResidentArgsAttr = "mod.device_resident_args",
                              kWrittenOperandsAttr = "mod.written_operands";

/// Whether the body may write `buffer`, through a view of it or through an
/// address taken from it, or may copy it into an out-parameter (which, for a
/// device-resident argument updated in place, can be the same memory).
/// Calls write the pointer operands their callee lists in
/// `mod.written_operands`; a call without that list may write anything it
/// is given.
bool mayWrite(Value buffer) {
  SmallVector<Value> worklist{buffer};
  llvm::SmallPtrSet<Value, 16> seen{buffer};
  auto derive = [&](Operation *op) {
    for (Value result : op->getResults())
      if (seen.insert(result).second)
        worklist.push_back(result);
  };
  ModuleOp module = buffer.getParentRegion()->getParentOfType<ModuleOp>();
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    bool isAddress = !isa<BaseMemRefType>(v.getType());
    for (OpOperand &use : v.getUses()) {
      Operation *user = use.getOwner();
      if (auto call = dyn_cast<func::CallOp>(user)) {
        auto callee =
            module ? module.lookupSymbol<func::FuncOp>(call.getCallee())
                   : func::FuncOp();
        auto written = callee ? callee->getAttrOfType<DenseI64ArrayAttr>(
                                    kWrittenOperandsAttr)
                              : DenseI64ArrayAttr();
        if (!written ||
            llvm::is_contained(written.asArrayRef(),
                               int64_t(use.getOperandNumber())))
          return true;
        continue;
      }
      if (isAddress || isa<memref::ExtractAlignedPointerAsIndexOp>(user)) {
        derive(user);
        continue;
      }
      if (auto view = dyn_cast<ViewLikeOpInterface>(user);
          view && view.getViewSource() == v) {
        derive(user);
        continue;
      }
      if (auto copy = dyn_cast<memref::CopyOp>(user)) {
        auto target = dyn_cast<BlockArgument>(copy.getTarget());
        if (copy.getTarget() == v || target)
          return true;
        continue;
      }
      if (mightHaveEffect<MemoryEffects::Write>(user, v))
        return true;
    }
  }
  return false;
}

/// The ops of `body` (top level) that use `buffer`, a view of it, or an
/// address taken from it; `direct` collects the uses of `buffer` itself.
SmallVector<Operation *> topLevelUsers(Value buffer, Block &body,
                                       SmallVectorImpl<OpOperand *> *direct =
                                           nullptr) {
  SmallVector<Operation *> users;
  SmallVector<Value> worklist{buffer};
  llvm::SmallPtrSet<Value, 16> seen{buffer};
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    bool isAddress = !isa<BaseMemRefType>(v.getType());
    for (OpOperand &use : v.getUses()) {
      Operation *user = use.getOwner();
      if (direct && v == buffer)
        direct->push_back(&use);
      bool derives =
          isAddress || isa<memref::ExtractAlignedPointerAsIndexOp>(user);
      if (auto view = dyn_cast<ViewLikeOpInterface>(user);
          view && view.getViewSource() == v)
        derives = true;
      if (derives)
        for (Value result : user->getResults())
          if (seen.insert(result).second)
            worklist.push_back(result);
      if (Operation *top = body.findAncestorOpInBlock(*user))
        users.push_back(top);
    }
  }
  return users;
}

/// Whether `op` computes each element of its outputs from the same element
/// of its inputs only (all loops parallel), reading `input` and writing
/// `init` through the same indexing map: a kernel thread then reads an
/// element of `input` before it writes that element of `init`, so the two
/// may be one buffer.
bool readsBeforeWritingElementwise(Operation *op, Value input, Value init) {
  auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
  if (!linalgOp || linalgOp.getNumLoops() != linalgOp.getNumParallelLoops())
    return false;
  std::optional<AffineMap> inputMap, initMap;
  for (OpOperand &operand : op->getOpOperands()) {
    if (operand.get() != input && operand.get() != init)
      continue;
    if (!linalgOp.isDpsInput(&operand) && !linalgOp.isDpsInit(&operand))
      return false; // e.g. an index operand of something else
    AffineMap map = linalgOp.getMatchingIndexingMap(&operand);
    std::optional<AffineMap> &slot =
        operand.get() == input ? inputMap : initMap;
    if (operand.get() == input && !linalgOp.isDpsInput(&operand))
      return false; // the input is also written
    if (operand.get() == init && !linalgOp.isDpsInit(&operand))
      return false; // the result buffer is also read as an input
    if (slot && *slot != map)
      return false;
    slot = map;
  }
  return inputMap && initMap && *inputMap == *initMap;
}

/// Device-resident out-parameter index -> the argument it updates in place
/// (`mod.device_resident = N` on it, from the result's `mod.aliases = N`
/// through --mod-gpu-resident-arguments and buffer-results-to-out-params).
using ResidentAliases = llvm::DenseMap<unsigned, unsigned>;

/// Writes the results of a public function straight into its
/// device-resident out-parameters (device buffers the runtime owns) instead
/// of into a fresh buffer copied there at the end, the device counterpart of
/// buffer-results-to-out-params' hoist-static-allocs: a `memref.copy %t,
/// %out` whose source is a `memref.alloc` of the same identity-layout type,
/// not used after the copy, makes %t the out-parameter. When the
/// out-parameter updates argument %x in place (the runtime passes one buffer
/// for both), %t's writes land in %x: done only when nothing reads %x after
/// the first write of %t, except an elementwise op that reads an element of
/// %x before writing that element of %t (@adamw_step's update).
/// Returns the out-parameters that became result buffers.
llvm::SmallDenseSet<unsigned> writeResultsInPlace(func::FuncOp fn,
                                                  ArrayRef<int64_t> resident,
                                                  const ResidentAliases &aliases) {
  llvm::SmallDenseSet<unsigned> written;
  Block &body = fn.getBody().front();
  for (BlockArgument out : fn.getArguments()) {
    if (!llvm::is_contained(resident, out.getArgNumber()) ||
        !out.hasOneUse())
      continue;
    auto copy = dyn_cast<memref::CopyOp>(*out.getUsers().begin());
    if (!copy || copy.getTarget() != out || copy->getBlock() != &body)
      continue;
    auto alloc = copy.getSource().getDefiningOp<memref::AllocOp>();
    if (!alloc || alloc->getBlock() != &body ||
        alloc.getType() != out.getType() ||
        !alloc.getType().getLayout().isIdentity())
      continue;
    SmallVector<Operation *> users = topLevelUsers(alloc, body);
    Operation *first = nullptr;
    bool usedAfterCopy = false;
    for (Operation *user : users) {
      if (user == copy)
        continue;
      if (user->hasTrait<OpTrait::IsTerminator>() ||
          copy->isBeforeInBlock(user))
        usedAfterCopy = true;
      if (!first || user->isBeforeInBlock(first))
        first = user;
    }
    if (usedAfterCopy)
      continue;
    if (auto aliased = aliases.find(out.getArgNumber());
        aliased != aliases.end() && first) {
      Value x = fn.getArgument(aliased->second);
      bool hazard = false;
      SmallVector<OpOperand *> direct;
      for (Operation *user : topLevelUsers(x, body, &direct)) {
        if (user->isBeforeInBlock(first))
          continue;
        // Read by the op that first writes %t: only elementwise, directly.
        bool directUse = llvm::any_of(direct, [&](OpOperand *use) {
          return use->getOwner() == user;
        });
        if (user == first && directUse &&
            readsBeforeWritingElementwise(user, x, alloc))
          continue;
        hazard = true;
        break;
      }
      if (hazard)
        continue;
    }
    alloc.replaceAllUsesWith(out);
    copy->erase();
    alloc->erase();
    written.insert(out.getArgNumber());
  }
  return written;
}

/// A fresh identity-layout device buffer of `type`'s shape.
Value deviceAlloc(OpBuilder &b, Location loc, MemRefType type,
                  ValueRange dynamicSizes = {}, ValueRange symbols = {}) {
  return gpu::AllocOp::create(b, loc, type, /*asyncToken=*/Type(),
                              /*asyncDependencies=*/ValueRange(), dynamicSizes,
                              symbols, /*hostShared=*/false)
      .getMemref();
}

void memcpy(OpBuilder &b, Location loc, Value dst, Value src) {
  gpu::MemcpyOp::create(b, loc, /*asyncToken=*/Type(), ValueRange(), dst, src);
}

/// Frees `buffer` after the last op of `body` that uses it, a view of it, or
/// an address taken from it: a pointer extracted with
/// `memref.extract_aligned_pointer_as_index` (what --mod-linalg-to-cublas
/// passes to cuBLAS) is followed through every op computing with it, so the
/// call reading through the pointer counts as a use.
void deallocAfterLastUse(Value buffer, Block &body) {
  SmallVector<Value> worklist{buffer};
  llvm::SmallPtrSet<Value, 16> seen{buffer};
  Operation *last = buffer.getDefiningOp();
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    bool isAddress = !isa<BaseMemRefType>(v.getType());
    for (Operation *user : v.getUsers()) {
      bool derives = isAddress ||
                     isa<memref::ExtractAlignedPointerAsIndexOp>(user);
      if (auto view = dyn_cast<ViewLikeOpInterface>(user);
          view && view.getViewSource() == v)
        derives = true;
      if (derives)
        for (Value result : user->getResults())
          if (seen.insert(result).second)
            worklist.push_back(result);
      Operation *top = body.findAncestorOpInBlock(*user);
      if (!top)
        continue;
      // A buffer returned to a caller is the caller's to free.
      if (top->hasTrait<OpTrait::IsTerminator>())
        return;
      if (!last || last->isBeforeInBlock(top))
        last = top;
    }
  }
  OpBuilder b(buffer.getContext());
  if (last && last->getBlock() == &body)
    b.setInsertionPointAfter(last);
  else
    b.setInsertionPointToStart(&body);
  gpu::DeallocOp::create(b, buffer.getLoc(), /*asyncToken=*/Type(),
                         ValueRange(), buffer);
}

/// A host buffer a device -> host copy fills (--mod-scatter-add-to-gpu:
/// the routed row count of a decode step), the one memory host code reads.
bool isHostStaging(Value buffer) {
  auto alloca = buffer.getDefiningOp<memref::AllocaOp>();
  return alloca && alloca->hasAttr("mod.host_staging");
}

/// The blocks of host code: the body and, recursively, the cases of the
/// `scf.index_switch` ops in host blocks (--mod-generate-decode's choice of
/// the copy of a routed block built for k rows).
void collectHostBlocks(Block &block, SmallVectorImpl<Block *> &blocks) {
  blocks.push_back(&block);
  for (Operation &op : block)
    if (auto sw = dyn_cast<scf::IndexSwitchOp>(op))
      for (Region &region : sw->getRegions())
        for (Block &inner : region)
          collectHostBlocks(inner, blocks);
}

/// Makes every case of a host `scf.index_switch` yield a buffer allocated
/// in that case (a copy where it yields one from outside), so that each
/// memref result is a fresh buffer the enclosing block owns and frees.
LogicalResult freshSwitchResults(scf::IndexSwitchOp sw) {
  for (OpResult result : sw->getResults()) {
    auto type = dyn_cast<MemRefType>(result.getType());
    if (!type)
      continue;
    if (!type.getLayout().isIdentity() || !type.hasStaticShape())
      return sw.emitOpError()
             << "result " << result.getResultNumber() << " of type " << type
             << " needs a static shape and an identity layout on the CUDA "
                "target";
    for (Region &region : sw->getRegions()) {
      Block &block = region.front();
      Operation *yield = block.getTerminator();
      Value yielded = yield->getOperand(result.getResultNumber());
      auto alloc = yielded.getDefiningOp<memref::AllocOp>();
      if (alloc && alloc->getBlock() == &block)
        continue;
      OpBuilder b(yield);
      Value fresh = memref::AllocOp::create(b, sw.getLoc(), type);
      memref::CopyOp::create(b, sw.getLoc(), yielded, fresh);
      yield->setOperand(result.getResultNumber(), fresh);
    }
  }
  return success();
}

LogicalResult convertFunction(func::FuncOp fn) {
  Block &body = fn.getBody().front();
  SmallVector<Block *> hostBlocks;
  collectHostBlocks(body, hostBlocks);
  llvm::SmallPtrSet<Block *, 8> isHostBlock(hostBlocks.begin(),
                                             hostBlocks.end());
  // Host code must be straight-line (but for the case blocks of an
  // scf.index_switch) and must not touch buffer contents.
  WalkResult walk = fn->walk<WalkOrder::PreOrder>([&](Operation *op) {
    // Kernels, and linalg ops (which become kernels later in the pipeline),
    // run on the device: their bodies may read any device buffer.
    if (inKernel(op) || isa<linalg::LinalgOp>(op))
      return WalkResult::skip();
    if (isa<memref::AllocOp, memref::AllocaOp>(op) &&
        !isHostBlock.contains(op->getBlock())) {
      op->emitOpError() << "inside host control flow is not supported by the "
                           "CUDA target (buffers are freed after their last "
                           "use in straight-line code)";
      return WalkResult::interrupt();
    }
    if (auto load = dyn_cast<memref::LoadOp>(op);
        load && isHostStaging(load.getMemRef()))
      return WalkResult::advance();
    if (isa<memref::LoadOp, memref::StoreOp, memref::AtomicRMWOp>(op)) {
      op->emitOpError() << "accesses a buffer on the host; the CUDA target "
                           "keeps every buffer on the device";
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  SmallVector<std::pair<Value, Block *>> ownedSwitchResults;
  for (Block *block : hostBlocks)
    for (auto sw : block->getOps<scf::IndexSwitchOp>()) {
      if (failed(freshSwitchResults(sw)))
        return failure();
      for (OpResult result : sw->getResults())
        if (isa<MemRefType>(result.getType()))
          ownedSwitchResults.push_back({result, block});
    }
  if (fn.getBody().getBlocks().size() != 1)
    return fn.emitOpError() << "has host control flow between blocks, which "
                               "the CUDA target does not support";

  SmallVector<Value> ownedInputs;
  OpBuilder b(fn.getContext());
  Location loc = fn.getLoc();

  // The resident arguments, recorded on the function instead of on each
  // argument: the LLVM IR translation warns about (and drops) argument
  // attributes it does not know, not about function attributes.
  SmallVector<int64_t> resident;
  ResidentAliases aliases;
  for (unsigned i = 0, e = fn.getNumArguments(); i < e; ++i) {
    if (auto alias = fn.getArgAttrOfType<IntegerAttr>(i, kResidentAttr);
        alias && alias.getInt() >= 0 && alias.getInt() < int64_t(e) &&
        alias.getInt() != int64_t(i))
      aliases[i] = unsigned(alias.getInt());
    if (fn.removeArgAttr(i, kResidentAttr))
      resident.push_back(i);
  }
  if (!resident.empty())
    fn->setAttr(kResidentArgsAttr,
                DenseI64ArrayAttr::get(fn.getContext(), resident));

  llvm::SmallDenseSet<unsigned> resultBuffers;
  if (fn.isPublic() && !resident.empty())
    resultBuffers = writeResultsInPlace(fn, resident, aliases);
  // A device-resident argument the body copies into the device-resident
  // out-parameter marked as its alias is state updated in place (a decode
  // step's caches, which bufferization writes in the donated argument
  // itself): the runtime binds both to the same device buffer
  // (Model::invoke passes the aliased input's buffer for a resident
  // output), so the body writes the argument directly and the copy onto
  // itself is dropped; no device -> device copy of the state in or out per
  // call.
  llvm::SmallPtrSet<Value, 8> inPlace;
  if (fn.isPublic()) {
    SmallVector<memref::CopyOp> selfCopies;
    for (auto copy : body.getOps<memref::CopyOp>()) {
      auto src = dyn_cast<BlockArgument>(copy.getSource());
      auto dst = dyn_cast<BlockArgument>(copy.getTarget());
      if (src && dst && src != dst && src.getOwner() == &body &&
          dst.getOwner() == &body && src.getType() == dst.getType() &&
          llvm::is_contained(resident, src.getArgNumber()) &&
          llvm::is_contained(resident, dst.getArgNumber()) &&
          isOutParam(dst) && dst.hasOneUse() &&
          aliases.contains(dst.getArgNumber()) &&
          aliases.lookup(dst.getArgNumber()) == src.getArgNumber())
        selfCopies.push_back(copy);
    }
    for (memref::CopyOp copy : selfCopies) {
      inPlace.insert(copy.getSource());
      copy->erase();
    }
  }

  // Entry points receive host buffers: copy inputs in once.
  if (fn.isPublic()) {
    b.setInsertionPointToStart(&body);
    for (BlockArgument arg : fn.getArguments()) {
      auto type = dyn_cast<MemRefType>(arg.getType());
      if (!type || arg.use_empty() || isOutParam(arg) ||
          resultBuffers.contains(arg.getArgNumber()))
        continue;
      if (!type.getLayout().isIdentity())
        return fn.emitOpError() << "argument " << arg.getArgNumber()
                                << " must have an identity layout to be "
                                   "copied to the device";
      // A device-resident argument (--mod-gpu-resident-arguments) is
      // already a device buffer. It is used as it is unless the body may
      // write it: then it is copied device -> device first, so that the
      // caller's buffer changes only through the out-parameters.
      bool isResident = llvm::is_contained(resident, arg.getArgNumber());
      if (isResident && (inPlace.contains(arg) || !mayWrite(arg)))
        continue;
      Value device = deviceAlloc(b, loc, type);
      arg.replaceAllUsesWith(device);
      memcpy(b, loc, device, arg);
      ownedInputs.push_back(device);
    }
  }

  SmallVector<Operation *> ops;
  for (Block *block : hostBlocks)
    for (Operation &op : *block)
      ops.push_back(&op);
  SmallVector<std::pair<Value, Block *>> owned(ownedSwitchResults);
  for (Value buffer : ownedInputs)
    owned.push_back({buffer, &body});
  for (Operation *op : ops) {
    b.setInsertionPoint(op);
    if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
      Value device = deviceAlloc(b, alloc.getLoc(), alloc.getType(),
                                 alloc.getDynamicSizes(),
                                 alloc.getSymbolOperands());
      alloc.replaceAllUsesWith(device);
      alloc->erase();
      owned.push_back({device, device.getDefiningOp()->getBlock()});
    } else if (auto global = dyn_cast<memref::GetGlobalOp>(op)) {
      b.setInsertionPointAfter(global);
      Value device = deviceAlloc(b, global.getLoc(), global.getType());
      global.getResult().replaceAllUsesWith(device);
      memcpy(b, global.getLoc(), device, global);
      owned.push_back({device, global->getBlock()});
    } else if (auto copy = dyn_cast<memref::CopyOp>(op)) {
      auto target = dyn_cast<BlockArgument>(copy.getTarget());
      if (fn.isPublic() && target && target.getOwner() == &body &&
          isOutParam(target)) {
        // Results leave through the out-parameters (host buffers).
        Value src = copy.getSource();
        auto srcType = cast<MemRefType>(src.getType());
        if (!srcType.getLayout().isIdentity()) {
          auto dense = MemRefType::get(srcType.getShape(),
                                       srcType.getElementType());
          Value tmp = deviceAlloc(b, copy.getLoc(), dense);
          linalg::CopyOp::create(b, copy.getLoc(), src, tmp);
          owned.push_back({tmp, copy->getBlock()});
          src = tmp;
        }
        memcpy(b, copy.getLoc(), copy.getTarget(), src);
      } else {
        linalg::CopyOp::create(b, copy.getLoc(), copy.getSource(),
                               copy.getTarget());
      }
      copy->erase();
    } else if (isa<memref::DeallocOp>(op)) {
      return op->emitOpError()
             << "is not expected before --mod-gpu-device-buffers, which "
                "frees device buffers itself";
    }
  }
  for (auto [buffer, block] : owned)
    deallocAfterLastUse(buffer, *block);
  return success();
}

struct MoDGPUDeviceBuffersPass
    : mod::impl::MoDGPUDeviceBuffersBase<MoDGPUDeviceBuffersPass> {
  void runOnOperation() override {
    for (auto fn : getOperation().getOps<func::FuncOp>())
      if (!fn.isExternal() && failed(convertFunction(fn)))
        return signalPassFailure();
  }
};
} // namespace
