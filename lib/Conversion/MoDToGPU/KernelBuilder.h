//===- KernelBuilder.h - IR helpers for hand-built GPU kernels --*- C++ -*-===//
//
// The routing kernels are built op by op inside `gpu.launch` bodies. These
// helpers keep the warp- and block-level building blocks (shuffle reductions,
// prefix scans, thread-strided loops) in one place so the kernels read like
// the algorithms they implement.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_LIB_CONVERSION_MODTOGPU_KERNELBUILDER_H
#define MOD_LIB_CONVERSION_MODTOGPU_KERNELBUILDER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"

#include <functional>

namespace mlir::mod::detail {

/// Threads per warp on every NVIDIA GPU modc targets.
constexpr int64_t kWarpSize = 32;

/// A builder positioned inside a 1-D `gpu.launch` body (threads along x).
class KernelBuilder {
public:
  KernelBuilder(OpBuilder &b, Location loc, gpu::LaunchOp launch,
                int64_t blockSize);

  OpBuilder &b;
  Location loc;
  int64_t blockSize;
  /// Thread id, lane, warp id and warps per block, as `index`.
  Value tid, lane, warp, numWarps;

  Value idx(int64_t v);
  Value i32(int64_t v);
  Value f(Type t, double v);

  /// `for (i = start; i < end; i += step) body(i)` as an scf.for.
  void forLoop(Value start, Value end, Value step,
               llvm::function_ref<void(Value)> body);
  /// Same with loop-carried values; returns the final values.
  ValueRange forLoop(Value start, Value end, Value step, ValueRange init,
                     llvm::function_ref<SmallVector<Value>(Value, ValueRange)>
                         body);
  /// Runs `then` only where `cond` holds.
  void ifThen(Value cond, llvm::function_ref<void()> then);

  void barrier();

  /// Sum of `v` (f32) over the warp; every lane gets the result.
  Value warpSum(Value v);
  /// Inclusive prefix sum of `v` (i32) over the lanes of a warp.
  Value warpInclusiveScan(Value v);
  /// Exclusive prefix sum of `v` (i32) over the block in thread order, and
  /// the block total (uniform). `scratch` is a workgroup memref of at least
  /// 33 i32: one slot per warp plus the total. Contains barriers: every
  /// thread of the block must call it.
  std::pair<Value, Value> blockExclusiveScan(Value v, Value scratch);

  Value cmpI(arith::CmpIPredicate p, Value a, Value c);
  Value select(Value c, Value t, Value f);
  Value load(Value memref, ValueRange indices);
  void store(Value v, Value memref, ValueRange indices);
  Value toIndex(Value v);
  Value toI32(Value v);
};

/// A 1-D workgroup (shared) memory buffer of `size` elements.
MemRefType workgroupMemRef(OpBuilder &b, int64_t size, Type element);

/// Creates a `gpu.launch` of gridX x gridY blocks of `blockSize` threads with
/// `workgroup` attributions, whose outlined kernel will be called `name`,
/// and positions `b` inside it (before its terminator). The caller restores
/// the insertion point.
gpu::LaunchOp createLaunch(OpBuilder &b, Location loc, StringRef name,
                           int64_t gridX, int64_t gridY, int64_t blockSize,
                           TypeRange workgroup);

/// Maps an f32 to a uint32 key whose unsigned order is the total order the
/// CPU lowering uses (lib/Conversion/MoDToLinalg/TopK.cpp): -0.0 and +0.0 are
/// equal, positive NaNs sort above +inf, negative NaNs below -inf.
Value totalOrderKeyU32(OpBuilder &b, Location loc, Value score);

} // namespace mlir::mod::detail

#endif // MOD_LIB_CONVERSION_MODTOGPU_KERNELBUILDER_H
