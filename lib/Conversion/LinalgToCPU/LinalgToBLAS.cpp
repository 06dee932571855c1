//===- LinalgToBLAS.cpp - --mod-linalg-to-blas ----------------------------===//
//
// GEMMs are where a tuned library beats generated loops by an order of
// magnitude, so every f32 contraction on buffers that a strided GEMM can
// express becomes calls to OpenBLAS's
//
//   void cblas_sgemm(CBLAS_ORDER, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb,
//                    int m, int n, int k, float alpha, const float *a, int lda,
//                    const float *b, int ldb, float beta, float *c, int ldc);
//
// A GEMM with one row (M = 1: a decode step's projections, one query's
// attention) becomes cblas_sgemv instead,
//
//   void cblas_sgemv(CBLAS_ORDER, CBLAS_TRANSPOSE t, int m, int n,
//                    float alpha, const float *a, int lda, const float *x,
//                    int incx, float beta, float *y, int incy);
//
// on the same tiles: OpenBLAS 0.3.21's sgemm packs all of B for M = 1,
// which made a GPT-2-small decode step mostly copies of the weights.
//
// The analysis works on loop dimensions: each has a size and, in each of the
// three operands, a stride (the memref stride of the operand dimension the
// indexing map sends it to, or 0). GEMM roles come from
// linalg::inferContractionDims; which operand dimension has unit stride
// decides the transpose flags.
//
// Sizes may be dynamic (strides must be static): a decode step's attention
// over a row's filled cache slots is a GEMV of N or K = the row's length, a
// subview of a static buffer. A dynamic size needs a constant upper bound
// (from the subview's size operand: a constant, or a min with one) for the
// leading-dimension checks; the calls then take the size at run time
// (memref.dim). A dynamic dimension never merges with another.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <limits>

namespace mlir::mod {
#define GEN_PASS_DEF_LINALGTOBLAS
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
constexpr llvm::StringLiteral kSgemm = "cblas_sgemm";
constexpr llvm::StringLiteral kSgemv = "cblas_sgemv";
constexpr llvm::StringLiteral kMaxThreads = "omp_get_max_threads";
/// Marks the scf.parallel of GEMM calls, which --mod-cpu-parallel-loops
/// leaves parallel whatever its trip count (each iteration is a GEMM).
constexpr llvm::StringLiteral kGemmTilesAttr = "mod.gemm_tiles";
/// Row or column slices of one GEMM are multiples of this (OpenBLAS's
/// register tile sizes divide it).
constexpr int64_t kTileAlign = 16;
/// Below this many multiply-adds in all calls together, waking the OpenMP
/// workers costs about as much as the GEMMs save: the calls run in order on
/// the calling thread.
constexpr int64_t kMinParallelMacs = int64_t(1) << 21;
// CBLAS enum values (cblas.h).
constexpr int32_t kRowMajor = 101, kNoTrans = 111, kTrans = 112;

/// One loop dimension of the contraction: its trip count and its stride in
/// A, B and C (0 where the operand does not depend on it).
struct LoopDim {
  /// ShapedType::kDynamic when only known at run time; `ub` bounds it.
  int64_t size = 1, ub = 1;
  /// The loop of the linalg op (for a dynamic size).
  int loop = -1;
  int64_t stride[3] = {0, 0, 0};
};

/// A GEMM dimension after merging: size and stride in each operand.
struct GemmDim {
  int64_t size = 1, ub = 1;
  int loop = -1;
  int64_t stride[3] = {0, 0, 0};
};

/// How one operand is passed to cblas_sgemm.
struct OperandLayout {
  bool transposed = false;
  int64_t ld = 1;
};

/// The plan for one linalg op: GEMM sizes, operand layouts, and the loop
/// dimensions the calls are nested in.
struct GemmPlan {
  GemmDim m, n, k;
  /// Element strides of the M and N dimensions in each original operand
  /// (A, B, C), for splitting the call into row or column tiles.
  int64_t mStride[3] = {0, 0, 0}, nStride[3] = {0, 0, 0};
  OperandLayout a, b;
  int64_t ldc = 1;
  /// Operand order after a possible swap (C = A·B or Cᵀ = Bᵀ·Aᵀ).
  unsigned lhs = 0, rhs = 1;
  SmallVector<LoopDim> loops;
};

/// A constant upper bound of an index value: a constant, or a min, product
/// or cast of values with one.
std::optional<int64_t> upperBound(Value v, int depth = 0) {
  if (depth > 8)
    return std::nullopt;
  if (std::optional<int64_t> c = getConstantIntValue(v))
    return *c;
  Operation *def = v.getDefiningOp();
  if (!def)
    return std::nullopt;
  if (isa<arith::MinSIOp, arith::MinUIOp>(def)) {
    std::optional<int64_t> a = upperBound(def->getOperand(0), depth + 1),
                           b = upperBound(def->getOperand(1), depth + 1);
    if (a && b)
      return std::min(*a, *b);
    // min(a, b) is at most either's bound.
    return a ? a : b;
  }
  if (isa<arith::MulIOp>(def)) {
    std::optional<int64_t> a = upperBound(def->getOperand(0), depth + 1),
                           b = upperBound(def->getOperand(1), depth + 1);
    if (a && b && *a >= 0 && *b >= 0)
      return *a * *b;
  }
  if (isa<arith::IndexCastOp>(def))
    return upperBound(def->getOperand(0), depth + 1);
  return std::nullopt;
}

/// A constant upper bound of dimension `d` of memref `v`.
std::optional<int64_t> dimUpperBound(Value v, unsigned d) {
  auto type = cast<MemRefType>(v.getType());
  if (!type.isDynamicDim(d))
    return type.getDimSize(d);
  if (auto cast = v.getDefiningOp<memref::CastOp>())
    return dimUpperBound(cast.getSource(), d);
  auto subview = v.getDefiningOp<memref::SubViewOp>();
  if (!subview)
    return std::nullopt;
  llvm::SmallBitVector dropped = subview.getDroppedDims();
  SmallVector<OpFoldResult> sizes = subview.getMixedSizes();
  unsigned seen = 0;
  for (unsigned i = 0; i < sizes.size(); ++i) {
    if (dropped.test(i))
      continue;
    if (seen++ != d)
      continue;
    if (auto value = dyn_cast<Value>(sizes[i]))
      return upperBound(value);
    return getConstantIntValue(sizes[i]);
  }
  return std::nullopt;
}

/// Static strides of an f32 memref, or failure.
FailureOr<SmallVector<int64_t>> staticF32Strides(Value v) {
  auto type = dyn_cast<MemRefType>(v.getType());
  if (!type || !type.getElementType().isF32())
    return failure();
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(type.getStridesAndOffset(strides, offset)) ||
      llvm::any_of(strides, ShapedType::isDynamic))
    return failure();
  return strides;
}

/// Chooses plain or transposed storage for a [rows, cols] operand whose
/// row and column strides are given; BLAS wants one of them to be 1.
/// (Sizes are only 1 when static; bounds are upper bounds of the sizes, and
/// a leading dimension at least the bound is one at least the size.)
std::optional<OperandLayout> chooseLayout(const GemmDim &r, const GemmDim &c,
                                          int64_t rowStride,
                                          int64_t colStride) {
  int64_t rows = r.size, cols = c.size;
  if ((cols == 1 || colStride == 1) && (rows == 1 || rowStride >= c.ub))
    return OperandLayout{false, rows == 1 ? std::max<int64_t>(c.ub, 1)
                                          : rowStride};
  if ((rows == 1 || rowStride == 1) && (cols == 1 || colStride >= r.ub))
    return OperandLayout{true, cols == 1 ? std::max<int64_t>(r.ub, 1)
                                         : colStride};
  return std::nullopt;
}

/// Merges the dimensions of one GEMM role (M, N or K) that are contiguous
/// with each other in every operand using them; the innermost one is the
/// GEMM dimension, the others that do not merge become loops.
GemmDim mergeRole(SmallVector<LoopDim> dims, ArrayRef<unsigned> operands,
                  SmallVectorImpl<LoopDim> &loops) {
  if (dims.empty())
    return GemmDim{};
  unsigned key = operands.front();
  llvm::stable_sort(dims, [&](const LoopDim &x, const LoopDim &y) {
    return x.stride[key] > y.stride[key];
  });
  LoopDim inner = dims.back();
  dims.pop_back();
  while (!dims.empty()) {
    const LoopDim &outer = dims.back();
    bool mergeable =
        !ShapedType::isDynamic(inner.size) &&
        !ShapedType::isDynamic(outer.size) &&
        llvm::all_of(operands, [&](unsigned o) {
          return outer.stride[o] == inner.stride[o] * inner.size;
        });
    if (!mergeable)
      break;
    inner.size *= outer.size;
    inner.ub = inner.size;
    dims.pop_back();
  }
  loops.append(dims.begin(), dims.end());
  GemmDim g;
  g.size = inner.size;
  g.ub = inner.ub;
  g.loop = inner.loop;
  for (int o = 0; o < 3; ++o)
    g.stride[o] = inner.stride[o];
  return g;
}

/// Works out whether `op` can run as strided cblas_sgemm calls.
std::optional<GemmPlan> planGemm(linalg::LinalgOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != 2 ||
      op.getNumDpsInits() != 1 || !linalg::isaContractionOpInterface(op))
    return std::nullopt;
  // The body must be exactly out + a * b in f32 (no casts, no other ops).
  Block &body = op->getRegion(0).front();
  if (body.getOperations().size() != 3 ||
      !isa<arith::MulFOp>(body.front()) ||
      !isa<arith::AddFOp>(*std::next(body.begin())))
    return std::nullopt;
  FailureOr<linalg::ContractionDimensions> roles =
      linalg::inferContractionDims(op);
  if (failed(roles) || roles->m.empty() || roles->n.empty() ||
      roles->k.empty())
    return std::nullopt;

  SmallVector<int64_t> sizes = op.getStaticLoopRanges();
  unsigned numLoops = sizes.size();
  if (roles->batch.size() + roles->m.size() + roles->n.size() +
          roles->k.size() !=
      numLoops)
    return std::nullopt;
  SmallVector<LoopDim> dims(numLoops);
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  SmallVector<Value> operands{op.getDpsInputs()[0], op.getDpsInputs()[1],
                              op.getDpsInits()[0]};
  for (unsigned d = 0; d < numLoops; ++d) {
    dims[d].size = dims[d].ub = sizes[d];
    dims[d].loop = d;
    if (!ShapedType::isDynamic(sizes[d]))
      continue;
    // The smallest bound of the operand dimensions this loop runs over.
    std::optional<int64_t> ub;
    for (unsigned o = 0; o < 3; ++o)
      for (auto [r, expr] : llvm::enumerate(maps[o].getResults()))
        if (auto dim = dyn_cast<AffineDimExpr>(expr);
            dim && dim.getPosition() == d)
          if (std::optional<int64_t> b = dimUpperBound(operands[o], r))
            ub = ub ? std::min(*ub, *b) : *b;
    if (!ub)
      return std::nullopt;
    dims[d].ub = std::max<int64_t>(*ub, 0);
  }
  for (unsigned o = 0; o < 3; ++o) {
    FailureOr<SmallVector<int64_t>> strides = staticF32Strides(operands[o]);
    if (failed(strides) || !maps[o].isProjectedPermutation())
      return std::nullopt;
    for (auto [r, expr] : llvm::enumerate(maps[o].getResults())) {
      unsigned d = cast<AffineDimExpr>(expr).getPosition();
      if (dims[d].stride[o] != 0)
        return std::nullopt;
      dims[d].stride[o] = (*strides)[r];
    }
  }

  GemmPlan plan;
  auto pick = [&](ArrayRef<unsigned> ids) {
    SmallVector<LoopDim> out;
    for (unsigned d : ids)
      out.push_back(dims[d]);
    return out;
  };
  for (unsigned d : roles->batch)
    plan.loops.push_back(dims[d]);
  GemmDim m = mergeRole(pick(roles->m), {0, 2}, plan.loops);
  GemmDim n = mergeRole(pick(roles->n), {1, 2}, plan.loops);
  GemmDim k = mergeRole(pick(roles->k), {0, 1}, plan.loops);

  // Row-major C needs unit stride along N; with unit stride along M compute
  // Cᵀ = Bᵀ·Aᵀ instead.
  if (!(n.size == 1 || n.stride[2] == 1)) {
    if (!(m.size == 1 || m.stride[2] == 1))
      return std::nullopt;
    std::swap(m, n);
    plan.lhs = 1;
    plan.rhs = 0;
  }
  if (!(m.size == 1 || m.stride[2] >= n.ub))
    return std::nullopt;
  plan.ldc = m.size == 1 ? std::max<int64_t>(n.ub, 1) : m.stride[2];
  std::optional<OperandLayout> la =
      chooseLayout(m, k, m.stride[plan.lhs], k.stride[plan.lhs]);
  std::optional<OperandLayout> lb =
      chooseLayout(k, n, k.stride[plan.rhs], n.stride[plan.rhs]);
  if (!la || !lb)
    return std::nullopt;
  plan.a = *la;
  plan.b = *lb;
  plan.m = m;
  plan.n = n;
  plan.k = k;
  for (int o = 0; o < 3; ++o) {
    plan.mStride[o] = m.stride[o];
    plan.nStride[o] = n.stride[o];
  }
  constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();
  for (int64_t v : {plan.m.ub, plan.n.ub, plan.k.ub, plan.a.ld, plan.b.ld,
                    plan.ldc})
    if (v > kMaxInt)
      return std::nullopt;
  return plan;
}

func::FuncOp getOrDeclare(ModuleOp module, StringRef name,
                          FunctionType type) {
  if (auto fn = module.lookupSymbol<func::FuncOp>(name))
    return fn;
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  auto fn = func::FuncOp::create(b, module.getLoc(), name, type);
  fn.setPrivate();
  return fn;
}

func::FuncOp getOrDeclareSgemm(ModuleOp module) {
  MLIRContext *ctx = module.getContext();
  Type i32 = IntegerType::get(ctx, 32), f32 = Float32Type::get(ctx);
  Type ptr = LLVM::LLVMPointerType::get(ctx);
  return getOrDeclare(
      module, kSgemm,
      FunctionType::get(ctx, {i32, i32, i32, i32, i32, i32, f32, ptr, i32, ptr,
                              i32, f32, ptr, i32},
                        {}));
}

func::FuncOp getOrDeclareSgemv(ModuleOp module) {
  MLIRContext *ctx = module.getContext();
  Type i32 = IntegerType::get(ctx, 32), f32 = Float32Type::get(ctx);
  Type ptr = LLVM::LLVMPointerType::get(ctx);
  return getOrDeclare(
      module, kSgemv,
      FunctionType::get(ctx, {i32, i32, i32, i32, f32, ptr, i32, ptr, i32, f32,
                              ptr, i32},
                        {}));
}

func::FuncOp getOrDeclareMaxThreads(ModuleOp module) {
  MLIRContext *ctx = module.getContext();
  return getOrDeclare(module, kMaxThreads,
                      FunctionType::get(ctx, {}, {IntegerType::get(ctx, 32)}));
}

/// The byte address of element [0, ...] of `v`, as an index.
Value baseAddress(OpBuilder &b, Location loc, Value v) {
  auto meta = memref::ExtractStridedMetadataOp::create(b, loc, v);
  Value base = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, v);
  Value bytes = arith::MulIOp::create(
      b, loc, meta.getOffset(), arith::ConstantIndexOp::create(b, loc, 4));
  return arith::AddIOp::create(b, loc, base, bytes);
}

/// Whether `op` cannot change the contents of an existing buffer: no
/// memory effects, or only allocating a new one.
bool leavesBuffersAlone(Operation *op) {
  auto iface = dyn_cast<MemoryEffectOpInterface>(op);
  if (!iface)
    return isMemoryEffectFree(op);
  SmallVector<MemoryEffects::EffectInstance> effects;
  iface.getEffects(effects);
  return llvm::all_of(effects, [](const MemoryEffects::EffectInstance &e) {
    return isa<MemoryEffects::Allocate, MemoryEffects::Read>(e.getEffect());
  });
}

/// `v` without the reshapes on top (the same elements, all of them).
Value stripReshapes(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (!isa<memref::ExpandShapeOp, memref::CollapseShapeOp>(def))
      break;
    v = def->getOperand(0);
  }
  return v;
}

/// Whether `a` and `b` are all of one buffer, each possibly reshaped.
bool isSameWholeBuffer(Value a, Value b) {
  return stripReshapes(a) == stripReshapes(b);
}

/// The op that last wrote `buffer` before `op` in its block, when nothing
/// between them can have changed any buffer; null otherwise.
Operation *lastWriterBefore(Operation *op, Value buffer) {
  for (Operation *prev = op->getPrevNode(); prev; prev = prev->getPrevNode()) {
    if (auto fill = dyn_cast<linalg::FillOp>(prev))
      return isSameWholeBuffer(fill.getDpsInits()[0], buffer) ? prev : nullptr;
    if (auto copy = dyn_cast<memref::CopyOp>(prev))
      return isSameWholeBuffer(copy.getTarget(), buffer) ? prev : nullptr;
    if (!leavesBuffersAlone(prev))
      return nullptr;
  }
  return nullptr;
}

bool isZeroFillOf(Operation *op, Value buffer) {
  auto fill = dyn_cast_or_null<linalg::FillOp>(op);
  FloatAttr value;
  return fill && isSameWholeBuffer(fill.getDpsInits()[0], buffer) &&
         matchPattern(fill.getDpsInputs()[0], m_Constant(&value)) &&
         value.getValue().isPosZero();
}

/// The op that zeroes `op`'s output right before it, which beta = 0 makes
/// redundant: a linalg.fill of 0.0 into it, or a memref.copy into it from a
/// buffer just filled with 0.0 (bufferization's copy of a zero init that
/// CSE shared between two GEMMs). Null when there is none.
Operation *zeroInitBefore(linalg::LinalgOp op) {
  Value out = op.getDpsInits()[0];
  Operation *writer = lastWriterBefore(op, out);
  if (isZeroFillOf(writer, out))
    return writer;
  if (auto copy = dyn_cast_or_null<memref::CopyOp>(writer))
    if (isZeroFillOf(lastWriterBefore(copy, copy.getSource()),
                     copy.getSource()))
      return copy;
  return nullptr;
}

void rewrite(linalg::LinalgOp op, const GemmPlan &plan, func::FuncOp sgemm,
             func::FuncOp sgemv, func::FuncOp maxThreads) {
  // One row of C: y = x·B as a matrix-vector product.
  const bool gemv = plan.m.size == 1;
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto cst = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  Value operands[3] = {op.getDpsInputs()[0], op.getDpsInputs()[1],
                       op.getDpsInits()[0]};
  // The run-time size of a dimension: its constant, or memref.dim of an
  // operand dimension its loop runs over.
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  auto sizeOf = [&](int64_t size, int loop) -> Value {
    if (!ShapedType::isDynamic(size))
      return cst(size);
    for (unsigned o = 0; o < 3; ++o)
      for (auto [r, expr] : llvm::enumerate(maps[o].getResults()))
        if (auto dim = dyn_cast<AffineDimExpr>(expr);
            dim && int(dim.getPosition()) == loop)
          return memref::DimOp::create(b, loc, operands[o], r);
    llvm_unreachable("a dynamic GEMM dimension with no operand dimension");
  };
  Value mSize = sizeOf(plan.m.size, plan.m.loop);
  Value nSize = sizeOf(plan.n.size, plan.n.loop);
  Value kSize = sizeOf(plan.k.size, plan.k.loop);
  SmallVector<Value> addr;
  for (Value v : operands)
    addr.push_back(baseAddress(b, loc, v));

  // Loops over dimensions of C are independent calls; loops over unmerged
  // K dimensions (stride 0 in C) accumulate into the same C and stay
  // sequential inside each call's tile.
  SmallVector<LoopDim> outer, inner;
  for (const LoopDim &loop : plan.loops)
    (loop.stride[2] != 0 ? outer : inner).push_back(loop);
  // With every call writing all of its tile exactly once, a zero fill of C
  // right before is what beta = 0 does.
  // (Not for sgemv: whether it reads y when beta = 0 is not specified the
  // same way by every BLAS, and zeroing one row is cheap.)
  float beta = 1.0f;
  if (inner.empty() && !gemv)
    if (Operation *init = zeroInitBefore(op)) {
      init->erase();
      beta = 0.0f;
    }

  // The calls run on the OpenMP threads, each call single-threaded: the
  // iterations of the C loops, times `tiles` slices of the larger of M and
  // N when there are fewer of those iterations than threads (runtime
  // omp_get_max_threads()). A slice is a multiple of kTileAlign rows or
  // columns; slicing M re-packs B in every slice, slicing N re-packs A,
  // so the larger dimension is the cheaper one to slice.
  // (Dynamic sizes count at their upper bounds.)
  int64_t calls = 1, staticCalls = 1;
  SmallVector<Value> dynamicCalls;
  for (const LoopDim &loop : outer) {
    calls *= loop.ub;
    if (ShapedType::isDynamic(loop.size))
      dynamicCalls.push_back(sizeOf(loop.size, loop.loop));
    else
      staticCalls *= loop.size;
  }
  Value callsValue = cst(staticCalls);
  for (Value v : dynamicCalls)
    callsValue = arith::MulIOp::create(b, loc, callsValue, v);
  bool splitM = plan.m.ub >= plan.n.ub;
  Value extent = splitM ? mSize : nSize;
  int64_t macs = calls * plan.m.ub * plan.n.ub * plan.k.ub;
  for (const LoopDim &loop : inner)
    macs *= loop.ub;
  // Inside a parallel loop (e.g. --mod-cpu-causal-attention's tiles) each
  // thread already runs its own GEMMs: no slices.
  bool parallel = macs >= kMinParallelMacs &&
                  !op->getParentOfType<scf::ParallelOp>();
  Value threads =
      parallel
          ? arith::IndexCastOp::create(
                b, loc, b.getIndexType(),
                func::CallOp::create(b, loc, maxThreads, ValueRange{})
                    .getResult(0))
                .getResult()
          : cst(1);
  // (With dynamic sizes, an empty loop or extent makes no tile: the
  // divisors are kept at least 1.)
  bool dynamic = !dynamicCalls.empty() || !getConstantIntValue(extent);
  Value tiles = arith::CeilDivSIOp::create(
      b, loc, threads,
      dynamic ? arith::MaxSIOp::create(b, loc, callsValue, cst(1)).getResult()
              : cst(calls));
  Value chunk = arith::CeilDivSIOp::create(b, loc, extent, tiles);
  chunk = arith::MulIOp::create(
      b, loc, arith::CeilDivSIOp::create(b, loc, chunk, cst(kTileAlign)),
      cst(kTileAlign));
  chunk = arith::MinSIOp::create(b, loc, chunk, extent);
  if (dynamic)
    chunk = arith::MaxSIOp::create(b, loc, chunk, cst(1));
  tiles = arith::CeilDivSIOp::create(b, loc, extent, chunk);

  SmallVector<Value> lbs, ubs, steps;
  for (const LoopDim &loop : outer) {
    lbs.push_back(cst(0));
    ubs.push_back(sizeOf(loop.size, loop.loop));
    steps.push_back(cst(1));
  }
  lbs.push_back(cst(0));
  ubs.push_back(tiles);
  steps.push_back(cst(1));
  auto par = scf::ParallelOp::create(b, loc, lbs, ubs, steps);
  // Unmarked, --mod-cpu-parallel-loops finds too little work in it and
  // makes it sequential.
  if (parallel)
    par->setAttr(kGemmTilesAttr, b.getUnitAttr());
  b.setInsertionPointToStart(par.getBody());
  auto advance = [&](int o, Value iv, int64_t stride) {
    if (stride == 0)
      return;
    Value bytes = arith::MulIOp::create(b, loc, iv, cst(stride * 4));
    addr[o] = arith::AddIOp::create(b, loc, addr[o], bytes);
  };
  ValueRange ivs = par.getInductionVars();
  for (auto [loop, iv] : llvm::zip(outer, ivs.drop_back()))
    for (int o = 0; o < 3; ++o)
      advance(o, iv, loop.stride[o]);
  Value start = arith::MulIOp::create(b, loc, ivs.back(), chunk);
  Value size = arith::MinSIOp::create(
      b, loc, chunk, arith::SubIOp::create(b, loc, extent, start));
  const int64_t *strides = splitM ? plan.mStride : plan.nStride;
  for (unsigned o : {splitM ? plan.lhs : plan.rhs, 2u})
    advance(o, start, strides[o]);
  for (const LoopDim &loop : inner) {
    auto forOp = scf::ForOp::create(b, loc, cst(0),
                                    sizeOf(loop.size, loop.loop), cst(1));
    b.setInsertionPointToStart(forOp.getBody());
    for (int o = 0; o < 3; ++o)
      advance(o, forOp.getInductionVar(), loop.stride[o]);
  }

  Type ptrTy = LLVM::LLVMPointerType::get(b.getContext());
  auto ptr = [&](unsigned o) -> Value {
    Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), addr[o]);
    return LLVM::IntToPtrOp::create(b, loc, ptrTy, i64);
  };
  auto i32 = [&](int64_t v) -> Value {
    return arith::ConstantIntOp::create(b, loc, b.getI32Type(), v);
  };
  Value size32 = arith::IndexCastOp::create(b, loc, b.getI32Type(), size);
  auto i32of = [&](Value v) -> Value {
    if (std::optional<int64_t> c = getConstantIntValue(v))
      return i32(*c);
    return arith::IndexCastOp::create(b, loc, b.getI32Type(), v);
  };
  auto f32 = [&](float v) -> Value {
    return arith::ConstantFloatOp::create(b, loc, b.getF32Type(), APFloat(v));
  };
  if (gemv) {
    // x: A's one row; B is [k][n] (y = Bᵀx) or stored transposed, [n][k]
    // (y = Bx); y: C's row, unit stride.
    Value n = splitM ? i32of(nSize) : size32;
    Value incx = i32(plan.a.transposed ? plan.a.ld : 1);
    if (plan.b.transposed)
      func::CallOp::create(
          b, loc, sgemv,
          ValueRange{i32(kRowMajor), i32(kNoTrans), n, i32of(kSize),
                     f32(1.0f), ptr(plan.rhs), i32(plan.b.ld), ptr(plan.lhs),
                     incx, f32(beta), ptr(2), i32(1)});
    else
      func::CallOp::create(
          b, loc, sgemv,
          ValueRange{i32(kRowMajor), i32(kTrans), i32of(kSize), n, f32(1.0f),
                     ptr(plan.rhs), i32(plan.b.ld), ptr(plan.lhs), incx,
                     f32(beta), ptr(2), i32(1)});
    op->erase();
    return;
  }
  func::CallOp::create(
      b, loc, sgemm,
      ValueRange{i32(kRowMajor), i32(plan.a.transposed ? kTrans : kNoTrans),
                 i32(plan.b.transposed ? kTrans : kNoTrans),
                 splitM ? size32 : i32of(mSize), splitM ? i32of(nSize) : size32,
                 i32of(kSize), f32(1.0f), ptr(plan.lhs), i32(plan.a.ld),
                 ptr(plan.rhs), i32(plan.b.ld), f32(beta), ptr(2),
                 i32(plan.ldc)});
  op->erase();
}

struct LinalgToBLASPass : mod::impl::LinalgToBLASBase<LinalgToBLASPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::vector<std::pair<linalg::LinalgOp, GemmPlan>> candidates;
    module.walk([&](linalg::LinalgOp op) {
      if (std::optional<GemmPlan> plan = planGemm(op))
        candidates.emplace_back(op, std::move(*plan));
    });
    if (candidates.empty())
      return;
    bool anyGemm = llvm::any_of(
        candidates, [](const auto &c) { return c.second.m.size != 1; });
    bool anyGemv = llvm::any_of(
        candidates, [](const auto &c) { return c.second.m.size == 1; });
    func::FuncOp sgemm = anyGemm ? getOrDeclareSgemm(module) : nullptr;
    func::FuncOp sgemv = anyGemv ? getOrDeclareSgemv(module) : nullptr;
    func::FuncOp maxThreads = getOrDeclareMaxThreads(module);
    for (auto &[op, plan] : candidates)
      rewrite(op, plan, sgemm, sgemv, maxThreads);
  }
};
} // namespace
