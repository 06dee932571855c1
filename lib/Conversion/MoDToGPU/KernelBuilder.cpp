//===- KernelBuilder.cpp - IR helpers for hand-built GPU kernels ----------===//

#include "KernelBuilder.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <limits>

using namespace mlir;
using namespace mlir::mod::detail;

KernelBuilder::KernelBuilder(OpBuilder &b, Location loc, gpu::LaunchOp launch,
                             int64_t blockSize)
    : b(b), loc(loc), blockSize(blockSize) {
  tid = launch.getThreadIds().x;
  lane = arith::RemUIOp::create(b, loc, tid, idx(kWarpSize));
  warp = arith::DivUIOp::create(b, loc, tid, idx(kWarpSize));
  numWarps = idx(blockSize / kWarpSize);
}

Value KernelBuilder::idx(int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

Value KernelBuilder::i32(int64_t v) {
  return arith::ConstantIntOp::create(b, loc, b.getI32Type(), v);
}

Value KernelBuilder::f(Type t, double v) {
  return arith::ConstantOp::create(b, loc, t, b.getFloatAttr(t, v));
}

void KernelBuilder::forLoop(Value start, Value end, Value step,
                            llvm::function_ref<void(Value)> body) {
  auto loop = scf::ForOp::create(b, loc, start, end, step);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  body(loop.getInductionVar());
}

ValueRange KernelBuilder::forLoop(
    Value start, Value end, Value step, ValueRange init,
    llvm::function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  auto loop = scf::ForOp::create(b, loc, start, end, step, init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    SmallVector<Value> next =
        body(loop.getInductionVar(), loop.getRegionIterArgs());
    scf::YieldOp::create(b, loc, next);
  }
  return loop.getResults();
}

void KernelBuilder::ifThen(Value cond, llvm::function_ref<void()> then) {
  auto ifOp = scf::IfOp::create(b, loc, cond, /*withElseRegion=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(ifOp.thenBlock());
  then();
}

void KernelBuilder::barrier() { gpu::BarrierOp::create(b, loc); }

Value KernelBuilder::warpSum(Value v) {
  Value width = i32(kWarpSize);
  for (int64_t offset = kWarpSize / 2; offset > 0; offset /= 2) {
    auto shuffle = gpu::ShuffleOp::create(b, loc, v, i32(offset), width,
                                          gpu::ShuffleMode::XOR);
    v = arith::AddFOp::create(b, loc, v, shuffle.getShuffleResult());
  }
  return v;
}

Value KernelBuilder::warpInclusiveScan(Value v) {
  Value width = i32(kWarpSize);
  Value zero = i32(0);
  for (int64_t offset = 1; offset < kWarpSize; offset *= 2) {
    auto shuffle = gpu::ShuffleOp::create(b, loc, v, i32(offset), width,
                                          gpu::ShuffleMode::UP);
    // Lanes below `offset` have no partner; they add nothing.
    Value add = select(shuffle.getValid(), shuffle.getShuffleResult(), zero);
    v = arith::AddIOp::create(b, loc, v, add);
  }
  return v;
}

std::pair<Value, Value> KernelBuilder::blockExclusiveScan(Value v,
                                                          Value scratch) {
  Value totalSlot = idx(kWarpSize);
  Value inclusive = warpInclusiveScan(v);
  ifThen(cmpI(arith::CmpIPredicate::eq, lane, idx(kWarpSize - 1)),
         [&] { store(inclusive, scratch, warp); });
  barrier();
  // Warp 0 turns the per-warp totals into per-warp offsets.
  ifThen(cmpI(arith::CmpIPredicate::eq, warp, idx(0)), [&] {
    Value inRange = cmpI(arith::CmpIPredicate::ult, lane, numWarps);
    Value laneClamped = select(inRange, lane, idx(0));
    Value total = select(inRange, load(scratch, laneClamped), i32(0));
    Value prefix = warpInclusiveScan(total);
    ifThen(inRange, [&] {
      store(arith::SubIOp::create(b, loc, prefix, total), scratch, lane);
    });
    ifThen(cmpI(arith::CmpIPredicate::eq, lane,
                idx(blockSize / kWarpSize - 1)),
           [&] { store(prefix, scratch, totalSlot); });
  });
  barrier();
  Value warpOffset = load(scratch, warp);
  Value exclusive = arith::SubIOp::create(
      b, loc, arith::AddIOp::create(b, loc, warpOffset, inclusive), v);
  Value blockTotal = load(scratch, totalSlot);
  // The next scan overwrites the scratch slots: everyone must have read them.
  barrier();
  return {exclusive, blockTotal};
}

Value KernelBuilder::cmpI(arith::CmpIPredicate p, Value a, Value c) {
  return arith::CmpIOp::create(b, loc, p, a, c);
}

Value KernelBuilder::select(Value c, Value t, Value f) {
  return arith::SelectOp::create(b, loc, c, t, f);
}

Value KernelBuilder::load(Value memref, ValueRange indices) {
  return memref::LoadOp::create(b, loc, memref, indices);
}

void KernelBuilder::store(Value v, Value memref, ValueRange indices) {
  memref::StoreOp::create(b, loc, v, memref, indices);
}

Value KernelBuilder::toIndex(Value v) {
  return arith::IndexCastUIOp::create(b, loc, b.getIndexType(), v);
}

Value KernelBuilder::toI32(Value v) {
  return arith::IndexCastUIOp::create(b, loc, b.getI32Type(), v);
}

Value mlir::mod::detail::totalOrderKeyU32(OpBuilder &b, Location loc,
                                          Value score) {
  Type i32 = b.getI32Type();
  Value zero = arith::ConstantOp::create(b, loc, score.getType(),
                                         b.getFloatAttr(score.getType(), 0.0));
  // -0.0 + 0.0 == +0.0: both zeros get one key and tie by index.
  Value canon = arith::AddFOp::create(b, loc, score, zero);
  Value bits = arith::BitcastOp::create(b, loc, i32, canon);
  Value sign = arith::ShRSIOp::create(
      b, loc, bits, arith::ConstantIntOp::create(b, loc, i32, 31));
  // Negative floats: flip every bit; others: set the sign bit. This is the
  // CPU lowering's signed key with its sign bit flipped, so unsigned order
  // here equals signed order there.
  Value signBit = arith::ConstantIntOp::create(
      b, loc, i32, std::numeric_limits<int32_t>::min()); // 0x80000000
  Value flip = arith::OrIOp::create(b, loc, sign, signBit);
  return arith::XOrIOp::create(b, loc, bits, flip);
}

MemRefType mlir::mod::detail::workgroupMemRef(OpBuilder &b, int64_t size,
                                              Type element) {
  auto space = gpu::AddressSpaceAttr::get(b.getContext(),
                                          gpu::AddressSpace::Workgroup);
  return MemRefType::get({size}, element, MemRefLayoutAttrInterface(), space);
}

gpu::LaunchOp mlir::mod::detail::createLaunch(OpBuilder &b, Location loc,
                                              StringRef name, int64_t gridX,
                                              int64_t gridY, int64_t blockSize,
                                              TypeRange workgroup) {
  auto c = [&](int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); };
  Value one = c(1);
  auto symbol = FlatSymbolRefAttr::get(b.getContext(), name);
  auto launch = gpu::LaunchOp::create(
      b, loc, c(gridX), c(gridY), one, c(blockSize), one, one,
      /*dynamicSharedMemorySize=*/nullptr, /*asyncTokenType=*/nullptr,
      /*asyncDependencies=*/ValueRange(), workgroup,
      /*privateAttributions=*/TypeRange(), nullptr, nullptr, nullptr,
      /*module=*/symbol, /*function=*/symbol);
  Block &body = launch.getBody().front();
  b.setInsertionPointToEnd(&body);
  gpu::TerminatorOp::create(b, loc);
  b.setInsertionPointToStart(&body);
  return launch;
}
