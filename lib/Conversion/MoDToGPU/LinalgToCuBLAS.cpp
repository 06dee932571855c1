//===- LinalgToCuBLAS.cpp - --mod-linalg-to-cublas ------------------------===//
//
// GEMMs are the one place where a library beats generated loop kernels by
// orders of magnitude, so f32 matmuls on row-major buffers become calls to
// libmodrt_cuda's cuBLAS wrapper (runtime/include/modrt/cuda/Runtime.h):
//
//   void modrt_cublas_sgemm_strided_batched(
//       int64_t batch, int64_t m, int64_t n, int64_t k,
//       const float *a, int64_t lda, int64_t strideA,
//       const float *b, int64_t ldb, int64_t strideB,
//       float *c, int64_t ldc, int64_t strideC,
//       int32_t flags);                     // C += A * B, row-major
//
// The declaration is marked `mod.stream_ordered`: the wrapper enqueues on
// the caller's stream, which --mod-gpu-stream-order relies on.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::mod {
#define GEN_PASS_DEF_CONVERTLINALGMATMULTOCUBLAS
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
constexpr llvm::StringLiteral kSgemm = "modrt_cublas_sgemm_strided_batched";

/// f32 with a static unit stride in the last dimension: rows are contiguous,
/// which is all cuBLAS needs (any leading dimension and batch stride work).
bool hasContiguousF32Rows(Value v) {
  auto type = dyn_cast<MemRefType>(v.getType());
  if (!type || !type.getElementType().isF32())
    return false;
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(type.getStridesAndOffset(strides, offset)))
    return false;
  return !strides.empty() && strides.back() == 1;
}

struct Operand {
  Value ptr, ld, batchStride;
};

/// The address of element [0, ...] of `v` as !llvm.ptr, its leading
/// dimension and (for rank 3) its batch stride, as i64.
Operand describe(OpBuilder &b, Location loc, Value v) {
  Type i64 = b.getI64Type();
  auto meta = memref::ExtractStridedMetadataOp::create(b, loc, v);
  Value base = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, v);
  Value byteOffset = arith::MulIOp::create(
      b, loc, meta.getOffset(), arith::ConstantIndexOp::create(b, loc, 4));
  Value addr = arith::IndexCastOp::create(
      b, loc, i64, arith::AddIOp::create(b, loc, base, byteOffset));
  Value ptr = LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(b.getContext()), addr);
  auto strides = meta.getStrides();
  unsigned rank = strides.size();
  Value ld = arith::IndexCastOp::create(b, loc, i64, strides[rank - 2]);
  Value batchStride =
      rank == 3 ? Value(arith::IndexCastOp::create(b, loc, i64, strides[0]))
                : Value(arith::ConstantIntOp::create(b, loc, i64, 0));
  return {ptr, ld, batchStride};
}

func::FuncOp getOrDeclareSgemm(ModuleOp module) {
  if (auto fn = module.lookupSymbol<func::FuncOp>(kSgemm))
    return fn;
  MLIRContext *ctx = module.getContext();
  Type i64 = IntegerType::get(ctx, 64);
  Type ptr = LLVM::LLVMPointerType::get(ctx);
  Type i32 = IntegerType::get(ctx, 32);
  auto type = FunctionType::get(
      ctx,
      {i64, i64, i64, i64, ptr, i64, i64, ptr, i64, i64, ptr, i64, i64, i32},
      {});
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  auto fn = func::FuncOp::create(b, module.getLoc(), kSgemm, type);
  fn.setPrivate();
  fn->setAttr("mod.stream_ordered", UnitAttr::get(ctx));
  // C is the only operand cuBLAS writes (--mod-gpu-device-buffers reads
  // this to use device-resident A and B without a copy).
  fn->setAttr("mod.written_operands", DenseI64ArrayAttr::get(ctx, {10}));
  return fn;
}

/// Rewrites `op` (rank-2 matmul or rank-3 batch_matmul) if cuBLAS can run it.
/// Bits of the wrapper's `flags` (MODRT_CUBLAS_* in Runtime.h).
constexpr int32_t kFlagTF32 = 1;

void rewrite(linalg::LinalgOp op, func::FuncOp sgemm, int32_t flags) {
  Value a = op.getDpsInputs()[0], bMat = op.getDpsInputs()[1],
        c = op.getDpsInits()[0];
  if (!op.hasPureBufferSemantics() ||
      !llvm::all_of(ValueRange{a, bMat, c}, hasContiguousF32Rows))
    return;
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto cType = cast<MemRefType>(c.getType());
  auto aType = cast<MemRefType>(a.getType());
  unsigned rank = cType.getRank();
  auto cst = [&](int64_t v) {
    return arith::ConstantIntOp::create(b, loc, b.getI64Type(), v);
  };
  Operand da = describe(b, loc, a), db = describe(b, loc, bMat),
          dc = describe(b, loc, c);
  int64_t batch = rank == 3 ? cType.getDimSize(0) : 1;
  func::CallOp::create(
      b, loc, sgemm,
      ValueRange{cst(batch), cst(cType.getDimSize(rank - 2)),
                 cst(cType.getDimSize(rank - 1)),
                 cst(aType.getDimSize(rank - 1)), da.ptr, da.ld,
                 da.batchStride, db.ptr, db.ld, db.batchStride, dc.ptr, dc.ld,
                 dc.batchStride,
                 arith::ConstantIntOp::create(b, loc, b.getI32Type(), flags)});
  op->erase();
}

struct ConvertLinalgMatmulToCuBLASPass
    : mod::impl::ConvertLinalgMatmulToCuBLASBase<
          ConvertLinalgMatmulToCuBLASPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = module.getContext();
    SmallVector<linalg::LinalgOp> candidates;
    module.walk([&](linalg::LinalgOp op) {
      // Only the plain forms: user-defined (transposed, broadcast) indexing
      // maps and dynamic shapes keep their loop kernels.
      if (!op.hasPureBufferSemantics() || op.hasDynamicShape())
        return;
      if (auto mm = dyn_cast<linalg::MatmulOp>(op.getOperation())) {
        if (mm.getIndexingMapsArray() ==
                linalg::MatmulOp::getDefaultIndexingMaps(ctx) &&
            mm.getCast() == linalg::TypeFn::cast_signed)
          candidates.push_back(op);
      } else if (auto bmm = dyn_cast<linalg::BatchMatmulOp>(op.getOperation())) {
        if (bmm.getIndexingMapsArray() ==
            linalg::BatchMatmulOp::getDefaultIndexingMaps(ctx))
          candidates.push_back(op);
      }
    });
    if (candidates.empty())
      return;
    func::FuncOp sgemm = getOrDeclareSgemm(module);
    for (linalg::LinalgOp op : candidates)
      rewrite(op, sgemm, allowTF32 ? kFlagTF32 : 0);
    if (sgemm.symbolKnownUseEmpty(module))
      sgemm->erase();
  }
};
} // namespace
