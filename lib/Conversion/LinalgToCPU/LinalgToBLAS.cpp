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
// The analysis works on loop dimensions: each has a size and, in each of the
// three operands, a stride (the memref stride of the operand dimension the
// indexing map sends it to, or 0). GEMM roles come from
// linalg::inferContractionDims; which operand dimension has unit stride
// decides the transpose flags.
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

#include <limits>

namespace mlir::mod {
#define GEN_PASS_DEF_LINALGTOBLAS
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
constexpr llvm::StringLiteral kSgemm = "cblas_sgemm";
// CBLAS enum values (cblas.h).
constexpr int32_t kRowMajor = 101, kNoTrans = 111, kTrans = 112;

/// One loop dimension of the contraction: its trip count and its stride in
/// A, B and C (0 where the operand does not depend on it).
struct LoopDim {
  int64_t size = 1;
  int64_t stride[3] = {0, 0, 0};
};

/// A GEMM dimension after merging: size and stride in each operand.
struct GemmDim {
  int64_t size = 1;
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
  int64_t m = 1, n = 1, k = 1;
  OperandLayout a, b;
  int64_t ldc = 1;
  /// Operand order after a possible swap (C = A·B or Cᵀ = Bᵀ·Aᵀ).
  unsigned lhs = 0, rhs = 1;
  SmallVector<LoopDim> loops;
};

/// Static strides of an f32 memref, or failure.
FailureOr<SmallVector<int64_t>> staticF32Strides(Value v) {
  auto type = dyn_cast<MemRefType>(v.getType());
  if (!type || !type.getElementType().isF32() || !type.hasStaticShape())
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
std::optional<OperandLayout> chooseLayout(int64_t rows, int64_t cols,
                                          int64_t rowStride,
                                          int64_t colStride) {
  if ((cols == 1 || colStride == 1) && (rows == 1 || rowStride >= cols))
    return OperandLayout{false, rows == 1 ? std::max<int64_t>(cols, 1)
                                          : rowStride};
  if ((rows == 1 || rowStride == 1) && (cols == 1 || colStride >= rows))
    return OperandLayout{true, cols == 1 ? std::max<int64_t>(rows, 1)
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
    bool mergeable = llvm::all_of(operands, [&](unsigned o) {
      return outer.stride[o] == inner.stride[o] * inner.size;
    });
    if (!mergeable)
      break;
    inner.size *= outer.size;
    dims.pop_back();
  }
  loops.append(dims.begin(), dims.end());
  GemmDim g;
  g.size = inner.size;
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
  for (unsigned d = 0; d < numLoops; ++d) {
    if (ShapedType::isDynamic(sizes[d]))
      return std::nullopt;
    dims[d].size = sizes[d];
  }
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  SmallVector<Value> operands{op.getDpsInputs()[0], op.getDpsInputs()[1],
                              op.getDpsInits()[0]};
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
  if (!(m.size == 1 || m.stride[2] >= n.size))
    return std::nullopt;
  plan.ldc = m.size == 1 ? std::max<int64_t>(n.size, 1) : m.stride[2];
  std::optional<OperandLayout> la =
      chooseLayout(m.size, k.size, m.stride[plan.lhs], k.stride[plan.lhs]);
  std::optional<OperandLayout> lb =
      chooseLayout(k.size, n.size, k.stride[plan.rhs], n.stride[plan.rhs]);
  if (!la || !lb)
    return std::nullopt;
  plan.a = *la;
  plan.b = *lb;
  plan.m = m.size;
  plan.n = n.size;
  plan.k = k.size;
  constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();
  for (int64_t v : {plan.m, plan.n, plan.k, plan.a.ld, plan.b.ld, plan.ldc})
    if (v > kMaxInt)
      return std::nullopt;
  return plan;
}

func::FuncOp getOrDeclareSgemm(ModuleOp module) {
  if (auto fn = module.lookupSymbol<func::FuncOp>(kSgemm))
    return fn;
  MLIRContext *ctx = module.getContext();
  Type i32 = IntegerType::get(ctx, 32), f32 = Float32Type::get(ctx);
  Type ptr = LLVM::LLVMPointerType::get(ctx);
  auto type = FunctionType::get(
      ctx, {i32, i32, i32, i32, i32, i32, f32, ptr, i32, ptr, i32, f32, ptr, i32},
      {});
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  auto fn = func::FuncOp::create(b, module.getLoc(), kSgemm, type);
  fn.setPrivate();
  return fn;
}

/// The byte address of element [0, ...] of `v`, as an index.
Value baseAddress(OpBuilder &b, Location loc, Value v) {
  auto meta = memref::ExtractStridedMetadataOp::create(b, loc, v);
  Value base = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, v);
  Value bytes = arith::MulIOp::create(
      b, loc, meta.getOffset(), arith::ConstantIndexOp::create(b, loc, 4));
  return arith::AddIOp::create(b, loc, base, bytes);
}

void rewrite(linalg::LinalgOp op, const GemmPlan &plan, func::FuncOp sgemm) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  Value operands[3] = {op.getDpsInputs()[0], op.getDpsInputs()[1],
                       op.getDpsInits()[0]};
  SmallVector<Value> addr;
  for (Value v : operands)
    addr.push_back(baseAddress(b, loc, v));
  // Loops over the batch (and unmerged) dimensions, advancing each operand.
  for (const LoopDim &loop : plan.loops) {
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value ub = arith::ConstantIndexOp::create(b, loc, loop.size);
    Value one = arith::ConstantIndexOp::create(b, loc, 1);
    auto forOp = scf::ForOp::create(b, loc, zero, ub, one);
    b.setInsertionPointToStart(forOp.getBody());
    Value iv = forOp.getInductionVar();
    for (int o = 0; o < 3; ++o) {
      if (loop.stride[o] == 0)
        continue;
      Value step = arith::MulIOp::create(
          b, loc, iv, arith::ConstantIndexOp::create(b, loc, loop.stride[o] * 4));
      addr[o] = arith::AddIOp::create(b, loc, addr[o], step);
    }
  }
  Type ptrTy = LLVM::LLVMPointerType::get(b.getContext());
  auto ptr = [&](unsigned o) -> Value {
    Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), addr[o]);
    return LLVM::IntToPtrOp::create(b, loc, ptrTy, i64);
  };
  auto i32 = [&](int64_t v) -> Value {
    return arith::ConstantIntOp::create(b, loc, b.getI32Type(), v);
  };
  Value one = arith::ConstantFloatOp::create(b, loc, b.getF32Type(),
                                             APFloat(1.0f));
  func::CallOp::create(
      b, loc, sgemm,
      ValueRange{i32(kRowMajor), i32(plan.a.transposed ? kTrans : kNoTrans),
                 i32(plan.b.transposed ? kTrans : kNoTrans), i32(plan.m),
                 i32(plan.n), i32(plan.k), one, ptr(plan.lhs), i32(plan.a.ld),
                 ptr(plan.rhs), i32(plan.b.ld), one, ptr(2), i32(plan.ldc)});
  op->erase();
}

struct LinalgToBLASPass : mod::impl::LinalgToBLASBase<LinalgToBLASPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<std::pair<linalg::LinalgOp, GemmPlan>> candidates;
    module.walk([&](linalg::LinalgOp op) {
      if (std::optional<GemmPlan> plan = planGemm(op))
        candidates.emplace_back(op, std::move(*plan));
    });
    if (candidates.empty())
      return;
    func::FuncOp sgemm = getOrDeclareSgemm(module);
    for (auto &[op, plan] : candidates)
      rewrite(op, plan, sgemm);
  }
};
} // namespace
