//===- GenerateGrad.cpp - @loss_and_grad from a forward function ----------===//
//
// Clones the forward function into @loss_and_grad, appends the cross-entropy
// loss and the causal-routing losses, and runs ReverseAD over the clone.
// Everything is built in the new function; on any error it is erased, so a
// failed run leaves the module as it was.
//
//===----------------------------------------------------------------------===//

#include "ReverseAD.h"

#include "mod/Dialect/MoD/IR/MoDOps.h"
#include "mod/Dialect/MoD/Transforms/Passes.h"
#include "mod/Dialect/MoD/Transforms/RoutedBlocks.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/Dominance.h"
#include "mlir/Transforms/CSE.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <limits>

namespace mlir::mod {
#define GEN_PASS_DEF_GENERATEGRAD
#include "mod/Dialect/MoD/Transforms/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod;
using namespace mlir::mod::detail;

static constexpr llvm::StringLiteral kNameAttr = "mod.name",
                                     kKindAttr = "mod.kind",
                                     kInitAttr = "mod.init";
static constexpr llvm::StringLiteral kGradFunc = "loss_and_grad";

namespace {
/// One routed block after expansion: its router logits, top-k and input.
struct RoutedBlockInfo {
  std::string prefix;
  Value input;   // [B,S,D]
  Value logits;  // [B,S]
  Value indices; // [B,K]
};

/// A named scalar result and how it enters the training objective.
struct ScalarResult {
  std::string name;
  Value value;
  double weight; // 0: a metric only
};

class GradientBuilder {
public:
  GradientBuilder(func::FuncOp fn, OpBuilder &b, const GenerateGradOptions &o)
      : fn(fn), b(b), options(o), loc(fn.getLoc()) {}

  LogicalResult run();

private:
  LogicalResult prepareForward();
  Value crossEntropy(Value logits, Value targets);
  Value membership(const RoutedBlockInfo &block);
  /// mean BCE(logit, target) and the fraction with (logit > 0) == target.
  std::pair<Value, Value> bceAndAgreement(Value logit, Value target);
  /// Also returns the flattened block input, where the gradient stops.
  Value predictorLogits(const RoutedBlockInfo &block, ArrayRef<Value> params,
                        Value &flatInput);
  Value reduceAll(Value x, Value y,
                  function_ref<Value(OpBuilder &, Location, Value, Value)> term,
                  double scale);
  Value addParameter(StringRef name, ArrayRef<int64_t> shape, Type elementType,
                     StringRef init);
  void reportMemory(Operation *firstBackwardOp);

  func::FuncOp fn;
  OpBuilder &b;
  const GenerateGradOptions &options;
  Location loc;
  SmallVector<RoutedBlockInfo> blocks;
  unsigned numForwardArgs = 0;
};
} // namespace

Value GradientBuilder::addParameter(StringRef name, ArrayRef<int64_t> shape,
                                    Type elementType, StringRef init) {
  unsigned index = fn.getNumArguments() - 1; // before the targets
  auto type = RankedTensorType::get(shape, elementType);
  NamedAttrList attrs;
  attrs.set(kNameAttr, b.getStringAttr(name));
  attrs.set(kKindAttr, b.getStringAttr("parameter"));
  attrs.set(kInitAttr, b.getStringAttr(init));
  (void)fn.insertArgument(index, type, attrs.getDictionary(b.getContext()),
                          loc);
  return fn.getArgument(index);
}

/// Expands routed blocks and generalizes the named ops the AD has no direct
/// rule for (matmuls with their default maps, transposes and fills stay).
LogicalResult GradientBuilder::prepareForward() {
  IRRewriter rewriter(b.getContext());
  SmallVector<RoutedBlockOp> routed;
  fn.walk([&](RoutedBlockOp op) { routed.push_back(op); });
  for (RoutedBlockOp op : routed)
    expandRoutedBlock(op, rewriter);

  SmallVector<linalg::LinalgOp> named;
  fn.walk([&](linalg::LinalgOp op) {
    if (isa<linalg::GenericOp, linalg::TransposeOp, linalg::FillOp>(op))
      return;
    MLIRContext *ctx = b.getContext();
    if (auto mm = dyn_cast<linalg::MatmulOp>(op.getOperation());
        mm && mm.getIndexingMapsArray() ==
                  linalg::MatmulOp::getDefaultIndexingMaps(ctx))
      return;
    if (auto bmm = dyn_cast<linalg::BatchMatmulOp>(op.getOperation());
        bmm && bmm.getIndexingMapsArray() ==
                   linalg::BatchMatmulOp::getDefaultIndexingMaps(ctx))
      return;
    named.push_back(op);
  });
  for (linalg::LinalgOp op : named) {
    rewriter.setInsertionPoint(op);
    if (failed(linalg::generalizeNamedOp(rewriter, op)))
      return op->emitError("mod-generate-grad: cannot generalize '")
             << op->getName() << "' to differentiate it";
  }

  // Routed blocks: router logits and top-k per block, named after the
  // router weight parameter.
  fn.walk([&](TopKOp topk) {
    auto router = topk.getInput().getDefiningOp<RouterOp>();
    if (!router)
      return;
    std::string prefix = "block" + std::to_string(blocks.size());
    if (auto arg = dyn_cast<BlockArgument>(router.getWeight()))
      if (auto name = fn.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                      kNameAttr)) {
        StringRef n = name.getValue();
        if (n.consume_back(".mod.router.weight"))
          prefix = n.str();
      }
    blocks.push_back({prefix, router.getInput(), router.getResult(),
                      topk.getIndices()});
  });
  return success();
}

/// sum over everything of term(x, y) * scale, as a rank-0 tensor; x and y
/// have the same shape (y may be null).
Value GradientBuilder::reduceAll(
    Value x, Value y,
    function_ref<Value(OpBuilder &, Location, Value, Value)> term,
    double scale) {
  RankedTensorType type = tensorTypeOf(x);
  Type et = type.getElementType();
  unsigned rank = type.getRank();
  AffineMap id = b.getMultiDimIdentityMap(rank);
  AffineMap scalar = AffineMap::get(rank, 0, {}, b.getContext());
  SmallVector<Value> ins{x};
  SmallVector<AffineMap> maps{id};
  if (y) {
    ins.push_back(y);
    maps.push_back(id);
  }
  Value init = filledTensor(b, loc, RankedTensorType::get({}, et), 0.0);
  return buildGeneric(
      b, loc, ins, maps, init, scalar,
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::reduction),
      [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Value t = term(nb, nloc, args[0], y ? args[1] : Value());
        t = arith::MulFOp::create(nb, nloc, t,
                                  floatConstant(nb, nloc, et, scale));
        return arith::AddFOp::create(nb, nloc, args.back(), t);
      });
}

/// Mean over targets >= 0 of logsumexp(logits) - logits[target], built from
/// generics so that the AD differentiates it like any other op.
Value GradientBuilder::crossEntropy(Value logits, Value targets) {
  RankedTensorType type = tensorTypeOf(logits);
  Type et = type.getElementType();
  MLIRContext *ctx = b.getContext();
  int64_t batch = type.getDimSize(0), seq = type.getDimSize(1);
  auto rowType = RankedTensorType::get({batch, seq}, et);
  AffineMap id3 = b.getMultiDimIdentityMap(3), id2 = b.getMultiDimIdentityMap(2);
  AffineMap row = AffineMap::get(3, 0, {b.getAffineDimExpr(0),
                                        b.getAffineDimExpr(1)}, ctx);
  SmallVector<utils::IteratorType> rowReduce{utils::IteratorType::parallel,
                                             utils::IteratorType::parallel,
                                             utils::IteratorType::reduction};
  double negInf = -std::numeric_limits<double>::infinity();
  Value rowMax = buildGeneric(
      b, loc, {logits}, {id3}, filledTensor(b, loc, rowType, negInf), row,
      rowReduce, [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        return arith::MaximumFOp::create(nb, nloc, args[1], args[0]);
      });
  Value sumExp = buildGeneric(
      b, loc, {logits, rowMax}, {id3, row}, filledTensor(b, loc, rowType, 0.0),
      row, rowReduce,
      [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Value e = math::ExpOp::create(
            nb, nloc, arith::SubFOp::create(nb, nloc, args[0], args[1]));
        return arith::AddFOp::create(nb, nloc, args[2], e);
      });
  Value picked = buildGeneric(
      b, loc, {logits, targets}, {id3, row}, filledTensor(b, loc, rowType, 0.0),
      row, rowReduce,
      [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Value v = linalg::IndexOp::create(nb, nloc, 2);
        Value t = arith::IndexCastOp::create(nb, nloc, nb.getIndexType(),
                                             args[1]);
        Value hit =
            arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::eq, v, t);
        Value zero = floatConstant(nb, nloc, et, 0.0);
        Value x = arith::SelectOp::create(nb, nloc, hit, args[0], zero);
        return arith::AddFOp::create(nb, nloc, args[2], x);
      });
  // Token weights: 1 for a target >= 0, else 0; and their count.
  Value weights = buildGeneric(
      b, loc, {targets}, {id2},
      tensor::EmptyOp::create(b, loc, rowType.getShape(), et), id2,
      {utils::IteratorType::parallel, utils::IteratorType::parallel},
      [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Value zero = arith::ConstantIntOp::create(nb, nloc, 0, 32);
        Value keep = arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::sge,
                                           args[0], zero);
        return arith::SelectOp::create(nb, nloc, keep,
                                       floatConstant(nb, nloc, et, 1.0),
                                       floatConstant(nb, nloc, et, 0.0));
      });
  Value count = reduceAll(
      weights, nullptr,
      [](OpBuilder &, Location, Value w, Value) { return w; }, 1.0);
  AffineMap scalar2 = AffineMap::get(2, 0, {}, ctx);
  Value total = buildGeneric(
      b, loc, {rowMax, sumExp, picked, weights}, {id2, id2, id2, id2},
      filledTensor(b, loc, RankedTensorType::get({}, et), 0.0), scalar2,
      {utils::IteratorType::reduction, utils::IteratorType::reduction},
      [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Value lse = arith::AddFOp::create(
            nb, nloc, args[0], math::LogOp::create(nb, nloc, args[1]));
        Value nll = arith::SubFOp::create(nb, nloc, lse, args[2]);
        Value w = arith::MulFOp::create(nb, nloc, nll, args[3]);
        return arith::AddFOp::create(nb, nloc, args[4], w);
      });
  AffineMap scalar0 = AffineMap::get(0, 0, {}, ctx);
  return buildGeneric(
      b, loc, {total, count}, {scalar0, scalar0},
      tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{}, et), scalar0, {},
      [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Value one = floatConstant(nb, nloc, et, 1.0);
        Value n = arith::MaximumFOp::create(nb, nloc, args[1], one);
        return arith::DivFOp::create(nb, nloc, args[0], n);
      });
}

/// 1 where the block routes the token, 0 elsewhere ([B,S]).
Value GradientBuilder::membership(const RoutedBlockInfo &block) {
  RankedTensorType type = tensorTypeOf(block.logits);
  RankedTensorType idxType = tensorTypeOf(block.indices);
  auto kType = RankedTensorType::get(idxType.getShape(), type.getElementType());
  Value zeros = filledTensor(b, loc, type, 0.0);
  Value ones = filledTensor(b, loc, kType, 1.0);
  return ScatterAddOp::create(b, loc, type, zeros, block.indices, ones, ones);
}

std::pair<Value, Value> GradientBuilder::bceAndAgreement(Value logit,
                                                         Value target) {
  double scale = 1.0 / double(tensorTypeOf(logit).getNumElements());
  // BCE with logits, stable form: max(r,0) - r m + log(1 + exp(-|r|)).
  Value bce = reduceAll(
      logit, target,
      [](OpBuilder &nb, Location nloc, Value r, Value m) -> Value {
        Type et = r.getType();
        Value zero = floatConstant(nb, nloc, et, 0.0);
        Value one = floatConstant(nb, nloc, et, 1.0);
        Value pos = arith::MaximumFOp::create(nb, nloc, r, zero);
        Value rm = arith::MulFOp::create(nb, nloc, r, m);
        Value e = math::ExpOp::create(
            nb, nloc,
            arith::NegFOp::create(nb, nloc, math::AbsFOp::create(nb, nloc, r)));
        Value sp = math::LogOp::create(nb, nloc,
                                       arith::AddFOp::create(nb, nloc, one, e));
        return arith::AddFOp::create(nb, nloc,
                                     arith::SubFOp::create(nb, nloc, pos, rm),
                                     sp);
      },
      scale);
  Value agree = reduceAll(
      logit, target,
      [](OpBuilder &nb, Location nloc, Value r, Value m) -> Value {
        Type et = r.getType();
        Value zero = floatConstant(nb, nloc, et, 0.0);
        Value half = floatConstant(nb, nloc, et, 0.5);
        Value routes = arith::CmpFOp::create(nb, nloc, arith::CmpFPredicate::OGT,
                                             r, zero);
        Value member = arith::CmpFOp::create(
            nb, nloc, arith::CmpFPredicate::OGT, m, half);
        Value same = arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::eq,
                                           routes, member);
        return arith::SelectOp::create(nb, nloc, same,
                                       floatConstant(nb, nloc, et, 1.0), zero);
      },
      scale);
  return {bce, agree};
}

/// tanh(x W1 + b1) . w2 + b2 on the block input, [B,S]. The caller stops
/// the gradient at the flattened input.
Value GradientBuilder::predictorLogits(const RoutedBlockInfo &block,
                                       ArrayRef<Value> params,
                                       Value &flatInput) {
  RankedTensorType xType = tensorTypeOf(block.input);
  Type et = xType.getElementType();
  int64_t batch = xType.getDimSize(0), seq = xType.getDimSize(1),
          hidden = options.predictorHidden;
  MLIRContext *ctx = b.getContext();
  Value flat = tensor::CollapseShapeOp::create(
      b, loc, block.input, ArrayRef<ReassociationIndices>{{0, 1}, {2}});
  flatInput = flat;
  auto hType = RankedTensorType::get({batch * seq, hidden}, et);
  Value pre = linalg::MatmulOp::create(b, loc, ValueRange{flat, params[0]},
                                       ValueRange{filledTensor(b, loc, hType, 0.0)})
                  .getResult(0);
  AffineMap id2 = b.getMultiDimIdentityMap(2);
  AffineMap d0 = AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, ctx);
  AffineMap d1 = AffineMap::get(2, 0, {b.getAffineDimExpr(1)}, ctx);
  AffineMap none = AffineMap::get(2, 0, {}, ctx);
  Value h = buildGeneric(
      b, loc, {pre, params[1]}, {id2, d1},
      tensor::EmptyOp::create(b, loc, hType.getShape(), et), id2,
      {utils::IteratorType::parallel, utils::IteratorType::parallel},
      [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        return math::TanhOp::create(
            nb, nloc, arith::AddFOp::create(nb, nloc, args[0], args[1]));
      });
  // Loops (token, hidden); the bias enters once, at hidden index 0.
  auto pType = RankedTensorType::get({batch * seq}, et);
  Value p = buildGeneric(
      b, loc, {h, params[2], params[3]}, {id2, d1, none},
      filledTensor(b, loc, pType, 0.0), d0,
      {utils::IteratorType::parallel, utils::IteratorType::reduction},
      [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
        Value first = arith::CmpIOp::create(
            nb, nloc, arith::CmpIPredicate::eq,
            linalg::IndexOp::create(nb, nloc, 1),
            arith::ConstantIndexOp::create(nb, nloc, 0));
        Value zero = floatConstant(nb, nloc, args[2].getType(), 0.0);
        Value bias = arith::SelectOp::create(nb, nloc, first, args[2], zero);
        Value t = arith::AddFOp::create(
            nb, nloc, arith::MulFOp::create(nb, nloc, args[0], args[1]), bias);
        return arith::AddFOp::create(nb, nloc, args[3], t);
      });
  return tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get({batch, seq}, et), p,
      ArrayRef<ReassociationIndices>{{0, 1}});
}

void GradientBuilder::reportMemory(Operation *firstBackwardOp) {
  Block &block = fn.getBody().front();
  DenseSet<Operation *> forward;
  for (Operation &op : block) {
    if (&op == firstBackwardOp)
      break;
    forward.insert(&op);
  }
  llvm::SetVector<Value> stored;
  bool backward = false;
  for (Operation &op : block) {
    backward |= &op == firstBackwardOp;
    if (!backward)
      continue;
    op.walk([&](Operation *inner) {
      for (Value v : inner->getOperands())
        if (Operation *def = v.getDefiningOp();
            def && forward.contains(def) && isa<RankedTensorType>(v.getType()))
          stored.insert(v);
    });
  }
  auto bytes = [](Value v) {
    auto t = cast<RankedTensorType>(v.getType());
    int64_t bits = t.getElementType().getIntOrFloatBitWidth();
    return t.getNumElements() * std::max<int64_t>(bits / 8, 1);
  };
  int64_t total = 0;
  SmallVector<Value> sorted(stored.begin(), stored.end());
  for (Value v : sorted)
    total += bytes(v);
  // Constants, fills and empties are not activations; say so apart.
  int64_t activations = 0;
  unsigned count = 0;
  for (Value v : sorted)
    if (!isa<linalg::FillOp, tensor::EmptyOp, arith::ConstantOp>(
            v.getDefiningOp())) {
      activations += bytes(v);
      ++count;
    }
  llvm::stable_sort(sorted, [&](Value x, Value y) { return bytes(x) > bytes(y); });
  llvm::errs() << llvm::formatv(
      "mod-generate-grad: @{0}: {1} stored forward activations, {2} bytes "
      "({3:F1} MiB); with constants and fills {4} bytes\n",
      kGradFunc, count, activations, double(activations) / (1 << 20), total);
  unsigned shown = 0;
  for (Value v : sorted) {
    if (shown++ == 5)
      break;
    llvm::errs() << "  " << bytes(v) << " bytes: "
                 << v.getDefiningOp()->getName() << " -> " << v.getType()
                 << "\n";
  }
}

LogicalResult GradientBuilder::run() {
  MLIRContext *ctx = b.getContext();
  Block &block = fn.getBody().front();
  auto ret = cast<func::ReturnOp>(block.getTerminator());
  Value logits = ret.getOperand(0);
  Type et = tensorTypeOf(logits).getElementType();
  b.setInsertionPoint(ret);
  numForwardArgs = fn.getNumArguments();

  auto i32 = IntegerType::get(ctx, 32);
  RankedTensorType logitsType = tensorTypeOf(logits);
  auto targetsType = RankedTensorType::get(
      {logitsType.getDimSize(0), logitsType.getDimSize(1)}, i32);
  NamedAttrList targetAttrs;
  targetAttrs.set(kNameAttr, b.getStringAttr("targets"));
  (void)fn.insertArgument(fn.getNumArguments(), targetsType,
                          targetAttrs.getDictionary(ctx), loc);
  Value targets = fn.getArguments().back();

  if (failed(prepareForward()))
    return failure();
  logits = ret.getOperand(0); // generalization may have replaced it

  SmallVector<Value> params;
  for (unsigned i = 0; i < numForwardArgs; ++i)
    if (auto kind = fn.getArgAttrOfType<StringAttr>(i, kKindAttr);
        kind && kind.getValue() == "parameter")
      params.push_back(fn.getArgument(i));

  // Forward additions: losses and metrics.
  SmallVector<ScalarResult> scalars;
  scalars.push_back({"loss", crossEntropy(logits, targets), 1.0});
  SmallVector<ScalarResult> aux, agree, predLoss, predAgree;
  SmallVector<Value> stopAt;
  for (const RoutedBlockInfo &rb : blocks) {
    Value m = membership(rb);
    auto [bce, agreement] = bceAndAgreement(rb.logits, m);
    aux.push_back({"aux_loss." + rb.prefix, bce, double(options.auxLoss)});
    agree.push_back({"agreement." + rb.prefix, agreement, 0.0});
    if (!options.predictor)
      continue;
    int64_t width = tensorTypeOf(rb.input).getDimSize(2);
    int64_t hidden = options.predictorHidden;
    std::string std = llvm::formatv("normal:{0}", options.predictorInitStd);
    std::string p = rb.prefix + ".mod.predictor.";
    SmallVector<Value> pp{addParameter(p + "fc1.weight", {width, hidden}, et, std),
                          addParameter(p + "fc1.bias", {hidden}, et, "zeros"),
                          addParameter(p + "fc2.weight", {hidden}, et, std),
                          addParameter(p + "fc2.bias", {}, et, "zeros")};
    params.append(pp);
    Value flat;
    Value logitsP = predictorLogits(rb, pp, flat);
    stopAt.push_back(flat);
    auto [pl, pa] = bceAndAgreement(logitsP, m);
    predLoss.push_back({"predictor_loss." + rb.prefix, pl, 1.0});
    predAgree.push_back({"predictor_agreement." + rb.prefix, pa, 0.0});
  }
  for (auto *list : {&aux, &agree, &predLoss, &predAgree})
    scalars.append(list->begin(), list->end());

  // Reverse sweep over everything computed so far.
  ReverseAD ad(b);
  ad.computeActivity(block, params);
  for (Value v : stopAt)
    ad.stopGradient(v);
  SmallVector<Operation *> forwardOps;
  for (Operation &op : block.without_terminator())
    forwardOps.push_back(&op);
  Operation *firstBackward = nullptr;
  {
    auto marker = arith::ConstantOp::create(b, loc, b.getIndexAttr(0));
    firstBackward = marker;
  }
  for (const ScalarResult &s : scalars)
    if (s.weight != 0.0)
      ad.addAdjoint(s.value, filledTensor(b, loc,
                                          tensorTypeOf(s.value), s.weight));
  for (Operation *op : llvm::reverse(forwardOps))
    if (failed(ad.differentiate(op)))
      return failure();

  SmallVector<Value> results;
  SmallVector<std::string> names;
  for (const ScalarResult &s : scalars) {
    results.push_back(s.value);
    names.push_back(s.name);
  }
  for (Value p : params) {
    Value g = ad.getAdjoint(p);
    if (!g)
      g = filledTensor(b, loc, tensorTypeOf(p), 0.0);
    results.push_back(g);
    auto name = fn.getArgAttrOfType<StringAttr>(
        cast<BlockArgument>(p).getArgNumber(), kNameAttr);
    names.push_back("grad." + (name ? name.str()
                                    : "arg" + std::to_string(cast<BlockArgument>(p)
                                                                 .getArgNumber())));
  }
  func::ReturnOp::create(b, loc, results);
  ret.erase();

  if (options.printMemory)
    reportMemory(firstBackward);
  firstBackward->erase();

  SmallVector<Type> resultTypes;
  for (Value r : results)
    resultTypes.push_back(r.getType());
  fn.setType(FunctionType::get(ctx, fn.getArgumentTypes(), resultTypes));
  SmallVector<DictionaryAttr> resultAttrs;
  for (const std::string &n : names) {
    NamedAttrList attrs;
    attrs.set(kNameAttr, b.getStringAttr(n));
    resultAttrs.push_back(attrs.getDictionary(ctx));
  }
  fn.setAllResultAttrs(resultAttrs);

  // Returning one value twice breaks buffer-results-to-out-params, and CSE
  // merges equal gradients (e.g. of two parameters added together, or two
  // zero gradients): merge now, then give every repeated result its own copy,
  // marked so that no later CSE merges the copies again.
  IRRewriter rewriter(ctx);
  DominanceInfo dom(fn);
  eliminateCommonSubExpressions(rewriter, dom, fn);
  auto newRet = cast<func::ReturnOp>(block.getTerminator());
  b.setInsertionPoint(newRet);
  DenseSet<Value> seen;
  for (OpOperand &operand : newRet->getOpOperands()) {
    Value v = operand.get();
    if (seen.insert(v).second && !isa<BlockArgument>(v))
      continue;
    // `v + 0.0` (exact; canonicalization would fold a plain copy away).
    RankedTensorType type = tensorTypeOf(v);
    AffineMap id = b.getMultiDimIdentityMap(type.getRank());
    Value copy = buildGeneric(
        b, loc, {v}, {id},
        tensor::EmptyOp::create(b, loc, type.getShape(), type.getElementType()),
        id,
        SmallVector<utils::IteratorType>(type.getRank(),
                                         utils::IteratorType::parallel),
        [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
          Value zero = floatConstant(nb, nloc, args[0].getType(), 0.0);
          return arith::AddFOp::create(nb, nloc, args[0], zero);
        });
    copy.getDefiningOp()->setAttr(
        "mod.result", b.getStringAttr(names[operand.getOperandNumber()]));
    operand.set(copy);
  }
  return success();
}

namespace {
struct GenerateGradPass : mod::impl::GenerateGradBase<GenerateGradPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>(func);
    if (!forward || forward.isExternal()) {
      module.emitError() << "mod-generate-grad: no function @" << func
                         << " with a body to differentiate";
      return signalPassFailure();
    }
    if (module.lookupSymbol(kGradFunc)) {
      module.emitError() << "mod-generate-grad: the module already has a @"
                         << kGradFunc;
      return signalPassFailure();
    }
    if (!forward.getBody().hasOneBlock() ||
        forward.getFunctionType().getNumResults() != 1) {
      forward.emitError() << "mod-generate-grad: @" << func
                          << " must have one block and return only the logits";
      return signalPassFailure();
    }
    auto logits =
        dyn_cast<RankedTensorType>(forward.getFunctionType().getResult(0));
    if (!logits || logits.getRank() != 3 || !logits.hasStaticShape() ||
        !isa<FloatType>(logits.getElementType())) {
      forward.emitError() << "mod-generate-grad: @" << func
                          << " must return float logits [B,S,V] with a static "
                             "shape, got "
                          << forward.getFunctionType().getResult(0);
      return signalPassFailure();
    }
    if (predictorHidden < 1) {
      module.emitError() << "mod-generate-grad: predictor-hidden must be >= 1";
      return signalPassFailure();
    }
    OpBuilder b(&getContext());
    b.setInsertionPointAfter(forward);
    auto fn = cast<func::FuncOp>(b.clone(*forward));
    fn.setSymName(kGradFunc);
    fn.setPublic();
    GenerateGradOptions opts{func,      auxLoss,          predictor,
                             predictorHidden, predictorInitStd, printMemory};
    GradientBuilder builder(fn, b, opts);
    if (failed(builder.run())) {
      fn.erase();
      return signalPassFailure();
    }
  }
};
} // namespace
