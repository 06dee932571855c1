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
#include "mod/Dialect/MoD/Transforms/Elementwise.h"
#include "mod/Dialect/MoD/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/STLExtras.h"

#include <limits>
#include <map>
#include <memory>
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

/// What one generated function computes.
struct StepKind {
  /// New tokens per sequence (T) and cache slots (Smax).
  int64_t t = 1, smax = 1;
  /// Rows of the batch: the forward's B, or 1 for the per-row step of a
  /// routed block.
  int64_t batch = 0;
  /// @decode_step's interface: tokens and positions [B], logits [B,V].
  bool flatIO = false;
  /// One token per sequence written at slot lengths[b]; otherwise a prefill
  /// of an empty cache: the first lengths[b] tokens at slots 0..lengths[b]-1,
  /// or, with `indirect`, token src[b,j] at slot j for j < counts[b] (the
  /// routed tokens of a routed block's prefill, which come as two extra
  /// arguments after the lengths).
  bool decode = false;
  bool indirect = false;
  /// With `gather`, row r of the function is row rows[r] of the caches
  /// (`rows` [batch] i32 comes after the lengths), which have `cacheBatch`
  /// rows: a routed block's step on its compacted routed rows reads and
  /// writes the caches of the whole batch in place.
  bool gather = false;
  int64_t cacheBatch = 0;
};

struct RoutedPlan;

/// How a routed block decides, per token, whether it goes through the block.
struct RoutingRule {
  bool predictor = false;
  int64_t predictorHidden = 32;
  /// Decode steps compute the key side row by row over each row's filled
  /// slots only (see buildRowwise); false: over all Smax slots, masked.
  bool rowwiseKeys = true;
};

/// Row `row` of a value of a per-row decode step: the box it spans, its key
/// atoms cut to the row's filled slots.
struct RowBox {
  /// The value has neither a batch nor a key atom: every row reads it all.
  bool whole = true;
  SmallVector<OpFoldResult> offsets, sizes, strides;
  SmallVector<int64_t> shape;
};

/// A linalg op that only permutes its one input's elements into its init
/// (a transpose, a copy, or a generic yielding its input through
/// permutation maps): every element is read once and not computed.
bool isPermutationOfData(linalg::LinalgOp op) {
  if (isa<linalg::TransposeOp, linalg::CopyOp>(op.getOperation()))
    return true;
  auto generic = dyn_cast<linalg::GenericOp>(op.getOperation());
  if (!generic || generic.getNumDpsInputs() != 1 ||
      generic.getNumDpsInits() != 1 ||
      generic.getNumParallelLoops() != generic.getNumLoops())
    return false;
  Block *body = generic.getBody();
  if (body->getOperations().size() != 1)
    return false;
  auto yield = cast<linalg::YieldOp>(body->getTerminator());
  return yield.getNumOperands() == 1 &&
         yield.getOperand(0) == body->getArgument(0) &&
         llvm::all_of(generic.getIndexingMapsArray(),
                      [](AffineMap m) { return m.isPermutation(); });
}

class Incrementalizer {
public:
  Incrementalizer(func::FuncOp func, const TokenAxisAnalysis &axes,
                  int64_t seqLen, Value tokens, Value positions,
                  RoutingRule rule = {});
  ~Incrementalizer();

  /// Inputs other than the tokens and positions that run over the new
  /// tokens only (a routed block's gathered hidden states).
  void addQueryInput(Value v) { queryInputs.insert(v); }

  /// Labels the graph and chooses the caches (and does the same for the
  /// body of every routed block).
  LogicalResult analyze();
  /// Builds @name (see StepKind).
  FailureOr<func::FuncOp> build(OpBuilder &b, StringRef name,
                                const StepKind &kind);
  /// The caches, in argument order.
  ArrayRef<Value> getCaches() const { return caches.getArrayRef(); }
  /// The type of cache `i` in a function of `batch` rows.
  RankedTensorType cacheType(unsigned i, int64_t smax, int64_t batch);

private:
  LogicalResult planRoutedBlock(RoutedBlockOp op);
  /// The decode or prefill code of one routed block, at the builder's
  /// insertion point: returns the block's output for the new tokens.
  FailureOr<Value> emitRoutedBlock(OpBuilder &fb, RoutedPlan &plan,
                                   const StepKind &kind, Value x, Value pos,
                                   Value promptLengths,
                                   ArrayRef<Value> predictorParams,
                                   MutableArrayRef<Value> state,
                                   const IRMapping &shared);

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
  FailureOr<func::FuncOp> buildStep(OpBuilder &b, StringRef name,
                                    const StepKind &kind, bool rowwise);
  FailureOr<RowBox> rowBox(OpBuilder &b, Location loc, Value v,
                           StringRef form, int64_t t, int64_t smax, Value row,
                           Value extent) const;
  /// Whether a loop of `op` runs over a batch atom.
  bool loopRunsOverBatch(linalg::LinalgOp op, unsigned loop) const;

  func::FuncOp func;
  const TokenAxisAnalysis &axes;
  int64_t seqLen;
  Value tokens, positions;
  RoutingRule rule;
  Value logits;
  llvm::SetVector<Value> queryInputs;
  /// The rows of the batch of the function being built (0: as in the
  /// forward).
  int64_t batchSize = 0;
  std::vector<std::unique_ptr<RoutedPlan>> routed;

  // Demands (value, form) and the op forms they imply.
  std::set<std::pair<void *, Form>> demanded;
  std::map<Operation *, std::vector<OpForm>> opForms;
  // Values read from a cache on their key side, in program order.
  llvm::SetVector<Value> caches;
  std::map<std::pair<void *, Form>, double> costMemo;
  /// Set while building a per-row step that the value layouts do not allow
  /// (the step is then built over the whole cache instead).
  bool rowwiseInfeasible = false;
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
        size *= a.batch && batchSize ? batchSize : a.size;
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
      bool newTokens =
          v == tokens || v == positions || queryInputs.contains(v);
      if (withCaches && (!newTokens || form != "q"))
        return func.emitError()
               << "cannot incrementalize @" << func.getSymName()
               << ": argument #" << cast<BlockArgument>(v).getArgNumber()
               << " is needed over every cached token but is not cached";
      continue;
    }
    if (auto block = dyn_cast<RoutedBlockOp>(op)) {
      // Position-wise from outside: the block's own caches (planned in
      // planRoutedBlock) hold what its body needs of earlier tokens.
      if (form != "q" && !withCaches)
        continue; // Before the caches are chosen: a later layer's keys.
      if (form != "q")
        return op->emitError()
               << "cannot incrementalize 'mod.routed_block': its output is "
                  "needed over every cached token and cannot be cached";
      if (opForms[op].empty()) {
        opForms[op].push_back(OpForm{form});
        demand(block.getInput(), form);
        demand(block.getPositions(), form);
      }
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
  // With no cache at all because every block is routed (each has its own)
  // nothing here needs masking.
  bool hasRouted = llvm::any_of(
      opForms, [](const auto &entry) { return isa<RoutedBlockOp>(entry.first); });
  if ((!caches.empty() || !hasRouted) && !caches.contains(positions))
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
  for (Operation &op : func.getBody().front())
    if (auto block = dyn_cast<RoutedBlockOp>(&op);
        block && opForms.count(&op) && failed(planRoutedBlock(block)))
      return failure();
  return success();
}

/// A routed block's body outlined into a function (captured values...,
/// xk [B,K,D], pk [B,K]) -> d [B,K,D], and its incrementalization: its own
/// caches over the routed tokens only, keyed by pk.
struct RoutedPlan {
  RoutedBlockOp op;
  /// The router weight's name without ".mod.router.weight".
  std::string prefix;
  SmallVector<Value> captured;
  OwningOpRef<ModuleOp> module;
  func::FuncOp body;
  std::unique_ptr<TokenAxisAnalysis> axes;
  std::unique_ptr<Incrementalizer> inc;
};

Incrementalizer::Incrementalizer(func::FuncOp func,
                                 const TokenAxisAnalysis &axes,
                                 int64_t seqLen, Value tokens,
                                 Value positions, RoutingRule rule)
    : func(func), axes(axes), seqLen(seqLen), tokens(tokens),
      positions(positions), rule(rule) {}

Incrementalizer::~Incrementalizer() = default;

LogicalResult Incrementalizer::planRoutedBlock(RoutedBlockOp op) {
  auto plan = std::make_unique<RoutedPlan>();
  plan->op = op;
  plan->prefix = "block" + std::to_string(routed.size());
  if (auto arg = dyn_cast<BlockArgument>(op.getRouterWeight());
      arg && arg.getOwner() == &func.getBody().front())
    if (auto name =
            func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), kNameAttr)) {
      StringRef n = name.getValue();
      if (n.consume_back(".mod.router.weight"))
        plan->prefix = n.str();
    }
  if (op.getBody().walk([](RoutedBlockOp) { return WalkResult::interrupt(); })
          .wasInterrupted())
    return op.emitError() << "cannot incrementalize a 'mod.routed_block' "
                             "nested in another";
  llvm::SetVector<Value> above;
  getUsedValuesDefinedAbove(op.getBody(), above);
  for (Value v : above)
    if (numTokenAtoms(v))
      return op.emitError()
             << "cannot incrementalize 'mod.routed_block': its body uses a "
                "value with a token axis defined outside it ("
             << v.getType() << "); only the routed tokens may enter the block";
  plan->captured.assign(above.begin(), above.end());

  MLIRContext *ctx = op.getContext();
  Block &body = op.getBody().front();
  auto yield = cast<YieldOp>(body.getTerminator());
  plan->module = ModuleOp::create(op.getLoc());
  OpBuilder mb = OpBuilder::atBlockEnd(plan->module->getBody());
  SmallVector<Type> types;
  for (Value v : plan->captured)
    types.push_back(v.getType());
  types.push_back(body.getArgument(0).getType());
  types.push_back(body.getArgument(1).getType());
  auto fn = func::FuncOp::create(
      mb, op.getLoc(), "routed_block_body",
      FunctionType::get(ctx, types, {yield.getValue().getType()}));
  Block *entry = fn.addEntryBlock();
  unsigned n = plan->captured.size();
  IRMapping m;
  for (auto [i, v] : llvm::enumerate(plan->captured))
    m.map(v, entry->getArgument(i));
  m.map(body.getArgument(0), entry->getArgument(n));
  m.map(body.getArgument(1), entry->getArgument(n + 1));
  OpBuilder eb = OpBuilder::atBlockEnd(entry);
  for (Operation &o : body.without_terminator())
    eb.clone(o, m);
  func::ReturnOp::create(eb, yield.getLoc(),
                         m.lookupOrDefault(yield.getValue()));
  plan->body = fn;
  Value xk = entry->getArgument(n), pk = entry->getArgument(n + 1);
  plan->axes = std::make_unique<TokenAxisAnalysis>(fn, ArrayRef<Value>{pk, xk});
  plan->inc = std::make_unique<Incrementalizer>(
      fn, *plan->axes, int64_t(op.getCapacity()), Value(), pk, rule);
  plan->inc->addQueryInput(xk);
  if (failed(plan->inc->analyze()))
    return failure();
  routed.push_back(std::move(plan));
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
/// With `src` ([B,T] i32), slot offsets[b] + j takes fresh[b, src[b,j]].
Value writeCache(OpBuilder &b, Location loc, Value cache, Value fresh,
                 Value offsets, Value counts, Value src = Value()) {
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
               if (src)
                 at[1] = arith::IndexCastOp::create(
                     nb, nl, nb.getIndexType(),
                     tensor::ExtractOp::create(nb, nl, src,
                                               ValueRange{idx[0], safe}));
               Value value = tensor::ExtractOp::create(nb, nl, fresh, at);
               linalg::YieldOp::create(
                   nb, nl,
                   arith::SelectOp::create(nb, nl, inRange, value, args[2])
                       .getResult());
             })
      .getResult(0);
}

/// A decode step's write: cache[r, offsets[b], ...] = fresh[b, 0, ...] for
/// every row b whose offset is a slot (< Smax), r = rows[b] with `rows`, else
/// b: one in-place insert_slice per row instead of a pass over the whole
/// cache.
Value writeCacheRows(OpBuilder &b, Location loc, Value cache, Value fresh,
                     Value offsets, Value rows) {
  auto type = cast<RankedTensorType>(cache.getType());
  int64_t rank = type.getRank();
  int64_t batch = cast<RankedTensorType>(fresh.getType()).getDimSize(0);
  Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
  Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
  Value cB = arith::ConstantIndexOp::create(b, loc, batch);
  Value slots = arith::ConstantIndexOp::create(b, loc, type.getDimSize(1));
  auto loop = scf::ForOp::create(
      b, loc, c0, cB, c1, ValueRange{cache},
      [&](OpBuilder &nb, Location nl, Value row, ValueRange iter) {
        Value slot = arith::IndexCastOp::create(
            nb, nl, nb.getIndexType(),
            tensor::ExtractOp::create(nb, nl, offsets, ValueRange{row}));
        Value inRange = arith::CmpIOp::create(
            nb, nl, arith::CmpIPredicate::slt, slot, slots);
        auto ifOp = scf::IfOp::create(nb, nl, TypeRange{type}, inRange,
                                      /*withElseRegion=*/true);
        OpBuilder tb = ifOp.getThenBodyBuilder();
        SmallVector<OpFoldResult> offs(rank, tb.getIndexAttr(0)),
            ones(rank, tb.getIndexAttr(1));
        SmallVector<OpFoldResult> sizes{tb.getIndexAttr(1), tb.getIndexAttr(1)};
        for (int64_t d = 2; d < rank; ++d)
          sizes.push_back(tb.getIndexAttr(type.getDimSize(d)));
        offs[0] = row;
        Value piece = tensor::ExtractSliceOp::create(tb, nl, fresh, offs,
                                                     sizes, ones);
        offs[1] = slot;
        if (rows)
          offs[0] = arith::IndexCastOp::create(
                        tb, nl, tb.getIndexType(),
                        tensor::ExtractOp::create(tb, nl, rows,
                                                  ValueRange{row}))
                        .getResult();
        Value written = tensor::InsertSliceOp::create(tb, nl, piece, iter[0],
                                                      offs, sizes, ones);
        scf::YieldOp::create(tb, nl, written);
        OpBuilder eb = ifOp.getElseBodyBuilder();
        scf::YieldOp::create(eb, nl, iter[0]);
        scf::YieldOp::create(nb, nl, ifOp.getResults());
      });
  return loop.getResult(0);
}

/// The cache as the key side sees it: slots at or past offsets[b] +
/// counts[b] read `empty[b]` (an i32/float per row) instead of the buffer.
/// With `rows` ([B'] i32), row b of the result is row rows[b] of the cache.
Value readCache(OpBuilder &b, Location loc, Value cache, Value offsets,
                Value counts, Value emptyPerRow, Value rows = Value()) {
  auto type = cast<RankedTensorType>(cache.getType());
  unsigned rank = type.getRank();
  MLIRContext *ctx = b.getContext();
  AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
  AffineMap row = batchMap(ctx, rank);
  if (rows) {
    SmallVector<int64_t> shape(type.getShape());
    shape[0] = cast<RankedTensorType>(rows.getType()).getDimSize(0);
    auto outType = RankedTensorType::get(shape, type.getElementType());
    Value init = tensor::EmptyOp::create(b, loc, shape, type.getElementType());
    return linalg::GenericOp::create(
               b, loc, outType, ValueRange{offsets, counts, emptyPerRow, rows},
               ValueRange{init}, ArrayRef<AffineMap>{row, row, row, row, id},
               SmallVector<utils::IteratorType>(rank,
                                                utils::IteratorType::parallel),
               [&](OpBuilder &nb, Location nl, ValueRange args) {
                 SmallVector<Value> at;
                 for (unsigned d = 0; d < rank; ++d)
                   at.push_back(linalg::IndexOp::create(nb, nl, d));
                 Value slot = arith::IndexCastOp::create(nb, nl,
                                                         nb.getI32Type(), at[1]);
                 Value end = arith::AddIOp::create(nb, nl, args[0], args[1]);
                 Value valid = arith::CmpIOp::create(
                     nb, nl, arith::CmpIPredicate::slt, slot, end);
                 at[0] = arith::IndexCastOp::create(nb, nl, nb.getIndexType(),
                                                    args[3]);
                 Value value = tensor::ExtractOp::create(nb, nl, cache, at);
                 linalg::YieldOp::create(
                     nb, nl,
                     arith::SelectOp::create(nb, nl, valid, value, args[2])
                         .getResult());
               })
        .getResult(0);
  }
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

/// The predictor MLP's logits tanh(x W1 + b1) . w2 + b2 for x [B,T,D]:
/// [B,T], as --mod-generate-grad trains it.
static Value predictorScores(OpBuilder &b, Location loc, Value x,
                             ArrayRef<Value> params) {
  auto xType = cast<RankedTensorType>(x.getType());
  Type et = xType.getElementType();
  int64_t rows = xType.getDimSize(0) * xType.getDimSize(1);
  int64_t hidden = cast<RankedTensorType>(params[0].getType()).getDimSize(1);
  MLIRContext *ctx = b.getContext();
  Value zero = arith::ConstantOp::create(b, loc, et, b.getFloatAttr(et, 0.0));
  auto filled = [&](ArrayRef<int64_t> shape) {
    return linalg::FillOp::create(
               b, loc, zero,
               ValueRange{tensor::EmptyOp::create(b, loc, shape, et)})
        .getResult(0);
  };
  Value flat = tensor::CollapseShapeOp::create(
      b, loc, x, ArrayRef<ReassociationIndices>{{0, 1}, {2}});
  Value pre = linalg::MatmulOp::create(b, loc, ValueRange{flat, params[0]},
                                       ValueRange{filled({rows, hidden})})
                  .getResult(0);
  AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, ctx);
  AffineMap d0 = AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx);
  AffineMap d1 = AffineMap::get(2, 0, {getAffineDimExpr(1, ctx)}, ctx);
  AffineMap none = AffineMap::get(2, 0, {}, ctx);
  Value h = linalg::GenericOp::create(
                b, loc, pre.getType(), ValueRange{pre, params[1]},
                ValueRange{tensor::EmptyOp::create(
                    b, loc, ArrayRef<int64_t>{rows, hidden}, et)},
                ArrayRef<AffineMap>{id2, d1, id2},
                SmallVector<utils::IteratorType>(
                    2, utils::IteratorType::parallel),
                [](OpBuilder &nb, Location nl, ValueRange args) {
                  linalg::YieldOp::create(
                      nb, nl,
                      math::TanhOp::create(
                          nb, nl,
                          arith::AddFOp::create(nb, nl, args[0], args[1]))
                          .getResult());
                })
                .getResult(0);
  // The bias enters once, at hidden index 0, as in training.
  Value p = linalg::GenericOp::create(
                b, loc, RankedTensorType::get({rows}, et),
                ValueRange{h, params[2], params[3]}, ValueRange{filled({rows})},
                ArrayRef<AffineMap>{id2, d1, none, d0},
                ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                              utils::IteratorType::reduction},
                [](OpBuilder &nb, Location nl, ValueRange args) {
                  Value first = arith::CmpIOp::create(
                      nb, nl, arith::CmpIPredicate::eq,
                      linalg::IndexOp::create(nb, nl, 1),
                      arith::ConstantIndexOp::create(nb, nl, 0));
                  Value z = arith::ConstantOp::create(
                      nb, nl, args[2].getType(),
                      nb.getFloatAttr(args[2].getType(), 0.0));
                  Value bias =
                      arith::SelectOp::create(nb, nl, first, args[2], z);
                  Value term = arith::AddFOp::create(
                      nb, nl, arith::MulFOp::create(nb, nl, args[0], args[1]),
                      bias);
                  linalg::YieldOp::create(
                      nb, nl,
                      arith::AddFOp::create(nb, nl, args[3], term).getResult());
                })
                .getResult(0);
  return tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get({xType.getDimSize(0), xType.getDimSize(1)}, et),
      p, ArrayRef<ReassociationIndices>{{0, 1}});
}

/// Clones the body of `fn` at `b` with its arguments mapped by `m`;
/// returns what it returns.
static SmallVector<Value> inlineFunction(OpBuilder &b, func::FuncOp fn,
                                         IRMapping &m) {
  for (Operation &o : fn.getBody().front().without_terminator())
    b.clone(o, m);
  SmallVector<Value> results;
  for (Value v : fn.getBody().front().getTerminator()->getOperands())
    results.push_back(m.lookupOrDefault(v));
  return results;
}

/// Row `row` (an index) of `full` [B,...] as [1,...], and back.
static SmallVector<OpFoldResult> rowOffsets(OpBuilder &b, Value row,
                                            int64_t rank) {
  SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0));
  offsets[0] = row;
  return offsets;
}
static SmallVector<OpFoldResult> rowSizes(OpBuilder &b, RankedTensorType type) {
  SmallVector<OpFoldResult> sizes{b.getIndexAttr(1)};
  for (int64_t d = 1; d < type.getRank(); ++d)
    sizes.push_back(b.getIndexAttr(type.getDimSize(d)));
  return sizes;
}
static Value extractRow(OpBuilder &b, Location loc, Value full, Value row) {
  auto type = cast<RankedTensorType>(full.getType());
  SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
  return tensor::ExtractSliceOp::create(b, loc, full,
                                        rowOffsets(b, row, type.getRank()),
                                        rowSizes(b, type), strides);
}
static Value insertRow(OpBuilder &b, Location loc, Value rowValue, Value full,
                       Value row) {
  auto type = cast<RankedTensorType>(full.getType());
  SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
  return tensor::InsertSliceOp::create(b, loc, rowValue, full,
                                       rowOffsets(b, row, type.getRank()),
                                       rowSizes(b, type), strides);
}

/// Rows rows[0..k) of `full` [B,...] as [k,...].
static Value gatherBatchRows(OpBuilder &b, Location loc, Value full,
                             Value rows) {
  auto type = cast<RankedTensorType>(full.getType());
  unsigned rank = type.getRank();
  MLIRContext *ctx = b.getContext();
  SmallVector<int64_t> shape(type.getShape());
  shape[0] = cast<RankedTensorType>(rows.getType()).getDimSize(0);
  auto outType = RankedTensorType::get(shape, type.getElementType());
  return linalg::GenericOp::create(
             b, loc, outType, ValueRange{rows},
             ValueRange{tensor::EmptyOp::create(b, loc, shape,
                                                type.getElementType())},
             ArrayRef<AffineMap>{batchMap(ctx, rank),
                                 AffineMap::getMultiDimIdentityMap(rank, ctx)},
             SmallVector<utils::IteratorType>(rank,
                                              utils::IteratorType::parallel),
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               SmallVector<Value> at;
               for (unsigned d = 0; d < rank; ++d)
                 at.push_back(linalg::IndexOp::create(nb, nl, d));
               at[0] = arith::IndexCastOp::create(nb, nl, nb.getIndexType(),
                                                  args[0]);
               linalg::YieldOp::create(
                   nb, nl,
                   tensor::ExtractOp::create(nb, nl, full, at).getResult());
             })
      .getResult(0);
}

FailureOr<Value> Incrementalizer::emitRoutedBlock(
    OpBuilder &fb, RoutedPlan &plan, const StepKind &kind, Value x, Value pos,
    Value promptLengths, ArrayRef<Value> predictorParams,
    MutableArrayRef<Value> state, const IRMapping &shared) {
  RoutedBlockOp op = plan.op;
  Location loc = op.getLoc();
  MLIRContext *ctx = op.getContext();
  auto xType = cast<RankedTensorType>(x.getType());
  const int64_t batch = xType.getDimSize(0), t = xType.getDimSize(1);
  Type et = xType.getElementType();
  Type i32 = fb.getI32Type(), index = fb.getIndexType();
  const unsigned numCaches = plan.inc->getCaches().size();
  const unsigned numCaptured = plan.captured.size();

  // The router logits scale the block's output; the decision is theirs
  // (aux-loss training: sigmoid(r) > 0.5) or the predictor's.
  Value w = shared.lookupOrDefault(op.getRouterWeight());
  Value scores = RouterOp::create(
      fb, loc, RankedTensorType::get({batch, t}, et), x, w);
  Value decide = predictorParams.empty()
                     ? scores
                     : predictorScores(fb, loc, x, predictorParams);
  GateKind gate = op.getGate();
  auto isRouted = [&](OpBuilder &b, Location l, Value score) -> Value {
    Value zero = arith::ConstantOp::create(b, l, et, b.getFloatAttr(et, 0.0));
    return arith::CmpFOp::create(b, l, arith::CmpFPredicate::OGT, score, zero);
  };
  auto gated = [&](OpBuilder &b, Location l, Value r) -> Value {
    return gate == GateKind::Sigmoid ? buildSigmoid(b, l, r) : r;
  };
  auto mapCaptured = [&](IRMapping &m, func::FuncOp fn) {
    for (unsigned i = 0; i < numCaptured; ++i)
      m.map(fn.getArgument(i), shared.lookupOrDefault(plan.captured[i]));
  };
  OpBuilder mb = OpBuilder::atBlockEnd(plan.module->getBody());
  Value c0 = arith::ConstantIndexOp::create(fb, loc, 0);
  Value c1 = arith::ConstantIndexOp::create(fb, loc, 1);
  Value cB = arith::ConstantIndexOp::create(fb, loc, batch);

  if (kind.decode) {
    // Compaction: rows[0..n) are the sequences whose token is routed.
    Value rowsInit = filledVector(fb, loc, batch, i32, 0);
    auto compact = scf::ForOp::create(
        fb, loc, c0, cB, c1, ValueRange{rowsInit, c0},
        [&](OpBuilder &nb, Location nl, Value b, ValueRange iter) {
          Value score =
              tensor::ExtractOp::create(nb, nl, decide, ValueRange{b, c0});
          auto ifOp = scf::IfOp::create(
              nb, nl, TypeRange{iter[0].getType(), index},
              isRouted(nb, nl, score), /*withElseRegion=*/true);
          OpBuilder tb = ifOp.getThenBodyBuilder();
          Value bi = arith::IndexCastOp::create(tb, nl, i32, b);
          Value rows = tensor::InsertOp::create(tb, nl, bi, iter[0],
                                                ValueRange{iter[1]});
          Value next = arith::AddIOp::create(tb, nl, iter[1], c1);
          scf::YieldOp::create(tb, nl, ValueRange{rows, next});
          OpBuilder eb = ifOp.getElseBodyBuilder();
          scf::YieldOp::create(eb, nl, iter);
          scf::YieldOp::create(nb, nl, ifOp.getResults());
        });
    compact->setAttr("mod.routed_rows", fb.getUnitAttr());
    Value rows = compact.getResult(0), n = compact.getResult(1);
    // The block runs once on the routed rows together, as a step of static
    // batch k for the smallest k in `sizes` that holds the n rows (rows past
    // n repeat the last routed row: the same token computed twice writes
    // the same values into the same slots). An scf.index_switch on k picks
    // the step, so every GEMM has a static M = k <= B; n = 0 runs nothing.
    SmallVector<int64_t> sizes;
    for (int64_t k = 1; k <= std::min<int64_t>(batch, 8); ++k)
      sizes.push_back(k);
    for (int64_t k = 16; k < batch; k *= 2)
      sizes.push_back(k);
    if (batch > 8)
      sizes.push_back(batch);
    Value chosen = arith::ConstantIndexOp::create(fb, loc, sizes.back());
    for (int64_t k : llvm::reverse(sizes)) {
      Value fits = arith::CmpIOp::create(
          fb, loc, arith::CmpIPredicate::ule, n,
          arith::ConstantIndexOp::create(fb, loc, k));
      chosen = arith::SelectOp::create(
          fb, loc, fits, arith::ConstantIndexOp::create(fb, loc, k), chosen);
    }
    Value none =
        arith::CmpIOp::create(fb, loc, arith::CmpIPredicate::eq, n, c0);
    chosen = arith::SelectOp::create(fb, loc, none, c0, chosen);
    SmallVector<Value> passThrough{x};
    passThrough.append(state.begin(), state.end());
    SmallVector<Type> resultTypes;
    for (Value v : passThrough)
      resultTypes.push_back(v.getType());
    auto sw = scf::IndexSwitchOp::create(fb, loc, resultTypes, chosen, sizes,
                                         sizes.size());
    {
      OpBuilder db = OpBuilder::atBlockEnd(&sw.getDefaultRegion().emplaceBlock());
      scf::YieldOp::create(db, loc, passThrough);
    }
    Value lengthsIn = state[numCaches];
    for (auto [ci, k] : llvm::enumerate(sizes)) {
      StepKind stepKind;
      stepKind.t = 1;
      stepKind.smax = kind.smax;
      stepKind.batch = k;
      stepKind.decode = true;
      stepKind.gather = true;
      stepKind.cacheBatch = batch;
      FailureOr<func::FuncOp> step = plan.inc->build(
          mb, ("routed_block_step_" + std::to_string(k)), stepKind);
      if (failed(step))
        return failure();
      OpBuilder nb =
          OpBuilder::atBlockEnd(&sw.getCaseRegions()[ci].emplaceBlock());
      Location nl = loc;
      // The k rows: rows[min(i, n - 1)].
      Value last = arith::SubIOp::create(nb, nl, n, c1);
      SmallVector<Value> picked;
      for (int64_t i = 0; i < k; ++i) {
        Value at = arith::MinUIOp::create(
            nb, nl, arith::ConstantIndexOp::create(nb, nl, i), last);
        picked.push_back(tensor::ExtractOp::create(nb, nl, rows, ValueRange{at}));
      }
      Value stepRows = tensor::FromElementsOp::create(
          nb, nl, RankedTensorType::get({k}, i32), picked);
      IRMapping m;
      mapCaptured(m, *step);
      m.map(step->getArgument(numCaptured),
            gatherBatchRows(nb, nl, x, stepRows));
      m.map(step->getArgument(numCaptured + 1),
            gatherBatchRows(nb, nl, pos, stepRows));
      for (unsigned c = 0; c < numCaches; ++c)
        m.map(step->getArgument(numCaptured + 2 + c), state[c]);
      m.map(step->getArgument(numCaptured + 2 + numCaches),
            gatherBatchRows(nb, nl, lengthsIn, stepRows));
      m.map(step->getArgument(numCaptured + 3 + numCaches), stepRows);
      SmallVector<Value> res = inlineFunction(nb, *step, m);
      step->erase();
      // Each routed row: out = x + g(r) * d, and one more token in its
      // caches.
      SmallVector<Value> init{x, lengthsIn};
      auto scatter = scf::ForOp::create(
          nb, nl, c0, n, c1, init,
          [&](OpBuilder &lb, Location ll, Value i, ValueRange iter) {
            Value row = arith::IndexCastOp::create(
                lb, ll, index,
                tensor::ExtractOp::create(lb, ll, rows, ValueRange{i}));
            Value xRow = extractRow(lb, ll, x, row);
            Value dRow = extractRow(lb, ll, res[0], i);
            Value r = tensor::ExtractOp::create(lb, ll, scores,
                                                ValueRange{row, c0});
            Value g = gated(lb, ll, r);
            Value outRow = buildElementwise(
                lb, ll, {xRow, dRow},
                [&](OpBuilder &eb, Location el, ValueRange args) -> Value {
                  return arith::AddFOp::create(
                      eb, el, args[0],
                      arith::MulFOp::create(eb, el, g, args[1]));
                });
            Value len =
                tensor::ExtractOp::create(lb, ll, iter[1], ValueRange{row});
            Value one = arith::ConstantOp::create(lb, ll, i32,
                                                  lb.getI32IntegerAttr(1));
            scf::YieldOp::create(
                lb, ll,
                ValueRange{insertRow(lb, ll, outRow, iter[0], row),
                           tensor::InsertOp::create(
                               lb, ll, arith::AddIOp::create(lb, ll, len, one),
                               iter[1], ValueRange{row})});
          });
      SmallVector<Value> yields{scatter.getResult(0)};
      for (unsigned c = 0; c < numCaches; ++c)
        yields.push_back(res[1 + c]);
      yields.push_back(scatter.getResult(1));
      scf::YieldOp::create(nb, nl, yields);
    }
    sw->setAttr("mod.routed_block", fb.getStringAttr(plan.prefix));
    for (unsigned s = 0; s < state.size(); ++s)
      state[s] = sw.getResult(1 + s);
    return sw.getResult(0);
  }

  // Prefill: the routed tokens of each sequence's prompt, in order:
  // counts[b] of them, token src[b,j] the j-th, token i the inv[b,i]-th.
  Value countsInit = filledVector(fb, loc, batch, i32, 0);
  Value zeroI32 =
      arith::ConstantOp::create(fb, loc, i32, fb.getI32IntegerAttr(0));
  auto filledTokens = [&]() -> Value {
    return linalg::FillOp::create(
               fb, loc, zeroI32,
               ValueRange{tensor::EmptyOp::create(
                   fb, loc, ArrayRef<int64_t>{batch, t}, i32)})
        .getResult(0);
  };
  Value srcInit = filledTokens(), invInit = filledTokens();
  auto perRow = scf::ForOp::create(
      fb, loc, c0, cB, c1, ValueRange{countsInit, srcInit, invInit, c0},
      [&](OpBuilder &nb, Location nl, Value b, ValueRange iter) {
        Value len = arith::IndexCastOp::create(
            nb, nl, index,
            tensor::ExtractOp::create(nb, nl, promptLengths, ValueRange{b}));
        auto perToken = scf::ForOp::create(
            nb, nl, c0, len, c1, ValueRange{c0, iter[1], iter[2]},
            [&](OpBuilder &tb, Location tl, Value j, ValueRange it2) {
              Value score =
                  tensor::ExtractOp::create(tb, tl, decide, ValueRange{b, j});
              auto ifOp = scf::IfOp::create(
                  tb, tl,
                  TypeRange{index, it2[1].getType(), it2[2].getType()},
                  isRouted(tb, tl, score), /*withElseRegion=*/true);
              OpBuilder yb = ifOp.getThenBodyBuilder();
              Value ji = arith::IndexCastOp::create(yb, tl, i32, j);
              Value src = tensor::InsertOp::create(yb, tl, ji, it2[1],
                                                   ValueRange{b, it2[0]});
              Value rank = arith::IndexCastOp::create(yb, tl, i32, it2[0]);
              Value inv = tensor::InsertOp::create(yb, tl, rank, it2[2],
                                                   ValueRange{b, j});
              scf::YieldOp::create(
                  yb, tl,
                  ValueRange{arith::AddIOp::create(yb, tl, it2[0], c1), src,
                             inv});
              OpBuilder eb = ifOp.getElseBodyBuilder();
              scf::YieldOp::create(eb, tl, it2);
              scf::YieldOp::create(tb, tl, ifOp.getResults());
            });
        Value count = arith::IndexCastOp::create(nb, nl, i32,
                                                 perToken.getResult(0));
        Value counts =
            tensor::InsertOp::create(nb, nl, count, iter[0], ValueRange{b});
        Value most =
            arith::MaxUIOp::create(nb, nl, iter[3], perToken.getResult(0));
        scf::YieldOp::create(nb, nl,
                             ValueRange{counts, perToken.getResult(1),
                                        perToken.getResult(2), most});
      });
  Value counts = perRow.getResult(0), src = perRow.getResult(1),
        inv = perRow.getResult(2), most = perRow.getResult(3);

  // The block runs on the routed tokens only, gathered to [B,K] for the
  // smallest K of P/8, P/4, P/2, P (rounded up) that holds every row's count
  // (an scf.index_switch on K; K = 0, no token routed, runs nothing). Slots
  // past a row's count repeat its token src[b,0]: their outputs are dropped
  // and they write no cache (counts bounds the writes).
  SmallVector<int64_t> sizes;
  for (int64_t div : {8, 4, 2, 1}) {
    int64_t k = std::max<int64_t>((t + div - 1) / div, 1);
    if (sizes.empty() || sizes.back() != k)
      sizes.push_back(k);
  }
  Value chosen = arith::ConstantIndexOp::create(fb, loc, sizes.back());
  for (int64_t k : llvm::reverse(sizes)) {
    Value kc = arith::ConstantIndexOp::create(fb, loc, k);
    Value fits =
        arith::CmpIOp::create(fb, loc, arith::CmpIPredicate::ule, most, kc);
    chosen = arith::SelectOp::create(fb, loc, fits, kc, chosen);
  }
  Value none =
      arith::CmpIOp::create(fb, loc, arith::CmpIPredicate::eq, most, c0);
  chosen = arith::SelectOp::create(fb, loc, none, c0, chosen);
  SmallVector<Value> passThrough{x};
  for (unsigned c = 0; c < numCaches; ++c)
    passThrough.push_back(state[c]);
  SmallVector<Type> resultTypes;
  for (Value v : passThrough)
    resultTypes.push_back(v.getType());
  auto sw = scf::IndexSwitchOp::create(fb, loc, resultTypes, chosen, sizes,
                                       sizes.size());
  {
    OpBuilder db = OpBuilder::atBlockEnd(&sw.getDefaultRegion().emplaceBlock());
    scf::YieldOp::create(db, loc, passThrough);
  }
  unsigned rank = xType.getRank();
  AffineMap idN = AffineMap::getMultiDimIdentityMap(rank, ctx);
  AffineMap tokN = AffineMap::get(
      rank, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx)}, ctx);
  AffineMap rowN = AffineMap::get(rank, 0, {getAffineDimExpr(0, ctx)}, ctx);
  for (auto [ci, size] : llvm::enumerate(sizes)) {
    const int64_t k = size; // Captured by the lambdas below.
    StepKind allKind;
    allKind.t = k;
    allKind.smax = kind.smax;
    allKind.batch = batch;
    allKind.indirect = true;
    FailureOr<func::FuncOp> prefill = plan.inc->build(
        mb, "routed_block_prefill_" + std::to_string(k), allKind);
    if (failed(prefill))
      return failure();
    OpBuilder nb =
        OpBuilder::atBlockEnd(&sw.getCaseRegions()[ci].emplaceBlock());
    SmallVector<OpFoldResult> zeros(2, nb.getIndexAttr(0)),
        ones(2, nb.getIndexAttr(1)),
        sizesK{nb.getIndexAttr(batch), nb.getIndexAttr(k)};
    Value srcK =
        tensor::ExtractSliceOp::create(nb, loc, src, zeros, sizesK, ones);
    // Token src[b,j] of row b, for x [B,P,D] and the positions [B,P].
    auto gatherTokens = [&](Value full) -> Value {
      auto type = cast<RankedTensorType>(full.getType());
      unsigned r = type.getRank();
      SmallVector<int64_t> shape(type.getShape());
      shape[1] = k;
      AffineMap tok = AffineMap::get(
          r, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx)}, ctx);
      return linalg::GenericOp::create(
                 nb, loc, RankedTensorType::get(shape, type.getElementType()),
                 ValueRange{srcK},
                 ValueRange{tensor::EmptyOp::create(nb, loc, shape,
                                                    type.getElementType())},
                 ArrayRef<AffineMap>{tok,
                                     AffineMap::getMultiDimIdentityMap(r, ctx)},
                 SmallVector<utils::IteratorType>(
                     r, utils::IteratorType::parallel),
                 [&](OpBuilder &gb, Location gl, ValueRange args) {
                   SmallVector<Value> at;
                   for (unsigned d = 0; d < r; ++d)
                     at.push_back(linalg::IndexOp::create(gb, gl, d));
                   at[1] = arith::IndexCastOp::create(
                       gb, gl, gb.getIndexType(), args[0]);
                   linalg::YieldOp::create(
                       gb, gl,
                       tensor::ExtractOp::create(gb, gl, full, at).getResult());
                 })
          .getResult(0);
    };
    // Gathered, the j-th routed token is token j.
    Value ident =
        linalg::GenericOp::create(
            nb, loc, srcK.getType(), ValueRange{},
            ValueRange{tensor::EmptyOp::create(
                nb, loc, ArrayRef<int64_t>{batch, k}, i32)},
            ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(2, ctx)},
            SmallVector<utils::IteratorType>(2,
                                             utils::IteratorType::parallel),
            [&](OpBuilder &gb, Location gl, ValueRange) {
              linalg::YieldOp::create(
                  gb, gl,
                  arith::IndexCastOp::create(gb, gl, i32,
                                             linalg::IndexOp::create(gb, gl, 1))
                      .getResult());
            })
            .getResult(0);
    IRMapping m;
    mapCaptured(m, *prefill);
    m.map(prefill->getArgument(numCaptured), gatherTokens(x));
    m.map(prefill->getArgument(numCaptured + 1), gatherTokens(pos));
    for (unsigned c = 0; c < numCaches; ++c)
      m.map(prefill->getArgument(numCaptured + 2 + c), state[c]);
    unsigned tail = numCaptured + 2 + numCaches;
    m.map(prefill->getArgument(tail), filledVector(nb, loc, batch, i32, 0));
    m.map(prefill->getArgument(tail + 1), counts);
    m.map(prefill->getArgument(tail + 2), ident);
    SmallVector<Value> res = inlineFunction(nb, *prefill, m);
    prefill->erase();
    Value d = res[0];
    // out = routed ? x + g(r) * d[inv] : x, routed = decision > 0 within
    // the prompt, computed in place on x (its init): every case of the
    // switch then yields x's buffer like the default, so bufferization
    // never sees a switch whose results are different buffers in different
    // cases (its in-place analysis of scf.index_switch then let a later op
    // overwrite the result while it was still read).
    Value kLast = arith::ConstantOp::create(nb, loc, i32,
                                            nb.getI32IntegerAttr(k - 1));
    Value out =
        linalg::GenericOp::create(
            nb, loc, xType, ValueRange{inv, scores, decide, promptLengths},
            ValueRange{x}, ArrayRef<AffineMap>{tokN, tokN, tokN, rowN, idN},
            SmallVector<utils::IteratorType>(rank,
                                             utils::IteratorType::parallel),
            [&](OpBuilder &gb, Location gl, ValueRange args) {
              SmallVector<Value> at;
              for (unsigned dd = 0; dd < rank; ++dd)
                at.push_back(linalg::IndexOp::create(gb, gl, dd));
              Value j = arith::IndexCastOp::create(gb, gl, i32, at[1]);
              Value inPrompt = arith::CmpIOp::create(
                  gb, gl, arith::CmpIPredicate::slt, j, args[3]);
              Value routedHere = arith::AndIOp::create(
                  gb, gl, inPrompt, isRouted(gb, gl, args[2]));
              at[1] = arith::IndexCastOp::create(
                  gb, gl, gb.getIndexType(),
                  arith::MinSIOp::create(gb, gl, args[0], kLast));
              Value dv = tensor::ExtractOp::create(gb, gl, d, at);
              Value xv = args[4];
              Value sum = arith::AddFOp::create(
                  gb, gl, xv,
                  arith::MulFOp::create(gb, gl, gated(gb, gl, args[1]), dv));
              linalg::YieldOp::create(
                  gb, gl,
                  arith::SelectOp::create(gb, gl, routedHere, sum, xv)
                      .getResult());
            })
            .getResult(0);
    SmallVector<Value> yields{out};
    for (unsigned c = 0; c < numCaches; ++c)
      yields.push_back(res[1 + c]);
    scf::YieldOp::create(nb, loc, yields);
  }
  sw->setAttr("mod.routed_block", fb.getStringAttr(plan.prefix));
  for (unsigned c = 0; c < numCaches; ++c)
    state[c] = sw.getResult(1 + c);
  state[numCaches] = counts;
  return sw.getResult(0);
}

RankedTensorType Incrementalizer::cacheType(unsigned i, int64_t smax,
                                            int64_t batch) {
  int64_t saved = batchSize;
  batchSize = batch;
  RankedTensorType type = formType(caches[i], Form(1, kKey), 1, smax);
  batchSize = saved;
  return type;
}

FailureOr<RowBox> Incrementalizer::rowBox(OpBuilder &b, Location loc,
                                           Value v, StringRef form, int64_t t,
                                           int64_t smax, Value row,
                                           Value extent) const {
  RowBox box;
  unsigned next = 0;
  for (const auto &dim : axes.getLayout(v)) {
    // Sizes of the dimension's atoms in this function; which is the batch
    // (1) or a key (2) atom.
    SmallVector<int64_t> sizes;
    int special = -1, kind = 0;
    for (const AxisAtom &a : dim) {
      int k = 0;
      if (!a.token) {
        sizes.push_back(a.batch && batchSize ? batchSize : a.size);
        k = a.batch ? 1 : 0;
      } else {
        bool key = form[next++] == kKey;
        sizes.push_back(key ? smax : t);
        k = key ? 2 : 0;
      }
      if (!k)
        continue;
      if (special >= 0)
        return failure(); // Two of them in one dimension.
      special = sizes.size() - 1;
      kind = k;
    }
    int64_t inner = 1, full = 1;
    for (auto [i, size] : llvm::enumerate(sizes)) {
      full *= size;
      if (special >= 0 && int(i) > special)
        inner *= size;
      // A row is one box only if nothing non-unit encloses its atom.
      if (special >= 0 && int(i) < special && size != 1)
        return failure();
    }
    box.strides.push_back(b.getIndexAttr(1));
    if (special < 0) {
      box.offsets.push_back(b.getIndexAttr(0));
      box.sizes.push_back(b.getIndexAttr(full));
      box.shape.push_back(full);
      continue;
    }
    box.whole = false;
    if (kind == 1) {
      Value offset = arith::MulIOp::create(
          b, loc, row, arith::ConstantIndexOp::create(b, loc, inner));
      box.offsets.push_back(offset);
      box.sizes.push_back(b.getIndexAttr(inner));
      box.shape.push_back(inner);
      continue;
    }
    box.offsets.push_back(b.getIndexAttr(0));
    Value size = extent;
    if (inner != 1)
      size = arith::MulIOp::create(
          b, loc, extent, arith::ConstantIndexOp::create(b, loc, inner));
    box.sizes.push_back(size);
    box.shape.push_back(ShapedType::kDynamic);
  }
  if (next != form.size())
    return failure();
  return box;
}

bool Incrementalizer::loopRunsOverBatch(linalg::LinalgOp op,
                                        unsigned loop) const {
  for (OpOperand &operand : op->getOpOperands()) {
    AffineMap m = op.getMatchingIndexingMap(&operand);
    AxisLayout layout = axes.getLayout(operand.get());
    for (auto [d, expr] : llvm::enumerate(m.getResults())) {
      auto dimExpr = dyn_cast<AffineDimExpr>(expr);
      if (!dimExpr || dimExpr.getPosition() != loop || d >= layout.size())
        continue;
      for (const AxisAtom &a : layout[d])
        if (a.batch)
          return true;
    }
  }
  return false;
}

FailureOr<func::FuncOp> Incrementalizer::build(OpBuilder &b, StringRef name,
                                               const StepKind &kind) {
  // A decode step reads each row's filled slots only, when every value on
  // the key side has its row as one box; otherwise it runs over the whole
  // cache with the unfilled slots masked.
  if (kind.decode && kind.t == 1 && rule.rowwiseKeys) {
    rowwiseInfeasible = false;
    FailureOr<func::FuncOp> fn = buildStep(b, name, kind, /*rowwise=*/true);
    if (!rowwiseInfeasible)
      return fn;
    if (succeeded(fn))
      fn->erase();
    rowwiseInfeasible = false;
  }
  return buildStep(b, name, kind, /*rowwise=*/false);
}

FailureOr<func::FuncOp> Incrementalizer::buildStep(OpBuilder &b,
                                                   StringRef name,
                                                   const StepKind &kind,
                                                   bool rowwise) {
  MLIRContext *ctx = func.getContext();
  Location loc = func.getLoc();
  const int64_t t = kind.t, smax = kind.smax, batch = kind.batch;
  const bool decode = kind.decode, flat = kind.flatIO;
  batchSize = batch;
  Type i32 = b.getI32Type();

  // Signature: the forward's arguments with tokens and positions for the new
  // tokens, the predictors' parameters, one cache per cached value, each
  // routed block's caches and routed lengths, then the lengths.
  SmallVector<Type> argTypes;
  SmallVector<DictionaryAttr> argAttrs;
  for (BlockArgument arg : func.getArguments()) {
    Type type = arg.getType();
    if (arg == tokens || arg == positions)
      type = flat ? RankedTensorType::get({batch}, i32)
                  : RankedTensorType::get({batch, t}, i32);
    else if (queryInputs.contains(arg))
      type = formType(arg, Form(1, kQuery), t, smax);
    argTypes.push_back(type);
    argAttrs.push_back(func.getArgAttrDict(arg.getArgNumber())
                           ? func.getArgAttrDict(arg.getArgNumber())
                           : DictionaryAttr::get(ctx));
  }
  auto named = [&](StringRef n) {
    return b.getDictionaryAttr(b.getNamedAttr(kNameAttr, b.getStringAttr(n)));
  };
  unsigned firstPredictor = argTypes.size();
  if (rule.predictor)
    for (const auto &plan : routed) {
      Type et = cast<RankedTensorType>(plan->op.getInput().getType())
                    .getElementType();
      int64_t width = cast<RankedTensorType>(plan->op.getInput().getType())
                          .getDimSize(2);
      int64_t h = rule.predictorHidden;
      std::string p = plan->prefix + ".mod.predictor.";
      std::pair<std::string, SmallVector<int64_t>> params[] = {
          {p + "fc1.weight", {width, h}},
          {p + "fc1.bias", {h}},
          {p + "fc2.weight", {h}},
          {p + "fc2.bias", {}}};
      for (auto &[pname, shape] : params) {
        argTypes.push_back(RankedTensorType::get(shape, et));
        argAttrs.push_back(b.getDictionaryAttr(
            {b.getNamedAttr(kNameAttr, b.getStringAttr(pname)),
             b.getNamedAttr("mod.kind", b.getStringAttr("parameter"))}));
      }
    }
  unsigned firstCache = argTypes.size();
  unsigned cacheNumber = 0;
  const int64_t cacheRows = kind.cacheBatch ? kind.cacheBatch : batch;
  for (unsigned i = 0; i < caches.size(); ++i) {
    argTypes.push_back(cacheType(i, smax, cacheRows));
    argAttrs.push_back(named("cache." + std::to_string(cacheNumber++)));
  }
  // Routed blocks: their caches, then the tokens each holds per sequence.
  unsigned firstState = argTypes.size();
  for (const auto &plan : routed) {
    for (unsigned i = 0; i < plan->inc->getCaches().size(); ++i) {
      argTypes.push_back(plan->inc->cacheType(i, smax, batch));
      argAttrs.push_back(named("cache." + std::to_string(cacheNumber++)));
    }
    argTypes.push_back(RankedTensorType::get({batch}, i32));
    argAttrs.push_back(named("routed_lengths." + plan->prefix));
  }
  unsigned numState = argTypes.size() - firstState;
  unsigned lengthsArg = argTypes.size();
  argTypes.push_back(RankedTensorType::get({batch}, i32));
  argAttrs.push_back(named("lengths"));
  if (kind.indirect) {
    argTypes.push_back(RankedTensorType::get({batch}, i32));
    argAttrs.push_back(named("counts"));
    argTypes.push_back(RankedTensorType::get({batch, t}, i32));
    argAttrs.push_back(named("src"));
  }
  if (kind.gather) {
    argTypes.push_back(RankedTensorType::get({batch}, i32));
    argAttrs.push_back(named("rows"));
  }

  auto logitsType = cast<RankedTensorType>(logits.getType());
  Type logitsOut =
      flat ? Type(RankedTensorType::get({batch, logitsType.getDimSize(2)},
                                        logitsType.getElementType()))
           : Type(formType(logits, Form(1, kQuery), t, smax));
  SmallVector<Type> resultTypes{logitsOut};
  SmallVector<DictionaryAttr> resultAttrs{named("logits")};
  for (unsigned i = firstCache; i < lengthsArg; ++i) {
    if (i >= firstPredictor && i < firstCache)
      continue;
    resultTypes.push_back(argTypes[i]);
    resultAttrs.push_back(b.getDictionaryAttr(
        {argAttrs[i].getNamed(kNameAttr).value(),
         b.getNamedAttr(kAliasesAttr, b.getI64IntegerAttr(i))}));
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
  for (Value v : queryInputs)
    realized[{v.getAsOpaquePointer(), Form(1, kQuery)}] =
        fn.getArgument(cast<BlockArgument>(v).getArgNumber());

  // The new tokens as [B,T].
  auto asRows = [&](Value v) -> Value {
    if (!flat)
      return v;
    return tensor::ExpandShapeOp::create(
        fb, loc, RankedTensorType::get({batch, 1}, i32), v,
        ArrayRef<ReassociationIndices>{{0, 1}});
  };
  Value lengths = fn.getArgument(lengthsArg);
  Value offsets = decode ? lengths : filledVector(fb, loc, batch, i32, 0);
  Value counts = decode ? filledVector(fb, loc, batch, i32, 1)
                        : kind.indirect ? fn.getArgument(lengthsArg + 1)
                                        : lengths;
  Value src = kind.indirect ? fn.getArgument(lengthsArg + 2) : Value();
  Value gatherRows = kind.gather ? fn.getArgument(lengthsArg + 1) : Value();
  SmallVector<Value> state;
  for (unsigned i = 0; i < numState; ++i)
    state.push_back(fn.getArgument(firstState + i));
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

  // Per-row steps: row `row` holds its cache's slots [0, extent), extent =
  // min(offsets[row] + counts[row], Smax) (the new token included).
  Value c0 = arith::ConstantIndexOp::create(fb, loc, 0);
  Value c1 = arith::ConstantIndexOp::create(fb, loc, 1);
  Value cB = arith::ConstantIndexOp::create(fb, loc, batch);
  auto keyExtent = [&](OpBuilder &nb, Location nl, Value row) -> Value {
    Value end = arith::AddIOp::create(
        nb, nl, tensor::ExtractOp::create(nb, nl, offsets, ValueRange{row}),
        tensor::ExtractOp::create(nb, nl, counts, ValueRange{row}));
    Value extent =
        arith::IndexCastOp::create(nb, nl, nb.getIndexType(), end);
    return arith::MinSIOp::create(nb, nl, extent,
                                  arith::ConstantIndexOp::create(nb, nl, smax));
  };
  auto giveUpRowwise = [&]() -> FailureOr<func::FuncOp> {
    rowwiseInfeasible = true;
    fn.erase();
    return failure();
  };
  // A key-side operand that a per-row permutation of data (the keys' and
  // values' transposes to [B,H,hd,L] and [B,H,L,hd]) makes, possibly
  // through reshapes, is computed in its consumer's row loop from the row of
  // the permutation's source: elementwise fusion then folds the permutation
  // into the consumer's indexing maps (for the attention GEMMs, strides of
  // the cache itself), so the permuted copy of the filled slots is never
  // stored and the permutation's own row loop is dead. Null when `v` is not
  // made that way.
  auto permutedRow = [&](OpBuilder &nb, Location nl, Value v, Form form,
                         Value row, Value extent) -> Value {
    auto formOf = [&](Operation *op, const Form &result) -> const OpForm * {
      auto it = opForms.find(op);
      if (it == opForms.end())
        return nullptr;
      for (const OpForm &of : it->second)
        if (resultForm(op, of, 0) == result)
          return &of;
      return nullptr;
    };
    // The reshapes between the permutation and `v`, last first, each with
    // its result's form.
    SmallVector<std::pair<Operation *, Form>> views;
    Operation *def = v.getDefiningOp();
    while (isa_and_nonnull<tensor::CollapseShapeOp, tensor::ExpandShapeOp>(
        def)) {
      const OpForm *of = formOf(def, form);
      if (!of)
        return Value();
      views.push_back({def, form});
      form = operandForm(def, *of, def->getOpOperand(0));
      v = def->getOperand(0);
      def = v.getDefiningOp();
    }
    auto perm = dyn_cast_or_null<linalg::LinalgOp>(def);
    const OpForm *of = perm ? formOf(def, form) : nullptr;
    if (!of || !isPermutationOfData(perm) ||
        !llvm::any_of(*of, [](const std::string &l) {
          return l.find(kKey) != l.npos;
        }))
      return Value();
    OpOperand *input = perm.getDpsInputOperand(0);
    Form inForm = operandForm(def, *of, *input);
    Value source = numTokenAtoms(input->get()) ? lookup(input->get(), inForm)
                                               : Value();
    if (!source)
      return Value();
    FailureOr<RowBox> inBox = rowBox(nb, nl, input->get(), inForm, t, smax,
                                     row, extent);
    FailureOr<RowBox> outBox =
        rowBox(nb, nl, def->getResult(0), form, t, smax, row, extent);
    if (failed(inBox) || failed(outBox) || inBox->whole || outBox->whole)
      return Value();
    Type et = cast<RankedTensorType>(source.getType()).getElementType();
    Value in = tensor::ExtractSliceOp::create(
        nb, nl, RankedTensorType::get(inBox->shape, et), source,
        inBox->offsets, inBox->sizes, inBox->strides);
    Value init = tensor::EmptyOp::create(nb, nl, outBox->sizes, et);
    IRMapping mapping;
    llvm::SetVector<Value> above;
    getUsedValuesDefinedAbove(def->getRegions(), above);
    for (Value a : above)
      if (Value m = shared.lookupOrNull(a))
        mapping.map(a, m);
    Operation *clone = nb.clone(*def, mapping);
    clone->setOperand(0, in);
    clone->setOperand(1, init);
    if (clone->getNumResults() != 1)
      return Value();
    clone->getResult(0).setType(init.getType());
    Value current = clone->getResult(0);
    for (auto &[view, viewForm] : llvm::reverse(views)) {
      FailureOr<RowBox> box =
          rowBox(nb, nl, view->getResult(0), viewForm, t, smax, row, extent);
      if (failed(box) || box->whole)
        return Value();
      auto type = RankedTensorType::get(box->shape, et);
      auto currentType = cast<RankedTensorType>(current.getType());
      if (auto collapse = dyn_cast<tensor::CollapseShapeOp>(view)) {
        auto reassociation = collapse.getReassociationIndices();
        if (tensor::CollapseShapeOp::inferCollapsedType(
                currentType, reassociation) != type)
          return Value();
        current = tensor::CollapseShapeOp::create(nb, nl, type, current,
                                                  reassociation);
      } else {
        auto expand = cast<tensor::ExpandShapeOp>(view);
        auto reassociation = expand.getReassociationIndices();
        if (tensor::CollapseShapeOp::inferCollapsedType(
                type, reassociation) != currentType)
          return Value();
        current = tensor::ExpandShapeOp::create(nb, nl, type, current,
                                                reassociation, box->sizes);
      }
    }
    return current;
  };

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
    Value written =
        decode && t == 1
            ? writeCacheRows(fb, v.getLoc(), fn.getArgument(firstCache + index),
                             fresh, offsets, gatherRows)
            : writeCache(fb, v.getLoc(), fn.getArgument(firstCache + index),
                         fresh, offsets, counts, src);
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
    if (rowwise) {
      // Each row reads its filled slots only, so the cache is read as it
      // is; the compacted rows of a routed block's step copy their filled
      // slots out of the whole batch's cache.
      Value keys = written;
      if (gatherRows) {
        SmallVector<int64_t> shape(type.getShape());
        shape[0] = batch;
        Value init = tensor::EmptyOp::create(fb, v.getLoc(), shape,
                                             type.getElementType());
        auto copy = scf::ForOp::create(
            fb, v.getLoc(), c0, cB, c1, ValueRange{init},
            [&](OpBuilder &nb, Location nl, Value row, ValueRange iter) {
              Value extent = keyExtent(nb, nl, row);
              Value from = arith::IndexCastOp::create(
                  nb, nl, nb.getIndexType(),
                  tensor::ExtractOp::create(nb, nl, gatherRows,
                                            ValueRange{row}));
              int64_t rank = type.getRank();
              SmallVector<OpFoldResult> offs(rank, nb.getIndexAttr(0)),
                  sizes, ones(rank, nb.getIndexAttr(1));
              sizes.push_back(nb.getIndexAttr(1));
              sizes.push_back(extent);
              for (int64_t d = 2; d < rank; ++d)
                sizes.push_back(nb.getIndexAttr(type.getDimSize(d)));
              offs[0] = from;
              Value piece = tensor::ExtractSliceOp::create(
                  nb, nl, written, offs, sizes, ones);
              offs[0] = row;
              scf::YieldOp::create(
                  nb, nl,
                  tensor::InsertSliceOp::create(nb, nl, piece, iter[0], offs,
                                                sizes, ones)
                      .getResult());
            });
        keys = copy.getResult(0);
      }
      realized[{v.getAsOpaquePointer(), Form(1, kKey)}] = keys;
      return success();
    }
    realized[{v.getAsOpaquePointer(), Form(1, kKey)}] =
        readCache(fb, v.getLoc(), written, offsets, counts, emptyValue,
                  gatherRows);
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
      if (tokenOperands)
        continue;
      // A value over the batch but not over tokens would keep the
      // forward's B where this function has other rows.
      for (Value r : op.getResults())
        if (batch != cast<RankedTensorType>(positions.getType()).getDimSize(0))
          for (const auto &dim : axes.getLayout(r))
            for (const AxisAtom &a : dim)
              if (a.batch)
                return op.emitError()
                       << "cannot incrementalize '" << op.getName()
                       << "' in a routed block: it has a batch axis but no "
                          "token axis";
      fb.clone(op, shared);
      continue;
    }
    if (auto block = dyn_cast<RoutedBlockOp>(&op)) {
      auto planIt = llvm::find_if(
          routed, [&](const auto &p) { return p->op == block; });
      if (planIt == routed.end())
        continue;
      RoutedPlan &plan = **planIt;
      Value x = lookup(block.getInput(), "q");
      Value pos = lookup(block.getPositions(), "q");
      if (!x || !pos)
        return op.emitError("internal error: the routed block's inputs were "
                            "not computed for the new tokens");
      unsigned begin = 0;
      unsigned planIndex = planIt - routed.begin();
      for (unsigned i = 0; i < planIndex; ++i)
        begin += routed[i]->inc->getCaches().size() + 1;
      SmallVector<Value> predictorParams;
      if (rule.predictor)
        for (unsigned i = 0; i < 4; ++i)
          predictorParams.push_back(
              fn.getArgument(firstPredictor + 4 * planIndex + i));
      MutableArrayRef<Value> blockState(
          state.data() + begin, plan.inc->getCaches().size() + 1);
      FailureOr<Value> out =
          emitRoutedBlock(fb, plan, kind, x, pos, lengths, predictorParams,
                          blockState, shared);
      if (failed(out))
        return failure();
      realized[{block.getResult().getAsOpaquePointer(), "q"}] = *out;
      continue;
    }
    auto it = opForms.find(&op);
    if (it == opForms.end())
      continue;
    for (const OpForm &of : it->second) {
      bool keyLoops = llvm::any_of(
          of, [](const std::string &l) { return l.find(kKey) != l.npos; });
      if (rowwise && keyLoops) {
        auto linalgOp = dyn_cast<linalg::LinalgOp>(&op);
        // Views and buffers keep the whole cache's shape; every linalg op
        // on the key side runs per row on the filled slots.
        if (!linalgOp) {
          if (!isa<tensor::CollapseShapeOp, tensor::ExpandShapeOp,
                   tensor::ExtractSliceOp, tensor::EmptyOp,
                   arith::ConstantOp>(op))
            return giveUpRowwise();
        } else {
          bool batchIndex = false;
          op.walk([&](linalg::IndexOp index) {
            batchIndex |= loopRunsOverBatch(linalgOp, index.getDim());
          });
          if (batchIndex)
            return giveUpRowwise();
          SmallVector<Value> fullOperands;
          for (OpOperand &operand : op.getOpOperands()) {
            Value v = operand.get();
            Value mapped =
                numTokenAtoms(v) ? lookup(v, operandForm(&op, of, operand))
                                 : shared.lookupOrNull(v);
            if (!mapped)
              return op.emitError(
                  "internal error: an operand of this op was not computed in "
                  "the form the decode step needs");
            fullOperands.push_back(mapped);
          }
          unsigned numInputs = linalgOp.getNumDpsInputs();
          // An init that a linalg.fill makes is filled per row in the loop
          // (on the fill's own init), so that every row's op writes its
          // rows of a buffer of its own (no copy of a fill shared by CSE)
          // and a GEMM sees the zero fill right before it.
          SmallVector<Value> fillValues(op.getNumOperands());
          for (OpOperand &operand : op.getOpOperands()) {
            unsigned i = operand.getOperandNumber();
            auto fill = operand.get().getDefiningOp<linalg::FillOp>();
            if (i < numInputs || !fill)
              continue;
            Value fillInit = fill.getDpsInits()[0];
            Value value = shared.lookupOrNull(fill.getDpsInputs()[0]);
            Value init = numTokenAtoms(fillInit)
                             ? lookup(fillInit, operandForm(&op, of, operand))
                             : shared.lookupOrNull(fillInit);
            if (!value || !init || init.getType() != fullOperands[i].getType())
              continue;
            fillValues[i] = value;
            fullOperands[i] = init;
          }
          SmallVector<Value> inits(fullOperands.begin() + numInputs,
                                   fullOperands.end());
          bool boxed = true;
          auto loop = scf::ForOp::create(
              fb, op.getLoc(), c0, cB, c1, inits,
              [&](OpBuilder &nb, Location nl, Value row, ValueRange iter) {
                Value extent = keyExtent(nb, nl, row);
                SmallVector<Value> sliced;
                std::vector<RowBox> boxes;
                for (OpOperand &operand : op.getOpOperands()) {
                  unsigned i = operand.getOperandNumber();
                  Value full = i < numInputs ? fullOperands[i]
                                             : iter[i - numInputs];
                  Form form = numTokenAtoms(operand.get())
                                  ? operandForm(&op, of, operand)
                                  : Form();
                  FailureOr<RowBox> box = rowBox(nb, nl, operand.get(), form,
                                                 t, smax, row, extent);
                  if (failed(box)) {
                    boxed = false;
                    box = RowBox();
                  }
                  if (succeeded(box) && !box->whole && i < numInputs &&
                      numTokenAtoms(operand.get()))
                    if (Value permuted = permutedRow(nb, nl, operand.get(),
                                                     form, row, extent);
                        permuted &&
                        cast<RankedTensorType>(permuted.getType())
                                .getShape() == ArrayRef<int64_t>(box->shape)) {
                      sliced.push_back(permuted);
                      boxes.push_back(*box);
                      continue;
                    }
                  if (!box->whole)
                    full = tensor::ExtractSliceOp::create(
                        nb, nl,
                        RankedTensorType::get(
                            box->shape,
                            cast<RankedTensorType>(full.getType())
                                .getElementType()),
                        full, box->offsets, box->sizes, box->strides);
                  if (fillValues[i])
                    full = linalg::FillOp::create(nb, nl, fillValues[i],
                                                  ValueRange{full})
                               .getResult(0);
                  sliced.push_back(full);
                  boxes.push_back(*box);
                }
                IRMapping mapping;
                llvm::SetVector<Value> above;
                getUsedValuesDefinedAbove(op.getRegions(), above);
                for (Value v : above)
                  if (Value m = shared.lookupOrNull(v))
                    mapping.map(v, m);
                Operation *clone = nb.clone(op, mapping);
                for (auto [i, v] : llvm::enumerate(sliced))
                  clone->setOperand(i, v);
                SmallVector<Value> yields;
                for (unsigned r = 0; r < op.getNumResults(); ++r) {
                  Value res = clone->getResult(r);
                  res.setType(sliced[numInputs + r].getType());
                  const RowBox &box = boxes[numInputs + r];
                  // Every iteration writes its own row of each result only
                  // (mod.key_rows promises it: the rows may run in
                  // parallel).
                  if (box.whole)
                    boxed = false;
                  yields.push_back(
                      box.whole ? res
                                : tensor::InsertSliceOp::create(
                                      nb, nl, res, iter[r], box.offsets,
                                      box.sizes, box.strides)
                                      .getResult());
                }
                scf::YieldOp::create(nb, nl, yields);
              });
          if (!boxed)
            return giveUpRowwise();
          loop->setAttr("mod.key_rows", fb.getUnitAttr());
          for (unsigned r = 0; r < op.getNumResults(); ++r) {
            Value res = op.getResult(r);
            if (numTokenAtoms(res))
              realized[{res.getAsOpaquePointer(), resultForm(&op, of, r)}] =
                  loop.getResult(r);
          }
          continue;
        }
      }
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
  if (flat)
    out = tensor::CollapseShapeOp::create(
        fb, loc, cast<RankedTensorType>(logitsOut), out,
        ArrayRef<ReassociationIndices>{{0}, {1, 2}});
  SmallVector<Value> results{out};
  results.append(updatedCaches.begin(), updatedCaches.end());
  results.append(state.begin(), state.end());
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

/// Positions index tables in the forward (a learned position embedding:
/// `tensor.extract %wpe[%pos, %d]` in a generic over the positions, the
/// position possibly clamped to the last row): a cache of `smax` slots would
/// let positions up to smax - 1 go past a table with fewer rows (read
/// outside it, or silently reuse its last row). Returns failure, after a diagnostic naming the
/// table, when `smax` exceeds one.
static LogicalResult checkPositionTables(func::FuncOp func, Value positions,
                                         int64_t smax) {
  // Whether `v` is `arg` through integer casts and clamps to constants
  // (mod-import clamps a position to the table's last row).
  auto fromArg = [](Value v, Value arg) {
    while (v != arg) {
      Operation *def = v.getDefiningOp();
      if (!def)
        return false;
      if (isa<arith::IndexCastOp, arith::IndexCastUIOp, arith::ExtSIOp,
              arith::ExtUIOp>(def)) {
        v = def->getOperand(0);
        continue;
      }
      if (!isa<arith::MaxSIOp, arith::MinSIOp, arith::MaxUIOp, arith::MinUIOp>(
              def))
        return false;
      bool lhsConst = matchPattern(def->getOperand(0), m_Constant());
      bool rhsConst = matchPattern(def->getOperand(1), m_Constant());
      if (lhsConst == rhsConst)
        return false;
      v = def->getOperand(lhsConst ? 1 : 0);
    }
    return true;
  };
  for (OpOperand &use : positions.getUses()) {
    auto generic = dyn_cast<linalg::GenericOp>(use.getOwner());
    if (!generic || !generic.isDpsInput(&use))
      continue;
    Value arg = generic.getMatchingBlockArgument(&use);
    WalkResult result = generic.getRegion().walk([&](tensor::ExtractOp extract) {
      auto type = cast<RankedTensorType>(extract.getTensor().getType());
      for (auto [dim, index] : llvm::enumerate(extract.getIndices())) {
        if (!fromArg(index, arg) || type.isDynamicDim(dim) ||
            type.getDimSize(dim) >= smax)
          continue;
        std::string table = "a tensor";
        if (auto tableArg = dyn_cast<BlockArgument>(extract.getTensor());
            tableArg && tableArg.getOwner() == &func.getBody().front())
          if (auto name = func.getArgAttrOfType<StringAttr>(
                  tableArg.getArgNumber(), "mod.name"))
            table = "'" + name.getValue().str() + "'";
        extract.emitError()
            << "--mod-generate-decode: max-seq-len " << smax
            << " exceeds the " << type.getDimSize(dim) << " rows of " << table
            << ", which the positions index (a learned position embedding): "
               "positions past "
            << type.getDimSize(dim) - 1
            << " have no row of their own; use max-seq-len <= "
            << type.getDimSize(dim);
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return failure();
  }
  return success();
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
    if (failed(checkPositionTables(func, positions, smax)))
      return signalPassFailure();
    for (StringRef name : {StringRef("prefill"), StringRef("decode_step")})
      if (module.lookupSymbol(name)) {
        module.emitError() << "--mod-generate-decode: the module already has "
                              "a symbol @"
                           << name;
        return signalPassFailure();
      }

    RoutingRule rule;
    rule.rowwiseKeys = !fullCacheAttention;
    if (routing == "predictor") {
      rule.predictor = true;
      if (predictorHidden < 1) {
        module.emitError() << "--mod-generate-decode: predictor-hidden must "
                              "be positive, got "
                           << static_cast<int64_t>(predictorHidden);
        return signalPassFailure();
      }
      rule.predictorHidden = predictorHidden;
    } else if (routing != "router") {
      module.emitError() << "--mod-generate-decode: unknown routing '"
                         << routing << "' (expected router or predictor)";
      return signalPassFailure();
    }

    // A routed block's output runs over the tokens like its input: its body
    // is analysed on its own.
    SmallVector<Value> seeds{positions};
    if (tokens)
      seeds.push_back(tokens);
    func.walk([&](RoutedBlockOp op) {
      if (op->getParentOp() == func)
        seeds.push_back(op.getResult());
    });
    TokenAxisAnalysis axes(func, seeds);
    Incrementalizer inc(func, axes, s, tokens, positions, rule);
    if (failed(inc.analyze()))
      return signalPassFailure();
    int64_t batch = posType.getDimSize(0);
    OpBuilder b(module.getContext());
    b.setInsertionPointAfter(func);
    StepKind prefillKind;
    prefillKind.t = p;
    prefillKind.smax = smax;
    prefillKind.batch = batch;
    FailureOr<func::FuncOp> prefill = inc.build(b, "prefill", prefillKind);
    if (failed(prefill))
      return signalPassFailure();
    b.setInsertionPointAfter(*prefill);
    StepKind stepKind;
    stepKind.t = 1;
    stepKind.smax = smax;
    stepKind.batch = batch;
    stepKind.flatIO = true;
    stepKind.decode = true;
    FailureOr<func::FuncOp> step = inc.build(b, "decode_step", stepKind);
    if (failed(step)) {
      prefill->erase();
      return signalPassFailure();
    }
  }
};

} // namespace
