//===- CausalAttention.cpp - --mod-cpu-causal-attention -------------------===//
//
// Row-tiled causal attention on buffers. The attention of a bufferized
// model is a chain of linalg ops between two contractions:
//
//   C1: s[b.., i, j] = sum_d q[.., i, .., d] k[.., j, .., d]   (scores)
//   ... ops that read s and row vectors, reduce over j (max, sum) ...
//   C2: o[b.., i, e] += sum_j p[b.., i, j] v[.., j, .., e]     (p · V)
//
// Every label (batch dims, the query dim i, the key dim j) is found from
// the contractions' roles and propagated through the indexing maps of the
// ops in between. The chain is rewritten into one scf.parallel over
// (batch dims, query tiles); each iteration runs the whole chain on rows
// [i0, i0 + rows) and keys [0, kend) only, in per-tile scratch buffers
// (stack allocations small enough to stay in L2), and C1 / C2 stay
// contractions on subviews that --mod-linalg-to-blas turns into GEMMs.
//
// Skipping keys j >= kend is proved by abstract interpretation of the
// scalar bodies at such points (j > i): the causal mask comparison is
// false there (an iota compare statically, a comparison of one position
// buffer read at j and at i when the positions are increasing, checked at
// run time per tile: otherwise kend = all keys), the masked score is a
// huge negative constant, exp of it is 0, and each reduction over j
// (max, sum, the p · V contraction) combines it neutrally. Anything that
// cannot be proved leaves the chain as it was.
//
//===----------------------------------------------------------------------===//

#include "mod/Conversion/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Linalg/Utils/Utils.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace mlir::mod {
#define GEN_PASS_DEF_CPUCAUSALATTENTION
#include "mod/Conversion/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;

namespace {
// Loop-dimension labels: batch dims are 0, 1, ... (the loops of the
// scf.parallel); compound batch labels (a reshape view's dim that merges
// batch dims, like [H] over [KV, G]) are kCompoundBase + n; the others are
// these. kUnit is a dim of size 1 that no batch loop indexes (the unit dims
// a reshape view adds).
constexpr int64_t kNone = -1, kQuery = -2, kKey = -3, kFull = -4, kUnit = -5;
constexpr int64_t kCompoundBase = int64_t(1) << 20;
/// Scratch bytes per tile kept on the stack at most; the tile height
/// shrinks to fit.
constexpr int64_t kScratchBudget = int64_t(1) << 20;
/// A masked score is at most this: exp(masked - max) is 0 in f32.
constexpr double kHugeNegative = -1e20;

Value rootOf(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    auto view = dyn_cast<ViewLikeOpInterface>(def);
    if (!view)
      break;
    v = view.getViewSource();
  }
  return v;
}

/// The buffer `v` views through reshapes only (expand_shape,
/// collapse_shape): every such view covers all of it.
Value reshapeRoot(Value v) {
  while (true) {
    if (auto e = v.getDefiningOp<memref::ExpandShapeOp>()) {
      v = e.getSrc();
      continue;
    }
    if (auto c = v.getDefiningOp<memref::CollapseShapeOp>()) {
      v = c.getSrc();
      continue;
    }
    return v;
  }
}

/// A view op without memory effects (expand_shape, subview, ...): what it
/// views is checked at the ops that access the view.
bool isPureView(Operation *op) {
  return isa<ViewLikeOpInterface>(op) && isMemoryEffectFree(op);
}

bool isAlloc(Value v) {
  auto type = dyn_cast<MemRefType>(v.getType());
  return v.getDefiningOp<memref::AllocOp>() && type &&
         type.hasStaticShape() && type.getLayout().isIdentity();
}

/// Abstract value of a scalar at a skipped point (key j > query i).
enum class AV {
  Unknown, // some finite value
  Zero,
  NegHuge, // <= kHugeNegative (or -inf)
  Out,     // the reduction's accumulator, unchanged
  False,
  True,
  QueryPos, // a position read at the query
  KeyPos,   // the same positions read at the key
  QueryIdx, // linalg.index of the query dim
  KeyIdx,
};

struct AVal {
  AV kind = AV::Unknown;
  /// For QueryPos / KeyPos: the buffer and, per buffer dim, its label.
  Value buffer;
  SmallVector<int64_t> pattern;
};

AVal mk(AV kind) {
  AVal v;
  v.kind = kind;
  return v;
}

/// A run-time condition: every position the skipped keys read from
/// `keyBuffer` is above every position the tile's queries read from
/// `queryBuffer` (one buffer, or two: a prefill's cached positions and its
/// prompt's), in the signedness of the comparison. Patterns give the label
/// of each buffer dim, the token dim labelled kQuery.
struct PositionCheck {
  Value queryBuffer, keyBuffer;
  SmallVector<int64_t> queryPattern, keyPattern;
  bool isSigned;
  bool operator==(const PositionCheck &o) const {
    return queryBuffer == o.queryBuffer && keyBuffer == o.keyBuffer &&
           queryPattern == o.queryPattern && keyPattern == o.keyPattern &&
           isSigned == o.isSigned;
  }
};

struct Chain {
  SmallVector<Operation *> ops; // block order, C1 and C2 included
  Operation *c1 = nullptr, *c2 = nullptr;
  /// Per scratch root (an alloc): the label of each of its dims.
  llvm::MapVector<Value, SmallVector<int64_t>> scratch;
  /// Per chain op: the label of each loop dim.
  DenseMap<Operation *, SmallVector<int64_t>> loopLabels;
  SmallVector<int64_t> batchSizes;
  int64_t queries = 0, keys = 0;
  SmallVector<PositionCheck> checks;
  /// Fills outside the chain that the tiles repeat (their buffer is read
  /// by other ops too): kept in place, cloned first into each tile.
  SmallVector<Operation *> repeated;
  /// The primary batch labels of each compound label, outermost first.
  SmallVector<SmallVector<int64_t, 4>> compounds;

  bool isCompound(int64_t lab) const { return lab >= kCompoundBase; }
  SmallVector<int64_t, 4> primaries(int64_t lab) const {
    if (isCompound(lab))
      return compounds[lab - kCompoundBase];
    return {lab};
  }
  /// Number of indices of a batch label (1 for kUnit).
  int64_t batchSize(int64_t lab) const {
    if (lab == kUnit)
      return 1;
    int64_t size = 1;
    for (int64_t p : primaries(lab))
      size *= batchSizes[p];
    return size;
  }
  /// One index per tile: a batch label or a unit dim.
  static bool isFixed(int64_t lab) { return lab >= 0 || lab == kUnit; }
  /// Whether two labels of the same dim agree (a unit dim may be labelled
  /// by a batch loop of size 1 in one op and kUnit in another).
  bool agree(int64_t a, int64_t b) const {
    return a == b ||
           (isFixed(a) && isFixed(b) && batchSize(a) == 1 && batchSize(b) == 1);
  }
  bool agree(ArrayRef<int64_t> a, ArrayRef<int64_t> b) const {
    if (a.size() != b.size())
      return false;
    for (auto [x, y] : llvm::zip(a, b))
      if (!agree(x, y))
        return false;
    return true;
  }
  /// The label of a dim merging dims labelled `labs` (row-major): kUnit
  /// when all have one index, kNone unless all are batch labels.
  int64_t merge(ArrayRef<int64_t> labs) {
    SmallVector<int64_t, 4> parts;
    for (int64_t lab : labs) {
      if (lab == kUnit)
        continue;
      if (lab < 0)
        return kNone;
      for (int64_t p : primaries(lab))
        if (batchSizes[p] != 1)
          parts.push_back(p);
    }
    if (parts.empty())
      return labs.size() == 1 ? labs[0] : kUnit;
    if (parts.size() == 1)
      return parts[0];
    for (auto [n, c] : llvm::enumerate(compounds))
      if (ArrayRef<int64_t>(c) == ArrayRef<int64_t>(parts))
        return kCompoundBase + int64_t(n);
    compounds.push_back(parts);
    return kCompoundBase + int64_t(compounds.size()) - 1;
  }
};

//===----------------------------------------------------------------------===//
// Labels through reshape views
//===----------------------------------------------------------------------===//

/// Labels of the dims of `labels` collapsed by `groups`.
FailureOr<SmallVector<int64_t>>
collapseLabels(Chain &chain, ArrayRef<int64_t> labels,
               ArrayRef<ReassociationIndices> groups) {
  SmallVector<int64_t> out;
  for (const ReassociationIndices &group : groups) {
    SmallVector<int64_t> labs;
    for (int64_t d : group)
      if (!Chain::isFixed(labels[d]) || chain.batchSize(labels[d]) != 1)
        labs.push_back(labels[d]);
    if (labs.empty() && group.size() == 1)
      labs.push_back(labels[group.front()]);
    if (labs.size() == 1) {
      out.push_back(labs[0]);
      continue;
    }
    // Several dims in one: batch dims only (never a token dim with
    // another), so the merged dim still has one index per tile.
    int64_t lab = chain.merge(labs);
    if (lab == kNone)
      return failure();
    out.push_back(lab);
  }
  return out;
}

/// Labels of the dims (of sizes `shape`) that each dim of `labels` expands
/// into by `groups`: a group's one dim of size > 1 keeps the label, unit
/// dims get kUnit, and a batch label may split into its primaries.
FailureOr<SmallVector<int64_t>>
expandLabels(Chain &chain, ArrayRef<int64_t> labels, ArrayRef<int64_t> shape,
             ArrayRef<ReassociationIndices> groups) {
  SmallVector<int64_t> out(shape.size(), kUnit);
  for (auto [src, group] : llvm::enumerate(groups)) {
    int64_t lab = labels[src];
    SmallVector<int64_t> wide;
    for (int64_t d : group)
      if (shape[d] != 1)
        wide.push_back(d);
    if (wide.size() <= 1) {
      if (lab != kUnit)
        out[wide.empty() ? group.front() : wide.front()] = lab;
      else if (!wide.empty())
        return failure();
      continue;
    }
    if (lab < 0)
      return failure(); // a token or head dim split in several
    SmallVector<int64_t, 4> parts;
    for (int64_t p : chain.primaries(lab))
      if (chain.batchSizes[p] != 1)
        parts.push_back(p);
    size_t next = 0;
    for (int64_t d : wide) {
      SmallVector<int64_t> mine;
      int64_t size = 1;
      while (next < parts.size() && size < shape[d]) {
        size *= chain.batchSizes[parts[next]];
        mine.push_back(parts[next++]);
      }
      if (size != shape[d])
        return failure();
      out[d] = chain.merge(mine);
    }
    if (next != parts.size())
      return failure();
  }
  return out;
}

/// Labels of the dims of `v`, a scratch buffer or a reshape view of one.
FailureOr<SmallVector<int64_t>> viewLabels(Chain &chain, Value v) {
  auto it = chain.scratch.find(v);
  if (it != chain.scratch.end())
    return SmallVector<int64_t>(it->second);
  if (auto e = v.getDefiningOp<memref::ExpandShapeOp>()) {
    FailureOr<SmallVector<int64_t>> src = viewLabels(chain, e.getSrc());
    if (failed(src))
      return failure();
    return expandLabels(chain, *src, e.getResultType().getShape(),
                        e.getReassociationIndices());
  }
  if (auto c = v.getDefiningOp<memref::CollapseShapeOp>()) {
    FailureOr<SmallVector<int64_t>> src = viewLabels(chain, c.getSrc());
    if (failed(src))
      return failure();
    return collapseLabels(chain, *src, c.getReassociationIndices());
  }
  return failure();
}

/// Labels of the dims of reshapeRoot(v) when those of `v` are `labels`.
FailureOr<SmallVector<int64_t>> rootLabels(Chain &chain, Value v,
                                           SmallVector<int64_t> labels) {
  while (true) {
    FailureOr<SmallVector<int64_t>> next = labels;
    if (auto e = v.getDefiningOp<memref::ExpandShapeOp>()) {
      next = collapseLabels(chain, labels, e.getReassociationIndices());
      v = e.getSrc();
    } else if (auto c = v.getDefiningOp<memref::CollapseShapeOp>()) {
      next = expandLabels(chain, labels, c.getSrcType().getShape(),
                          c.getReassociationIndices());
      v = c.getSrc();
    } else {
      return labels;
    }
    if (failed(next))
      return failure();
    labels = *next;
  }
}

bool isScratch(const Chain &chain, Value v) {
  return chain.scratch.count(reshapeRoot(v));
}

/// Buffers `op` reads or writes, those of the ops nested in it included
/// (as the roots they view, when defined outside `op`).
SmallVector<Value> accessedBuffers(Operation *op) {
  SmallVector<Value> out;
  for (Value v : op->getOperands())
    if (isa<MemRefType>(v.getType()))
      out.push_back(v);
  if (op->getNumRegions() == 0 || isa<linalg::LinalgOp>(op))
    return out;
  op->walk([&](Operation *inner) {
    if (inner == op)
      return;
    for (Value v : inner->getOperands()) {
      if (!isa<MemRefType>(v.getType()))
        continue;
      Value root = rootOf(v);
      if (!op->isAncestor(root.getParentBlock()->getParentOp()))
        out.push_back(root);
    }
  });
  return out;
}

/// Buffers `op` writes; failure when it may write memory we cannot name.
FailureOr<SmallVector<Value>> writtenBuffers(Operation *op) {
  SmallVector<Value> out;
  if (isa<scf::ParallelOp, scf::ForOp>(op)) {
    // A loop nest (e.g. an attention chain already tiled): what its body
    // writes outside the buffers it allocates itself.
    bool unknown = false;
    op->walk([&](Operation *inner) {
      if (inner == op || inner->getNumRegions() != 0 ||
          isa<scf::YieldOp, scf::ReduceOp>(inner))
        return;
      FailureOr<SmallVector<Value>> w = writtenBuffers(inner);
      if (failed(w)) {
        unknown = true;
        return;
      }
      for (Value v : *w) {
        Value root = rootOf(v);
        if (!op->isAncestor(root.getParentBlock()->getParentOp()))
          out.push_back(root);
      }
    });
    if (unknown)
      return failure();
    return out;
  }
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
    for (Value v : linalgOp.getDpsInits())
      out.push_back(v);
    return out;
  }
  if (auto copy = dyn_cast<memref::CopyOp>(op)) {
    out.push_back(copy.getTarget());
    return out;
  }
  if (op->getNumRegions() != 0)
    return failure();
  auto iface = dyn_cast<MemoryEffectOpInterface>(op);
  if (!iface)
  {
    if (!isMemoryEffectFree(op))
      return failure();
    return out;
  }
  SmallVector<MemoryEffects::EffectInstance> effects;
  iface.getEffects(effects);
  for (auto &e : effects) {
    if (!isa<MemoryEffects::Write, MemoryEffects::Free>(e.getEffect()))
      continue;
    if (!e.getValue())
      return failure();
    out.push_back(e.getValue());
  }
  return out;
}

/// Whether `op` writes all of `buffer` without reading what was there
/// (directly or through a reshape view, which covers all of it).
bool fullyOverwrites(Operation *op, Value buffer) {
  Value whole = reshapeRoot(buffer);
  auto covers = [&](Value v) { return reshapeRoot(v) == whole; };
  auto reads = [&](Value v) { return rootOf(v) == rootOf(buffer); };
  if (auto fill = dyn_cast<linalg::FillOp>(op))
    return covers(fill.getDpsInits()[0]);
  if (auto copy = dyn_cast<memref::CopyOp>(op))
    return covers(copy.getTarget()) && !reads(copy.getSource());
  if (auto generic = dyn_cast<linalg::GenericOp>(op)) {
    if (generic.getNumDpsInits() != 1 ||
        !covers(generic.getDpsInits()[0]) ||
        generic.getNumReductionLoops() != 0 ||
        !generic.getIndexingMapsArray().back().isPermutation())
      return false;
    if (llvm::any_of(generic.getDpsInputs(), reads))
      return false;
    return generic.getRegionOutputArgs()[0].use_empty();
  }
  return false;
}

bool readsOwnInit(linalg::LinalgOp op) {
  if (isa<linalg::FillOp>(op))
    return false;
  if (op.getNumReductionLoops() != 0)
    return true;
  for (BlockArgument arg : op.getRegionOutputArgs())
    if (!arg.use_empty())
      return true;
  return false;
}

/// The contraction roles of a plain multiply-add contraction.
FailureOr<linalg::ContractionDimensions> contractionRoles(Operation *op) {
  auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
  if (!linalgOp || linalgOp.getNumDpsInputs() != 2 ||
      linalgOp.getNumDpsInits() != 1 ||
      !linalg::isaContractionOpInterface(linalgOp))
    return failure();
  Block &body = op->getRegion(0).front();
  if (body.getOperations().size() != 3 ||
      !isa<arith::MulFOp>(body.front()) ||
      !isa<arith::AddFOp>(*std::next(body.begin())))
    return failure();
  return linalg::inferContractionDims(linalgOp);
}

/// Labels of `op`'s loop dims from the scratch operands it touches
/// (scratch buffers or reshape views of them); failure on a conflict.
LogicalResult labelFromScratch(linalg::LinalgOp op, Chain &chain,
                               SmallVectorImpl<int64_t> &labels) {
  labels.assign(op.getNumLoops(), kNone);
  for (OpOperand &operand : op->getOpOperands()) {
    if (!isScratch(chain, operand.get()))
      continue;
    FailureOr<SmallVector<int64_t>> bl = viewLabels(chain, operand.get());
    if (failed(bl))
      return failure();
    AffineMap map = op.getMatchingIndexingMap(&operand);
    if (!map.isProjectedPermutation())
      return failure();
    for (auto [r, expr] : llvm::enumerate(map.getResults())) {
      unsigned d = cast<AffineDimExpr>(expr).getPosition();
      int64_t lab = (*bl)[r];
      if (labels[d] != kNone && !chain.agree(labels[d], lab))
        return failure();
      if (labels[d] == kNone || labels[d] == kUnit)
        labels[d] = lab;
    }
  }
  return success();
}

/// Labels of a written scratch buffer from the loop labels.
FailureOr<SmallVector<int64_t>> bufferLabels(AffineMap map,
                                             ArrayRef<int64_t> loopLabels) {
  if (!map.isProjectedPermutation())
    return failure();
  SmallVector<int64_t> out;
  for (AffineExpr expr : map.getResults()) {
    int64_t lab = loopLabels[cast<AffineDimExpr>(expr).getPosition()];
    if (lab == kNone || lab == kFull)
      return failure();
    out.push_back(lab);
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Abstract interpretation at skipped points
//===----------------------------------------------------------------------===//

struct Prover {
  Chain &chain;
  /// Abstract value of each scratch root at skipped points.
  DenseMap<Value, AV> scratchValue;

  AVal positionOf(Value buffer, AffineMap map, ArrayRef<int64_t> labels) {
    AVal v;
    auto type = cast<MemRefType>(buffer.getType());
    if (!type.getElementType().isSignlessInteger() ||
        type.getElementType().getIntOrFloatBitWidth() < 8 ||
        !map.isProjectedPermutation())
      return v;
    int tokens = 0;
    bool query = false;
    for (AffineExpr expr : map.getResults()) {
      int64_t lab = labels[cast<AffineDimExpr>(expr).getPosition()];
      if (lab == kQuery || lab == kKey) {
        ++tokens;
        query = lab == kQuery;
        v.pattern.push_back(kQuery);
      } else if (Chain::isFixed(lab)) {
        v.pattern.push_back(lab);
      } else {
        return AVal{};
      }
    }
    if (tokens != 1)
      return AVal{};
    v.kind = query ? AV::QueryPos : AV::KeyPos;
    v.buffer = buffer;
    return v;
  }

  /// The last op outside the chain before C2 writing `buffer`, when it
  /// writes all of it with an elementwise generic we can evaluate.
  linalg::GenericOp lastWriter(Value buffer) {
    Value root = rootOf(buffer);
    // The tiles run where C2 was: what they read is what the ops before C2
    // that are not in the chain (those write scratch only) wrote last.
    for (Operation *op = chain.c2->getPrevNode(); op;
         op = op->getPrevNode()) {
      if (llvm::is_contained(chain.ops, op))
        continue;
      FailureOr<SmallVector<Value>> written = writtenBuffers(op);
      if (failed(written))
        return nullptr;
      if (!llvm::any_of(*written,
                        [&](Value w) { return rootOf(w) == root; }))
        continue;
      auto generic = dyn_cast<linalg::GenericOp>(op);
      if (generic && generic.getNumDpsInits() == 1 &&
          generic.getDpsInits()[0] == buffer && fullyOverwrites(op, buffer))
        return generic;
      return nullptr;
    }
    return nullptr;
  }

  /// Evaluates `op`'s body with block arguments given by `argValue`.
  AVal evalBody(Block &body, ArrayRef<int64_t> labels,
                function_ref<AVal(BlockArgument)> argValue) {
    DenseMap<Value, AVal> env;
    auto get = [&](Value v) -> AVal {
      if (auto arg = dyn_cast<BlockArgument>(v))
        if (arg.getOwner() == &body)
          return argValue(arg);
      auto it = env.find(v);
      if (it != env.end())
        return it->second;
      FloatAttr f;
      if (matchPattern(v, m_Constant(&f))) {
        double d = f.getValueAsDouble();
        if (f.getValue().isZero())
          return mk(AV::Zero);
        if (d <= kHugeNegative)
          return mk(AV::NegHuge);
        return AVal{};
      }
      IntegerAttr i;
      if (matchPattern(v, m_Constant(&i)) && i.getType().isInteger(1))
        return mk(i.getValue().isZero() ? AV::False : AV::True);
      return AVal{};
    };
    for (Operation &op : body) {
      if (auto yield = dyn_cast<linalg::YieldOp>(op))
        return yield.getNumOperands() == 1 ? get(yield.getOperand(0))
                                           : AVal{};
      if (op.getNumResults() != 1)
        return AVal{};
      AVal r;
      auto kinds = [&](unsigned n) {
        SmallVector<AVal> v;
        for (unsigned k = 0; k < n && k < op.getNumOperands(); ++k)
          v.push_back(get(op.getOperand(k)));
        return v;
      };
      if (auto index = dyn_cast<linalg::IndexOp>(op)) {
        int64_t lab = labels[index.getDim()];
        r.kind = lab == kQuery ? AV::QueryIdx
                 : lab == kKey ? AV::KeyIdx
                               : AV::Unknown;
      } else if (isa<arith::IndexCastOp, arith::IndexCastUIOp>(op)) {
        AVal a = get(op.getOperand(0));
        if (a.kind == AV::QueryIdx || a.kind == AV::KeyIdx)
          r = a;
      } else if (auto cmp = dyn_cast<arith::CmpIOp>(op)) {
        AVal a = get(cmp.getLhs()), b = get(cmp.getRhs());
        using P = arith::CmpIPredicate;
        P p = cmp.getPredicate();
        bool keyFirst = p == P::sle || p == P::ule;
        bool queryFirst = p == P::sge || p == P::uge;
        AVal key = keyFirst ? a : b, query = keyFirst ? b : a;
        if (keyFirst || queryFirst) {
          if (key.kind == AV::KeyIdx && query.kind == AV::QueryIdx) {
            r.kind = AV::False;
          } else if (key.kind == AV::KeyPos && query.kind == AV::QueryPos) {
            r.kind = AV::False;
            PositionCheck check{query.buffer, key.buffer, query.pattern,
                                key.pattern, p == P::sle || p == P::sge};
            if (!llvm::is_contained(chain.checks, check))
              chain.checks.push_back(check);
          }
        }
      } else if (isa<arith::AndIOp>(op)) {
        auto v = kinds(2);
        if (v[0].kind == AV::False || v[1].kind == AV::False)
          r.kind = AV::False;
        else if (v[0].kind == AV::True && v[1].kind == AV::True)
          r.kind = AV::True;
      } else if (isa<arith::OrIOp>(op)) {
        auto v = kinds(2);
        if (v[0].kind == AV::True || v[1].kind == AV::True)
          r.kind = AV::True;
        else if (v[0].kind == AV::False && v[1].kind == AV::False)
          r.kind = AV::False;
      } else if (auto sel = dyn_cast<arith::SelectOp>(op)) {
        AVal c = get(sel.getCondition());
        if (c.kind == AV::False)
          r = get(sel.getFalseValue());
        else if (c.kind == AV::True)
          r = get(sel.getTrueValue());
      } else if (isa<arith::AddFOp, arith::SubFOp>(op)) {
        auto v = kinds(2);
        bool sub = isa<arith::SubFOp>(op);
        bool finiteOther0 = v[1].kind == AV::Unknown || v[1].kind == AV::Zero;
        if (v[0].kind == AV::NegHuge && finiteOther0)
          r.kind = AV::NegHuge;
        else if (!sub && v[1].kind == AV::NegHuge &&
                 (v[0].kind == AV::Unknown || v[0].kind == AV::Zero))
          r.kind = AV::NegHuge;
        else if (v[1].kind == AV::Zero)
          r = v[0];
        else if (!sub && v[0].kind == AV::Zero)
          r = v[1];
      } else if (isa<arith::MulFOp>(op)) {
        auto v = kinds(2);
        auto finite = [](AV k) { return k == AV::Unknown || k == AV::Zero; };
        if ((v[0].kind == AV::Zero && finite(v[1].kind)) ||
            (v[1].kind == AV::Zero && finite(v[0].kind)))
          r.kind = AV::Zero;
      } else if (isa<arith::DivFOp>(op)) {
        auto v = kinds(2);
        if (v[0].kind == AV::Zero && v[1].kind == AV::Unknown)
          r.kind = AV::Zero;
      } else if (isa<arith::NegFOp>(op)) {
        if (get(op.getOperand(0)).kind == AV::Zero)
          r.kind = AV::Zero;
      } else if (isa<math::ExpOp>(op)) {
        if (get(op.getOperand(0)).kind == AV::NegHuge)
          r.kind = AV::Zero;
      } else if (isa<arith::MaximumFOp, arith::MaxNumFOp>(op)) {
        auto v = kinds(2);
        if (v[0].kind == AV::NegHuge)
          r = v[1];
        else if (v[1].kind == AV::NegHuge)
          r = v[0];
      }
      env[op.getResult(0)] = r;
    }
    return AVal{};
  }

  /// Value at a skipped point of the external buffer read by `operand`.
  AVal external(linalg::LinalgOp op, OpOperand &operand,
                ArrayRef<int64_t> labels, bool lookThrough) {
    AffineMap map = op.getMatchingIndexingMap(&operand);
    AVal pos = positionOf(operand.get(), map, labels);
    if (pos.kind != AV::Unknown)
      return pos;
    if (!lookThrough || !map.isProjectedPermutation())
      return AVal{};
    linalg::GenericOp writer = lastWriter(operand.get());
    if (!writer)
      return AVal{};
    // Writer loop w -> buffer dim (its output map) -> our loop (our map).
    AffineMap outMap = writer.getIndexingMapsArray().back();
    SmallVector<int64_t> writerLabels(writer.getNumLoops(), kNone);
    for (auto [r, expr] : llvm::enumerate(outMap.getResults()))
      writerLabels[cast<AffineDimExpr>(expr).getPosition()] =
          labels[cast<AffineDimExpr>(map.getResult(r)).getPosition()];
    Block &body = writer->getRegion(0).front();
    return evalBody(body, writerLabels, [&](BlockArgument arg) -> AVal {
      if (arg.getArgNumber() >= writer.getNumDpsInputs())
        return AVal{};
      return external(writer, writer->getOpOperand(arg.getArgNumber()),
                      writerLabels, /*lookThrough=*/false);
    });
  }

  /// Checks one chain op; records its output's value at skipped points.
  LogicalResult visit(Operation *op) {
    ArrayRef<int64_t> labels = chain.loopLabels[op];
    if (auto copy = dyn_cast<memref::CopyOp>(op)) {
      auto it = scratchValue.find(reshapeRoot(copy.getSource()));
      scratchValue[reshapeRoot(copy.getTarget())] =
          it == scratchValue.end() ? AV::Unknown : it->second;
      return success();
    }
    auto linalgOp = cast<linalg::LinalgOp>(op);
    if (auto fill = dyn_cast<linalg::FillOp>(op)) {
      FloatAttr f;
      AV v = AV::Unknown;
      if (matchPattern(fill.getDpsInputs()[0], m_Constant(&f)))
        v = f.getValue().isZero() ? AV::Zero
            : f.getValueAsDouble() <= kHugeNegative ? AV::NegHuge
                                                    : AV::Unknown;
      scratchValue[reshapeRoot(fill.getDpsInits()[0])] = v;
      return success();
    }
    SmallVector<utils::IteratorType> iters =
        linalgOp.getIteratorTypesArray();
    bool keyReduced = false, keyParallel = false;
    for (auto [d, lab] : llvm::enumerate(labels))
      if (lab == kKey)
        (iters[d] == utils::IteratorType::reduction ? keyReduced
                                                    : keyParallel) = true;
    if (!keyReduced && !keyParallel)
      return success(); // row-wise: computed for every row of the tile
    Block &body = op->getRegion(0).front();
    unsigned numInputs = linalgOp.getNumDpsInputs();
    AVal result = evalBody(body, labels, [&](BlockArgument arg) -> AVal {
      if (arg.getArgNumber() >= numInputs)
        return keyReduced ? mk(AV::Out) : AVal{};
      OpOperand &operand = op->getOpOperand(arg.getArgNumber());
      if (isScratch(chain, operand.get())) {
        FailureOr<SmallVector<int64_t>> bl = viewLabels(chain, operand.get());
        if (failed(bl) || !llvm::is_contained(*bl, kKey))
          return AVal{};
        auto v = scratchValue.find(reshapeRoot(operand.get()));
        return mk(v == scratchValue.end() ? AV::Unknown : v->second);
      }
      return external(linalgOp, operand, labels, /*lookThrough=*/true);
    });
    if (keyReduced)
      return success(result.kind == AV::Out);
    if (linalgOp.getNumDpsInits() == 1)
      scratchValue[reshapeRoot(linalgOp.getDpsInits()[0])] =
          result.kind == AV::Zero || result.kind == AV::NegHuge ||
                  result.kind == AV::False || result.kind == AV::True
              ? result.kind
              : AV::Unknown;
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Finding the chain
//===----------------------------------------------------------------------===//

/// Builds the chain that starts at contraction `c1`, with loop `qDim` (an M
/// or N dim) as the query and `kDim` (on the other side) as the key. The
/// other M / N dims are batch dims, like the batch dims proper: grouped-
/// query attention's scores [B, KV, G, S, S] have M = (G, S).
std::optional<Chain> findChain(Operation *c1, unsigned qDim, unsigned kDim) {
  FailureOr<linalg::ContractionDimensions> roles = contractionRoles(c1);
  if (failed(roles) || roles->k.empty())
    return std::nullopt;
  auto c1Op = cast<linalg::LinalgOp>(c1);
  Value scoresView = c1Op.getDpsInits()[0];
  Value scores = reshapeRoot(scoresView);
  if (!isAlloc(scores) || c1->getParentOp() == nullptr)
    return std::nullopt;
  SmallVector<int64_t> ranges = c1Op.getStaticLoopRanges();
  if (llvm::any_of(ranges, ShapedType::isDynamic))
    return std::nullopt;
  Chain chain;
  chain.c1 = c1;
  SmallVector<int64_t> labels(c1Op.getNumLoops(), kNone);
  auto addBatch = [&](unsigned d) {
    labels[d] = int64_t(chain.batchSizes.size());
    chain.batchSizes.push_back(ranges[d]);
  };
  for (unsigned d : roles->batch)
    addBatch(d);
  for (unsigned d = 0; d < labels.size(); ++d)
    if (d != qDim && d != kDim &&
        (llvm::is_contained(roles->m, d) || llvm::is_contained(roles->n, d)))
      addBatch(d);
  labels[qDim] = kQuery;
  labels[kDim] = kKey;
  for (unsigned d : roles->k) // the head dim, perhaps split (RoPE halves)
    labels[d] = kFull;
  chain.queries = ranges[qDim];
  chain.keys = ranges[kDim];
  FailureOr<SmallVector<int64_t>> sl =
      bufferLabels(c1Op.getMatchingIndexingMap(&c1Op.getDpsInitsMutable()[0]),
                   labels);
  if (failed(sl))
    return std::nullopt;
  // Scores written through a reshape view (a [B*H, S, S] buffer that
  // another layer's scores also use, as [B, H, S, S]).
  FailureOr<SmallVector<int64_t>> rl = rootLabels(chain, scoresView, *sl);
  if (failed(rl))
    return std::nullopt;
  chain.scratch[scores] = *rl;
  // The view's labels, as the tiles rebuild it, must be these.
  FailureOr<SmallVector<int64_t>> back = viewLabels(chain, scoresView);
  if (failed(back) || !chain.agree(*back, *sl))
    return std::nullopt;
  chain.loopLabels[c1] = labels;
  SmallVector<Operation *> pulled;

  // A chain op that reads what its output held before: the op that wrote
  // it last (a fill or copy) joins the chain.
  auto pullWriter = [&](Operation *user, Value buffer) -> bool {
    bool onlyRead = true; // accessed only by readers since the writer
    for (Operation *op = user->getPrevNode(); op; op = op->getPrevNode()) {
      if (isPureView(op))
        continue;
      if (!llvm::any_of(accessedBuffers(op),
                        [&](Value v) { return rootOf(v) == buffer; }))
        continue;
      if (!fullyOverwrites(op, buffer) ||
          !isa<linalg::FillOp, memref::CopyOp>(op)) {
        // Read by an op in between (e.g. the previous layer's tiles read
        // the fill the next layer's reduction starts from): a fill can
        // still be repeated in the tiles, the original staying in place.
        FailureOr<SmallVector<Value>> written = writtenBuffers(op);
        if (failed(written) ||
            llvm::any_of(*written,
                         [&](Value w) { return rootOf(w) == buffer; }))
          return false;
        onlyRead = false;
        continue;
      }
      // Loops = dims of the written buffer or view.
      Value target = isa<linalg::FillOp>(op)
                         ? cast<linalg::FillOp>(op).getDpsInits()[0]
                         : cast<memref::CopyOp>(op).getTarget();
      FailureOr<SmallVector<int64_t>> tl = viewLabels(chain, target);
      if (failed(tl))
        return false;
      if (!onlyRead) {
        if (!isa<linalg::FillOp>(op))
          return false;
        chain.loopLabels[op] = *tl;
        chain.repeated.push_back(op);
        return true;
      }
      if (auto copy = dyn_cast<memref::CopyOp>(op))
        if (isScratch(chain, copy.getSource()))
          return false;
      chain.loopLabels[op] = *tl;
      pulled.push_back(op);
      return true;
    }
    return false;
  };
  if (!pullWriter(c1, scores))
    return std::nullopt;

  SmallVector<Operation *> forward{c1};
  Operation *c2 = nullptr;
  int budget = 64;
  for (Operation *op = c1->getNextNode(); op && budget-- > 0;
       op = op->getNextNode()) {
    if (isPureView(op))
      continue; // resolved at the ops that access the view
    bool touches = llvm::any_of(accessedBuffers(op), [&](Value v) {
      return chain.scratch.count(rootOf(v));
    });
    if (!touches || isa<memref::DeallocOp>(op)) {
      if (touches)
        return std::nullopt; // a scratch buffer freed inside the chain
      continue;
    }
    if (op->getNumRegions() && !isa<linalg::LinalgOp>(op))
      return std::nullopt;
    if (auto copy = dyn_cast<memref::CopyOp>(op)) {
      // Between scratch buffers only.
      auto it = chain.scratch.find(copy.getSource());
      if (it == chain.scratch.end() || !isAlloc(copy.getTarget()))
        return std::nullopt;
      chain.scratch[copy.getTarget()] = it->second;
      chain.loopLabels[op] = it->second;
      forward.push_back(op);
      continue;
    }
    auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
    if (!linalgOp || !linalgOp.hasPureBufferSemantics())
      return std::nullopt;
    // Every scratch operand must be the alloc itself or a reshape of it.
    for (Value v : accessedBuffers(op))
      if (chain.scratch.count(rootOf(v)) && !isScratch(chain, v))
        return std::nullopt;
    SmallVector<int64_t> ll;
    if (failed(labelFromScratch(linalgOp, chain, ll)))
      return std::nullopt;
    // C2: a contraction over the key dim reading scratch.
    FailureOr<linalg::ContractionDimensions> r2 = contractionRoles(op);
    bool isC2 = succeeded(r2) && r2->k.size() == 1 &&
                ll[r2->k[0]] == kKey &&
                !chain.scratch.count(rootOf(linalgOp.getDpsInits()[0]));
    for (unsigned d = 0; d < ll.size(); ++d)
      if (ll[d] == kNone) {
        if (!isC2)
          return std::nullopt;
        ll[d] = kFull;
      }
    chain.loopLabels[op] = ll;
    forward.push_back(op);
    if (isC2) {
      c2 = op;
      break;
    }
    // Its outputs become scratch.
    for (OpOperand &init : linalgOp.getDpsInitsMutable()) {
      Value out = reshapeRoot(init.get());
      if (!isAlloc(out))
        return std::nullopt;
      FailureOr<SmallVector<int64_t>> bl =
          bufferLabels(linalgOp.getMatchingIndexingMap(&init), ll);
      if (failed(bl))
        return std::nullopt;
      FailureOr<SmallVector<int64_t>> rl = rootLabels(chain, init.get(), *bl);
      if (failed(rl))
        return std::nullopt;
      auto [it, inserted] = chain.scratch.try_emplace(out, *rl);
      if (!inserted && !chain.agree(it->second, *rl))
        return std::nullopt;
      FailureOr<SmallVector<int64_t>> back = viewLabels(chain, init.get());
      if (failed(back) || !chain.agree(*back, *bl))
        return std::nullopt;
      if (inserted && readsOwnInit(linalgOp) && !pullWriter(op, out))
        return std::nullopt;
    }
  }
  if (!c2)
    return std::nullopt;
  chain.c2 = c2;

  // Block order.
  llvm::SmallPtrSet<Operation *, 16> inChain(forward.begin(), forward.end());
  inChain.insert(pulled.begin(), pulled.end());
  Operation *first = c1;
  for (Operation *p : pulled)
    if (p->isBeforeInBlock(first))
      first = p;
  for (Operation *op = first; op != c2->getNextNode(); op = op->getNextNode())
    if (inChain.count(op))
      chain.ops.push_back(op);

  // Ops left in between run before the chain: they must not write what an
  // earlier chain op reads or writes, nor touch scratch.
  llvm::SmallPtrSet<Value, 16> touched;
  for (Operation *op = first; op != c2; op = op->getNextNode()) {
    if (inChain.count(op)) {
      for (Value v : accessedBuffers(op))
        touched.insert(rootOf(v));
      continue;
    }
    if (isPureView(op))
      continue;
    for (Value v : accessedBuffers(op))
      if (chain.scratch.count(rootOf(v)))
        return std::nullopt;
    FailureOr<SmallVector<Value>> written = writtenBuffers(op);
    if (failed(written))
      return std::nullopt;
    for (Value w : *written)
      if (touched.count(rootOf(w)))
        return std::nullopt;
  }
  // Scratch contents are dead after the chain: the next access overwrites
  // or frees them.
  for (auto &entry : chain.scratch) {
    Value buffer = entry.first;
    SmallVector<Value> views{buffer};
    while (!views.empty()) {
      Value view = views.pop_back_val();
      for (Operation *user : view.getUsers()) {
        if (user->getBlock() != c2->getBlock())
          return std::nullopt;
        if (isa<memref::ExpandShapeOp, memref::CollapseShapeOp>(user))
          views.push_back(user->getResult(0));
      }
    }
    for (Operation *op = c2->getNextNode(); op; op = op->getNextNode()) {
      if (isPureView(op))
        continue;
      if (!llvm::any_of(accessedBuffers(op),
                        [&](Value v) { return rootOf(v) == buffer; }))
        continue;
      if (isa<memref::DeallocOp>(op) || fullyOverwrites(op, buffer))
        break;
      return std::nullopt;
    }
  }
  return chain;
}

//===----------------------------------------------------------------------===//
// Rewriting
//===----------------------------------------------------------------------===//

void rewrite(Chain &chain, int64_t tileRows) {
  Operation *c2 = chain.c2;
  OpBuilder b(c2);
  Location loc = c2->getLoc();
  auto cst = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };

  // Tile height: the scratch of one tile fits the budget.
  int64_t bytesPerRow = 0;
  for (auto &[buffer, labels] : chain.scratch) {
    auto type = cast<MemRefType>(buffer.getType());
    int64_t elems = 1;
    for (auto [d, lab] : llvm::enumerate(labels))
      elems *= lab == kKey                                  ? chain.keys
               : Chain::isFixed(lab) || lab == kQuery ? 1
                                                      : type.getDimSize(d);
    int64_t bits = type.getElementTypeBitWidth();
    bytesPerRow += elems * std::max<int64_t>(bits / 8, 1);
  }
  int64_t rowsFit = std::max<int64_t>(8, kScratchBudget / std::max<int64_t>(bytesPerRow, 1));
  int64_t tile = std::min({tileRows, rowsFit, chain.queries});
  int64_t numTiles = (chain.queries + tile - 1) / tile;

  SmallVector<Value> lbs, ubs, steps;
  for (int64_t size : chain.batchSizes) {
    lbs.push_back(cst(0));
    ubs.push_back(cst(size));
    steps.push_back(cst(1));
  }
  lbs.push_back(cst(0));
  ubs.push_back(cst(numTiles));
  steps.push_back(cst(1));
  auto par = scf::ParallelOp::create(b, loc, lbs, ubs, steps);
  par->setAttr("mod.gemm_tiles", b.getUnitAttr());
  b.setInsertionPointToStart(par.getBody());
  SmallVector<Value> ivs(par.getInductionVars());
  Value i0 = arith::MulIOp::create(b, loc, ivs.back(), cst(tile));
  Value rows = arith::MinSIOp::create(
      b, loc, cst(tile), arith::SubIOp::create(b, loc, cst(chain.queries), i0));
  Value qEnd = arith::AddIOp::create(b, loc, i0, rows);
  Value kend = arith::MinSIOp::create(b, loc, qEnd, cst(chain.keys));
  // The index of a batch label in this tile (a compound one row-major over
  // its primaries); 0 for a unit dim.
  DenseMap<int64_t, Value> batchIndices;
  auto batchIndex = [&](int64_t lab) -> Value {
    if (lab == kUnit)
      return cst(0);
    if (!chain.isCompound(lab))
      return ivs[lab];
    Value &index = batchIndices[lab];
    if (!index) {
      for (int64_t p : chain.primaries(lab))
        index = index ? arith::AddIOp::create(
                            b, loc,
                            arith::MulIOp::create(b, loc, index,
                                                  cst(chain.batchSizes[p])),
                            ivs[p])
                            .getResult()
                      : ivs[p];
    }
    return index;
  };

  // Run-time proof for position masks: the positions of every skipped key
  // are above those of every query of the tile.
  if (!chain.checks.empty()) {
    Value ok = arith::ConstantIntOp::create(b, loc, b.getI1Type(), 1);
    for (const PositionCheck &check : chain.checks) {
      auto type = cast<MemRefType>(check.keyBuffer.getType());
      Type elt = type.getElementType();
      unsigned width = elt.getIntOrFloatBitWidth();
      APInt lo = check.isSigned ? APInt::getSignedMinValue(width)
                                : APInt::getMinValue(width);
      APInt hi = check.isSigned ? APInt::getSignedMaxValue(width)
                                : APInt::getMaxValue(width);
      // The index of each non-token dim; null for the token dim.
      auto fixedIndices = [&](ArrayRef<int64_t> pattern) {
        SmallVector<Value> fixed;
        for (int64_t lab : pattern)
          fixed.push_back(lab == kQuery ? Value() : batchIndex(lab));
        return fixed;
      };
      SmallVector<Value> queryFixed = fixedIndices(check.queryPattern);
      SmallVector<Value> keyFixed = fixedIndices(check.keyPattern);
      auto reduce = [&](Value from, Value to, APInt init, bool max) {
        Value buffer = max ? check.queryBuffer : check.keyBuffer;
        ArrayRef<Value> fixed = max ? queryFixed : keyFixed;
        auto load = [&](OpBuilder &nb, Value token) {
          SmallVector<Value> idx;
          for (Value v : fixed)
            idx.push_back(v ? v : token);
          return memref::LoadOp::create(nb, loc, buffer, idx).getResult();
        };
        Value start = arith::ConstantOp::create(
            b, loc, IntegerAttr::get(elt, init));
        auto loop = scf::ForOp::create(
            b, loc, from, to, cst(1), ValueRange{start},
            [&](OpBuilder &nb, Location nl, Value iv, ValueRange acc) {
              Value v = load(nb, iv);
              Value r;
              if (max)
                r = check.isSigned
                        ? arith::MaxSIOp::create(nb, nl, acc[0], v).getResult()
                        : arith::MaxUIOp::create(nb, nl, acc[0], v).getResult();
              else
                r = check.isSigned
                        ? arith::MinSIOp::create(nb, nl, acc[0], v).getResult()
                        : arith::MinUIOp::create(nb, nl, acc[0], v).getResult();
              scf::YieldOp::create(nb, nl, r);
            });
        return loop.getResult(0);
      };
      Value qMax = reduce(i0, qEnd, lo, /*max=*/true);
      Value kMin = reduce(kend, cst(chain.keys), hi, /*max=*/false);
      Value above = arith::CmpIOp::create(
          b, loc,
          check.isSigned ? arith::CmpIPredicate::slt
                         : arith::CmpIPredicate::ult,
          qMax, kMin);
      Value none = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge,
                                         kend, cst(chain.keys));
      ok = arith::AndIOp::create(
          b, loc, ok, arith::OrIOp::create(b, loc, above, none));
    }
    kend = arith::SelectOp::create(b, loc, ok, kend, cst(chain.keys));
  }

  auto range = [&](int64_t lab, int64_t size)
      -> std::pair<OpFoldResult, OpFoldResult> {
    if (lab == kUnit)
      return {b.getIndexAttr(0), b.getIndexAttr(1)};
    if (lab >= 0)
      return {batchIndex(lab), b.getIndexAttr(1)};
    if (lab == kQuery)
      return {i0, rows};
    if (lab == kKey)
      return {b.getIndexAttr(0), kend};
    return {b.getIndexAttr(0), b.getIndexAttr(size)};
  };
  // Per-tile scratch (static, one tile high) and the tile's part of it:
  // `rows` query rows, `kend` keys.
  auto tileShape = [&](ArrayRef<int64_t> labels, ArrayRef<int64_t> full) {
    SmallVector<int64_t> shape;
    for (auto [d, lab] : llvm::enumerate(labels))
      shape.push_back(Chain::isFixed(lab) ? 1 : lab == kQuery ? tile : full[d]);
    return shape;
  };
  auto tilePart = [&](Value whole, ArrayRef<int64_t> labels) -> Value {
    auto type = cast<MemRefType>(whole.getType());
    SmallVector<OpFoldResult> offsets, sizes, strides;
    for (auto [d, lab] : llvm::enumerate(labels)) {
      offsets.push_back(b.getIndexAttr(0));
      sizes.push_back(Chain::isFixed(lab)
                          ? OpFoldResult(b.getIndexAttr(1))
                          : range(lab, type.getDimSize(d)).second);
      strides.push_back(b.getIndexAttr(1));
    }
    return memref::SubViewOp::create(b, loc, whole, offsets, sizes, strides);
  };
  DenseMap<Value, Value> whole, local;
  for (auto &[buffer, labels] : chain.scratch) {
    auto type = cast<MemRefType>(buffer.getType());
    auto alloca = memref::AllocaOp::create(
        b, loc,
        MemRefType::get(tileShape(labels, type.getShape()),
                        type.getElementType()));
    alloca.setAlignment(64);
    whole[buffer] = alloca;
    local[buffer] = tilePart(alloca, labels);
  }
  // A reshape view of scratch: the same reshapes of the tile's scratch (in
  // a tile, batch dims have one index, so the reshapes only add or drop
  // unit dims around the token dims), then the tile's part of it.
  std::function<Value(Value)> reshapedWhole = [&](Value v) -> Value {
    if (Value done = whole.lookup(v))
      return done;
    SmallVector<int64_t> labels = *viewLabels(chain, v);
    Value result;
    if (auto e = v.getDefiningOp<memref::ExpandShapeOp>()) {
      Value src = reshapedWhole(e.getSrc());
      result = memref::ExpandShapeOp::create(
          b, loc, tileShape(labels, e.getResultType().getShape()), src,
          e.getReassociationIndices());
    } else {
      auto c = v.getDefiningOp<memref::CollapseShapeOp>();
      Value src = reshapedWhole(c.getSrc());
      result = memref::CollapseShapeOp::create(b, loc, src,
                                               c.getReassociationIndices());
    }
    whole[v] = result;
    return result;
  };
  auto tiled = [&](Value operand, AffineMap map,
                   ArrayRef<int64_t> loopLabels) -> Value {
    auto it = local.find(operand);
    if (it != local.end())
      return it->second;
    if (isScratch(chain, operand)) {
      Value view = tilePart(reshapedWhole(operand),
                            *viewLabels(chain, operand));
      local[operand] = view;
      return view;
    }
    auto type = cast<MemRefType>(operand.getType());
    SmallVector<OpFoldResult> offsets, sizes, strides;
    for (auto [r, expr] : llvm::enumerate(map.getResults())) {
      unsigned d = cast<AffineDimExpr>(expr).getPosition();
      auto [off, size] = range(loopLabels[d], type.getDimSize(r));
      offsets.push_back(off);
      sizes.push_back(size);
      strides.push_back(b.getIndexAttr(1));
    }
    return memref::SubViewOp::create(b, loc, operand, offsets, sizes, strides);
  };

  SmallVector<Operation *> emitted(chain.repeated);
  emitted.append(chain.ops.begin(), chain.ops.end());
  for (Operation *op : emitted) {
    ArrayRef<int64_t> ll = chain.loopLabels[op];
    if (auto copy = dyn_cast<memref::CopyOp>(op)) {
      AffineMap id = b.getMultiDimIdentityMap(ll.size());
      memref::CopyOp::create(b, loc, tiled(copy.getSource(), id, ll),
                             tiled(copy.getTarget(), id, ll));
      continue;
    }
    auto linalgOp = cast<linalg::LinalgOp>(op);
    SmallVector<Value> operands;
    for (OpOperand &operand : op->getOpOperands())
      operands.push_back(
          isa<MemRefType>(operand.get().getType())
              ? tiled(operand.get(), linalgOp.getMatchingIndexingMap(&operand),
                      ll)
              : operand.get());
    Operation *clone = mlir::clone(b, op, TypeRange{}, operands);
    SmallVector<OpFoldResult> offsets;
    for (int64_t lab : ll)
      offsets.push_back(range(lab, 0).first);
    if (auto generic = dyn_cast<linalg::GenericOp>(clone))
      linalg::offsetIndices(b, cast<linalg::LinalgOp>(clone), offsets);
  }

  for (Operation *op : llvm::reverse(chain.ops))
    op->erase();
  // Scratch that nothing else uses any more goes, with its deallocation
  // and its reshape views; otherwise only views nothing uses any more.
  std::function<bool(Value, SmallVectorImpl<Operation *> &)> onlyFreed =
      [&](Value v, SmallVectorImpl<Operation *> &ops) {
        for (Operation *u : v.getUsers()) {
          if (isa<memref::ExpandShapeOp, memref::CollapseShapeOp>(u)) {
            if (!onlyFreed(u->getResult(0), ops))
              return false;
          } else if (!isa<memref::DeallocOp>(u)) {
            return false;
          }
          ops.push_back(u);
        }
        return true;
      };
  std::function<void(Value)> eraseDeadViews = [&](Value v) {
    for (Operation *u : llvm::make_early_inc_range(v.getUsers()))
      if (isa<memref::ExpandShapeOp, memref::CollapseShapeOp>(u)) {
        eraseDeadViews(u->getResult(0));
        if (u->use_empty())
          u->erase();
      }
  };
  for (auto &entry : chain.scratch) {
    Value buffer = entry.first;
    SmallVector<Operation *> ops;
    if (onlyFreed(buffer, ops)) {
      for (Operation *u : ops)
        u->erase();
      buffer.getDefiningOp()->erase();
    } else {
      eraseDeadViews(buffer);
    }
  }
}

struct CPUCausalAttentionPass
    : mod::impl::CPUCausalAttentionBase<CPUCausalAttentionPass> {
  using Base::Base;
  void runOnOperation() override {
    if (tileRows < 1) {
      getOperation()->emitError("mod-cpu-causal-attention: tile-rows must be "
                                "at least 1, got ")
          << tileRows;
      return signalPassFailure();
    }
    SmallVector<Operation *> candidates;
    getOperation()->walk([&](linalg::LinalgOp op) {
      if (op.hasPureBufferSemantics() && succeeded(contractionRoles(op)))
        candidates.push_back(op);
    });
    llvm::SmallPtrSet<Operation *, 16> erased;
    for (Operation *c1 : candidates) {
      if (erased.count(c1))
        continue;
      // The query is an M dim and the key an N dim, or the other way.
      linalg::ContractionDimensions roles = *contractionRoles(c1);
      SmallVector<std::pair<unsigned, unsigned>> choices;
      for (unsigned m : roles.m)
        for (unsigned n : roles.n)
          choices.push_back({m, n});
      for (unsigned m : roles.m)
        for (unsigned n : roles.n)
          choices.push_back({n, m});
      for (auto [qDim, kDim] : choices) {
        std::optional<Chain> chain = findChain(c1, qDim, kDim);
        if (!chain)
          continue;
        Prover prover{*chain, DenseMap<Value, AV>()};
        bool proved = true;
        SmallVector<Operation *> order(chain->repeated);
        order.append(chain->ops.begin(), chain->ops.end());
        for (Operation *op : order)
          if (failed(prover.visit(op))) {
            proved = false;
            break;
          }
        if (!proved)
          continue;
        erased.insert(chain->ops.begin(), chain->ops.end());
        rewrite(*chain, tileRows);
        break;
      }
    }
  }
};
} // namespace
