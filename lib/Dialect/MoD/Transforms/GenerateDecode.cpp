//===- GenerateDecode.cpp - prefill and KV-cache decode step by analysis --===//
//
// ARCHITECTURE.md section 6: the decode step is generated from the forward
// graph by incrementalization.
//
// Every token atom (see TokenAxisAnalysis) of a value the logits depend on is
// labelled, per use, as a *query* atom (q: it runs over the new tokens only)
// or a *key* atom (k: it runs over every slot of the cache). Labels flow
// backwards from the logits (q) through indexing maps; a loop that runs over
// tokens but is not one of an op's result dimensions (attention's reduction
// over keys) is a key loop, so the operands it indexes (keys, values, the key
// side of the mask) are wanted over all cached tokens. Such a key-side value
// is either recomputed from key-side operands (when its op is cheap: no
// reduction) or read from a cache of static size [B,Smax,...] that the step
// writes the new tokens' values into; the choice minimizes the cached
// elements per token, ties going to the cache. So keys are cached after
// their projection (and RoPE, which would otherwise have to be recomputed
// for every cached token), and the positions feed a positions cache that the
// mask reads on its key side.
//
// Cache slots past a sequence's length hold no token: the positions read from
// the cache there become max(new positions) + 1, so the (position-causal)
// mask hides them, and float cache reads there are 0 so that whatever the
// buffer held cannot turn into NaN through a masked probability times a
// value.
//
//===----------------------------------------------------------------------===//

#include "mod/Analysis/TokenAxisAnalysis.h"
#include "mod/Dialect/MoD/IR/MoDOps.h"
#include "mod/Dialect/MoD/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/STLExtras.h"

#include <limits>
#include <map>
#include <set>

namespace mlir::mod {
#define GEN_PASS_DEF_GENERATEDECODE
#include "mod/Dialect/MoD/Transforms/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod;

namespace {

constexpr llvm::StringLiteral kNameAttr = "mod.name";
constexpr llvm::StringLiteral kAliasesAttr = "mod.aliases";
constexpr char kQuery = 'q', kKey = 'k';

/// One label per token atom of a value, in layout order.
using Form = std::string;

/// The labels of an op's loops (linalg) or of its single result (others):
/// per loop, one label per token atom of the loop, "" for other loops.
using OpForm = std::vector<std::string>;

bool allKey(StringRef form) {
  return !form.empty() && llvm::all_of(form, [](char c) { return c == kKey; });
}

std::optional<unsigned> findNamedArg(func::FuncOp func, StringRef name) {
  for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
    if (auto attr = func.getArgAttrOfType<StringAttr>(i, kNameAttr))
      if (attr.getValue() == name)
        return i;
  return std::nullopt;
}

class Incrementalizer {
public:
  Incrementalizer(func::FuncOp func, const TokenAxisAnalysis &axes,
                  int64_t seqLen, Value tokens, Value positions)
      : func(func), axes(axes), seqLen(seqLen), tokens(tokens),
        positions(positions) {}

  /// Labels the graph and chooses the caches.
  LogicalResult analyze();
  /// Builds @name: T new tokens per sequence. `decode`: tokens and positions
  /// are [B] and written at slot lengths[b]; otherwise [B,T] written at slots
  /// 0..lengths[b]-1 (a prefill of an empty cache).
  FailureOr<func::FuncOp> build(OpBuilder &b, StringRef name, int64_t newTokens,
                                int64_t maxSeqLen, bool decode);

private:
  unsigned numTokenAtoms(Value v) const;
  /// Token atoms of each dimension of `v`.
  SmallVector<unsigned> tokenAtomsPerDim(Value v) const;
  LogicalResult checkValue(Operation *user, Value v) const;
  FailureOr<OpForm> opFormFromResult(Operation *op, unsigned result,
                                     const Form &form) const;
  Form operandForm(Operation *op, const OpForm &of, OpOperand &operand) const;
  Form resultForm(Operation *op, const OpForm &of, unsigned result) const;
  bool isCheap(Operation *op) const;
  LogicalResult propagate(bool withCaches);
  LogicalResult chooseCaches();
  double cacheCost(Value v, const Form &form);
  LogicalResult resolveKeySide(Operation *consumer, Value v, const Form &form);
  bool cacheable(Value v) const;
  SmallVector<int64_t> formShape(Value v, StringRef form, int64_t t,
                                 int64_t smax) const;
  RankedTensorType formType(Value v, StringRef form, int64_t t,
                            int64_t smax) const;

  func::FuncOp func;
  const TokenAxisAnalysis &axes;
  int64_t seqLen;
  Value tokens, positions;
  Value logits;

  // Demands (value, form) and the op forms they imply.
  std::set<std::pair<void *, Form>> demanded;
  std::map<Operation *, std::vector<OpForm>> opForms;
  // Values read from a cache on their key side, in program order.
  llvm::SetVector<Value> caches;
  std::map<std::pair<void *, Form>, double> costMemo;
};

unsigned Incrementalizer::numTokenAtoms(Value v) const {
  unsigned n = 0;
  for (unsigned c : tokenAtomsPerDim(v))
    n += c;
  return n;
}

SmallVector<unsigned> Incrementalizer::tokenAtomsPerDim(Value v) const {
  SmallVector<unsigned> counts;
  for (const auto &dim : axes.getLayout(v)) {
    unsigned n = 0;
    for (const AxisAtom &a : dim)
      n += a.token ? 1 : 0;
    counts.push_back(n);
  }
  return counts;
}

LogicalResult Incrementalizer::checkValue(Operation *user, Value v) const {
  for (const auto &dim : axes.getLayout(v))
    for (const AxisAtom &a : dim)
      if (a.token && a.size != seqLen)
        return user->emitError()
               << "cannot incrementalize '" << user->getName()
               << "': a token axis of size " << a.size
               << " is not the sequence (S = " << seqLen << ")";
  return success();
}

SmallVector<int64_t> Incrementalizer::formShape(Value v, StringRef form,
                                                int64_t t,
                                                int64_t smax) const {
  SmallVector<int64_t> shape;
  unsigned next = 0;
  for (const auto &dim : axes.getLayout(v)) {
    int64_t size = 1;
    for (const AxisAtom &a : dim) {
      if (!a.token) {
        size *= a.size;
        continue;
      }
      size *= form[next++] == kQuery ? t : smax;
    }
    shape.push_back(size);
  }
  return shape;
}

RankedTensorType Incrementalizer::formType(Value v, StringRef form, int64_t t,
                                           int64_t smax) const {
  auto type = cast<RankedTensorType>(v.getType());
  return RankedTensorType::get(formShape(v, form, t, smax),
                               type.getElementType());
}

/// A cache holds [B,Smax,...]: the value must be [B,S,...] with plain batch
/// and token dimensions and no other token atom.
bool Incrementalizer::cacheable(Value v) const {
  AxisLayout layout = axes.getLayout(v);
  if (layout.size() < 2 || layout[0].size() != 1 || !layout[0][0].batch ||
      layout[1].size() != 1 || !layout[1][0].token)
    return false;
  return numTokenAtoms(v) == 1;
}

FailureOr<OpForm> Incrementalizer::opFormFromResult(Operation *op,
                                                    unsigned result,
                                                    const Form &form) const {
  auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
  if (!linalgOp)
    return OpForm{form};
  OpForm loops(linalgOp.getNumLoops());
  std::vector<bool> set(linalgOp.getNumLoops(), false);
  Value res = op->getResult(result);
  AffineMap map = linalgOp.getIndexingMapMatchingResult(cast<OpResult>(res));
  SmallVector<unsigned> perDim = tokenAtomsPerDim(res);
  unsigned next = 0;
  for (auto [d, expr] : llvm::enumerate(map.getResults())) {
    if (!perDim[d])
      continue;
    auto dimExpr = dyn_cast<AffineDimExpr>(expr);
    if (!dimExpr)
      return op->emitError() << "cannot incrementalize '" << op->getName()
                             << "': result dimension " << d
                             << " runs over tokens through a compound index";
    loops[dimExpr.getPosition()] = form.substr(next, perDim[d]);
    set[dimExpr.getPosition()] = true;
    next += perDim[d];
  }
  // Token loops that are no result dimension run over the keys.
  for (OpOperand &operand : op->getOpOperands()) {
    AffineMap m = linalgOp.getMatchingIndexingMap(&operand);
    SmallVector<unsigned> counts = tokenAtomsPerDim(operand.get());
    for (auto [d, expr] : llvm::enumerate(m.getResults())) {
      if (d >= counts.size() || !counts[d])
        continue;
      auto dimExpr = dyn_cast<AffineDimExpr>(expr);
      if (!dimExpr)
        return op->emitError()
               << "cannot incrementalize '" << op->getName() << "': operand #"
               << operand.getOperandNumber()
               << " is indexed over tokens through a compound index";
      if (!set[dimExpr.getPosition()]) {
        loops[dimExpr.getPosition()] = std::string(counts[d], kKey);
        set[dimExpr.getPosition()] = true;
      }
    }
  }
  return loops;
}

Form Incrementalizer::operandForm(Operation *op, const OpForm &of,
                                  OpOperand &operand) const {
  auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
  if (!linalgOp)
    return of.front(); // Reshapes and slices keep the atoms in order.
  AffineMap m = linalgOp.getMatchingIndexingMap(&operand);
  SmallVector<unsigned> counts = tokenAtomsPerDim(operand.get());
  Form form;
  for (auto [d, expr] : llvm::enumerate(m.getResults()))
    if (d < counts.size() && counts[d])
      form += of[cast<AffineDimExpr>(expr).getPosition()];
  return form;
}

Form Incrementalizer::resultForm(Operation *op, const OpForm &of,
                                 unsigned result) const {
  auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
  if (!linalgOp)
    return of.front();
  return operandForm(op, of, *linalgOp.getDpsInitOperand(result));
}

bool Incrementalizer::isCheap(Operation *op) const {
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
    return linalgOp.getNumReductionLoops() == 0;
  return isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp,
             tensor::ExtractSliceOp, tensor::EmptyOp, arith::ConstantOp>(op);
}

LogicalResult Incrementalizer::propagate(bool withCaches) {
  demanded.clear();
  opForms.clear();
  SmallVector<std::pair<Value, Form>> worklist;
  auto demand = [&](Value v, Form form) {
    if (!numTokenAtoms(v))
      return;
    if (demanded.insert({v.getAsOpaquePointer(), form}).second)
      worklist.push_back({v, form});
  };
  demand(logits, Form(numTokenAtoms(logits), kQuery));
  while (!worklist.empty()) {
    auto [v, form] = worklist.pop_back_val();
    if (withCaches && caches.contains(v) && allKey(form)) {
      // Read from the cache, which the new tokens' values are written to.
      demand(v, Form(form.size(), kQuery));
      continue;
    }
    Operation *op = v.getDefiningOp();
    if (!op) {
      if (withCaches && ((v != tokens && v != positions) || form != "q"))
        return func.emitError()
               << "cannot incrementalize @" << func.getSymName()
               << ": argument #" << cast<BlockArgument>(v).getArgNumber()
               << " is needed over every cached token but is not cached";
      continue;
    }
    if (!isa<linalg::LinalgOp, tensor::CollapseShapeOp, tensor::ExpandShapeOp,
             tensor::ExtractSliceOp, tensor::InsertSliceOp, tensor::EmptyOp,
             arith::ConstantOp>(op))
      return op->emitError() << "cannot incrementalize '" << op->getName()
                             << "': no rule for an op whose result runs over "
                                "tokens";
    if (failed(checkValue(op, v)))
      return failure();
    if (auto cst = dyn_cast<arith::ConstantOp>(op)) {
      auto dense = dyn_cast<DenseElementsAttr>(cst.getValue());
      if (!dense || !dense.isSplat())
        return op->emitError()
               << "cannot incrementalize a constant " << cst.getType()
               << " with a token axis (e.g. a precomputed mask); derive it "
                  "from the positions input";
    }
    if (isa<linalg::LinalgOp>(op)) {
      bool usesIndex = false;
      llvm::SmallBitVector tokenLoops = axes.getTokenLoops(op);
      op->walk([&](linalg::IndexOp index) {
        usesIndex |= tokenLoops.test(index.getDim());
      });
      bool extracts = false;
      op->walk([&](tensor::ExtractOp extract) {
        extracts |= axes.hasTokenAxis(extract.getTensor());
      });
      if (usesIndex || extracts)
        return op->emitError()
               << "cannot incrementalize '" << op->getName()
               << "': its body reads a token's index along the sequence; "
                  "derive position-dependent values from the positions input";
    }
    if (std::optional<std::string> why = axes.getFailure(op))
      return op->emitError() << "cannot incrementalize '" << op->getName()
                             << "': it " << *why;
    FailureOr<OpForm> of =
        opFormFromResult(op, cast<OpResult>(v).getResultNumber(), form);
    if (failed(of))
      return failure();
    std::vector<OpForm> &forms = opForms[op];
    if (llvm::is_contained(forms, *of))
      continue;
    forms.push_back(*of);
    for (OpOperand &operand : op->getOpOperands()) {
      if (!numTokenAtoms(operand.get()))
        continue;
      Form f = operandForm(op, *of, operand);
      if (f.size() != numTokenAtoms(operand.get()))
        return op->emitError() << "cannot incrementalize '" << op->getName()
                               << "': operand #" << operand.getOperandNumber()
                               << " has token axes its result does not keep";
      demand(operand.get(), f);
    }
    // A multi-result op computes every result in this form.
    for (unsigned r = 0; r < op->getNumResults(); ++r)
      if (numTokenAtoms(op->getResult(r)))
        demanded.insert({op->getResult(r).getAsOpaquePointer(),
                         resultForm(op, *of, r)});
  }
  return success();
}

/// Elements per token of caching `v` over its keys, or of recomputing it
/// from the cheapest caches of its key-side operands.
double Incrementalizer::cacheCost(Value v, const Form &form) {
  auto key = std::make_pair(v.getAsOpaquePointer(), form);
  if (auto it = costMemo.find(key); it != costMemo.end())
    return it->second;
  constexpr double inf = std::numeric_limits<double>::infinity();
  double own = inf;
  if (cacheable(v)) {
    auto type = cast<RankedTensorType>(v.getType());
    own = double(type.getNumElements()) /
          double(type.getDimSize(0) * type.getDimSize(1));
  }
  double recompute = inf;
  Operation *op = v.getDefiningOp();
  if (op && isCheap(op)) {
    FailureOr<OpForm> of =
        opFormFromResult(op, cast<OpResult>(v).getResultNumber(), form);
    if (succeeded(of)) {
      recompute = 0;
      for (OpOperand &operand : op->getOpOperands())
        if (numTokenAtoms(operand.get()))
          recompute += cacheCost(operand.get(), operandForm(op, *of, operand));
    }
  }
  double cost = std::min(own, recompute);
  costMemo[key] = cost;
  return cost;
}

LogicalResult Incrementalizer::resolveKeySide(Operation *consumer, Value v,
                                              const Form &form) {
  if (caches.contains(v))
    return success();
  double cost = cacheCost(v, form);
  if (cost == std::numeric_limits<double>::infinity())
    return consumer->emitError()
           << "cannot incrementalize '" << consumer->getName()
           << "': no [B,S,...] value on the key side of its operand "
           << v.getType() << " can be cached";
  if (cacheable(v)) {
    auto type = cast<RankedTensorType>(v.getType());
    double own = double(type.getNumElements()) /
                 double(type.getDimSize(0) * type.getDimSize(1));
    if (own <= cost) {
      caches.insert(v);
      return success();
    }
  }
  Operation *op = v.getDefiningOp();
  OpForm of = *opFormFromResult(op, cast<OpResult>(v).getResultNumber(), form);
  for (OpOperand &operand : op->getOpOperands())
    if (numTokenAtoms(operand.get()) &&
        failed(resolveKeySide(consumer, operand.get(),
                              operandForm(op, of, operand))))
      return failure();
  return success();
}

LogicalResult Incrementalizer::chooseCaches() {
  // The key-side operands of ops that mix query and key loops (attention
  // scores, the mask, the weighted sum of values) need caches.
  for (auto &[op, forms] : opForms)
    for (const OpForm &of : forms) {
      bool hasQuery = false, hasKey = false;
      for (const std::string &loop : of) {
        hasQuery |= loop.find(kQuery) != std::string::npos;
        hasKey |= loop.find(kKey) != std::string::npos;
      }
      if (!hasQuery || !hasKey)
        continue;
      for (OpOperand &operand : op->getOpOperands()) {
        if (!numTokenAtoms(operand.get()))
          continue;
        Form f = operandForm(op, of, operand);
        if (allKey(f) && failed(resolveKeySide(op, operand.get(), f)))
          return failure();
      }
    }
  // Program order, so that cache arguments come in the order of the layers.
  SmallVector<Value> ordered(caches.begin(), caches.end());
  llvm::sort(ordered, [](Value a, Value b) {
    Operation *da = a.getDefiningOp(), *db = b.getDefiningOp();
    if (!da || !db)
      return !da && db;
    return da->isBeforeInBlock(db);
  });
  caches.clear();
  caches.insert(ordered.begin(), ordered.end());
  if (!caches.contains(positions))
    return func.emitError()
           << "cannot incrementalize @" << func.getSymName()
           << ": no attention mask reads the positions of the keys, so the "
              "unwritten slots of the caches could not be masked";
  return success();
}

LogicalResult Incrementalizer::analyze() {
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  if (ret.getNumOperands() != 1 || !numTokenAtoms(ret.getOperand(0)))
    return func.emitError()
           << "cannot generate a decode step from @" << func.getSymName()
           << ": it must return exactly the logits [B,S,V]";
  logits = ret.getOperand(0);
  auto logitsType = cast<RankedTensorType>(logits.getType());
  AxisLayout layout = axes.getLayout(logits);
  if (logitsType.getRank() != 3 || layout[1].size() != 1 ||
      !layout[1][0].token || numTokenAtoms(logits) != 1)
    return func.emitError() << "cannot generate a decode step from @"
                            << func.getSymName()
                            << ": its result must be logits [B,S,V], got "
                            << logits.getType();
  if (failed(propagate(/*withCaches=*/false)) || failed(chooseCaches()) ||
      failed(propagate(/*withCaches=*/true)))
    return failure();
  return success();
}

/// A [B] tensor filled with `value`.
Value filledVector(OpBuilder &b, Location loc, int64_t batch, Type type,
                   int64_t value) {
  Value cst = arith::ConstantOp::create(b, loc, type,
                                        b.getIntegerAttr(type, value));
  Value empty =
      tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{batch}, type);
  return linalg::FillOp::create(b, loc, cst, ValueRange{empty}).getResult(0);
}

/// Maps for a generic over `rank` loops: identity and the batch projection.
AffineMap batchMap(MLIRContext *ctx, unsigned rank) {
  return AffineMap::get(rank, 0, {getAffineDimExpr(0, ctx)}, ctx);
}

/// cache[b, offsets[b] + j, ...] = fresh[b, j, ...] for j < counts[b]; the
/// other slots keep their value.
Value writeCache(OpBuilder &b, Location loc, Value cache, Value fresh,
                 Value offsets, Value counts) {
  auto type = cast<RankedTensorType>(cache.getType());
  unsigned rank = type.getRank();
  MLIRContext *ctx = b.getContext();
  AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
  AffineMap row = batchMap(ctx, rank);
  return linalg::GenericOp::create(
             b, loc, type, ValueRange{offsets, counts}, ValueRange{cache},
             ArrayRef<AffineMap>{row, row, id},
             SmallVector<utils::IteratorType>(rank,
                                              utils::IteratorType::parallel),
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               SmallVector<Value> idx;
               for (unsigned d = 0; d < rank; ++d)
                 idx.push_back(linalg::IndexOp::create(nb, nl, d));
               Value off = arith::IndexCastOp::create(nb, nl, nb.getIndexType(),
                                                      args[0]);
               Value cnt = arith::IndexCastOp::create(nb, nl, nb.getIndexType(),
                                                      args[1]);
               Value rel = arith::SubIOp::create(nb, nl, idx[1], off);
               Value zero = arith::ConstantIndexOp::create(nb, nl, 0);
               Value geZero = arith::CmpIOp::create(
                   nb, nl, arith::CmpIPredicate::sge, rel, zero);
               Value ltCount = arith::CmpIOp::create(
                   nb, nl, arith::CmpIPredicate::slt, rel, cnt);
               Value inRange = arith::AndIOp::create(nb, nl, geZero, ltCount);
               // Clamp before reading so that no read is out of bounds.
               Value safe =
                   arith::SelectOp::create(nb, nl, inRange, rel, zero);
               SmallVector<Value> at(idx);
               at[1] = safe;
               Value value = tensor::ExtractOp::create(nb, nl, fresh, at);
               linalg::YieldOp::create(
                   nb, nl,
                   arith::SelectOp::create(nb, nl, inRange, value, args[2])
                       .getResult());
             })
      .getResult(0);
}

/// The cache as the key side sees it: slots at or past offsets[b] +
/// counts[b] read `empty[b]` (an i32/float per row) instead of the buffer.
Value readCache(OpBuilder &b, Location loc, Value cache, Value offsets,
                Value counts, Value emptyPerRow) {
  auto type = cast<RankedTensorType>(cache.getType());
  unsigned rank = type.getRank();
  MLIRContext *ctx = b.getContext();
  AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
  AffineMap row = batchMap(ctx, rank);
  Value init = tensor::EmptyOp::create(b, loc, type.getShape(),
                                       type.getElementType());
  return linalg::GenericOp::create(
             b, loc, type, ValueRange{cache, offsets, counts, emptyPerRow},
             ValueRange{init}, ArrayRef<AffineMap>{id, row, row, row, id},
             SmallVector<utils::IteratorType>(rank,
                                              utils::IteratorType::parallel),
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value slot = arith::IndexCastOp::create(
                   nb, nl, nb.getI32Type(), linalg::IndexOp::create(nb, nl, 1));
               Value end = arith::AddIOp::create(nb, nl, args[1], args[2]);
               Value valid = arith::CmpIOp::create(
                   nb, nl, arith::CmpIPredicate::slt, slot, end);
               linalg::YieldOp::create(
                   nb, nl,
                   arith::SelectOp::create(nb, nl, valid, args[0], args[3])
                       .getResult());
             })
      .getResult(0);
}

FailureOr<func::FuncOp> Incrementalizer::build(OpBuilder &b, StringRef name,
                                               int64_t t, int64_t smax,
                                               bool decode) {
  MLIRContext *ctx = func.getContext();
  Location loc = func.getLoc();
  auto posType = cast<RankedTensorType>(positions.getType());
  int64_t batch = posType.getDimSize(0);
  Type i32 = b.getI32Type();

  // Signature: the forward's arguments with tokens and positions for the new
  // tokens, then one cache per cached value, then the lengths.
  SmallVector<Type> argTypes;
  SmallVector<DictionaryAttr> argAttrs;
  for (BlockArgument arg : func.getArguments()) {
    Type type = arg.getType();
    if (arg == tokens || arg == positions)
      type = decode ? RankedTensorType::get({batch}, i32)
                    : RankedTensorType::get({batch, t}, i32);
    argTypes.push_back(type);
    argAttrs.push_back(func.getArgAttrDict(arg.getArgNumber())
                           ? func.getArgAttrDict(arg.getArgNumber())
                           : DictionaryAttr::get(ctx));
  }
  unsigned firstCache = argTypes.size();
  for (auto [i, v] : llvm::enumerate(caches)) {
    argTypes.push_back(formType(v, Form(1, kKey), t, smax));
    argAttrs.push_back(b.getDictionaryAttr(b.getNamedAttr(
        kNameAttr, b.getStringAttr("cache." + std::to_string(i)))));
  }
  unsigned lengthsArg = argTypes.size();
  argTypes.push_back(RankedTensorType::get({batch}, i32));
  argAttrs.push_back(b.getDictionaryAttr(
      b.getNamedAttr(kNameAttr, b.getStringAttr("lengths"))));

  auto logitsType = cast<RankedTensorType>(logits.getType());
  Type logitsOut =
      decode ? Type(RankedTensorType::get(
                   {batch, logitsType.getDimSize(2)}, logitsType.getElementType()))
             : Type(formType(logits, Form(1, kQuery), t, smax));
  SmallVector<Type> resultTypes{logitsOut};
  SmallVector<DictionaryAttr> resultAttrs{b.getDictionaryAttr(
      b.getNamedAttr(kNameAttr, b.getStringAttr("logits")))};
  for (unsigned i = 0; i < caches.size(); ++i) {
    resultTypes.push_back(argTypes[firstCache + i]);
    resultAttrs.push_back(b.getDictionaryAttr(
        {b.getNamedAttr(kNameAttr,
                        b.getStringAttr("cache." + std::to_string(i))),
         b.getNamedAttr(kAliasesAttr,
                        b.getI64IntegerAttr(firstCache + i))}));
  }

  auto fn = func::FuncOp::create(b, loc, name,
                                 FunctionType::get(ctx, argTypes, resultTypes));
  fn.setAllArgAttrs(argAttrs);
  fn.setAllResultAttrs(resultAttrs);
  Block *entry = fn.addEntryBlock();
  OpBuilder fb = OpBuilder::atBlockBegin(entry);

  IRMapping shared;
  std::map<std::pair<void *, Form>, Value> realized;
  auto lookup = [&](Value v, const Form &form) -> Value {
    if (!numTokenAtoms(v))
      return shared.lookup(v);
    auto it = realized.find({v.getAsOpaquePointer(), form});
    return it == realized.end() ? Value() : it->second;
  };
  for (BlockArgument arg : func.getArguments())
    shared.map(arg, fn.getArgument(arg.getArgNumber()));

  // The new tokens as [B,T].
  auto asRows = [&](Value v) -> Value {
    if (!decode)
      return v;
    return tensor::ExpandShapeOp::create(
        fb, loc, RankedTensorType::get({batch, 1}, i32), v,
        ArrayRef<ReassociationIndices>{{0, 1}});
  };
  Value lengths = fn.getArgument(lengthsArg);
  Value offsets = decode ? lengths : filledVector(fb, loc, batch, i32, 0);
  Value counts = decode ? filledVector(fb, loc, batch, i32, 1) : lengths;
  Value newPositions = asRows(fn.getArgument(
      cast<BlockArgument>(positions).getArgNumber()));
  realized[{positions.getAsOpaquePointer(), "q"}] = newPositions;
  if (tokens)
    realized[{tokens.getAsOpaquePointer(), "q"}] =
        asRows(fn.getArgument(cast<BlockArgument>(tokens).getArgNumber()));

  // Unwritten slots of the positions cache read max(new positions) + 1.
  Value minPos = arith::ConstantOp::create(
      fb, loc, i32, fb.getIntegerAttr(i32, std::numeric_limits<int32_t>::min()));
  Value maxInit =
      linalg::FillOp::create(
          fb, loc, minPos,
          ValueRange{tensor::EmptyOp::create(fb, loc, ArrayRef<int64_t>{batch},
                                             i32)})
          .getResult(0);
  AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, ctx);
  Value rowMax =
      linalg::GenericOp::create(
          fb, loc, maxInit.getType(), ValueRange{newPositions},
          ValueRange{maxInit}, ArrayRef<AffineMap>{id2, batchMap(ctx, 2)},
          ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                        utils::IteratorType::reduction},
          [](OpBuilder &nb, Location nl, ValueRange args) {
            linalg::YieldOp::create(
                nb, nl,
                arith::MaxSIOp::create(nb, nl, args[0], args[1]).getResult());
          })
          .getResult(0);
  Value pastEnd =
      linalg::GenericOp::create(
          fb, loc, rowMax.getType(), ValueRange{rowMax},
          ValueRange{tensor::EmptyOp::create(fb, loc, ArrayRef<int64_t>{batch},
                                             i32)},
          ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(1, ctx),
                              AffineMap::getMultiDimIdentityMap(1, ctx)},
          ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
          [](OpBuilder &nb, Location nl, ValueRange args) {
            Value one = arith::ConstantOp::create(
                nb, nl, nb.getI32Type(), nb.getI32IntegerAttr(1));
            linalg::YieldOp::create(
                nb, nl, arith::AddIOp::create(nb, nl, args[0], one).getResult());
          })
          .getResult(0);

  SmallVector<Value> updatedCaches(caches.size());
  auto cacheValue = [&](Value v) -> LogicalResult {
    unsigned index = caches.getArrayRef().size();
    for (auto [i, c] : llvm::enumerate(caches))
      if (c == v)
        index = i;
    Value fresh = lookup(v, Form(1, kQuery));
    if (!fresh)
      return func.emitError("internal error: a cached value was not computed "
                            "for the new tokens");
    Value written = writeCache(fb, v.getLoc(), fn.getArgument(firstCache + index),
                               fresh, offsets, counts);
    updatedCaches[index] = written;
    auto type = cast<RankedTensorType>(written.getType());
    Value emptyValue;
    if (v == positions) {
      emptyValue = pastEnd;
    } else {
      Type et = type.getElementType();
      TypedAttr zero = isa<FloatType>(et) ? TypedAttr(fb.getFloatAttr(et, 0.0))
                                          : TypedAttr(fb.getIntegerAttr(et, 0));
      Value cst = arith::ConstantOp::create(fb, v.getLoc(), et, zero);
      emptyValue =
          linalg::FillOp::create(
              fb, v.getLoc(), cst,
              ValueRange{tensor::EmptyOp::create(
                  fb, v.getLoc(), ArrayRef<int64_t>{batch}, et)})
              .getResult(0);
    }
    realized[{v.getAsOpaquePointer(), Form(1, kKey)}] =
        readCache(fb, v.getLoc(), written, offsets, counts, emptyValue);
    return success();
  };
  for (Value v : caches)
    if (isa<BlockArgument>(v) && failed(cacheValue(v)))
      return failure();

  for (Operation &op : func.getBody().front().without_terminator()) {
    bool tokenResults = llvm::any_of(
        op.getResults(), [&](Value r) { return numTokenAtoms(r) != 0; });
    if (!tokenResults) {
      bool tokenOperands = llvm::any_of(op.getOperands(), [&](Value v) {
        return numTokenAtoms(v) != 0;
      });
      if (!tokenOperands)
        fb.clone(op, shared);
      continue;
    }
    auto it = opForms.find(&op);
    if (it == opForms.end())
      continue;
    for (const OpForm &of : it->second) {
      // One value may be read in two forms by one op (the mask reads the
      // positions on its query and its key side), so operands are set one
      // by one after cloning.
      IRMapping mapping;
      SmallVector<Value> operands;
      for (OpOperand &operand : op.getOpOperands()) {
        Value v = operand.get();
        Value mapped =
            numTokenAtoms(v) ? lookup(v, operandForm(&op, of, operand))
                             : shared.lookupOrNull(v);
        if (!mapped)
          return op.emitError("internal error: an operand of this op was not "
                              "computed in the form the decode step needs");
        mapping.map(v, mapped);
        operands.push_back(mapped);
      }
      llvm::SetVector<Value> above;
      getUsedValuesDefinedAbove(op.getRegions(), above);
      for (Value v : above)
        if (Value m = shared.lookupOrNull(v))
          mapping.map(v, m);
      Operation *clone = fb.clone(op, mapping);
      for (auto [i, v] : llvm::enumerate(operands))
        clone->setOperand(i, v);
      for (unsigned r = 0; r < op.getNumResults(); ++r) {
        Value res = op.getResult(r);
        if (!numTokenAtoms(res))
          continue;
        Form rf = resultForm(&op, of, r);
        clone->getResult(r).setType(formType(res, rf, t, smax));
        realized[{res.getAsOpaquePointer(), rf}] = clone->getResult(r);
      }
      // Ops that carry static sizes along the resized axes.
      Form f0 = resultForm(&op, of, 0);
      if (auto expand = dyn_cast<tensor::ExpandShapeOp>(clone))
        expand.setStaticOutputShape(formShape(op.getResult(0), f0, t, smax));
      auto fixSizes = [&](Operation *copy, Value full) -> LogicalResult {
        auto sliceOp = cast<OffsetSizeAndStrideOpInterface>(copy);
        ArrayRef<int64_t> oldFull =
            cast<ShapedType>(full.getType()).getShape();
        SmallVector<int64_t> newFull =
            formShape(full, f0, t, smax);
        SmallVector<int64_t> sizes(sliceOp.getStaticSizes());
        for (size_t d = 0; d < sizes.size() && d < oldFull.size(); ++d)
          if (oldFull[d] != newFull[d]) {
            if (sizes[d] != oldFull[d])
              return op.emitError() << "cannot incrementalize '"
                                    << op.getName()
                                    << "': it takes part of a token axis";
            sizes[d] = newFull[d];
          }
        copy->setAttr("static_sizes", DenseI64ArrayAttr::get(ctx, sizes));
        return success();
      };
      if (auto slice = dyn_cast<tensor::ExtractSliceOp>(&op))
        if (failed(fixSizes(clone, slice.getSource())))
          return failure();
      if (auto insert = dyn_cast<tensor::InsertSliceOp>(&op))
        if (failed(fixSizes(clone, insert.getDest())))
          return failure();
      if (auto cst = dyn_cast<arith::ConstantOp>(&op)) {
        auto type = cast<ShapedType>(clone->getResult(0).getType());
        auto dense = cast<DenseElementsAttr>(cst.getValue());
        cast<arith::ConstantOp>(clone).setValueAttr(
            DenseElementsAttr::get(type, dense.getSplatValue<Attribute>()));
      }
    }
    for (Value r : op.getResults())
      if (caches.contains(r) && failed(cacheValue(r)))
        return failure();
  }

  Value out = lookup(logits, Form(1, kQuery));
  if (!out)
    return func.emitError("internal error: the logits were not computed");
  if (decode)
    out = tensor::CollapseShapeOp::create(
        fb, loc, cast<RankedTensorType>(logitsOut), out,
        ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  SmallVector<Value> results{out};
  results.append(updatedCaches.begin(), updatedCaches.end());
  func::ReturnOp::create(fb, loc, results);

  // Drop what the step does not need (the forward's dead branches).
  bool erased = true;
  while (erased) {
    erased = false;
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(*entry)))
      if (isOpTriviallyDead(&op)) {
        op.erase();
        erased = true;
      }
  }
  if (failed(verify(fn)))
    return fn.emitError() << "internal error: the generated @" << name
                          << " does not verify";
  return fn;
}

struct GenerateDecodePass
    : mod::impl::GenerateDecodeBase<GenerateDecodePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto func = module.lookupSymbol<func::FuncOp>(forward);
    if (!func || func.isExternal()) {
      module.emitError() << "--mod-generate-decode: no function @" << forward
                         << " with a body (set func=<name>)";
      return signalPassFailure();
    }
    std::optional<unsigned> posIdx = findNamedArg(func, "positions");
    std::optional<unsigned> tokIdx = findNamedArg(func, "tokens");
    if (!posIdx) {
      func.emitError() << "--mod-generate-decode: @" << forward
                       << " has no argument named 'positions' "
                          "({mod.name = \"positions\"})";
      return signalPassFailure();
    }
    Value positions = func.getArgument(*posIdx);
    auto posType = dyn_cast<RankedTensorType>(positions.getType());
    if (!posType || posType.getRank() != 2 || !posType.hasStaticShape() ||
        !posType.getElementType().isSignlessInteger(32)) {
      func.emitError()
          << "the positions argument must be a static [B,S] i32 tensor, got "
          << positions.getType();
      return signalPassFailure();
    }
    Value tokens = tokIdx ? func.getArgument(*tokIdx) : Value();
    if (tokens && tokens.getType() != positions.getType()) {
      func.emitError() << "the tokens argument must be " << positions.getType()
                       << " like the positions, got " << tokens.getType();
      return signalPassFailure();
    }
    int64_t s = posType.getDimSize(1);
    int64_t smax = maxSeqLen ? int64_t(maxSeqLen) : s;
    int64_t p = prefillLen ? int64_t(prefillLen) : s;
    if (p > smax) {
      func.emitError() << "prefill-len " << p << " exceeds max-seq-len "
                       << smax;
      return signalPassFailure();
    }
    for (StringRef name : {StringRef("prefill"), StringRef("decode_step")})
      if (module.lookupSymbol(name)) {
        module.emitError() << "--mod-generate-decode: the module already has "
                              "a symbol @"
                           << name;
        return signalPassFailure();
      }

    WalkResult routed = func.walk([](RoutedBlockOp op) {
      op.emitError() << "cannot incrementalize 'mod.routed_block' yet: "
                        "generate the decode step from the dense model";
      return WalkResult::interrupt();
    });
    if (routed.wasInterrupted())
      return signalPassFailure();

    SmallVector<Value> seeds{positions};
    if (tokens)
      seeds.push_back(tokens);
    TokenAxisAnalysis axes(func, seeds);
    Incrementalizer inc(func, axes, s, tokens, positions);
    if (failed(inc.analyze()))
      return signalPassFailure();
    OpBuilder b(module.getContext());
    b.setInsertionPointAfter(func);
    FailureOr<func::FuncOp> prefill =
        inc.build(b, "prefill", p, smax, /*decode=*/false);
    if (failed(prefill))
      return signalPassFailure();
    b.setInsertionPointAfter(*prefill);
    FailureOr<func::FuncOp> step =
        inc.build(b, "decode_step", 1, smax, /*decode=*/true);
    if (failed(step)) {
      prefill->erase();
      return signalPassFailure();
    }
  }
};

} // namespace
