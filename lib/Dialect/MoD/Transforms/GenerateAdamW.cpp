//===- GenerateAdamW.cpp - generate the @adamw_step entry point -----------===//
//
// The optimizer is a separate entry point from the gradients so that the
// runtime can accumulate micro-batches (and all-reduce them between
// processes) before it updates. The update is elementwise per parameter, so
// one linalg.generic per parameter computes p', m' and v' from p, g, m, v in
// the same iteration: that is what makes passing p's buffer as p''s buffer
// (in place, `mod.aliases`) safe however the result buffers are assigned.
//
//===----------------------------------------------------------------------===//

#include "mod/Dialect/MoD/Transforms/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <limits>

namespace mlir::mod {
#define GEN_PASS_DEF_GENERATEADAMW
#include "mod/Dialect/MoD/Transforms/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod;

namespace {
constexpr StringLiteral kNameAttr = "mod.name", kKindAttr = "mod.kind",
                        kAliasesAttr = "mod.aliases", kEntryName = "adamw_step",
                        kRouterSuffix = ".mod.router.weight";

struct Parameter {
  std::string name;
  RankedTensorType type;
  /// The `mod.*` argument attributes of the parameter (name, kind, init,
  /// init seed), carried over so the manifest describes it the same way.
  SmallVector<NamedAttribute> attrs;
};

/// The decay rule stated in the pass description.
bool isDecayed(const Parameter &p) {
  return p.type.getRank() >= 2 && !StringRef(p.name).ends_with(kRouterSuffix);
}

/// The scalars every parameter's update uses, in the element type.
struct Coefficients {
  Value coef;      // clipping factor for the gradient
  Value beta1, oneMinusBeta1, beta2, oneMinusBeta2, eps;
  Value stepSize;  // lr / (1 - beta1^step)
  Value sqrtBias2; // sqrt(1 - beta2^step)
  Value decay;     // 1 - lr * weight_decay
  Value finite;    // i1: the gradient norm is finite (else keep the state)
};

class GenerateAdamWPass
    : public mod::impl::GenerateAdamWBase<GenerateAdamWPass> {
public:
  using GenerateAdamWBase::GenerateAdamWBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<SmallVector<Parameter>> params = collectParameters(module);
    if (failed(params))
      return signalPassFailure();
    buildStep(module, *params);
  }

private:
  FailureOr<SmallVector<Parameter>> collectParameters(ModuleOp module);
  void buildStep(ModuleOp module, ArrayRef<Parameter> params);
};
} // namespace

FailureOr<SmallVector<Parameter>>
GenerateAdamWPass::collectParameters(ModuleOp module) {
  if (Operation *existing = module.lookupSymbol(kEntryName)) {
    existing->emitError() << "--mod-generate-adamw: the module already has a "
                             "symbol @"
                          << kEntryName;
    return failure();
  }
  auto source = module.lookupSymbol<func::FuncOp>(func);
  if (!source) {
    module.emitError() << "--mod-generate-adamw: no function @" << func
                       << " to take the parameters from (run "
                          "--mod-generate-grad first, or name the function "
                          "with func=<name>)";
    return failure();
  }
  SmallVector<Parameter> params;
  Type elementType;
  for (unsigned i = 0, e = source.getNumArguments(); i < e; ++i) {
    auto kind = source.getArgAttrOfType<StringAttr>(i, kKindAttr);
    if (!kind || kind.getValue() != "parameter")
      continue;
    auto name = source.getArgAttrOfType<StringAttr>(i, kNameAttr);
    if (!name) {
      source.emitError() << "--mod-generate-adamw: parameter argument #" << i
                         << " of @" << func << " has no mod.name";
      return failure();
    }
    auto type = dyn_cast<RankedTensorType>(source.getArgumentTypes()[i]);
    if (!type || !type.hasStaticShape() ||
        !isa<FloatType>(type.getElementType())) {
      source.emitError() << "--mod-generate-adamw: parameter '"
                         << name.getValue()
                         << "' must be a statically shaped float tensor, got "
                         << source.getArgumentTypes()[i];
      return failure();
    }
    if (elementType && elementType != type.getElementType()) {
      source.emitError() << "--mod-generate-adamw: parameter '"
                         << name.getValue() << "' has element type "
                         << type.getElementType() << " but '"
                         << params.front().name << "' has " << elementType
                         << "; all parameters must share one float type";
      return failure();
    }
    elementType = type.getElementType();
    Parameter p{name.str(), type, {}};
    for (NamedAttribute attr : source.getArgAttrDict(i).getValue())
      if (attr.getName().getValue().starts_with("mod."))
        p.attrs.push_back(attr);
    params.push_back(std::move(p));
  }
  if (params.empty()) {
    source.emitError() << "--mod-generate-adamw: @" << func
                       << " has no argument with mod.kind = \"parameter\"";
    return failure();
  }
  return params;
}

/// sum(g^2) over every gradient, accumulated into a 0-d f64 tensor.
static Value buildSumOfSquares(OpBuilder &b, Location loc, ValueRange grads) {
  Type f64 = b.getF64Type();
  Value zero = arith::ConstantOp::create(b, loc, f64, b.getF64FloatAttr(0.0));
  Value acc = tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{}, f64);
  acc = linalg::FillOp::create(b, loc, zero, acc).getResult(0);
  for (Value g : grads) {
    auto type = cast<RankedTensorType>(g.getType());
    unsigned rank = type.getRank();
    SmallVector<AffineMap> maps{b.getMultiDimIdentityMap(rank),
                                AffineMap::get(rank, 0, b.getContext())};
    SmallVector<utils::IteratorType> iters(rank,
                                           utils::IteratorType::reduction);
    acc = linalg::GenericOp::create(
              b, loc, acc.getType(), ValueRange{g}, ValueRange{acc}, maps,
              iters,
              [&](OpBuilder &nb, Location nl, ValueRange args) {
                Value x = args[0];
                if (x.getType() != f64)
                  x = arith::ExtFOp::create(nb, nl, f64, x);
                Value sq = arith::MulFOp::create(nb, nl, x, x);
                Value sum = arith::AddFOp::create(nb, nl, args[1], sq);
                linalg::YieldOp::create(nb, nl, sum);
              })
              .getResult(0);
  }
  return acc;
}

void GenerateAdamWPass::buildStep(ModuleOp module,
                                  ArrayRef<Parameter> params) {
  MLIRContext *ctx = module.getContext();
  OpBuilder b(ctx);
  Location loc = NameLoc::get(b.getStringAttr("mod-generate-adamw"));
  const size_t n = params.size();
  auto elementType = cast<FloatType>(params.front().type.getElementType());
  auto scalarType = RankedTensorType::get({}, elementType);
  auto stepType = RankedTensorType::get({}, b.getI32Type());

  // Signature: params, grads, m, v, then the hyper-parameters.
  SmallVector<Type> argTypes, resultTypes;
  SmallVector<DictionaryAttr> argAttrs, resultAttrs;
  auto named = [&](StringRef name) {
    return b.getDictionaryAttr(b.getNamedAttr(kNameAttr, b.getStringAttr(name)));
  };
  for (const Parameter &p : params) {
    argTypes.push_back(p.type);
    argAttrs.push_back(b.getDictionaryAttr(p.attrs));
  }
  for (StringRef prefix : {"grad.", "m.", "v."})
    for (const Parameter &p : params) {
      argTypes.push_back(p.type);
      argAttrs.push_back(named((prefix + p.name).str()));
    }
  const char *scalarNames[] = {"lr",  "beta1",        "beta2",
                               "eps", "weight_decay", "max_norm"};
  for (const char *name : scalarNames) {
    argTypes.push_back(scalarType);
    argAttrs.push_back(named(name));
  }
  argTypes.push_back(stepType);
  argAttrs.push_back(named("step"));

  // Results: p', m', v' (each replacing its argument in place), grad_norm.
  for (unsigned group = 0; group < 3; ++group)
    for (auto [i, p] : llvm::enumerate(params)) {
      int64_t argIndex = group == 0 ? i : (group + 1) * n + i;
      resultTypes.push_back(p.type);
      std::string name =
          (group == 0 ? "" : group == 1 ? "m." : "v.") + p.name;
      resultAttrs.push_back(b.getDictionaryAttr(
          {b.getNamedAttr(kNameAttr, b.getStringAttr(name)),
           b.getNamedAttr(kAliasesAttr, b.getI64IntegerAttr(argIndex))}));
    }
  resultTypes.push_back(scalarType);
  resultAttrs.push_back(named("grad_norm"));

  b.setInsertionPointToEnd(module.getBody());
  auto fn = func::FuncOp::create(b, loc, kEntryName,
                                 b.getFunctionType(argTypes, resultTypes));
  fn.setAllArgAttrs(argAttrs);
  fn.setAllResultAttrs(resultAttrs);
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  ValueRange args = entry->getArguments();
  ValueRange ps = args.slice(0, n), gs = args.slice(n, n),
             ms = args.slice(2 * n, n), vs = args.slice(3 * n, n);

  // Scalars in f64, rounded to the element type once.
  Type f64 = b.getF64Type();
  auto scalar = [&](unsigned k) -> Value {
    Value v = tensor::ExtractOp::create(b, loc, args[4 * n + k], ValueRange{});
    return v.getType() == f64 ? v : arith::ExtFOp::create(b, loc, f64, v);
  };
  auto constant = [&](double v) -> Value {
    return arith::ConstantOp::create(b, loc, f64, b.getF64FloatAttr(v));
  };
  auto toElement = [&](Value v) -> Value {
    return elementType == f64 ? v
                              : arith::TruncFOp::create(b, loc, elementType, v);
  };
  Value lr = scalar(0), beta1 = scalar(1), beta2 = scalar(2), eps = scalar(3),
        wd = scalar(4), maxNorm = scalar(5);
  Value stepI32 = tensor::ExtractOp::create(b, loc, args[4 * n + 6], ValueRange{});
  Value step = arith::SIToFPOp::create(b, loc, f64, stepI32);
  Value one = constant(1.0);

  Value sumSq = tensor::ExtractOp::create(
      b, loc, buildSumOfSquares(b, loc, gs), ValueRange{});
  Value norm = math::SqrtOp::create(b, loc, sumSq);
  Coefficients c;
  c.finite = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, norm,
                                   constant(std::numeric_limits<double>::infinity()));
  Value clipOn = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                       maxNorm, constant(0.0));
  Value ratio = arith::DivFOp::create(
      b, loc, maxNorm, arith::AddFOp::create(b, loc, norm, constant(1e-6)));
  Value clipped = arith::MinimumFOp::create(b, loc, ratio, one);
  c.coef = toElement(arith::SelectOp::create(b, loc, clipOn, clipped, one));
  c.beta1 = toElement(beta1);
  c.oneMinusBeta1 = toElement(arith::SubFOp::create(b, loc, one, beta1));
  c.beta2 = toElement(beta2);
  c.oneMinusBeta2 = toElement(arith::SubFOp::create(b, loc, one, beta2));
  c.eps = toElement(eps);
  Value bias1 = arith::SubFOp::create(b, loc, one,
                                      math::PowFOp::create(b, loc, beta1, step));
  Value bias2 = arith::SubFOp::create(b, loc, one,
                                      math::PowFOp::create(b, loc, beta2, step));
  c.stepSize = toElement(arith::DivFOp::create(b, loc, lr, bias1));
  c.sqrtBias2 = toElement(math::SqrtOp::create(b, loc, bias2));
  c.decay = toElement(arith::SubFOp::create(
      b, loc, one, arith::MulFOp::create(b, loc, lr, wd)));

  SmallVector<Value> newP, newM, newV;
  for (auto [i, p] : llvm::enumerate(params)) {
    unsigned rank = p.type.getRank();
    SmallVector<Value> inits;
    for (int k = 0; k < 3; ++k)
      inits.push_back(tensor::EmptyOp::create(b, loc, p.type.getShape(),
                                              elementType));
    SmallVector<AffineMap> maps(7, b.getMultiDimIdentityMap(rank));
    SmallVector<utils::IteratorType> iters(rank,
                                           utils::IteratorType::parallel);
    bool decayed = isDecayed(p);
    auto update = linalg::GenericOp::create(
        b, loc, TypeRange{p.type, p.type, p.type},
        ValueRange{ps[i], gs[i], ms[i], vs[i]}, inits, maps, iters,
        [&](OpBuilder &nb, Location nl, ValueRange a) {
          Value pv = a[0], g = a[1], m = a[2], v = a[3];
          Value gc = arith::MulFOp::create(nb, nl, g, c.coef);
          Value m2 = arith::AddFOp::create(
              nb, nl, arith::MulFOp::create(nb, nl, c.beta1, m),
              arith::MulFOp::create(nb, nl, c.oneMinusBeta1, gc));
          Value v2 = arith::AddFOp::create(
              nb, nl, arith::MulFOp::create(nb, nl, c.beta2, v),
              arith::MulFOp::create(
                  nb, nl, c.oneMinusBeta2,
                  arith::MulFOp::create(nb, nl, gc, gc)));
          Value denom = arith::AddFOp::create(
              nb, nl,
              arith::DivFOp::create(nb, nl, math::SqrtOp::create(nb, nl, v2),
                                    c.sqrtBias2),
              c.eps);
          Value delta = arith::DivFOp::create(
              nb, nl, arith::MulFOp::create(nb, nl, c.stepSize, m2), denom);
          Value kept = decayed ? arith::MulFOp::create(nb, nl, pv, c.decay)
                               : pv;
          Value p2 = arith::SubFOp::create(nb, nl, kept, delta);
          linalg::YieldOp::create(
              nb, nl,
              ValueRange{arith::SelectOp::create(nb, nl, c.finite, p2, pv),
                         arith::SelectOp::create(nb, nl, c.finite, m2, m),
                         arith::SelectOp::create(nb, nl, c.finite, v2, v)});
        });
    newP.push_back(update.getResult(0));
    newM.push_back(update.getResult(1));
    newV.push_back(update.getResult(2));
  }
  Value normTensor = tensor::FromElementsOp::create(
      b, loc, scalarType, ValueRange{toElement(norm)});
  SmallVector<Value> results(newP);
  results.append(newM);
  results.append(newV);
  results.push_back(normTensor);
  func::ReturnOp::create(b, loc, results);
}
