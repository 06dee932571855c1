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
//       int32_t flags);                     // C += op(A) * op(B), row-major
//
// The declaration is marked `mod.stream_ordered`: the wrapper enqueues on
// the caller's stream, which --mod-gpu-stream-order relies on.
//
// Materialized transposes feeding a GEMM (the adjoints' A^T and B^T, the
// attention heads' [B, S, H, D] -> [B, H, S, D] and K^T) are folded into the
// call: cuBLAS reads the transpose's input in place, through a transpose
// flag, a leading dimension and batch strides, and the transpose kernel and
// its buffer go away.
//
// With precision=bf16 (mixed precision), the GEMMs call
// modrt_cublas_gemm_bf16_strided_batched instead: A and B are bf16 copies
// that a generated conversion kernel (a linalg.generic of arith.truncf,
// lowered like every other elementwise op) makes of the f32 buffer they are
// read from, C stays f32 and accumulation is f32. Everything else (the
// parameters, the gradients, the optimizer state, the elementwise ops) is
// untouched f32: the f32 buffers are the master copy. One bf16 copy of a
// buffer serves every later GEMM of the block reading it as long as nothing
// writes the buffer in between (a weight read by the forward and the
// backward GEMMs, e.g. the tied LM head, is converted once per call).
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallPtrSet.h"

#include <cmath>

namespace mlir::mod {
#define GEN_PASS_DEF_CONVERTLINALGMATMULTOCUBLAS
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
constexpr llvm::StringLiteral kSgemm = "modrt_cublas_sgemm_strided_batched";
constexpr llvm::StringLiteral kBf16Gemm =
    "modrt_cublas_gemm_bf16_strided_batched";

/// Bits of the wrapper's `flags` (MODRT_CUBLAS_* in Runtime.h).
constexpr int32_t kFlagTF32 = 1;
constexpr int32_t kFlagTransposeA = 2;
constexpr int32_t kFlagTransposeB = 4;

/// At most this many calls replace one GEMM whose batch is two strided
/// dimensions that do not merge into one (the attention heads of a batch of
/// sequences read in place: one call per sequence).
constexpr int64_t kMaxOuterCalls = 16;

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

/// The buffer a view is taken from, through any chain of views.
Value rootBuffer(Value v) {
  while (auto view = v.getDefiningOp<ViewLikeOpInterface>()) {
    if (view.getViewSource() == v)
      break;
    v = view.getViewSource();
  }
  return v;
}

/// Whether a write to `written` may change memory that `root` (a root
/// buffer) shares.
bool aliases(Value written, Value root) {
  Value other = rootBuffer(written);
  if (other == root)
    return true;
  // Two arguments of one function may be the same buffer; a fresh
  // allocation is nothing else.
  return isa<BlockArgument>(other) && isa<BlockArgument>(root);
}

/// Whether `op` may write memory that `root` (a root buffer) shares.
bool mayWrite(Operation *op, Value root) {
  // A kernel (the routing kernels are gpu.launch bodies by now): its
  // stores, except those to its own workgroup or private buffers; its
  // barriers write nothing.
  if (auto launch = dyn_cast<gpu::LaunchOp>(op)) {
    Block *body = &launch.getBody().front();
    WalkResult result = launch.getBody().walk([&](Operation *inner) {
      if (isa<gpu::BarrierOp>(inner) ||
          inner->hasTrait<OpTrait::HasRecursiveMemoryEffects>())
        return WalkResult::advance();
      auto iface = dyn_cast<MemoryEffectOpInterface>(inner);
      if (!iface)
        return WalkResult::interrupt();
      SmallVector<MemoryEffects::EffectInstance> effects;
      iface.getEffects(effects);
      for (const MemoryEffects::EffectInstance &e : effects) {
        if (!isa<MemoryEffects::Write>(e.getEffect()))
          continue;
        if (!e.getValue())
          return WalkResult::interrupt();
        Value written = rootBuffer(e.getValue());
        if (auto arg = dyn_cast<BlockArgument>(written);
            arg && arg.getOwner() == body)
          continue;
        if (aliases(written, root))
          return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    return result.wasInterrupted();
  }
  std::optional<SmallVector<MemoryEffects::EffectInstance>> effects =
      getEffectsRecursively(op);
  if (!effects)
    return true;
  for (const MemoryEffects::EffectInstance &e : *effects) {
    if (!isa<MemoryEffects::Write>(e.getEffect()))
      continue;
    if (!e.getValue() || aliases(e.getValue(), root))
      return true;
  }
  return false;
}

/// The rank-2 or rank-3 plain GEMMs this pass turns into calls.
bool isCandidate(linalg::LinalgOp op) {
  MLIRContext *ctx = op->getContext();
  if (!op.hasPureBufferSemantics() || op.hasDynamicShape())
    return false;
  // Only the plain forms: user-defined (transposed, broadcast) indexing
  // maps keep their loop kernels.
  if (auto mm = dyn_cast<linalg::MatmulOp>(op.getOperation()))
    return mm.getIndexingMapsArray() ==
               linalg::MatmulOp::getDefaultIndexingMaps(ctx) &&
           mm.getCast() == linalg::TypeFn::cast_signed;
  if (auto bmm = dyn_cast<linalg::BatchMatmulOp>(op.getOperation()))
    return bmm.getIndexingMapsArray() ==
           linalg::BatchMatmulOp::getDefaultIndexingMaps(ctx);
  return false;
}

//===----------------------------------------------------------------------===//
// Operands read through a materialized transpose
//===----------------------------------------------------------------------===//

/// One strided dimension: `size` elements `stride` elements apart.
struct Dim {
  int64_t size, stride;
};

/// How cuBLAS reads a GEMM operand that a transpose materialized: from the
/// transpose's input `source`, with static strides. The batch is zero, one
/// or two strided dimensions (outer first); two when the heads of several
/// sequences do not merge into one stride.
struct StaticView {
  Value source;
  bool transposed = false;
  int64_t ld = 1;
  SmallVector<Dim, 2> batch;
};

/// Merges the non-unit dimensions `dims` of a row-major index space into as
/// few strided dimensions as the strides allow.
SmallVector<Dim, 2> merge(ArrayRef<Dim> dims) {
  SmallVector<Dim, 2> out;
  for (Dim d : dims) {
    if (d.size == 1)
      continue;
    if (!out.empty() && out.back().stride == d.stride * d.size) {
      out.back() = {out.back().size * d.size, d.stride};
      continue;
    }
    out.push_back(d);
  }
  return out;
}

/// The elements of a buffer in terms of a source buffer: for each dimension,
/// the strided dimensions (outer first) its index is split into. A
/// collapse_shape of a transposed buffer gives dimensions of several pieces.
using Layout = SmallVector<SmallVector<Dim, 2>>;

/// The layout of a memref with static strides, in terms of itself.
std::optional<Layout> staticLayout(Value v) {
  auto type = dyn_cast<MemRefType>(v.getType());
  SmallVector<int64_t> strides;
  int64_t offset;
  if (!type || !type.getElementType().isF32() || !type.hasStaticShape() ||
      failed(type.getStridesAndOffset(strides, offset)) ||
      llvm::any_of(strides, ShapedType::isDynamic))
    return std::nullopt;
  Layout layout;
  for (auto [size, stride] : llvm::zip(type.getShape(), strides))
    layout.push_back({Dim{size, stride}});
  return layout;
}

/// The layout of `operand`, the buffer `transpose` fills or a collapse_shape
/// of it, given the layout `in` of the transpose's input.
std::optional<Layout> layoutThrough(Value operand,
                                    linalg::TransposeOp transpose,
                                    const Layout &in) {
  Value buffer = transpose.getInit();
  auto outType = cast<MemRefType>(buffer.getType());
  SmallVector<ReassociationIndices> groups;
  if (operand == buffer) {
    for (int64_t i = 0; i < outType.getRank(); ++i)
      groups.push_back({i});
  } else if (auto collapse = operand.getDefiningOp<memref::CollapseShapeOp>();
             collapse && collapse.getSrc() == buffer) {
    groups = collapse.getReassociationIndices();
  } else {
    return std::nullopt;
  }
  // Element j of the transpose's output is element i of its input with
  // i[perm[k]] = j[k]: output dimension k is input dimension perm[k].
  ArrayRef<int64_t> perm = transpose.getPermutation();
  Layout out;
  for (const ReassociationIndices &group : groups) {
    SmallVector<Dim, 2> dims;
    for (int64_t k : group)
      llvm::append_range(dims, in[perm[k]]);
    out.push_back(dims);
  }
  return out;
}

/// How cuBLAS reads a rank-`rank` GEMM operand with layout `layout` over
/// `source`, if the rows or the columns have unit stride and the batch is
/// at most two strided dimensions.
std::optional<StaticView> viewOf(const Layout &layout, Value source,
                                 unsigned rank) {
  if (layout.size() != rank)
    return std::nullopt;
  SmallVector<SmallVector<Dim, 2>> merged;
  for (const SmallVector<Dim, 2> &dims : layout)
    merged.push_back(merge(dims));
  StaticView view;
  view.source = source;
  if (rank == 3) {
    if (merged[0].size() > 2)
      return std::nullopt;
    view.batch = merged[0];
  }
  ArrayRef<Dim> rows = merged[rank - 2], cols = merged[rank - 1];
  if (rows.size() > 1 || cols.size() > 1)
    return std::nullopt;
  int64_t numRows = rows.empty() ? 1 : rows[0].size;
  int64_t numCols = cols.empty() ? 1 : cols[0].size;
  if (cols.empty() || cols[0].stride == 1) {
    // Row-major with leading dimension `rows' stride`.
    view.ld = rows.empty() ? numCols : rows[0].stride;
    if (view.ld < numCols)
      return std::nullopt;
  } else if (rows.empty() || rows[0].stride == 1) {
    // The transpose of a row-major numCols x numRows matrix.
    view.transposed = true;
    view.ld = cols[0].stride;
    if (view.ld < numRows)
      return std::nullopt;
  } else {
    return std::nullopt;
  }
  return view;
}

/// Whether `op` overwrites every element of `buffer` (a fresh allocation)
/// without reading it: later reads see none of the old contents.
bool overwrites(Operation *op, Value buffer) {
  auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
  if (!linalgOp || !linalgOp.hasPureBufferSemantics() ||
      linalgOp.getNumLoops() != linalgOp.getNumParallelLoops())
    return false;
  int64_t elements = cast<MemRefType>(buffer.getType()).getNumElements();
  bool writes = false;
  for (OpOperand &operand : op->getOpOperands()) {
    if (rootBuffer(operand.get()) != buffer)
      continue;
    auto type = dyn_cast<MemRefType>(operand.get().getType());
    if (!linalgOp.isDpsInit(&operand) || !type || !type.hasStaticShape() ||
        type.getNumElements() != elements ||
        linalgOp.payloadUsesValueFromOperand(&operand) ||
        !linalgOp.getMatchingIndexingMap(&operand).isPermutation())
      return false;
    // A collapse or expand of the whole buffer is the whole buffer; a
    // subview of the same size is too.
    writes = true;
  }
  return writes;
}

/// Transposes whose results only GEMM candidates read (directly, or through
/// one more transpose of the result): the transposes to remove, the operands
/// of those reads and the views they become.
struct Folding {
  SmallVector<linalg::TransposeOp, 2> transposes; // outermost first
  SmallVector<std::pair<OpOperand *, StaticView>> reads;
  Operation *lastRead = nullptr;
};

/// Plans folding `transpose`, whose input has layout `in` over `source`:
/// every later reader of the values it writes into its buffer (until the
/// buffer is fully overwritten) must be, in the same block, a GEMM candidate
/// reading it as A or B or (at `depth` 0) a transpose that can itself be
/// folded the same way, and nothing may write `source` before the last GEMM
/// reading through them.
std::optional<Folding> planFolding(linalg::TransposeOp transpose, Value source,
                                   const Layout &in, int depth = 0) {
  Value buffer = transpose.getInit();
  if (!transpose.hasPureBufferSemantics() ||
      !buffer.getDefiningOp<memref::AllocOp>())
    return std::nullopt;
  Block *block = transpose->getBlock();
  // Every op of the block touching the buffer through any view.
  llvm::SetVector<Operation *> touching;
  SmallVector<Value> worklist{buffer};
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    for (Operation *user : v.getUsers()) {
      if (auto view = dyn_cast<ViewLikeOpInterface>(user);
          view && view.getViewSource() == v) {
        llvm::append_range(worklist, user->getResults());
        continue;
      }
      Operation *top = block->findAncestorOpInBlock(*user);
      if (!top)
        return std::nullopt;
      touching.insert(top);
    }
  }
  SmallVector<Operation *> order(touching.begin(), touching.end());
  llvm::sort(order, [](Operation *a, Operation *b) {
    return a->isBeforeInBlock(b);
  });
  Folding folding;
  folding.transposes.push_back(transpose);
  auto later = [](Operation *a, Operation *b) {
    return !a || (b && a->isBeforeInBlock(b)) ? b : a;
  };
  for (Operation *op : order) {
    if (op == transpose.getOperation() || op->isBeforeInBlock(transpose))
      continue;
    auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
    if (linalgOp && isCandidate(linalgOp) &&
        rootBuffer(linalgOp.getDpsInits()[0]) != buffer) {
      unsigned rank = cast<MemRefType>(linalgOp.getDpsInits()[0].getType())
                          .getRank();
      for (OpOperand *input : linalgOp.getDpsInputOperands()) {
        if (rootBuffer(input->get()) != buffer)
          continue;
        std::optional<Layout> layout =
            layoutThrough(input->get(), transpose, in);
        std::optional<StaticView> view =
            layout ? viewOf(*layout, source, rank) : std::nullopt;
        if (!view)
          return std::nullopt;
        folding.reads.push_back({input, *view});
      }
      folding.lastRead = later(folding.lastRead, op);
      continue;
    }
    // A transpose of the transposed values (an adjoint reading a saved
    // activation transposed back): fold it too, reading `source` through
    // both permutations.
    if (auto inner = dyn_cast<linalg::TransposeOp>(op);
        inner && depth == 0 && rootBuffer(inner.getInput()) == buffer &&
        rootBuffer(inner.getInit()) != buffer) {
      std::optional<Layout> innerIn =
          layoutThrough(inner.getInput(), transpose, in);
      std::optional<Folding> nested =
          innerIn ? planFolding(inner, source, *innerIn, depth + 1)
                  : std::nullopt;
      if (!nested)
        return std::nullopt;
      llvm::append_range(folding.transposes, nested->transposes);
      llvm::append_range(folding.reads, nested->reads);
      folding.lastRead = later(folding.lastRead, nested->lastRead);
      continue;
    }
    if (overwrites(op, buffer))
      break;
    return std::nullopt;
  }
  Operation *last = folding.lastRead;
  if (!last)
    return std::nullopt;
  // The last reader writes only its C, after reading: C must not be the
  // source (two function arguments are assumed distinct there, as a GEMM's
  // operands are).
  Value sourceRoot = rootBuffer(source);
  for (Operation *op = transpose->getNextNode(); op != last;
       op = op->getNextNode())
    if (!llvm::is_contained(folding.transposes, op) &&
        mayWrite(op, sourceRoot))
      return std::nullopt;
  if (rootBuffer(cast<linalg::LinalgOp>(last).getDpsInits()[0]) == sourceRoot)
    return std::nullopt;
  return folding;
}

//===----------------------------------------------------------------------===//
// Emitting the calls
//===----------------------------------------------------------------------===//

/// A GEMM operand as the wrapper takes it: the address of its element
/// [0, ...] as i64, its leading dimension and its batch dimensions (outer
/// first; at most two), with `transposed` set when cuBLAS must transpose it.
struct Operand {
  Value addr, ptr, ld;
  SmallVector<std::pair<int64_t, Value>, 2> batch; // size, stride (i64)
  bool transposed = false;
  /// Bytes per element of the memory `addr` points to (4 for f32, 2 for
  /// the bf16 copy of a mixed-precision operand).
  int64_t elementBytes = 4;
};

Value i64Const(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIntOp::create(b, loc, b.getI64Type(), v);
}

/// The address of element [0, ...] of `v` as i64; with `copy` (the bf16
/// copy of v's identity-layout root buffer), the address of the same
/// element in the copy.
Value addressOf(OpBuilder &b, Location loc, Value v,
                memref::ExtractStridedMetadataOp meta, Value copy = {}) {
  Value base =
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, copy ? copy : v);
  Value byteOffset = arith::MulIOp::create(
      b, loc, meta.getOffset(),
      arith::ConstantIndexOp::create(b, loc, copy ? 2 : 4));
  return arith::IndexCastOp::create(b, loc, b.getI64Type(),
                                    arith::AddIOp::create(b, loc, base,
                                                          byteOffset));
}

/// An operand read as it is: leading dimension and batch stride from its
/// (possibly dynamic) layout. With `copy`, read from the bf16 copy of its
/// root buffer (same shape, identity layout: same element offsets and
/// strides).
Operand describe(OpBuilder &b, Location loc, Value v, Value copy = {}) {
  Type i64 = b.getI64Type();
  auto meta = memref::ExtractStridedMetadataOp::create(b, loc, v);
  Operand d;
  d.addr = addressOf(b, loc, v, meta, copy);
  d.elementBytes = copy ? 2 : 4;
  d.ptr = LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(b.getContext()), d.addr);
  auto strides = meta.getStrides();
  unsigned rank = strides.size();
  d.ld = arith::IndexCastOp::create(b, loc, i64, strides[rank - 2]);
  if (rank == 3)
    d.batch.push_back({cast<MemRefType>(v.getType()).getDimSize(0),
                       arith::IndexCastOp::create(b, loc, i64, strides[0])});
  return d;
}

/// An operand read through a folded transpose (from the bf16 copy of the
/// source's root buffer with `copy`).
Operand describe(OpBuilder &b, Location loc, const StaticView &view,
                 Value copy = {}) {
  auto meta = memref::ExtractStridedMetadataOp::create(b, loc, view.source);
  Operand d;
  d.addr = addressOf(b, loc, view.source, meta, copy);
  d.elementBytes = copy ? 2 : 4;
  d.ptr = LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(b.getContext()), d.addr);
  d.ld = i64Const(b, loc, view.ld);
  for (Dim dim : view.batch)
    d.batch.push_back({dim.size, i64Const(b, loc, dim.stride)});
  d.transposed = view.transposed;
  return d;
}

/// The sizes of the batch dimensions the calls iterate: outer (one call
/// each) and inner (cuBLAS's batch), if every operand can be read that way.
std::optional<std::pair<int64_t, int64_t>>
batchShape(int64_t batch, ArrayRef<const Operand *> operands) {
  std::optional<std::pair<int64_t, int64_t>> shape;
  for (const Operand *d : operands)
    if (d->batch.size() == 2) {
      std::pair<int64_t, int64_t> s{d->batch[0].first, d->batch[1].first};
      if (shape && *shape != s)
        return std::nullopt;
      shape = s;
    }
  if (!shape)
    return std::pair<int64_t, int64_t>{1, batch};
  if (shape->first > kMaxOuterCalls)
    return std::nullopt;
  return shape;
}

/// The outer and inner batch strides of `d` for a batch of `outer` x
/// `inner` entries.
std::pair<Value, Value> batchStrides(OpBuilder &b, Location loc,
                                     const Operand &d, int64_t outer,
                                     int64_t inner, Value zero) {
  if (d.batch.size() == 2)
    return {d.batch[0].second, d.batch[1].second};
  if (d.batch.empty())
    return {zero, zero};
  Value stride = d.batch[0].second;
  if (outer == 1)
    return {zero, stride};
  return {arith::MulIOp::create(b, loc, stride, i64Const(b, loc, inner)),
          stride};
}

/// Declares the f32 wrapper (`name` = kSgemm) or the bf16 one (kBf16Gemm:
/// same parameters, A and B point to bf16).
func::FuncOp getOrDeclareGemm(ModuleOp module, StringRef name) {
  if (auto fn = module.lookupSymbol<func::FuncOp>(name))
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
  auto fn = func::FuncOp::create(b, module.getLoc(), name, type);
  fn.setPrivate();
  fn->setAttr("mod.stream_ordered", UnitAttr::get(ctx));
  // C is the only operand cuBLAS writes (--mod-gpu-device-buffers reads
  // this to use device-resident A and B without a copy).
  fn->setAttr("mod.written_operands", DenseI64ArrayAttr::get(ctx, {10}));
  return fn;
}

/// Whether `op`'s operands, with `views` for those read through folded
/// transposes, can be given to cuBLAS.
bool canCall(linalg::LinalgOp op,
             const DenseMap<OpOperand *, StaticView> &views) {
  Value c = op.getDpsInits()[0];
  if (!hasContiguousF32Rows(c))
    return false;
  SmallVector<int64_t> outerSizes;
  for (OpOperand *input : op.getDpsInputOperands()) {
    auto it = views.find(input);
    if (it == views.end()) {
      if (!hasContiguousF32Rows(input->get()))
        return false;
      continue;
    }
    if (it->second.batch.size() == 2)
      outerSizes.push_back(it->second.batch[0].size);
  }
  if (outerSizes.empty())
    return true;
  return llvm::all_equal(outerSizes) && outerSizes[0] <= kMaxOuterCalls;
}

/// Erases `op` and then whatever views and allocations only it used.
void eraseWithDeadViews(Operation *op) {
  SmallVector<Value> operands(op->getOperands());
  op->erase();
  while (!operands.empty()) {
    Value v = operands.pop_back_val();
    Operation *def = v.getDefiningOp();
    if (!def || !v.use_empty() ||
        !isa<ViewLikeOpInterface, memref::AllocOp>(def) ||
        !llvm::all_of(def->getResults(),
                      [](Value r) { return r.use_empty(); }))
      continue;
    llvm::append_range(operands, def->getOperands());
    def->erase();
  }
}

//===----------------------------------------------------------------------===//
// Mixed precision: bf16 copies of the operands
//===----------------------------------------------------------------------===//

/// The bf16 copies made so far, for reuse by later GEMMs.
class Bf16Copies {
public:
  /// Whether `root` (a GEMM operand's root buffer) can be copied: static
  /// shape, identity layout, f32 (then every view of it has the same element
  /// offsets and strides in the copy).
  static bool canCopy(Value root) {
    auto type = dyn_cast<MemRefType>(root.getType());
    return type && type.hasStaticShape() && type.getLayout().isIdentity() &&
           type.getElementType().isF32();
  }

  /// The bf16 copy of `root` valid at `gemm`: a previous one when it is in
  /// the same block and nothing between its conversion and `gemm` may write
  /// `root`, else a new one converted at `b`'s insertion point (just before
  /// the call).
  Value get(OpBuilder &b, Location loc, Value root, Operation *gemm) {
    auto it = copies.find(root);
    if (it != copies.end() && isValid(it->second, root, gemm))
      return it->second.buffer;
    auto type = cast<MemRefType>(root.getType());
    auto bf16Type =
        MemRefType::get(type.getShape(), BFloat16Type::get(b.getContext()));
    Value buffer = memref::AllocOp::create(b, loc, bf16Type);
    AffineMap id = b.getMultiDimIdentityMap(type.getRank());
    auto convert = linalg::GenericOp::create(
        b, loc, TypeRange{}, ValueRange{root}, ValueRange{buffer},
        ArrayRef<AffineMap>{id, id},
        SmallVector<utils::IteratorType>(type.getRank(),
                                         utils::IteratorType::parallel),
        [&](OpBuilder &nb, Location nloc, ValueRange args) {
          Value narrow = arith::TruncFOp::create(
              nb, nloc, BFloat16Type::get(nb.getContext()), args[0]);
          linalg::YieldOp::create(nb, nloc, narrow);
        });
    copies[root] = {buffer, convert};
    return buffer;
  }

  /// Records that `call` writes (only) the buffer `cRoot`.
  void recordCall(Operation *call, Value cRoot) { callWrites[call] = cRoot; }

private:
  struct Copy {
    Value buffer;
    Operation *convert;
  };

  bool isValid(const Copy &copy, Value root, Operation *gemm) const {
    if (copy.convert->getBlock() != gemm->getBlock() ||
        !copy.convert->isBeforeInBlock(gemm))
      return false;
    for (Operation *op = copy.convert->getNextNode(); op && op != gemm;
         op = op->getNextNode()) {
      auto call = callWrites.find(op);
      if (call != callWrites.end() ? aliases(call->second, root)
                                   : mayWrite(op, root))
        return false;
    }
    return true;
  }

  llvm::DenseMap<Value, Copy> copies;
  /// The GEMM calls emitted so far and the root of the C each writes (a
  /// func.call has no memory effects to ask).
  llvm::DenseMap<Operation *, Value> callWrites;
};

/// Replaces `op` (a candidate that canCall) with calls to the wrapper
/// `gemm`; with `bf16` (non-null), A and B are read from bf16 copies.
void rewrite(linalg::LinalgOp op, func::FuncOp gemm, int32_t baseFlags,
             const DenseMap<OpOperand *, StaticView> &views,
             Bf16Copies *bf16) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  Value c = op.getDpsInits()[0];
  auto cType = cast<MemRefType>(c.getType());
  auto aType = cast<MemRefType>(op.getDpsInputs()[0].getType());
  unsigned rank = cType.getRank();
  SmallVector<Operand, 3> ds;
  for (OpOperand *input : op.getDpsInputOperands()) {
    auto it = views.find(input);
    Value source = it == views.end() ? input->get() : it->second.source;
    Value copy =
        bf16 ? bf16->get(b, loc, rootBuffer(source), op) : Value();
    ds.push_back(it == views.end() ? describe(b, loc, input->get(), copy)
                                   : describe(b, loc, it->second, copy));
  }
  ds.push_back(describe(b, loc, c));
  int64_t batch = rank == 3 ? cType.getDimSize(0) : 1;
  auto shape = batchShape(batch, {&ds[0], &ds[1], &ds[2]});
  assert(shape && "checked by canCall");
  auto [outer, inner] = *shape;
  int32_t flags = baseFlags | (ds[0].transposed ? kFlagTransposeA : 0) |
                  (ds[1].transposed ? kFlagTransposeB : 0);
  SmallVector<std::pair<Value, Value>, 3> strides;
  Value zero = i64Const(b, loc, 0);
  for (const Operand &d : ds)
    strides.push_back(batchStrides(b, loc, d, outer, inner, zero));
  Type ptrType = LLVM::LLVMPointerType::get(b.getContext());
  Value m = i64Const(b, loc, cType.getDimSize(rank - 2));
  Value n = i64Const(b, loc, cType.getDimSize(rank - 1));
  Value k = i64Const(b, loc, aType.getDimSize(rank - 1));
  Value innerBatch = i64Const(b, loc, inner);
  Value flagsValue = arith::ConstantIntOp::create(b, loc, b.getI32Type(), flags);
  for (int64_t i = 0; i < outer; ++i) {
    SmallVector<Value, 3> ptrs;
    for (auto [d, s] : llvm::zip(ds, strides)) {
      if (i == 0) {
        ptrs.push_back(d.ptr);
        continue;
      }
      Value bytes = arith::MulIOp::create(
          b, loc, s.first, i64Const(b, loc, d.elementBytes * i));
      Value addr = arith::AddIOp::create(b, loc, d.addr, bytes);
      ptrs.push_back(LLVM::IntToPtrOp::create(b, loc, ptrType, addr));
    }
    auto call = func::CallOp::create(
        b, loc, gemm,
        ValueRange{innerBatch, m, n, k, ptrs[0], ds[0].ld, strides[0].second,
                   ptrs[1], ds[1].ld, strides[1].second, ptrs[2], ds[2].ld,
                   strides[2].second, flagsValue});
    if (bf16)
      bf16->recordCall(call, rootBuffer(c));
  }
  eraseWithDeadViews(op);
}

//===----------------------------------------------------------------------===//
// cuBLASLt epilogues: the bias add and GELU after a GEMM
//===----------------------------------------------------------------------===//

constexpr llvm::StringLiteral kLtMatmul = "modrt_cublaslt_matmul";
/// MODRT_CUBLAS_GELU: modrt_cublaslt_matmul applies the tanh GELU.
constexpr int32_t kFlagGELU = 8;

/// A GEMM `C = A B` (C zero or accumulated into) followed by `D = C +
/// bias` broadcast over the rows, and optionally `E = gelu_tanh(D)`: one
/// cuBLASLt matmul writes the last of them, and the elementwise ops go.
struct Epilogue {
  linalg::GenericOp biasAdd;
  Value bias;                       // 1-D, n floats, unit stride
  linalg::GenericOp gelu;           // null when there is no GELU to fuse
  Value out;                        // what the last fused op writes
  int64_t ldOut = 0;                // its row stride as an m x n matrix
  Operation *zeroInit = nullptr;    // the fill/copy making C zero, if any
  bool zeroInitDead = false;        // nothing else touches C before the GEMM
};

std::optional<double> floatConstant(Value v) {
  FloatAttr attr;
  if (matchPattern(v, m_Constant(&attr)))
    return attr.getValueAsDouble();
  return std::nullopt;
}

bool isConstant(Value v, double expected) {
  std::optional<double> c = floatConstant(v);
  return c && std::abs(*c - expected) <= 1e-6 * std::abs(expected);
}

/// The factors of a product tree of arith.mulf (a leaf `x^3` written as
/// math.powf/math.fpowi counts as three factors `x`).
void factors(Value v, Value x, SmallVectorImpl<Value> &out) {
  if (auto mul = v.getDefiningOp<arith::MulFOp>()) {
    factors(mul.getLhs(), x, out);
    factors(mul.getRhs(), x, out);
    return;
  }
  if (auto pow = v.getDefiningOp<math::PowFOp>();
      pow && pow.getLhs() == x && isConstant(pow.getRhs(), 3.0)) {
    out.append(3, x);
    return;
  }
  if (auto pow = v.getDefiningOp<math::FPowIOp>(); pow && pow.getLhs() == x) {
    IntegerAttr e;
    if (matchPattern(pow.getRhs(), m_Constant(&e)) && e.getInt() == 3) {
      out.append(3, x);
      return;
    }
  }
  out.push_back(v);
}

/// Whether `terms` are `x` exactly `numX` times, one constant equal to `c`
/// and, with `rest`, one more value, stored into `*rest`.
bool isProduct(ArrayRef<Value> terms, Value x, unsigned numX, double c,
               Value *rest = nullptr) {
  unsigned xs = 0, consts = 0, others = 0;
  for (Value t : terms) {
    if (t == x) {
      ++xs;
    } else if (isConstant(t, c) && consts == 0) {
      ++consts;
    } else {
      if (!rest || others++)
        return false;
      *rest = t;
    }
  }
  return xs == numX && consts == 1 && (!rest || others == 1);
}

/// The operands of an arith.addf, one of which must satisfy `isFirst`:
/// returns the other one (or null).
template <typename Pred>
Value otherAddend(Value sum, Pred isFirst) {
  auto add = sum.getDefiningOp<arith::AddFOp>();
  if (!add)
    return {};
  if (isFirst(add.getLhs()))
    return add.getRhs();
  if (isFirst(add.getRhs()))
    return add.getLhs();
  return {};
}

/// Whether the body of `op` (one input x, one output) computes the tanh
/// approximation of GELU, which is what cuBLASLt's GELU epilogue computes:
///   0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
/// in any order of the factors and addends, with the inner term also
/// accepted as x (1 + 0.044715 x^2). The exact GELU (erf) and any other
/// form is refused.
bool isTanhGELU(linalg::GenericOp op) {
  Block &body = op.getRegion().front();
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  if (yield.getNumOperands() != 1)
    return false;
  Value x = body.getArgument(0);
  const double kSqrt2OverPi = std::sqrt(2.0 / M_PI), kCubic = 0.044715;
  SmallVector<Value> outer;
  factors(yield.getOperand(0), x, outer);
  Value onePlusTanh;
  if (!isProduct(outer, x, 1, 0.5, &onePlusTanh))
    return false;
  Value tanhValue = otherAddend(onePlusTanh,
                                [](Value v) { return isConstant(v, 1.0); });
  auto tanh = tanhValue ? tanhValue.getDefiningOp<math::TanhOp>() : nullptr;
  if (!tanh)
    return false;
  SmallVector<Value> arg;
  factors(tanh.getOperand(), x, arg);
  Value inner;
  // sqrt(2/pi) * (x + 0.044715 x^3)
  if (isProduct(arg, x, 0, kSqrt2OverPi, &inner)) {
    Value cube = otherAddend(inner, [&](Value v) { return v == x; });
    SmallVector<Value> cubic;
    if (!cube)
      return false;
    factors(cube, x, cubic);
    return isProduct(cubic, x, 3, kCubic);
  }
  // sqrt(2/pi) * x * (1 + 0.044715 x^2)
  if (isProduct(arg, x, 1, kSqrt2OverPi, &inner)) {
    Value square =
        otherAddend(inner, [](Value v) { return isConstant(v, 1.0); });
    SmallVector<Value> quadratic;
    if (!square)
      return false;
    factors(square, x, quadratic);
    return isProduct(quadratic, x, 2, kCubic);
  }
  return false;
}

/// A parallel, single-result elementwise linalg.generic on buffers whose
/// init (all identity maps but `allowed`) is not read by the body.
bool isElementwise(linalg::GenericOp op, unsigned numInputs) {
  return op && op.hasPureBufferSemantics() &&
         op.getNumDpsInputs() == numInputs && op.getNumDpsInits() == 1 &&
         op.getNumLoops() == op.getNumParallelLoops() &&
         !op.payloadUsesValueFromOperand(op.getDpsInitOperand(0)) &&
         op.getMatchingIndexingMap(op.getDpsInitOperand(0)).isIdentity();
}

/// The row stride of `v` (f32, static shape and strides, rank >= 2) read as
/// an m x n matrix whose rows are its leading dimensions collapsed, if its
/// rows are contiguous and the leading dimensions collapse.
std::optional<int64_t> matrixRowStride(Value v, int64_t m, int64_t n) {
  auto type = dyn_cast<MemRefType>(v.getType());
  SmallVector<int64_t> strides;
  int64_t offset;
  if (!type || !type.getElementType().isF32() || !type.hasStaticShape() ||
      type.getRank() < 2 || failed(type.getStridesAndOffset(strides, offset)) ||
      llvm::any_of(strides, ShapedType::isDynamic))
    return std::nullopt;
  ArrayRef<int64_t> shape = type.getShape();
  unsigned rank = shape.size();
  if (shape.back() != n || strides.back() != 1 ||
      type.getNumElements() != m * n)
    return std::nullopt;
  for (unsigned i = 0; i + 2 < rank; ++i)
    if (strides[i] != strides[i + 1] * shape[i + 1])
      return std::nullopt;
  if (strides[rank - 2] < n)
    return std::nullopt;
  return strides[rank - 2];
}

/// Every op of `block` touching `buffer` through any view, in block order;
/// nullopt when a use is outside the block.
std::optional<SmallVector<Operation *>> touchingOps(Value buffer,
                                                    Block *block) {
  llvm::SetVector<Operation *> touching;
  SmallVector<Value> worklist{buffer};
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    for (Operation *user : v.getUsers()) {
      if (auto view = dyn_cast<ViewLikeOpInterface>(user);
          view && view.getViewSource() == v) {
        llvm::append_range(worklist, user->getResults());
        continue;
      }
      Operation *top = block->findAncestorOpInBlock(*user);
      if (!top)
        return std::nullopt;
      touching.insert(top);
    }
  }
  SmallVector<Operation *> order(touching.begin(), touching.end());
  llvm::sort(order, [](Operation *a, Operation *b) {
    return a->isBeforeInBlock(b);
  });
  return order;
}

/// Whether `op` may read or write the contents of `root` (a root buffer
/// that it uses): false only for a linalg op that takes views of `root` as
/// inputs its body never reads (the adjoint of an add takes the add's
/// operands but not their values).
bool usesContents(Operation *op, Value root) {
  auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
  if (!linalgOp || !linalgOp.hasPureBufferSemantics())
    return true;
  for (OpOperand &operand : op->getOpOperands()) {
    if (!isa<MemRefType>(operand.get().getType()) ||
        rootBuffer(operand.get()) != root)
      continue;
    if (!linalgOp.isDpsInput(&operand) ||
        linalgOp.payloadUsesValueFromOperand(&operand))
      return true;
  }
  return false;
}

/// Whether `v` is a linalg.fill of +0.0 into the whole of `buffer`.
bool fillsZero(Operation *op, Value buffer) {
  auto fill = dyn_cast_or_null<linalg::FillOp>(op);
  if (!fill || !fill.hasPureBufferSemantics() ||
      fill.getDpsInits()[0] != buffer)
    return false;
  std::optional<double> c = floatConstant(fill.getDpsInputs()[0]);
  return c && *c == 0.0 && !std::signbit(*c);
}

/// The op right before `before` in its block that may write `buffer` (a
/// root buffer), or null when there is none or one cannot tell.
Operation *lastWriterBefore(Operation *before, Value buffer) {
  for (Operation *op = before->getPrevNode(); op; op = op->getPrevNode())
    if (mayWrite(op, buffer))
      return op;
  return nullptr;
}

/// The op that makes the fresh buffer `c` all zeros right before `gemm`: a
/// zero fill of it, or a copy into it of a buffer a zero fill wrote last.
Operation *zeroInitOf(Value c, Operation *gemm) {
  Operation *writer = lastWriterBefore(gemm, c);
  if (fillsZero(writer, c))
    return writer;
  auto copy = dyn_cast_or_null<memref::CopyOp>(writer);
  if (!copy || copy.getTarget() != c ||
      copy.getSource().getType() != c.getType() ||
      rootBuffer(copy.getSource()) != copy.getSource() ||
      isa<BlockArgument>(copy.getSource()))
    return nullptr;
  return fillsZero(lastWriterBefore(copy, copy.getSource()),
                   copy.getSource())
             ? copy
             : nullptr;
}

/// Whether `op` (between the GEMM and the last fused op) may read or write
/// memory that `root` shares, or write memory `readRoot` shares; GEMM
/// operands read through folded transposes count as reads of their source.
bool interferes(Operation *op, ArrayRef<Value> roots, Value readRoot,
                const DenseMap<OpOperand *, StaticView> &views) {
  std::optional<SmallVector<MemoryEffects::EffectInstance>> effects =
      getEffectsRecursively(op);
  if (!effects)
    return true;
  for (const MemoryEffects::EffectInstance &e : *effects) {
    // Allocating a buffer (the output's own allocation, moved to the GEMM)
    // touches no contents.
    if (!isa<MemoryEffects::Read, MemoryEffects::Write>(e.getEffect()))
      continue;
    if (!e.getValue())
      return true;
    for (Value root : roots)
      if (aliases(e.getValue(), root))
        return true;
    if (isa<MemoryEffects::Write>(e.getEffect()) &&
        aliases(e.getValue(), readRoot))
      return true;
  }
  for (OpOperand &operand : op->getOpOperands())
    if (auto it = views.find(&operand); it != views.end())
      for (Value root : roots)
        if (aliases(it->second.source, root))
          return true;
  return false;
}

/// Plans fusing the bias add (and GELU) after `op`, a rank-2 GEMM that
/// canCall: see the pass description for the conditions.
std::optional<Epilogue>
planEpilogue(linalg::LinalgOp op,
             const DenseMap<OpOperand *, StaticView> &views) {
  if (!isa<linalg::MatmulOp>(op.getOperation()))
    return std::nullopt;
  Value c = op.getDpsInits()[0];
  auto cType = cast<MemRefType>(c.getType());
  Block *block = op->getBlock();
  if (!c.getDefiningOp<memref::AllocOp>() || !cType.getLayout().isIdentity())
    return std::nullopt;
  int64_t m = cType.getDimSize(0), n = cType.getDimSize(1);

  // C: written before the GEMM, read after it only by the bias add (which
  // may write its result in place into C: later ops then read the result).
  std::optional<SmallVector<Operation *>> cUsers = touchingOps(c, block);
  if (!cUsers)
    return std::nullopt;
  Epilogue epi;
  for (Operation *user : *cUsers) {
    if (user == op.getOperation() || user->isBeforeInBlock(op))
      continue;
    if (epi.biasAdd && !usesContents(user, c))
      continue;
    if (!epi.biasAdd) {
      epi.biasAdd = dyn_cast<linalg::GenericOp>(user);
      if (!epi.biasAdd)
        return std::nullopt;
      continue;
    }
    if (epi.biasAdd.getNumDpsInits() != 1 ||
        rootBuffer(epi.biasAdd.getDpsInits()[0]) != c)
      return std::nullopt;
  }
  linalg::GenericOp add = epi.biasAdd;
  if (!isElementwise(add, 2))
    return std::nullopt;
  unsigned rank = add.getNumLoops();
  // D[i..., j] = C[i..., j] + bias[j], C read as it is or expanded with its
  // columns kept (the [B*S, N] -> [B, S, N] of a linear layer).
  OpOperand *cInput = nullptr, *biasInput = nullptr;
  for (OpOperand *input : add.getDpsInputOperands()) {
    Value v = input->get();
    AffineMap map = add.getMatchingIndexingMap(input);
    auto expand = v.getDefiningOp<memref::ExpandShapeOp>();
    bool isC = v == c || (expand && expand.getSrc() == c &&
                          expand.getReassociationIndices().back().size() == 1);
    if (isC && map.isIdentity() && !cInput) {
      cInput = input;
      continue;
    }
    auto type = dyn_cast<MemRefType>(v.getType());
    SmallVector<int64_t> strides;
    int64_t offset;
    if (type && type.getRank() == 1 && type.getElementType().isF32() &&
        type.getDimSize(0) == n &&
        succeeded(type.getStridesAndOffset(strides, offset)) &&
        strides[0] == 1 &&
        map == AffineMap::get(rank, 0, getAffineDimExpr(rank - 1,
                                                        op->getContext())))
      biasInput = input;
  }
  if (!cInput || !biasInput)
    return std::nullopt;
  Block &addBody = add.getRegion().front();
  auto yield = cast<linalg::YieldOp>(addBody.getTerminator());
  auto sum = yield.getOperand(0).getDefiningOp<arith::AddFOp>();
  Value cArg = addBody.getArgument(cInput->getOperandNumber());
  Value biasArg = addBody.getArgument(biasInput->getOperandNumber());
  if (!sum || sum->getBlock() != &addBody || &addBody.front() != sum ||
      !((sum.getLhs() == cArg && sum.getRhs() == biasArg) ||
        (sum.getLhs() == biasArg && sum.getRhs() == cArg)))
    return std::nullopt;
  epi.bias = biasInput->get();
  epi.out = add.getDpsInits()[0];

  // GELU: the first op touching D after the add, when it reads all of D
  // as it was written and D's values before the GELU are not read again.
  Value d = epi.out;
  std::optional<SmallVector<Operation *>> dUsers =
      touchingOps(rootBuffer(d), block);
  if (!dUsers)
    return std::nullopt;
  Operation *next = nullptr;
  for (Operation *user : *dUsers)
    if (add->isBeforeInBlock(user)) {
      next = user;
      break;
    }
  auto gelu = dyn_cast_or_null<linalg::GenericOp>(next);
  if (gelu && isElementwise(gelu, 1) &&
      gelu.getDpsInputs()[0] == d &&
      gelu.getMatchingIndexingMap(gelu.getDpsInputOperand(0)).isIdentity() &&
      isTanhGELU(gelu)) {
    Value e = gelu.getDpsInits()[0];
    Value dRoot = rootBuffer(d), eRoot = rootBuffer(e);
    bool dDeadAfter =
        eRoot == dRoot ||
        (d == dRoot && d.getDefiningOp<memref::AllocOp>() &&
         llvm::none_of(*dUsers, [&](Operation *user) {
           return gelu->isBeforeInBlock(user) && usesContents(user, dRoot);
         }));
    if (dDeadAfter && matrixRowStride(e, m, n)) {
      epi.gelu = gelu;
      epi.out = e;
    }
  }
  std::optional<int64_t> ld = matrixRowStride(epi.out, m, n);
  if (!ld)
    return std::nullopt;
  epi.ldOut = *ld;

  // The output must exist at the GEMM (or be an allocation that can move
  // there) and must not be read by it.
  Value out = epi.out, outRoot = rootBuffer(out);
  if (Operation *def = out.getDefiningOp()) {
    bool before = def->getBlock() == block && def->isBeforeInBlock(op);
    bool movable = isa<memref::AllocOp>(def) && def->getNumOperands() == 0 &&
                   def->getBlock() == block;
    if (!before && !movable)
      return std::nullopt;
  }
  SmallVector<Value> readRoots{rootBuffer(epi.bias)};
  for (OpOperand *input : op.getDpsInputOperands()) {
    auto it = views.find(input);
    readRoots.push_back(
        rootBuffer(it == views.end() ? input->get() : it->second.source));
  }
  if (llvm::any_of(readRoots, [&](Value r) { return aliases(outRoot, r); }))
    return std::nullopt;
  // In place into C (the bias add writing the buffer it reads): cuBLASLt
  // reads C and writes D element by element, so D may be C itself.
  if (outRoot == c && epi.ldOut != n)
    return std::nullopt;

  // Nothing between the GEMM and the last fused op may touch the output
  // (written earlier now) or write the bias (read earlier now).
  Operation *last = epi.gelu ? epi.gelu.getOperation() : add.getOperation();
  SmallVector<Value> roots{outRoot};
  if (epi.gelu)
    roots.push_back(rootBuffer(add.getDpsInits()[0]));
  for (Operation *between = op->getNextNode(); between != last;
       between = between->getNextNode())
    if (between != add.getOperation() &&
        interferes(between, roots, rootBuffer(epi.bias), views))
      return std::nullopt;

  epi.zeroInit = zeroInitOf(c, op);
  epi.zeroInitDead =
      epi.zeroInit && llvm::all_of(*cUsers, [&](Operation *user) {
        return user == epi.zeroInit || !user->isBeforeInBlock(op);
      });
  return epi;
}

func::FuncOp getOrDeclareLtMatmul(ModuleOp module) {
  if (auto fn = module.lookupSymbol<func::FuncOp>(kLtMatmul))
    return fn;
  MLIRContext *ctx = module.getContext();
  Type i64 = IntegerType::get(ctx, 64);
  Type ptr = LLVM::LLVMPointerType::get(ctx);
  Type i32 = IntegerType::get(ctx, 32);
  auto type = FunctionType::get(
      ctx, {i64, i64, i64, ptr, i64, ptr, i64, ptr, i64, ptr, i64, ptr, i32},
      {});
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  auto fn = func::FuncOp::create(b, module.getLoc(), kLtMatmul, type);
  fn.setPrivate();
  fn->setAttr("mod.stream_ordered", UnitAttr::get(ctx));
  // D is the only operand cuBLASLt writes.
  fn->setAttr("mod.written_operands", DenseI64ArrayAttr::get(ctx, {9}));
  return fn;
}

/// Erases `buffer` (a fresh allocation) and the ops writing it when
/// nothing reads it: only zero fills and copies into it are left.
void eraseIfWriteOnly(Value buffer) {
  auto alloc = buffer.getDefiningOp<memref::AllocOp>();
  if (!alloc)
    return;
  SmallVector<Operation *> writers;
  SmallVector<Value> sources;
  for (Operation *user : buffer.getUsers()) {
    if (fillsZero(user, buffer)) {
      writers.push_back(user);
      continue;
    }
    auto copy = dyn_cast<memref::CopyOp>(user);
    if (!copy || copy.getTarget() != buffer)
      return;
    writers.push_back(user);
    sources.push_back(copy.getSource());
  }
  for (Operation *writer : writers)
    writer->erase();
  alloc->erase();
  for (Value source : sources)
    eraseIfWriteOnly(source);
}

/// Replaces `op` and its fused bias add (and GELU) with one cuBLASLt call.
void rewriteFused(linalg::LinalgOp op, const Epilogue &epi,
                  func::FuncOp ltMatmul, int32_t baseFlags,
                  const DenseMap<OpOperand *, StaticView> &views) {
  if (Operation *def = epi.out.getDefiningOp();
      def && op->isBeforeInBlock(def))
    def->moveBefore(op);
  OpBuilder b(op);
  Location loc = op.getLoc();
  Type ptrType = LLVM::LLVMPointerType::get(b.getContext());
  Value c = op.getDpsInits()[0];
  auto cType = cast<MemRefType>(c.getType());
  SmallVector<Operand, 2> ds;
  for (OpOperand *input : op.getDpsInputOperands()) {
    auto it = views.find(input);
    ds.push_back(it == views.end() ? describe(b, loc, input->get())
                                   : describe(b, loc, it->second));
  }
  Value cPtr, ldc;
  if (epi.zeroInit) {
    cPtr = LLVM::ZeroOp::create(b, loc, ptrType);
    ldc = i64Const(b, loc, 0);
  } else {
    Operand cd = describe(b, loc, c);
    cPtr = cd.ptr;
    ldc = cd.ld;
  }
  auto pointer = [&](Value v) {
    auto meta = memref::ExtractStridedMetadataOp::create(b, loc, v);
    return LLVM::IntToPtrOp::create(b, loc, ptrType,
                                    addressOf(b, loc, v, meta))
        .getResult();
  };
  Value dPtr = pointer(epi.out);
  Value biasPtr = pointer(epi.bias);
  int32_t flags = baseFlags | (ds[0].transposed ? kFlagTransposeA : 0) |
                  (ds[1].transposed ? kFlagTransposeB : 0) |
                  (epi.gelu ? kFlagGELU : 0);
  Value m = i64Const(b, loc, cType.getDimSize(0));
  Value n = i64Const(b, loc, cType.getDimSize(1));
  Value k = i64Const(b, loc,
                     cast<MemRefType>(op.getDpsInputs()[0].getType())
                         .getDimSize(1));
  func::CallOp::create(
      b, loc, ltMatmul,
      ValueRange{m, n, k, ds[0].ptr, ds[0].ld, ds[1].ptr, ds[1].ld, cPtr, ldc,
                 dPtr, i64Const(b, loc, epi.ldOut), biasPtr,
                 arith::ConstantIntOp::create(b, loc, b.getI32Type(), flags)});
  if (epi.gelu)
    eraseWithDeadViews(epi.gelu);
  eraseWithDeadViews(epi.biasAdd);
  eraseWithDeadViews(op);
  // The zeroing of C is dead (cuBLASLt does not read C), and so is C unless
  // it is the output.
  if (epi.zeroInitDead) {
    auto copy = dyn_cast<memref::CopyOp>(epi.zeroInit);
    Value source = copy ? copy.getSource() : Value();
    epi.zeroInit->erase();
    if (source)
      eraseIfWriteOnly(source);
    eraseIfWriteOnly(c);
  }
}

struct ConvertLinalgMatmulToCuBLASPass
    : mod::impl::ConvertLinalgMatmulToCuBLASBase<
          ConvertLinalgMatmulToCuBLASPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (precision != "f32" && precision != "bf16") {
      module.emitError() << "--mod-linalg-to-cublas: unknown precision '"
                         << precision << "' (supported: f32, bf16)";
      return signalPassFailure();
    }
    bool useBf16 = precision == "bf16";
    if (useBf16 && allowTF32) {
      module.emitError() << "--mod-linalg-to-cublas: allow-tf32 applies to "
                            "f32 GEMMs; it cannot be combined with "
                            "precision=bf16";
      return signalPassFailure();
    }
    SmallVector<linalg::LinalgOp> candidates;
    SmallVector<linalg::TransposeOp> transposes;
    module.walk([&](Operation *op) {
      if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
          linalgOp && isCandidate(linalgOp))
        candidates.push_back(linalgOp);
      if (auto transpose = dyn_cast<linalg::TransposeOp>(op))
        transposes.push_back(transpose);
    });
    if (candidates.empty())
      return;

    // Planned on the untouched IR: a transpose is folded only if every GEMM
    // reading its result can take the view instead; dropping one that
    // cannot may make another GEMM unable to call, so iterate.
    SmallVector<Folding> foldings;
    for (linalg::TransposeOp t : transposes)
      if (std::optional<Layout> in = staticLayout(t.getInput()))
        if (std::optional<Folding> f = planFolding(t, t.getInput(), *in))
          foldings.push_back(std::move(*f));
    // A transpose folded inside another's folding is not planned alone.
    llvm::SmallPtrSet<Operation *, 8> nested;
    for (const Folding &f : foldings)
      for (linalg::TransposeOp t : ArrayRef(f.transposes).drop_front())
        nested.insert(t);
    llvm::erase_if(foldings, [&](const Folding &f) {
      return nested.contains(f.transposes.front());
    });
    DenseMap<OpOperand *, StaticView> views;
    bool changed = true;
    while (changed) {
      changed = false;
      views.clear();
      for (const Folding &f : foldings)
        for (const auto &[operand, view] : f.reads)
          views[operand] = view;
      for (auto *it = foldings.begin(); it != foldings.end(); ++it) {
        bool ok = llvm::all_of(it->reads, [&](const auto &read) {
          return canCall(cast<linalg::LinalgOp>(read.first->getOwner()),
                         views);
        });
        if (!ok) {
          foldings.erase(it);
          changed = true;
          break;
        }
      }
    }

    func::FuncOp sgemm = getOrDeclareGemm(module, kSgemm);
    func::FuncOp bf16Gemm =
        useBf16 ? getOrDeclareGemm(module, kBf16Gemm) : func::FuncOp();
    int32_t flags = allowTF32 ? kFlagTF32 : 0;
    // Epilogues are planned on the IR before any rewrite (their analysis
    // reads linalg ops, not calls). The cuBLASLt wrapper is f32: with
    // precision=bf16 nothing is fused and every GEMM is a bf16 call.
    DenseMap<Operation *, Epilogue> epilogues;
    if (fuseEpilogues && !useBf16)
      for (linalg::LinalgOp op : candidates)
        if (canCall(op, views))
          if (std::optional<Epilogue> epi = planEpilogue(op, views))
            epilogues[op] = *epi;
    func::FuncOp ltMatmul =
        epilogues.empty() ? func::FuncOp() : getOrDeclareLtMatmul(module);
    Bf16Copies copies;
    for (linalg::LinalgOp op : candidates) {
      if (!canCall(op, views))
        continue;
      if (auto it = epilogues.find(op); it != epilogues.end()) {
        rewriteFused(op, it->second, ltMatmul, flags, views);
        continue;
      }
      // A GEMM with an operand whose buffer cannot be copied (a dynamic
      // shape or a non-identity layout at its root) stays f32.
      bool bf16 = useBf16 && llvm::all_of(op.getDpsInputOperands(),
                                          [&](OpOperand *input) {
                                            auto it = views.find(input);
                                            Value source =
                                                it == views.end()
                                                    ? input->get()
                                                    : it->second.source;
                                            return Bf16Copies::canCopy(
                                                rootBuffer(source));
                                          });
      if (bf16)
        rewrite(op, bf16Gemm, 0, views, &copies);
      else
        rewrite(op, sgemm, flags, views, nullptr);
    }
    // Innermost first: an inner transpose reads a view of the outer's
    // buffer.
    for (const Folding &f : foldings)
      for (linalg::TransposeOp t : llvm::reverse(f.transposes))
        eraseWithDeadViews(t);
    if (sgemm.symbolKnownUseEmpty(module))
      sgemm->erase();
    if (bf16Gemm && bf16Gemm.symbolKnownUseEmpty(module))
      bf16Gemm->erase();
  }
};
} // namespace
