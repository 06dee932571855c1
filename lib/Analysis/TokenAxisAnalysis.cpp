//===- TokenAxisAnalysis.cpp - which tensor dimensions run over tokens ----===//

#include "mod/Analysis/TokenAxisAnalysis.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/OpDefinition.h"
#include "llvm/ADT/SmallBitVector.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::mod;

namespace {
using AtomList = SmallVector<AxisAtom, 1>;

/// The extent of a factor list, or nullopt when it has no positive finite
/// extent: a factor of size 0 (an empty tensor), a dynamic size, or a
/// product that overflows. Such lists cannot be cut into pieces.
std::optional<int64_t> product(ArrayRef<AxisAtom> atoms) {
  int64_t p = 1;
  for (const AxisAtom &a : atoms)
    if (a.size <= 0 || llvm::MulOverflow(p, a.size, p))
      return std::nullopt;
  return p;
}

/// The common refinement of two factorizations of the same extent: every
/// breakpoint of either list is a breakpoint of the result, and a piece is a
/// token factor if it lies in a token atom of either list. Fails when a token
/// atom would be cut into pieces, or when the extents differ.
FailureOr<AtomList> refine(ArrayRef<AxisAtom> a, ArrayRef<AxisAtom> b) {
  std::optional<int64_t> extentA = product(a), extentB = product(b);
  if (!extentA || !extentB) {
    // Without a positive extent there is nothing to divide (a zero-sized
    // atom would be a division by zero below): the lists agree only when
    // they have the same factors, and then their flags merge.
    if (a.size() != b.size())
      return failure();
    AtomList out;
    for (auto [x, y] : llvm::zip(a, b)) {
      if (x.size != y.size)
        return failure();
      out.push_back({x.size, x.token || y.token, x.batch || y.batch});
    }
    return out;
  }
  if (*extentA != *extentB)
    return failure();
  AtomList out;
  size_t i = 0, j = 0;
  int64_t remA = 0, remB = 0; // extent left in a[i] / b[j]; 0 = not started
  while (i < a.size() || j < b.size()) {
    // Unit atoms have no extent and cannot be cut: pass them through, once
    // when both lists have one here (or the lists would grow each round).
    bool unitA = i < a.size() && remA == 0 && a[i].size == 1;
    bool unitB = j < b.size() && remB == 0 && b[j].size == 1;
    if (unitA && unitB) {
      out.push_back({1, a[i].token || b[j].token, a[i].batch || b[j].batch});
      ++i;
      ++j;
      continue;
    }
    if (unitA) {
      out.push_back(a[i++]);
      continue;
    }
    if (unitB) {
      out.push_back(b[j++]);
      continue;
    }
    if (i >= a.size() || j >= b.size())
      return failure();
    if (remA == 0)
      remA = a[i].size;
    if (remB == 0)
      remB = b[j].size;
    int64_t piece = std::min(remA, remB);
    if (remA % piece || remB % piece)
      return failure(); // the two factorizations do not nest
    if ((a[i].token && piece != a[i].size) ||
        (b[j].token && piece != b[j].size))
      return failure(); // a token factor would be cut
    // A batch factor stays one only while it is not cut.
    bool batch = (a[i].batch && piece == a[i].size) ||
                 (b[j].batch && piece == b[j].size);
    out.push_back({piece, a[i].token || b[j].token, batch});
    remA /= piece;
    remB /= piece;
    if (remA == 1) {
      remA = 0;
      ++i;
    }
    if (remB == 1) {
      remB = 0;
      ++j;
    }
  }
  return out;
}

AtomList plainAtoms(int64_t size) { return AtomList{{size, false}}; }

bool hasToken(ArrayRef<AxisAtom> atoms) {
  return llvm::any_of(atoms, [](const AxisAtom &a) { return a.token; });
}
} // namespace

TokenAxisAnalysis::TokenAxisAnalysis(Operation *root, ArrayRef<Value> seeds) {
  for (Value seed : seeds) {
    auto type = dyn_cast<RankedTensorType>(seed.getType());
    if (type && type.getRank() >= 2) {
      markToken(seed, 1, 0);
      markBatch(seed, 0);
    }
  }
  // Propagation only ever turns atoms into token atoms or refines atom
  // lists, so this terminates; the bound guards against a logic error.
  for (int iter = 0; iter < 64; ++iter) {
    bool changed = false;
    root->walk([&](Operation *op) { changed |= propagate(op); });
    if (!changed)
      break;
  }
}

AxisLayout TokenAxisAnalysis::getLayout(Value v) const {
  auto it = layouts.find(v);
  if (it != layouts.end())
    return it->second;
  AxisLayout layout;
  if (auto type = dyn_cast<RankedTensorType>(v.getType()))
    for (int64_t size : type.getShape())
      layout.push_back(plainAtoms(size));
  return layout;
}

bool TokenAxisAnalysis::hasTokenAxis(Value v) const {
  auto it = layouts.find(v);
  if (it == layouts.end())
    return false;
  return llvm::any_of(it->second,
                      [](const AtomList &dim) { return hasToken(dim); });
}

bool TokenAxisAnalysis::isTokenDim(Value v, unsigned dim) const {
  auto it = layouts.find(v);
  return it != layouts.end() && dim < it->second.size() &&
         hasToken(it->second[dim]);
}

SmallVector<int64_t> TokenAxisAnalysis::resizedShape(Value v, int64_t seqLen,
                                                     int64_t capacity) const {
  SmallVector<int64_t> shape;
  for (const AtomList &dim : getLayout(v)) {
    int64_t size = 1;
    for (const AxisAtom &a : dim)
      size *= (a.token && a.size == seqLen) ? capacity : a.size;
    shape.push_back(size);
  }
  return shape;
}

Type TokenAxisAnalysis::resizedType(Value v, int64_t seqLen,
                                    int64_t capacity) const {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (!type)
    return v.getType();
  return type.clone(resizedShape(v, seqLen, capacity));
}

llvm::SmallBitVector TokenAxisAnalysis::getTokenLoops(Operation *op) const {
  auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
  if (!linalgOp)
    return {};
  llvm::SmallBitVector loops(linalgOp.getNumLoops());
  for (OpOperand &operand : op->getOpOperands()) {
    AffineMap map = linalgOp.getMatchingIndexingMap(&operand);
    for (auto [r, expr] : llvm::enumerate(map.getResults()))
      if (auto dim = dyn_cast<AffineDimExpr>(expr))
        if (isTokenDim(operand.get(), r))
          loops.set(dim.getPosition());
  }
  // Loops that index a token axis of a tensor read inside the body.
  op->walk([&](tensor::ExtractOp extract) {
    for (auto [k, idx] : llvm::enumerate(extract.getIndices()))
      if (auto index = idx.getDefiningOp<linalg::IndexOp>())
        if (isTokenDim(extract.getTensor(), k))
          loops.set(index.getDim());
  });
  return loops;
}

llvm::SmallBitVector TokenAxisAnalysis::getBatchLoops(Operation *op) const {
  auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
  if (!linalgOp)
    return {};
  llvm::SmallBitVector loops(linalgOp.getNumLoops());
  for (OpOperand &operand : op->getOpOperands()) {
    AffineMap map = linalgOp.getMatchingIndexingMap(&operand);
    AxisLayout layout = getLayout(operand.get());
    for (auto [r, expr] : llvm::enumerate(map.getResults()))
      if (auto dim = dyn_cast<AffineDimExpr>(expr))
        if (layout[r].size() == 1 && layout[r][0].batch)
          loops.set(dim.getPosition());
  }
  return loops;
}

std::optional<std::string> TokenAxisAnalysis::getFailure(Operation *op) const {
  auto it = failures.find(op);
  if (it == failures.end())
    return std::nullopt;
  return it->second;
}

void TokenAxisAnalysis::fail(Operation *op, const Twine &why) {
  failures.try_emplace(op, why.str());
}

bool TokenAxisAnalysis::markToken(Value v, unsigned dim, unsigned atom) {
  AxisLayout layout = getLayout(v);
  if (dim >= layout.size() || atom >= layout[dim].size() ||
      layout[dim][atom].token)
    return false;
  layout[dim][atom].token = true;
  layouts[v] = layout;
  return true;
}

bool TokenAxisAnalysis::markBatch(Value v, unsigned dim) {
  AxisLayout layout = getLayout(v);
  if (dim >= layout.size() || layout[dim].size() != 1 || layout[dim][0].batch)
    return false;
  layout[dim][0].batch = true;
  layouts[v] = layout;
  return true;
}

bool TokenAxisAnalysis::setLayout(Value v, const AxisLayout &layout) {
  auto it = layouts.find(v);
  if (it != layouts.end() && it->second == layout)
    return false;
  if (it == layouts.end() && layout == getLayout(v))
    return false;
  layouts[v] = layout;
  return true;
}

bool TokenAxisAnalysis::propagate(Operation *op) {
  if (isa<linalg::LinalgOp>(op))
    return propagateLinalg(op);
  if (isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp>(op))
    return propagateReshape(op);

  // Ops whose operands and results are laid out alike: elementwise arith and
  // math on tensors, casts.
  if (op->hasTrait<OpTrait::Elementwise>() ||
      op->hasTrait<OpTrait::SameOperandsAndResultShape>() ||
      isa<tensor::CastOp>(op)) {
    SmallVector<Value> vals;
    for (Value v : llvm::concat<Value>(op->getOperands(), op->getResults()))
      if (auto t = dyn_cast<RankedTensorType>(v.getType()))
        vals.push_back(v);
    bool changed = false;
    for (size_t i = 1; i < vals.size(); ++i) {
      SmallVector<int64_t> identity;
      for (int64_t d = 0, e = getLayout(vals[0]).size(); d < e; ++d)
        identity.push_back(d);
      if (getLayout(vals[i]).size() != identity.size()) {
        if (hasTokenAxis(vals[0]) || hasTokenAxis(vals[i]))
          fail(op, "changes the rank of a tensor with a token axis");
        continue;
      }
      changed |= linkDims(op, vals[0], vals[i], identity);
    }
    return changed;
  }
  // Slices: the kept dimensions of the big tensor correspond, in order, to
  // the dimensions of the slice (rank-reducing slices drop unit dimensions).
  auto sliceMap = [](ArrayRef<int64_t> sizes, RankedTensorType small)
      -> std::optional<SmallVector<int64_t>> {
    std::optional<llvm::SmallDenseSet<unsigned>> dropped =
        computeRankReductionMask(sizes, small.getShape());
    if (!dropped)
      return std::nullopt;
    SmallVector<int64_t> map;
    int64_t next = 0;
    for (unsigned d = 0; d < sizes.size(); ++d)
      map.push_back(dropped->contains(d) ? -1 : next++);
    return map;
  };
  if (auto extract = dyn_cast<tensor::ExtractSliceOp>(op)) {
    auto map = sliceMap(extract.getStaticSizes(), extract.getResultType());
    if (!map) {
      if (hasTokenAxis(extract.getSource()) || hasTokenAxis(extract.getResult()))
        fail(op, "slices a tensor with a token axis in a way that cannot be "
                 "followed");
      return false;
    }
    return linkDims(op, extract.getSource(), extract.getResult(), *map);
  }
  // Concatenation: every dimension but the concatenated one is shared by all
  // operands and the result. A token axis cannot be the concatenated
  // dimension (its pieces would not be whole token axes).
  if (auto concat = dyn_cast<tensor::ConcatOp>(op)) {
    int64_t dim = concat.getDim();
    SmallVector<Value> vals(concat.getInputs());
    vals.push_back(concat.getResult());
    bool changed = false;
    for (Value v : vals)
      if (isTokenDim(v, dim)) {
        fail(op, "concatenates along a token axis");
        return false;
      }
    SmallVector<int64_t> identity;
    for (int64_t d = 0, e = concat.getRank(); d < e; ++d)
      identity.push_back(d == dim ? -2 : d);
    for (Value input : concat.getInputs())
      changed |= linkDims(op, concat.getResult(), input, identity);
    return changed;
  }
  if (auto insert = dyn_cast<tensor::InsertSliceOp>(op)) {
    auto map = sliceMap(insert.getStaticSizes(), insert.getSourceType());
    SmallVector<int64_t> identity;
    for (int64_t d = 0; d < insert.getDestType().getRank(); ++d)
      identity.push_back(d);
    bool changed = linkDims(op, insert.getDest(), insert.getResult(), identity);
    if (!map) {
      if (hasTokenAxis(insert.getSource()) || hasTokenAxis(insert.getDest()))
        fail(op, "inserts into a tensor with a token axis in a way that "
                 "cannot be followed");
      return changed;
    }
    return changed | linkDims(op, insert.getDest(), insert.getSource(), *map);
  }
  return false;
}

bool TokenAxisAnalysis::linkDims(Operation *op, Value big, Value small,
                                 ArrayRef<int64_t> bigToSmall) {
  AxisLayout a = getLayout(big), b = getLayout(small);
  for (auto [d, sd] : llvm::enumerate(bigToSmall)) {
    if (sd == -2)
      continue; // not linked (the concatenated dimension)
    if (sd < 0) {
      if (hasToken(a[d]))
        fail(op, "takes a single token out of a token axis (only whole "
                 "token axes can be resized to the capacity)");
      continue;
    }
    if (product(a[d]) == product(b[sd])) {
      FailureOr<AtomList> merged = refine(a[d], b[sd]);
      if (failed(merged)) {
        fail(op, "has operands whose token axes do not line up");
        return false;
      }
      a[d] = b[sd] = *merged;
    } else if (hasToken(a[d]) || hasToken(b[sd])) {
      fail(op, "takes part of a token axis (only whole token axes can be "
               "resized to the capacity)");
      return false;
    }
  }
  bool changed = setLayout(big, a);
  changed |= setLayout(small, b);
  return changed;
}

bool TokenAxisAnalysis::propagateLinalg(Operation *op) {
  auto linalgOp = cast<linalg::LinalgOp>(op);
  unsigned numLoops = linalgOp.getNumLoops();
  // Every loop gets the common refinement of the factors of all operand
  // dimensions it indexes, so a loop over a merged [B*S] dimension knows it
  // holds S (and which part of it).
  SmallVector<std::optional<AtomList>> loopAtoms(numLoops);
  // An init operand and its result are laid out alike: start each init from
  // the refinement of both, so facts learnt from the result's users flow
  // back into the op.
  bool changed = false;
  for (auto [init, result] :
       llvm::zip(linalgOp.getDpsInits(), op->getResults())) {
    AxisLayout a = getLayout(init), b = getLayout(result);
    for (size_t d = 0; d < a.size() && d < b.size(); ++d) {
      FailureOr<AtomList> merged = refine(a[d], b[d]);
      if (failed(merged)) {
        fail(op, "has a result laid out differently from its init operand");
        return false;
      }
      a[d] = *merged;
    }
    changed |= setLayout(init, a);
  }
  SmallVector<AxisLayout> layouts;
  for (OpOperand &operand : op->getOpOperands())
    layouts.push_back(getLayout(operand.get()));
  for (OpOperand &operand : op->getOpOperands()) {
    AffineMap map = linalgOp.getMatchingIndexingMap(&operand);
    const AxisLayout &layout = layouts[operand.getOperandNumber()];
    for (auto [r, expr] : llvm::enumerate(map.getResults())) {
      auto dim = dyn_cast<AffineDimExpr>(expr);
      if (!dim) {
        if (hasToken(layout[r]))
          fail(op, "indexes a token axis of operand #" +
                       Twine(operand.getOperandNumber()) +
                       " with a compound expression");
        continue;
      }
      std::optional<AtomList> &atoms = loopAtoms[dim.getPosition()];
      if (!atoms) {
        atoms = layout[r];
        continue;
      }
      FailureOr<AtomList> merged = refine(*atoms, layout[r]);
      if (failed(merged)) {
        fail(op, "iterates over operand dimensions whose token factors do "
                 "not line up");
        return false;
      }
      atoms = *merged;
    }
  }
  // Loops that index a token axis of a tensor read inside the body.
  op->walk([&](tensor::ExtractOp extract) {
    for (auto [k, idx] : llvm::enumerate(extract.getIndices())) {
      auto index = idx.getDefiningOp<linalg::IndexOp>();
      if (!index || !loopAtoms[index.getDim()])
        continue;
      AtomList &atoms = *loopAtoms[index.getDim()];
      if (isTokenDim(extract.getTensor(), k) && atoms.size() == 1)
        atoms[0].token = true;
      else if (hasToken(atoms) && getLayout(extract.getTensor())[k].size() == 1)
        changed |= markToken(extract.getTensor(), k, 0);
    }
  });

  for (OpOperand &operand : op->getOpOperands()) {
    AffineMap map = linalgOp.getMatchingIndexingMap(&operand);
    AxisLayout &layout = layouts[operand.getOperandNumber()];
    for (auto [r, expr] : llvm::enumerate(map.getResults()))
      if (auto dim = dyn_cast<AffineDimExpr>(expr))
        layout[r] = *loopAtoms[dim.getPosition()];
    changed |= setLayout(operand.get(), layout);
  }
  // Results are laid out like their init operands.
  for (auto [init, result] :
       llvm::zip(linalgOp.getDpsInits(), op->getResults()))
    changed |= setLayout(result, getLayout(init));
  return changed;
}

bool TokenAxisAnalysis::propagateReshape(Operation *op) {
  Value fine, coarse;
  SmallVector<ReassociationIndices> groups;
  if (auto collapse = dyn_cast<tensor::CollapseShapeOp>(op)) {
    fine = collapse.getSrc();
    coarse = collapse.getResult();
    groups = collapse.getReassociationIndices();
  } else {
    auto expand = cast<tensor::ExpandShapeOp>(op);
    fine = expand.getResult();
    coarse = expand.getSrc();
    groups = expand.getReassociationIndices();
  }
  AxisLayout fineLayout = getLayout(fine), coarseLayout = getLayout(coarse);
  for (auto [c, group] : llvm::enumerate(groups)) {
    AtomList concat;
    for (int64_t f : group)
      concat.append(fineLayout[f].begin(), fineLayout[f].end());
    FailureOr<AtomList> merged = refine(coarseLayout[c], concat);
    if (failed(merged)) {
      fail(op, product(concat) ? "splits a token axis across dimensions"
                               : "reshapes a dimension of size 0 or of "
                                 "dynamic size");
      return false;
    }
    coarseLayout[c] = *merged;
    // Hand the refined atoms back to the fine dimensions by extent.
    size_t next = 0;
    for (int64_t f : group) {
      std::optional<int64_t> extent = product(fineLayout[f]);
      if (!extent) {
        // Only a group of one dimension without an extent gets here
        // (refine needs equal factor lists): it keeps the merged atoms.
        if (group.size() != 1) {
          fail(op, "reshapes a dimension of size 0 or of dynamic size");
          return false;
        }
        fineLayout[f] = *merged;
        continue;
      }
      int64_t want = *extent, got = 1;
      AtomList mine;
      if (want == 1) {
        if (next < merged->size() && (*merged)[next].size == 1)
          mine.push_back((*merged)[next++]);
      } else {
        while (next < merged->size() && got < want) {
          mine.push_back((*merged)[next]);
          got *= (*merged)[next++].size;
        }
      }
      if (got != want) {
        fail(op, "reshapes a token axis in a way that cannot be followed");
        return false;
      }
      fineLayout[f] = mine.empty() ? plainAtoms(want) : mine;
    }
  }
  bool changed = setLayout(fine, fineLayout);
  changed |= setLayout(coarse, coarseLayout);
  return changed;
}
