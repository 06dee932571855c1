//===- RoutingToGPU.cpp - --mod-lower-routing-to-gpu ----------------------===//
//
// Groups the expanded routing ops into kernels and replaces them. Every
// kernel works on buffers: tensor operands enter through read-only
// `bufferization.to_buffer`, results are fresh `memref.alloc`s handed back
// through `bufferization.to_tensor restrict writable`, so one-shot
// bufferization of the rest of the function is unaffected.
//
// Everything is checked before anything is rewritten, so a failure leaves
// the module as it was.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "RoutingKernels.h"
#include "mod/Conversion/Passes.h"
#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/IR/Dominance.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::mod {
#define GEN_PASS_DEF_CONVERTMODROUTINGTOGPU
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod;
using namespace mlir::mod::detail;

namespace {
/// The least a block of a split router or gather kernel reads: 64 KiB is
/// about what one SM of an H100 reads (at its share of the memory
/// bandwidth) in the time a kernel launch costs, so smaller pieces would
/// not pay for the extra launch.
constexpr int64_t kMinBytesPerBlock = 64 * 1024;

/// One select kernel: a top-k, the router it consumes (if fused) and the
/// gathers of its indices that can run in the same kernel.
struct SelectGroup {
  TopKOp topk;
  RouterOp router; // null when not fused
  SmallVector<GatherOp> gathers;
};

class RoutingLowering {
public:
  RoutingLowering(ModuleOp module, int64_t blockSize, int64_t minBlocks)
      : module(module), blockSize(blockSize), minBlocks(minBlocks),
        dom(module) {}

  LogicalResult run();

private:
  LogicalResult check(Operation *op);
  std::string kernelName(StringRef base) {
    return (base + "_" + Twine(counter++)).str();
  }
  Value toBuffer(OpBuilder &b, Location loc, Value tensor);
  Value allocFor(OpBuilder &b, Location loc, Type tensorType);
  Value toTensor(OpBuilder &b, Location loc, Value buffer, Type tensorType);
  /// A `[B, N, E]` view of a `[B, N, ...]` buffer.
  Value rows3D(OpBuilder &b, Location loc, Value buffer);

  void lowerSelect(SelectGroup group);
  void lowerRouter(RouterOp op);
  void lowerGather(GatherOp op);
  void lowerScatter(ScatterAddOp op, bool sortedUnique);

  /// Blocks per batch row for a phase that reads `bytes` per row: enough
  /// for minBlocks blocks in all when the batch alone gives fewer, but each
  /// block reading at least kMinBytesPerBlock.
  int64_t partsFor(int64_t batch, int64_t bytes) const {
    if (batch >= minBlocks)
      return 1;
    int64_t wanted = (minBlocks + batch - 1) / batch;
    return std::max<int64_t>(1, std::min(wanted, bytes / kMinBytesPerBlock));
  }
  /// Row bytes of a static [B, N, ...] 4-byte tensor (0 if dynamic).
  static int64_t rowBytes(Type type) {
    auto shaped = cast<ShapedType>(type);
    if (!shaped.hasStaticShape() || shaped.getDimSize(0) == 0)
      return 0;
    return 4 * shaped.getNumElements() / shaped.getDimSize(0);
  }
  int64_t routerParts(RouterOp op) const {
    auto type = cast<ShapedType>(op.getInput().getType());
    // No block without a token for each of its warps.
    int64_t warps = blockSize / kWarpSize;
    return std::min(partsFor(type.getDimSize(0), rowBytes(type)),
                    std::max<int64_t>(1, type.getDimSize(1) / warps));
  }
  int64_t gatherParts(GatherOp op) const {
    auto type = cast<ShapedType>(op.getType());
    // No block without an element for each of its threads.
    return std::min(partsFor(type.getDimSize(0), rowBytes(type)),
                    std::max<int64_t>(1, rowBytes(type) / 4 / blockSize));
  }

  ModuleOp module;
  int64_t blockSize, minBlocks;
  DominanceInfo dom;
  int64_t counter = 0;
};

LogicalResult RoutingLowering::check(Operation *op) {
  auto needF32 = [&](Value v, StringRef what) -> LogicalResult {
    Type et = cast<ShapedType>(v.getType()).getElementType();
    if (et.isF32())
      return success();
    return op->emitOpError() << "cannot be lowered to the CUDA routing "
                                "kernels: "
                             << what << " has element type " << et
                             << ", the kernels support f32";
  };
  if (auto router = dyn_cast<RouterOp>(op))
    return needF32(router.getInput(), "input"); // the verifier ties w to x
  if (auto topk = dyn_cast<TopKOp>(op))
    return needF32(topk.getInput(), "input");
  // mod.scatter_add and mod.gather: the op verifiers already require what
  // the kernels need (a float input for the scatter).
  if (isa<RoutedBlockOp>(op))
    return op->emitOpError() << "must be expanded before lowering to GPU "
                                "kernels; run --mod-expand-routed-blocks first";
  return success();
}

Value RoutingLowering::toBuffer(OpBuilder &b, Location loc, Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  auto memrefType = MemRefType::get(type.getShape(), type.getElementType());
  return bufferization::ToBufferOp::create(b, loc, memrefType, tensor,
                                           /*read_only=*/true);
}

Value RoutingLowering::allocFor(OpBuilder &b, Location loc, Type tensorType) {
  auto type = cast<RankedTensorType>(tensorType);
  return memref::AllocOp::create(
      b, loc, MemRefType::get(type.getShape(), type.getElementType()));
}

Value RoutingLowering::toTensor(OpBuilder &b, Location loc, Value buffer,
                                Type tensorType) {
  return bufferization::ToTensorOp::create(b, loc, tensorType, buffer,
                                           /*restrict=*/true,
                                           /*writable=*/true);
}

Value RoutingLowering::rows3D(OpBuilder &b, Location loc, Value buffer) {
  auto type = cast<MemRefType>(buffer.getType());
  if (type.getRank() == 3)
    return buffer;
  if (type.getRank() == 2) {
    SmallVector<int64_t> shape{type.getDimSize(0), type.getDimSize(1), 1};
    return memref::ExpandShapeOp::create(
        b, loc, shape, buffer,
        SmallVector<ReassociationIndices>{{0}, {1, 2}});
  }
  ReassociationIndices tail;
  for (int64_t i = 2; i < type.getRank(); ++i)
    tail.push_back(i);
  return memref::CollapseShapeOp::create(
      b, loc, buffer, SmallVector<ReassociationIndices>{{0}, {1}, tail});
}

void RoutingLowering::lowerSelect(SelectGroup group) {
  TopKOp topk = group.topk;
  Location loc = topk.getLoc();
  OpBuilder b(topk);
  SelectKernel spec;
  spec.blockSize = blockSize;
  spec.k = topk.getK();
  // For a small batch, the router and the gathers become kernels of their
  // own with several blocks per row; the top-k stays one block per row.
  int64_t rParts = group.router ? routerParts(group.router) : 1;
  int64_t gParts = 1;
  for (GatherOp g : group.gathers)
    gParts = std::max(gParts, gatherParts(g));
  bool splitGathers = gParts > 1;
  if (group.router && rParts > 1) {
    SelectKernel router;
    router.name = kernelName("mod_router");
    router.blockSize = blockSize;
    router.x = toBuffer(b, loc, group.router.getInput());
    router.w = toBuffer(b, loc, group.router.getWeight());
    router.scores = allocFor(b, loc, group.router.getType());
    router.parts = rParts;
    buildSelectKernel(b, loc, router);
    spec.name = kernelName(group.gathers.empty() || splitGathers
                               ? "mod_topk"
                               : "mod_topk_gather");
    spec.scores = router.scores;
  } else if (group.router) {
    spec.name = kernelName(group.gathers.empty() || splitGathers
                               ? "mod_router_topk"
                               : "mod_router_topk_gather");
    spec.x = toBuffer(b, loc, group.router.getInput());
    spec.w = toBuffer(b, loc, group.router.getWeight());
    spec.scores = allocFor(b, loc, group.router.getType());
  } else {
    spec.name = kernelName(group.gathers.empty() || splitGathers
                               ? "mod_topk"
                               : "mod_topk_gather");
    spec.scores = toBuffer(b, loc, topk.getInput());
  }
  spec.indices = allocFor(b, loc, topk.getIndices().getType());
  spec.values = allocFor(b, loc, topk.getValues().getType());
  SmallVector<Value> gatherOutputs;
  SmallVector<GatherOperands> gathers;
  for (GatherOp g : group.gathers) {
    gatherOutputs.push_back(allocFor(b, loc, g.getType()));
    gathers.push_back({rows3D(b, loc, toBuffer(b, loc, g.getInput())),
                       rows3D(b, loc, gatherOutputs.back())});
  }
  if (!splitGathers)
    spec.gathers = gathers;
  buildSelectKernel(b, loc, spec);
  if (splitGathers)
    buildGatherKernel(b, loc, kernelName("mod_gather"), blockSize,
                      spec.indices, gathers, gParts);

  if (group.router && !group.router->use_empty())
    group.router.getResult().replaceAllUsesWith(
        toTensor(b, loc, spec.scores, group.router.getType()));
  topk.getIndices().replaceAllUsesWith(
      toTensor(b, loc, spec.indices, topk.getIndices().getType()));
  topk.getValues().replaceAllUsesWith(
      toTensor(b, loc, spec.values, topk.getValues().getType()));
  for (auto [g, out] : llvm::zip(group.gathers, gatherOutputs)) {
    GatherOp gather = g;
    gather.getResult().replaceAllUsesWith(
        toTensor(b, loc, out, gather.getType()));
    gather->erase();
  }
  topk->erase();
  if (group.router)
    group.router->erase();
}

void RoutingLowering::lowerRouter(RouterOp op) {
  Location loc = op.getLoc();
  OpBuilder b(op);
  SelectKernel spec;
  spec.name = kernelName("mod_router");
  spec.blockSize = blockSize;
  spec.x = toBuffer(b, loc, op.getInput());
  spec.w = toBuffer(b, loc, op.getWeight());
  spec.scores = allocFor(b, loc, op.getType());
  spec.parts = routerParts(op);
  buildSelectKernel(b, loc, spec);
  op.getResult().replaceAllUsesWith(toTensor(b, loc, spec.scores, op.getType()));
  op->erase();
}

void RoutingLowering::lowerGather(GatherOp op) {
  Location loc = op.getLoc();
  OpBuilder b(op);
  Value out = allocFor(b, loc, op.getType());
  GatherOperands g{rows3D(b, loc, toBuffer(b, loc, op.getInput())),
                   rows3D(b, loc, out)};
  buildGatherKernel(b, loc, kernelName("mod_gather"), blockSize,
                    toBuffer(b, loc, op.getIndices()), g, gatherParts(op));
  op.getResult().replaceAllUsesWith(toTensor(b, loc, out, op.getType()));
  op->erase();
}

void RoutingLowering::lowerScatter(ScatterAddOp op, bool sortedUnique) {
  Location loc = op.getLoc();
  OpBuilder b(op);
  ScatterKernel spec;
  spec.name = kernelName(sortedUnique ? "mod_scale_scatter_add"
                                      : "mod_scatter_add");
  spec.blockSize = blockSize;
  spec.sortedUnique = sortedUnique;
  spec.sigmoidGate = op.getGate() == GateKind::Sigmoid;
  spec.input = rows3D(b, loc, toBuffer(b, loc, op.getInput()));
  spec.indices = toBuffer(b, loc, op.getIndices());
  spec.update = rows3D(b, loc, toBuffer(b, loc, op.getUpdate()));
  spec.scale = toBuffer(b, loc, op.getScale());
  Value out = allocFor(b, loc, op.getType());
  spec.output = rows3D(b, loc, out);
  buildScatterKernel(b, loc, spec);
  op.getResult().replaceAllUsesWith(toTensor(b, loc, out, op.getType()));
  op->erase();
}

LogicalResult RoutingLowering::run() {
  if (blockSize < kWarpSize || blockSize > 1024 ||
      blockSize % kWarpSize != 0)
    return module.emitError() << "--mod-lower-routing-to-gpu: block-size "
                              << blockSize
                              << " must be a multiple of 32 in [32, 1024]";
  SmallVector<Operation *> ops;
  module.walk([&](Operation *op) {
    if (isa<RouterOp, TopKOp, GatherOp, ScatterAddOp, RoutedBlockOp>(op))
      ops.push_back(op);
  });
  for (Operation *op : ops)
    if (failed(check(op)))
      return failure();

  // Plan every kernel before rewriting anything (analyses see the original
  // IR; the scatter's provenance check looks through nothing but mod.topk).
  SmallVector<SelectGroup> groups;
  llvm::SetVector<Operation *> fused;
  SmallVector<std::pair<ScatterAddOp, bool>> scatters;
  SmallVector<Operation *> singles; // routers and gathers not fused
  for (Operation *op : ops) {
    if (auto topk = dyn_cast<TopKOp>(op)) {
      SelectGroup group{topk, nullptr, {}};
      // The router is fused when its other users all come after the top-k,
      // where the kernel's score buffer is defined.
      if (auto router = topk.getInput().getDefiningOp<RouterOp>();
          router && !fused.contains(router) &&
          llvm::all_of(router->getUsers(), [&](Operation *user) {
            return user == topk || dom.properlyDominates(topk, user);
          }))
        group.router = router;
      for (Operation *user : topk.getIndices().getUsers()) {
        auto gather = dyn_cast<GatherOp>(user);
        if (gather && gather.getIndices() == topk.getIndices() &&
            dom.properlyDominates(gather.getInput(), topk))
          group.gathers.push_back(gather);
      }
      if (group.router)
        fused.insert(group.router);
      for (GatherOp g : group.gathers)
        fused.insert(g);
      groups.push_back(group);
    } else if (auto scatter = dyn_cast<ScatterAddOp>(op)) {
      scatters.push_back(
          {scatter, scatter.getIndices().getDefiningOp<TopKOp>() != nullptr});
    }
  }

  for (Operation *op : ops)
    if (isa<RouterOp, GatherOp>(op) && !fused.contains(op))
      singles.push_back(op);

  for (const SelectGroup &group : groups)
    lowerSelect(group);
  for (Operation *op : singles) {
    if (auto router = dyn_cast<RouterOp>(op))
      lowerRouter(router);
    else if (auto gather = dyn_cast<GatherOp>(op))
      lowerGather(gather);
  }
  for (auto [scatter, sortedUnique] : scatters)
    lowerScatter(scatter, sortedUnique);
  return success();
}

struct ConvertMoDRoutingToGPUPass
    : mod::impl::ConvertMoDRoutingToGPUBase<ConvertMoDRoutingToGPUPass> {
  using Base::Base;
  void runOnOperation() override {
    if (minBlocks < 1) {
      getOperation().emitError()
          << "--mod-lower-routing-to-gpu: min-blocks must be at least 1, got "
          << static_cast<int64_t>(minBlocks);
      return signalPassFailure();
    }
    if (failed(RoutingLowering(getOperation(), blockSize, minBlocks).run()))
      signalPassFailure();
  }
};
} // namespace
