//===- StreamOrder.cpp - --mod-gpu-stream-order ---------------------------===//
//
// gpu-async-region threads the GPU ops of a host function through one async
// token (one stream), but before any other op with side effects it inserts a
// blocking `gpu.wait` (stream synchronize + destroy) and starts a new stream
// after it. Calls to library functions that enqueue on the caller's stream
// (the cuBLAS wrappers, marked `mod.stream_ordered`) need neither: removing
// the wait and continuing the old stream keeps them ordered with the kernels
// and leaves one host synchronization per function, before it returns.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::mod {
#define GEN_PASS_DEF_MODGPUSTREAMORDER
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
/// Ops that may sit between a removed wait and the restart of the stream:
/// side-effect free host computations and calls the callee declares
/// stream-ordered.
bool isStreamSafe(Operation *op) {
  if (auto call = dyn_cast<func::CallOp>(op)) {
    auto callee = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
        op, call.getCalleeAttr());
    return callee && callee->hasAttr("mod.stream_ordered");
  }
  return isMemoryEffectFree(op) && op->getNumRegions() == 0;
}

/// A blocking `gpu.wait [%t]` on exactly one token.
bool isSingleBlockingWait(Operation *op) {
  auto wait = dyn_cast<gpu::WaitOp>(op);
  return wait && !wait.getAsyncToken() &&
         wait.getAsyncDependencies().size() == 1;
}

/// A `gpu.wait async` without dependencies: creates a stream.
bool isStreamStart(Operation *op) {
  auto wait = dyn_cast<gpu::WaitOp>(op);
  return wait && wait.getAsyncToken() && wait.getAsyncDependencies().empty();
}

void mergeStreams(Block &block) {
  gpu::WaitOp pending; // a blocking wait everything since could run after
  bool sawCall = false;
  for (Operation &op : llvm::make_early_inc_range(block)) {
    if (pending && isStreamStart(&op)) {
      // Keep the waited-on stream going instead of starting a new one.
      if (sawCall) {
        Value token = pending.getAsyncDependencies().front();
        cast<gpu::WaitOp>(op).getAsyncToken().replaceAllUsesWith(token);
        op.erase();
        pending.erase();
      }
      pending = nullptr;
      continue;
    }
    if (isSingleBlockingWait(&op)) {
      pending = cast<gpu::WaitOp>(op);
      sawCall = false;
      continue;
    }
    if (!pending)
      continue;
    if (isStreamSafe(&op)) {
      sawCall |= isa<func::CallOp>(op);
      continue;
    }
    pending = nullptr;
  }
}

struct MoDGPUStreamOrderPass
    : mod::impl::MoDGPUStreamOrderBase<MoDGPUStreamOrderPass> {
  void runOnOperation() override {
    // Every host block: the body and nested ones (the cases of a decode
    // step's scf.index_switch on the routed row count).
    for (auto fn : getOperation().getOps<func::FuncOp>())
      fn.walk([](Block *block) { mergeStreams(*block); });
    // The marker has done its job; nothing downstream knows it.
    for (auto fn : getOperation().getOps<func::FuncOp>())
      fn->removeAttr("mod.stream_ordered");
  }
};
} // namespace
