//===- ReverseAD.cpp - reverse-mode AD over linalg on tensors -------------===//
//
// Adjoint rules, LAGrad style (Peng & Dubach, CC'23):
//  - linalg.generic: one adjoint generic per differentiable (operand, map);
//    the operand's map becomes the output map and the loops it does not use
//    become reductions. The body is recomputed from the forward inputs and
//    differentiated op by op in reverse.
//  - tensor.extract of a differentiable tensor inside a body (an embedding
//    lookup) scatters its adjoint with an scf.for nest over the generic's
//    iteration space: the row it reads is data, so no indexing map exists.
//  - matmuls get transposed-matmul adjoints so they stay BLAS calls.
//  - reshapes, slices, concat, transposes and the mod ops have direct rules.
//
//===----------------------------------------------------------------------===//

#include "ReverseAD.h"

#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SmallBitVector.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::mod;
using namespace mlir::mod::detail;

//===----------------------------------------------------------------------===//
// Builders
//===----------------------------------------------------------------------===//

RankedTensorType mlir::mod::detail::tensorTypeOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

Value mlir::mod::detail::floatConstant(OpBuilder &b, Location loc, Type type,
                                       double value) {
  return arith::ConstantOp::create(b, loc, type, b.getFloatAttr(type, value));
}

Value mlir::mod::detail::filledTensor(OpBuilder &b, Location loc,
                                      RankedTensorType type, double value) {
  Value init = tensor::EmptyOp::create(b, loc, type.getShape(),
                                       type.getElementType());
  Value c = floatConstant(b, loc, type.getElementType(), value);
  return linalg::FillOp::create(b, loc, c, init).getResult(0);
}

Value mlir::mod::detail::buildGeneric(
    OpBuilder &b, Location loc, ValueRange inputs,
    ArrayRef<AffineMap> inputMaps, Value init, AffineMap outMap,
    ArrayRef<utils::IteratorType> iterators,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  SmallVector<AffineMap> maps(inputMaps);
  maps.push_back(outMap);
  return linalg::GenericOp::create(
             b, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, maps,
             iterators,
             [&](OpBuilder &nb, Location nloc, ValueRange args) {
               linalg::YieldOp::create(nb, nloc, body(nb, nloc, args));
             })
      .getResult(0);
}

static SmallVector<utils::IteratorType> parallelLoops(int64_t n) {
  return SmallVector<utils::IteratorType>(n, utils::IteratorType::parallel);
}

Value mlir::mod::detail::addTensors(OpBuilder &b, Location loc, Value lhs,
                                    Value rhs) {
  RankedTensorType type = tensorTypeOf(lhs);
  AffineMap id = b.getMultiDimIdentityMap(type.getRank());
  Value init = tensor::EmptyOp::create(b, loc, type.getShape(),
                                       type.getElementType());
  return buildGeneric(b, loc, {lhs, rhs}, {id, id}, init, id,
                      parallelLoops(type.getRank()),
                      [](OpBuilder &nb, Location nloc, ValueRange args) {
                        return arith::AddFOp::create(nb, nloc, args[0], args[1])
                            .getResult();
                      });
}

Value mlir::mod::detail::transposeTensor(OpBuilder &b, Location loc,
                                         Value input,
                                         ArrayRef<int64_t> permutation) {
  RankedTensorType type = tensorTypeOf(input);
  SmallVector<int64_t> shape;
  for (int64_t d : permutation)
    shape.push_back(type.getDimSize(d));
  Value init = tensor::EmptyOp::create(b, loc, shape, type.getElementType());
  return linalg::TransposeOp::create(b, loc, input, init, permutation)
      .getResult()[0];
}

//===----------------------------------------------------------------------===//
// Activity and accumulation
//===----------------------------------------------------------------------===//

static bool isFloatTensor(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && isa<FloatType>(t.getElementType());
}

void ReverseAD::computeActivity(Block &block, ArrayRef<Value> seeds) {
  for (Value s : seeds)
    active.insert(s);
  for (Operation &op : block) {
    bool anyActive = llvm::any_of(op.getOperands(),
                                  [&](Value v) { return isActive(v); });
    if (!anyActive && op.getNumRegions()) {
      llvm::SetVector<Value> captured;
      getUsedValuesDefinedAbove(op.getRegions(), captured);
      anyActive = llvm::any_of(captured, [&](Value v) { return isActive(v); });
    }
    if (!anyActive)
      continue;
    for (Value r : op.getResults())
      if (isFloatTensor(r))
        active.insert(r);
  }
}

void ReverseAD::addAdjoint(Value v, Value contribution) {
  if (!isActive(v) || stopped.contains(v))
    return;
  auto it = adjoints.find(v);
  if (it == adjoints.end()) {
    adjoints[v] = contribution;
    return;
  }
  it->second = addTensors(b, v.getLoc(), it->second, contribution);
}

//===----------------------------------------------------------------------===//
// Scalar bodies
//===----------------------------------------------------------------------===//

namespace {
/// Differentiates the scalar body of a linalg.generic, recomputed at the
/// builder's insertion point.
class BodyAdjoint {
public:
  BodyAdjoint(OpBuilder &b, Location loc, Block &body,
              const DenseSet<Value> &act)
      : b(b), loc(loc), body(body), act(act) {}

  /// Clones every op but the terminator. `map` must already bind the block
  /// arguments; `indices`, when given, replaces linalg.index (loop nests).
  void recompute(ArrayRef<Value> indices) {
    for (Operation &op : body.without_terminator()) {
      if (auto index = dyn_cast<linalg::IndexOp>(op); index && !indices.empty()) {
        map.map(index.getResult(), indices[index.getDim()]);
        continue;
      }
      b.clone(op, map);
    }
  }

  Value lookup(Value primal) const { return map.lookupOrDefault(primal); }

  void seed(Value primal, Value adjoint) { accumulate(primal, adjoint); }
  Value adjointOf(Value primal) const { return adj.lookup(primal); }

  /// Propagates the seeds to every differentiable body value. Returns the
  /// first op that has no rule, or null.
  Operation *propagate() {
    for (Operation &op : llvm::reverse(body.without_terminator())) {
      if (op.getNumResults() != 1)
        continue;
      Value dy = adj.lookup(op.getResult(0));
      if (!dy)
        continue;
      if (!llvm::any_of(op.getOperands(),
                        [&](Value v) { return act.contains(v); }))
        continue;
      if (failed(rule(op, dy)))
        return &op;
    }
    return nullptr;
  }

  IRMapping map;

private:
  void accumulate(Value primal, Value contribution) {
    if (!act.contains(primal))
      return;
    Value &slot = adj[primal];
    slot = slot ? arith::AddFOp::create(b, loc, slot, contribution).getResult()
                : contribution;
  }
  Value cst(Type t, double v) { return floatConstant(b, loc, t, v); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return arith::DivFOp::create(b, loc, x, y); }
  Value neg(Value x) { return arith::NegFOp::create(b, loc, x); }
  Value sub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, loc, c, x, y);
  }

  /// Max/min: the gradient goes to the operand that is selected, `lhs` on
  /// ties (consistent with a subgradient).
  void minMax(Operation &op, Value dy, bool isMax) {
    Value x = lookup(op.getOperand(0)), y = lookup(op.getOperand(1));
    Value zero = cst(dy.getType(), 0.0);
    Value takeLhs = arith::CmpFOp::create(
        b, loc, isMax ? arith::CmpFPredicate::OGE : arith::CmpFPredicate::OLE,
        x, y);
    accumulate(op.getOperand(0), select(takeLhs, dy, zero));
    accumulate(op.getOperand(1), select(takeLhs, zero, dy));
  }

  LogicalResult rule(Operation &op, Value dy) {
    Type t = dy.getType();
    Value y = lookup(op.getResult(0));
    auto operand = [&](unsigned i) { return lookup(op.getOperand(i)); };
    return llvm::TypeSwitch<Operation *, LogicalResult>(&op)
        .Case([&](arith::AddFOp) {
          accumulate(op.getOperand(0), dy);
          accumulate(op.getOperand(1), dy);
          return success();
        })
        .Case([&](arith::SubFOp) {
          accumulate(op.getOperand(0), dy);
          if (act.contains(op.getOperand(1)))
            accumulate(op.getOperand(1), neg(dy));
          return success();
        })
        .Case([&](arith::MulFOp) {
          if (act.contains(op.getOperand(0)))
            accumulate(op.getOperand(0), mul(dy, operand(1)));
          if (act.contains(op.getOperand(1)))
            accumulate(op.getOperand(1), mul(dy, operand(0)));
          return success();
        })
        .Case([&](arith::DivFOp) {
          // y = a / b: da = dy / b, db = -dy * y / b.
          if (act.contains(op.getOperand(0)))
            accumulate(op.getOperand(0), div(dy, operand(1)));
          if (act.contains(op.getOperand(1)))
            accumulate(op.getOperand(1), neg(div(mul(dy, y), operand(1))));
          return success();
        })
        .Case([&](arith::NegFOp) {
          accumulate(op.getOperand(0), neg(dy));
          return success();
        })
        .Case([&](arith::MaximumFOp) { return minMax(op, dy, true), success(); })
        .Case([&](arith::MaxNumFOp) { return minMax(op, dy, true), success(); })
        .Case([&](arith::MinimumFOp) { return minMax(op, dy, false), success(); })
        .Case([&](arith::MinNumFOp) { return minMax(op, dy, false), success(); })
        .Case([&](arith::SelectOp sel) {
          if (!isa<FloatType>(t))
            return failure();
          Value c = lookup(sel.getCondition());
          Value zero = cst(t, 0.0);
          if (act.contains(sel.getTrueValue()))
            accumulate(sel.getTrueValue(), select(c, dy, zero));
          if (act.contains(sel.getFalseValue()))
            accumulate(sel.getFalseValue(), select(c, zero, dy));
          return success();
        })
        .Case([&](arith::ExtFOp) {
          accumulate(op.getOperand(0),
                     arith::TruncFOp::create(b, loc,
                                             op.getOperand(0).getType(), dy));
          return success();
        })
        .Case([&](arith::TruncFOp) {
          accumulate(op.getOperand(0),
                     arith::ExtFOp::create(b, loc, op.getOperand(0).getType(),
                                           dy));
          return success();
        })
        .Case([&](math::ExpOp) {
          accumulate(op.getOperand(0), mul(dy, y));
          return success();
        })
        .Case([&](math::LogOp) {
          accumulate(op.getOperand(0), div(dy, operand(0)));
          return success();
        })
        .Case([&](math::TanhOp) {
          accumulate(op.getOperand(0),
                     mul(dy, sub(cst(t, 1.0), mul(y, y))));
          return success();
        })
        .Case([&](math::SqrtOp) {
          accumulate(op.getOperand(0), div(mul(dy, cst(t, 0.5)), y));
          return success();
        })
        .Case([&](math::RsqrtOp) {
          // d(x^-1/2) = -1/2 x^-3/2 = -1/2 y / x.
          accumulate(op.getOperand(0),
                     neg(div(mul(mul(dy, cst(t, 0.5)), y), operand(0))));
          return success();
        })
        .Case([&](math::ErfOp) {
          Value x = operand(0);
          Value g = math::ExpOp::create(b, loc, neg(mul(x, x)));
          accumulate(op.getOperand(0),
                     mul(dy, mul(cst(t, 2.0 / std::sqrt(M_PI)), g)));
          return success();
        })
        .Case([&](math::SinOp) {
          accumulate(op.getOperand(0),
                     mul(dy, math::CosOp::create(b, loc, operand(0))));
          return success();
        })
        .Case([&](math::CosOp) {
          accumulate(op.getOperand(0),
                     neg(mul(dy, math::SinOp::create(b, loc, operand(0)))));
          return success();
        })
        .Case([&](math::AbsFOp) {
          Value x = operand(0);
          Value nonNeg = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGE,
                                               x, cst(t, 0.0));
          accumulate(op.getOperand(0), select(nonNeg, dy, neg(dy)));
          return success();
        })
        .Case([&](math::PowFOp) {
          // y = a^c: da = dy c a^(c-1) = dy c y / a, dc = dy y log a.
          Value a = operand(0), c = operand(1);
          if (act.contains(op.getOperand(0)))
            accumulate(op.getOperand(0), div(mul(mul(dy, c), y), a));
          if (act.contains(op.getOperand(1)))
            accumulate(op.getOperand(1),
                       mul(mul(dy, y), math::LogOp::create(b, loc, a)));
          return success();
        })
        // Leaves: the value read is differentiated by the caller.
        .Case([&](tensor::ExtractOp) { return success(); })
        .Default([&](Operation *) { return failure(); });
  }

  OpBuilder &b;
  Location loc;
  Block &body;
  const DenseSet<Value> &act;
  DenseMap<Value, Value> adj;
};

enum class Combiner { Pass, Add, Max, Min };

/// How a reduction generic folds one result: `acc <combiner> term`.
struct ReductionInfo {
  Combiner kind = Combiner::Pass;
  Value term; // body value combined into the accumulator
};
} // namespace

static bool dependsOn(Value v, Value on, Block &body) {
  if (v == on)
    return true;
  Operation *def = v.getDefiningOp();
  if (!def || def->getBlock() != &body)
    return false;
  return llvm::any_of(def->getOperands(),
                      [&](Value o) { return dependsOn(o, on, body); });
}

/// Reads `tensor` at `map(ivs)` (loop-nest form of a generic operand).
static FailureOr<Value> readAt(OpBuilder &b, Location loc, Value tensor,
                               AffineMap map, ArrayRef<Value> ivs) {
  SmallVector<Value> coords;
  for (AffineExpr e : map.getResults()) {
    if (auto d = dyn_cast<AffineDimExpr>(e))
      coords.push_back(ivs[d.getPosition()]);
    else if (auto c = dyn_cast<AffineConstantExpr>(e))
      coords.push_back(arith::ConstantIndexOp::create(b, loc, c.getValue()));
    else
      return failure();
  }
  return tensor::ExtractOp::create(b, loc, tensor, coords).getResult();
}

//===----------------------------------------------------------------------===//
// linalg.generic
//===----------------------------------------------------------------------===//

LogicalResult ReverseAD::differentiateGeneric(linalg::GenericOp op) {
  Location loc = op.getLoc();
  unsigned nIn = op.getNumDpsInputs(), nOut = op.getNumDpsInits();
  Block &body = op.getRegion().front();
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  bool hasReduction = op.getNumReductionLoops() > 0;
  SmallVector<Value> ins(op.getDpsInputs()), inits(op.getDpsInits());
  SmallVector<Value> dOut;
  for (Value r : op.getResults())
    dOut.push_back(getAdjoint(r));

  // Differentiable scalars of the body.
  DenseSet<Value> act;
  for (unsigned i = 0; i < nIn; ++i)
    if (isActive(ins[i]))
      act.insert(body.getArgument(i));
  bool outArgsUsed = false;
  for (unsigned j = 0; j < nOut; ++j) {
    BlockArgument arg = body.getArgument(nIn + j);
    outArgsUsed |= !arg.use_empty();
    if (!hasReduction && isActive(inits[j]))
      act.insert(arg);
  }
  SmallVector<tensor::ExtractOp> lookups;
  for (Operation &inner : body.without_terminator()) {
    if (auto ex = dyn_cast<tensor::ExtractOp>(inner);
        ex && ex.getTensor().getParentBlock() != &body &&
        isActive(ex.getTensor())) {
      lookups.push_back(ex);
      act.insert(ex.getResult());
      continue;
    }
    if (llvm::any_of(inner.getOperands(),
                     [&](Value v) { return act.contains(v); }))
      for (Value r : inner.getResults())
        if (isa<FloatType>(r.getType()))
          act.insert(r);
  }

  // Reductions must fold each result with +, max or min.
  SmallVector<ReductionInfo> reductions(nOut);
  if (hasReduction) {
    for (unsigned j = 0; j < nOut; ++j) {
      BlockArgument acc = body.getArgument(nIn + j);
      Value y = yield.getOperand(j);
      if (y == acc)
        continue;
      Operation *comb = y.getDefiningOp();
      auto fail = [&]() {
        return op.emitError("mod-generate-grad: cannot differentiate this "
                            "reduction: result #")
               << j << " must be `acc + term`, `max(acc, term)` or "
                       "`min(acc, term)` with a term that does not read an "
                       "accumulator";
      };
      if (!comb || comb->getBlock() != &body || comb->getNumOperands() != 2)
        return fail();
      if (isa<arith::AddFOp>(comb))
        reductions[j].kind = Combiner::Add;
      else if (isa<arith::MaximumFOp, arith::MaxNumFOp>(comb))
        reductions[j].kind = Combiner::Max;
      else if (isa<arith::MinimumFOp, arith::MinNumFOp>(comb))
        reductions[j].kind = Combiner::Min;
      else
        return fail();
      Value lhs = comb->getOperand(0), rhs = comb->getOperand(1);
      if (lhs == acc)
        reductions[j].term = rhs;
      else if (rhs == acc)
        reductions[j].term = lhs;
      else
        return fail();
      for (unsigned k = 0; k < nOut; ++k)
        if (dependsOn(reductions[j].term, body.getArgument(nIn + k), body))
          return fail();
      if (!acc.hasOneUse())
        return fail();
    }
    // The init's adjoint: everything folded in stays, a max keeps it only
    // where it won.
    for (unsigned j = 0; j < nOut; ++j) {
      if (!dOut[j] || !isActive(inits[j]))
        continue;
      if (reductions[j].kind == Combiner::Add ||
          reductions[j].kind == Combiner::Pass) {
        addAdjoint(inits[j], dOut[j]);
        continue;
      }
      return op.emitError("mod-generate-grad: cannot differentiate a max/min "
                          "reduction whose initial value is differentiable");
    }
  }

  // Operands of the adjoint generics: the forward inputs, then per result
  // its adjoint (or the forward result when it has none, only to keep the
  // loop bounds inferable), the forward results (max/min reductions read
  // them), and the inits a parallel body reads.
  SmallVector<Value> operands(ins);
  SmallVector<AffineMap> operandMaps(maps.begin(), maps.begin() + nIn);
  unsigned dOutBase = operands.size();
  for (unsigned j = 0; j < nOut; ++j) {
    operands.push_back(dOut[j] ? dOut[j] : op.getResult(j));
    operandMaps.push_back(maps[nIn + j]);
  }
  unsigned resultBase = operands.size();
  for (unsigned j = 0; j < nOut; ++j) {
    operands.push_back(op.getResult(j));
    operandMaps.push_back(maps[nIn + j]);
  }
  unsigned initBase = operands.size();
  if (!hasReduction && outArgsUsed)
    for (unsigned j = 0; j < nOut; ++j) {
      operands.push_back(inits[j]);
      operandMaps.push_back(maps[nIn + j]);
    }

  // Binds the body's block arguments and seeds the outputs' adjoints.
  auto setUp = [&](OpBuilder &nb, Location nloc, BodyAdjoint &ba,
                   ArrayRef<Value> operandScalars, ArrayRef<Value> indices) {
    for (unsigned i = 0; i < nIn; ++i)
      ba.map.map(body.getArgument(i), operandScalars[i]);
    for (unsigned j = 0; j < nOut; ++j)
      ba.map.map(body.getArgument(nIn + j),
                 !hasReduction && outArgsUsed ? operandScalars[initBase + j]
                                              : operandScalars[resultBase + j]);
    ba.recompute(indices);
    for (unsigned j = 0; j < nOut; ++j) {
      if (!dOut[j])
        continue;
      Value d = operandScalars[dOutBase + j];
      if (!hasReduction) {
        ba.seed(yield.getOperand(j), d);
        continue;
      }
      const ReductionInfo &red = reductions[j];
      if (red.kind == Combiner::Pass)
        continue;
      if (red.kind == Combiner::Add) {
        ba.seed(red.term, d);
        continue;
      }
      // The term gets the gradient where it equals the result.
      Value term = ba.lookup(red.term);
      Value won = arith::CmpFOp::create(nb, nloc, arith::CmpFPredicate::OEQ,
                                        term, operandScalars[resultBase + j]);
      Value zero = floatConstant(nb, nloc, d.getType(), 0.0);
      ba.seed(red.term, arith::SelectOp::create(nb, nloc, won, d, zero));
    }
  };

  // One adjoint generic per differentiable (tensor, map).
  struct Target {
    Value tensor;
    AffineMap map;
    SmallVector<Value> args;
  };
  SmallVector<Target> targets;
  auto addTarget = [&](Value tensor, AffineMap map, Value arg) {
    for (Target &t : targets)
      if (t.tensor == tensor && t.map == map) {
        t.args.push_back(arg);
        return;
      }
    targets.push_back({tensor, map, {arg}});
  };
  for (unsigned i = 0; i < nIn; ++i)
    if (act.contains(body.getArgument(i)) && !body.getArgument(i).use_empty())
      addTarget(ins[i], maps[i], body.getArgument(i));
  if (!hasReduction)
    for (unsigned j = 0; j < nOut; ++j)
      if (act.contains(body.getArgument(nIn + j)) &&
          !body.getArgument(nIn + j).use_empty())
        addTarget(inits[j], maps[nIn + j], body.getArgument(nIn + j));

  unsigned numLoops = op.getNumLoops();
  for (Target &target : targets) {
    if (!target.map.isProjectedPermutation(/*allowZeroInResults=*/false)) {
      std::string text;
      llvm::raw_string_ostream os(text);
      target.map.print(os);
      return op.emitError("mod-generate-grad: cannot differentiate an operand "
                          "read through the non-projection map ")
             << text;
    }
    SmallVector<utils::IteratorType> iterators(numLoops,
                                               utils::IteratorType::reduction);
    for (AffineExpr e : target.map.getResults())
      iterators[cast<AffineDimExpr>(e).getPosition()] =
          utils::IteratorType::parallel;
    Operation *failed = nullptr;
    Value zeros = filledTensor(b, loc, tensorTypeOf(target.tensor), 0.0);
    Value grad = buildGeneric(
        b, loc, operands, operandMaps, zeros, target.map, iterators,
        [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
          BodyAdjoint ba(nb, nloc, body, act);
          SmallVector<Value> scalars(args.drop_back());
          setUp(nb, nloc, ba, scalars, {});
          failed = ba.propagate();
          Value sum = args.back();
          for (Value arg : target.args)
            if (Value d = ba.adjointOf(arg))
              sum = arith::AddFOp::create(nb, nloc, sum, d);
          return sum;
        });
    if (failed)
      return failed->emitError("mod-generate-grad: cannot differentiate '")
             << failed->getName() << "' in the body of a linalg.generic";
    addAdjoint(target.tensor, grad);
  }

  // Embedding lookups: scatter each read's adjoint into the table.
  for (tensor::ExtractOp ex : lookups) {
    SmallVector<int64_t> bounds = op.getStaticLoopRanges();
    Value table = ex.getTensor();
    Value zeros = filledTensor(b, loc, tensorTypeOf(table), 0.0);
    SmallVector<Value> ivs;
    Operation *failed = nullptr;
    bool badMap = false;
    std::function<Value(OpBuilder &, Location, unsigned, Value)> nest =
        [&](OpBuilder &nb, Location nloc, unsigned depth, Value acc) -> Value {
      if (depth == bounds.size()) {
        SmallVector<Value> scalars;
        for (auto [v, m] : llvm::zip(operands, operandMaps)) {
          FailureOr<Value> s = readAt(nb, nloc, v, m, ivs);
          if (::failed(s)) {
            badMap = true;
            return acc;
          }
          scalars.push_back(*s);
        }
        BodyAdjoint ba(nb, nloc, body, act);
        setUp(nb, nloc, ba, scalars, ivs);
        failed = ba.propagate();
        Value d = ba.adjointOf(ex.getResult());
        if (!d)
          return acc;
        SmallVector<Value> coords;
        for (Value i : ex.getIndices())
          coords.push_back(ba.lookup(i));
        Value old = tensor::ExtractOp::create(nb, nloc, acc, coords);
        Value sum = arith::AddFOp::create(nb, nloc, old, d);
        return tensor::InsertOp::create(nb, nloc, sum, acc, coords);
      }
      Value lb = arith::ConstantIndexOp::create(nb, nloc, 0);
      Value ub = arith::ConstantIndexOp::create(nb, nloc, bounds[depth]);
      Value step = arith::ConstantIndexOp::create(nb, nloc, 1);
      auto loop = scf::ForOp::create(
          nb, nloc, lb, ub, step, ValueRange{acc},
          [&](OpBuilder &lb2, Location lloc, Value iv, ValueRange iter) {
            ivs.push_back(iv);
            Value next = nest(lb2, lloc, depth + 1, iter[0]);
            ivs.pop_back();
            scf::YieldOp::create(lb2, lloc, next);
          });
      return loop.getResult(0);
    };
    Value grad = nest(b, loc, 0, zeros);
    if (badMap)
      return op.emitError("mod-generate-grad: cannot differentiate a lookup "
                          "in a linalg.generic with non-projection maps");
    if (failed)
      return failed->emitError("mod-generate-grad: cannot differentiate '")
             << failed->getName() << "' in the body of a linalg.generic";
    addAdjoint(table, grad);
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Matmuls
//===----------------------------------------------------------------------===//

/// C = init + A B: dA = dC B^T, dB = A^T dC, dInit = dC. Transposes are
/// explicit linalg.transpose ops so the products stay plain (batch) matmuls.
LogicalResult ReverseAD::differentiateMatmul(linalg::LinalgOp op,
                                             bool batched) {
  Location loc = op.getLoc();
  Value dC = getAdjoint(op->getResult(0));
  if (!dC)
    return success();
  Value a = op.getDpsInputOperand(0)->get(), bm = op.getDpsInputOperand(1)->get();
  Value init = op.getDpsInitOperand(0)->get();
  SmallVector<int64_t> perm =
      batched ? SmallVector<int64_t>{0, 2, 1} : SmallVector<int64_t>{1, 0};
  auto product = [&](Value lhs, Value rhs, RankedTensorType type) -> Value {
    Value zeros = filledTensor(b, loc, type, 0.0);
    if (batched)
      return linalg::BatchMatmulOp::create(b, loc, ValueRange{lhs, rhs},
                                           ValueRange{zeros})
          .getResult(0);
    return linalg::MatmulOp::create(b, loc, ValueRange{lhs, rhs},
                                    ValueRange{zeros})
        .getResult(0);
  };
  if (isActive(a))
    addAdjoint(a, product(dC, transposeTensor(b, loc, bm, perm),
                          tensorTypeOf(a)));
  if (isActive(bm))
    addAdjoint(bm, product(transposeTensor(b, loc, a, perm), dC,
                           tensorTypeOf(bm)));
  addAdjoint(init, dC);
  return success();
}

//===----------------------------------------------------------------------===//
// Dispatch
//===----------------------------------------------------------------------===//

/// Static slice geometry, or nullopt when an offset, size or stride is
/// dynamic.
struct SliceGeometry {
  SmallVector<int64_t> offsets, sizes, strides;
  llvm::SmallBitVector dropped; // source dims the slice type drops
};
template <typename SliceOp>
static std::optional<SliceGeometry> sliceGeometry(SliceOp op) {
  SliceGeometry g{SmallVector<int64_t>(op.getStaticOffsets()),
                  SmallVector<int64_t>(op.getStaticSizes()),
                  SmallVector<int64_t>(op.getStaticStrides()),
                  op.getDroppedDims()};
  if (ShapedType::isDynamicShape(g.offsets) ||
      ShapedType::isDynamicShape(g.sizes) ||
      ShapedType::isDynamicShape(g.strides))
    return std::nullopt;
  return g;
}

/// A tensor of `type` (the slice's type) holding `big` read at the slice:
/// element d is big[offset + d * stride] (dropped dims at their offset).
/// A generic over the slice reading with tensor.extract: an indexing map
/// could not express a window that starts at 0 and ends early.
static Value readSlice(OpBuilder &b, Location loc, Value big,
                       RankedTensorType type, const SliceGeometry &g) {
  int64_t rank = type.getRank();
  Value init =
      tensor::EmptyOp::create(b, loc, type.getShape(), type.getElementType());
  return linalg::GenericOp::create(
             b, loc, TypeRange{type}, ValueRange{}, ValueRange{init},
             ArrayRef<AffineMap>{b.getMultiDimIdentityMap(rank)},
             parallelLoops(rank),
             [&](OpBuilder &nb, Location nloc, ValueRange) {
               SmallVector<Value> coords;
               unsigned loop = 0;
               for (size_t i = 0; i < g.offsets.size(); ++i) {
                 Value off = arith::ConstantIndexOp::create(nb, nloc, g.offsets[i]);
                 if (g.dropped.test(i)) {
                   coords.push_back(off);
                   continue;
                 }
                 Value idx = linalg::IndexOp::create(nb, nloc, loop++);
                 Value st = arith::ConstantIndexOp::create(nb, nloc, g.strides[i]);
                 coords.push_back(arith::AddIOp::create(
                     nb, nloc, off, arith::MulIOp::create(nb, nloc, idx, st)));
               }
               Value v = tensor::ExtractOp::create(nb, nloc, big, coords);
               linalg::YieldOp::create(nb, nloc, v);
             })
      .getResult(0);
}

/// A tensor of `type` (the slice's source) that holds `small` (the slice's
/// adjoint) at the slice and `outside` (or zero) everywhere else.
static Value writeSlice(OpBuilder &b, Location loc, Value small, Value outside,
                        RankedTensorType type, const SliceGeometry &g) {
  int64_t rank = type.getRank();
  AffineMap id = b.getMultiDimIdentityMap(rank);
  Value init =
      tensor::EmptyOp::create(b, loc, type.getShape(), type.getElementType());
  SmallVector<Value> ins;
  SmallVector<AffineMap> maps;
  if (outside) {
    ins.push_back(outside);
    maps.push_back(id);
  }
  maps.push_back(id);
  return linalg::GenericOp::create(
             b, loc, TypeRange{type}, ins, ValueRange{init}, maps,
             parallelLoops(rank),
             [&](OpBuilder &nb, Location nloc, ValueRange args) {
               Value inside = arith::ConstantIntOp::create(nb, nloc, 1, 1);
               SmallVector<Value> coords;
               for (int64_t i = 0; i < rank; ++i) {
                 Value idx = linalg::IndexOp::create(nb, nloc, i);
                 Value off = arith::ConstantIndexOp::create(nb, nloc, g.offsets[i]);
                 Value rel = arith::SubIOp::create(nb, nloc, idx, off);
                 Value zeroI = arith::ConstantIndexOp::create(nb, nloc, 0);
                 Value last = arith::ConstantIndexOp::create(
                     nb, nloc, (g.sizes[i] - 1) * g.strides[i]);
                 Value st = arith::ConstantIndexOp::create(nb, nloc, g.strides[i]);
                 Value ok = arith::AndIOp::create(
                     nb, nloc,
                     arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::sge,
                                           rel, zeroI),
                     arith::CmpIOp::create(nb, nloc, arith::CmpIPredicate::sle,
                                           rel, last));
                 if (g.strides[i] != 1)
                   ok = arith::AndIOp::create(
                       nb, nloc, ok,
                       arith::CmpIOp::create(
                           nb, nloc, arith::CmpIPredicate::eq,
                           arith::RemSIOp::create(nb, nloc, rel, st), zeroI));
                 inside = arith::AndIOp::create(nb, nloc, inside, ok);
                 if (g.dropped.test(i))
                   continue;
                 // Clamped so that the read stays in bounds where unused.
                 Value q = arith::DivSIOp::create(nb, nloc, rel, st);
                 q = arith::MaxSIOp::create(nb, nloc, q, zeroI);
                 q = arith::MinSIOp::create(
                     nb, nloc, q,
                     arith::ConstantIndexOp::create(nb, nloc, g.sizes[i] - 1));
                 coords.push_back(q);
               }
               Value v = tensor::ExtractOp::create(nb, nloc, small, coords);
               Value other =
                   outside ? args[0]
                           : floatConstant(nb, nloc, v.getType(), 0.0);
               linalg::YieldOp::create(
                   nb, nloc,
                   arith::SelectOp::create(nb, nloc, inside, v, other)
                       .getResult());
             })
      .getResult(0);
}

/// `sigmoid` when a scatter_add scales its update by sigmoid(scale) itself.
static bool hasSigmoidGate(ScatterAddOp op) {
  auto gate = op->getAttrOfType<GateKindAttr>("gate");
  return gate && gate.getValue() == GateKind::Sigmoid;
}

LogicalResult ReverseAD::differentiate(Operation *op) {
  bool anyAdjoint = llvm::any_of(op->getResults(),
                                 [&](Value r) { return getAdjoint(r); });
  if (!anyAdjoint)
    return success();
  Location loc = op->getLoc();
  auto ones = [&](RankedTensorType type) {
    return filledTensor(b, loc, type, 1.0);
  };
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](linalg::GenericOp g) { return differentiateGeneric(g); })
      .Case([&](linalg::MatmulOp m) { return differentiateMatmul(m, false); })
      .Case([&](linalg::BatchMatmulOp m) {
        return differentiateMatmul(m, true);
      })
      .Case([&](linalg::TransposeOp t) {
        ArrayRef<int64_t> perm = t.getPermutation();
        SmallVector<int64_t> inverse(perm.size());
        for (auto [i, p] : llvm::enumerate(perm))
          inverse[p] = i;
        addAdjoint(t.getInput(),
                   transposeTensor(b, loc, getAdjoint(t.getResult()[0]),
                                   inverse));
        return success();
      })
      // The init is overwritten and the value is a scalar, which is never
      // differentiable here.
      .Case([&](linalg::FillOp) { return success(); })
      .Case([&](tensor::CollapseShapeOp c) {
        addAdjoint(c.getSrc(), tensor::ExpandShapeOp::create(
                                   b, loc, c.getSrcType(),
                                   getAdjoint(c.getResult()),
                                   c.getReassociationIndices()));
        return success();
      })
      .Case([&](tensor::ExpandShapeOp e) {
        addAdjoint(e.getSrc(), tensor::CollapseShapeOp::create(
                                   b, loc, e.getSrcType(),
                                   getAdjoint(e.getResult()),
                                   e.getReassociationIndices()));
        return success();
      })
      .Case([&](tensor::ExtractSliceOp s) -> LogicalResult {
        std::optional<SliceGeometry> g = sliceGeometry(s);
        if (!g)
          return s.emitError("mod-generate-grad: cannot differentiate a "
                             "tensor.extract_slice with a dynamic offset, "
                             "size or stride");
        addAdjoint(s.getSource(), writeSlice(b, loc, getAdjoint(s.getResult()),
                                             Value(), s.getSourceType(), *g));
        return success();
      })
      .Case([&](tensor::InsertSliceOp s) -> LogicalResult {
        std::optional<SliceGeometry> g = sliceGeometry(s);
        if (!g)
          return s.emitError("mod-generate-grad: cannot differentiate a "
                             "tensor.insert_slice with a dynamic offset, "
                             "size or stride");
        Value d = getAdjoint(s.getResult());
        if (isActive(s.getSource()))
          addAdjoint(s.getSource(),
                     readSlice(b, loc, d, s.getSourceType(), *g));
        if (isActive(s.getDest())) {
          // Zero where the slice overwrote the destination.
          Value zeros = filledTensor(b, loc, s.getSourceType(), 0.0);
          addAdjoint(s.getDest(), writeSlice(b, loc, zeros, d, s.getType(), *g));
        }
        return success();
      })
      .Case([&](tensor::ConcatOp c) {
        Value d = getAdjoint(c.getResult());
        int64_t dim = c.getDim(), offset = 0;
        for (Value in : c.getInputs()) {
          RankedTensorType inType = tensorTypeOf(in);
          int64_t rank = inType.getRank();
          SliceGeometry g{SmallVector<int64_t>(rank, 0),
                          SmallVector<int64_t>(inType.getShape()),
                          SmallVector<int64_t>(rank, 1),
                          llvm::SmallBitVector(rank)};
          g.offsets[dim] = offset;
          offset += inType.getDimSize(dim);
          if (isActive(in))
            addAdjoint(in, readSlice(b, loc, d, inType, g));
        }
        return success();
      })
      .Case([&](mod::RouterOp r) {
        // r[b,s] = sum_d x[b,s,d] w[d].
        Value dr = getAdjoint(r.getResult());
        Value x = r.getInput(), w = r.getWeight();
        MLIRContext *ctx = b.getContext();
        AffineExpr d0 = b.getAffineDimExpr(0), d1 = b.getAffineDimExpr(1),
                   d2 = b.getAffineDimExpr(2);
        auto bs = AffineMap::get(3, 0, {d0, d1}, ctx);
        auto dd = AffineMap::get(3, 0, {d2}, ctx);
        auto id = b.getMultiDimIdentityMap(3);
        auto mulBody = [](OpBuilder &nb, Location nloc, ValueRange args) {
          Value p = arith::MulFOp::create(nb, nloc, args[0], args[1]);
          return arith::AddFOp::create(nb, nloc, args[2], p).getResult();
        };
        if (isActive(x))
          addAdjoint(x, buildGeneric(b, loc, {dr, w}, {bs, dd},
                                     filledTensor(b, loc, tensorTypeOf(x), 0.0),
                                     id, parallelLoops(3), mulBody));
        if (isActive(w))
          addAdjoint(
              w, buildGeneric(b, loc, {dr, x}, {bs, id},
                              filledTensor(b, loc, tensorTypeOf(w), 0.0), dd,
                              {utils::IteratorType::reduction,
                               utils::IteratorType::reduction,
                               utils::IteratorType::parallel},
                              mulBody));
        return success();
      })
      .Case([&](mod::TopKOp t) {
        // values[b,j] = input[b, idx[b,j]]; the indices carry no gradient.
        Value d = getAdjoint(t.getValues());
        if (!d)
          return success();
        Value zeros = filledTensor(b, loc, tensorTypeOf(t.getInput()), 0.0);
        addAdjoint(t.getInput(),
                   ScatterAddOp::create(b, loc, zeros.getType(), zeros,
                                        t.getIndices(), d,
                                        ones(tensorTypeOf(d))));
        return success();
      })
      .Case([&](mod::GatherOp g) {
        Value d = getAdjoint(g.getResult());
        Value zeros = filledTensor(b, loc, tensorTypeOf(g.getInput()), 0.0);
        auto idxType = tensorTypeOf(g.getIndices());
        auto scaleType = RankedTensorType::get(
            idxType.getShape(), tensorTypeOf(d).getElementType());
        addAdjoint(g.getInput(),
                   ScatterAddOp::create(b, loc, zeros.getType(), zeros,
                                        g.getIndices(), d, ones(scaleType)));
        return success();
      })
      .Case([&](mod::ScatterAddOp s) {
        // out = x; out[b, idx[b,j]] += gate(g[b,j]) * u[b,j].
        Value d = getAdjoint(s.getResult());
        addAdjoint(s.getInput(), d);
        if (!isActive(s.getUpdate()) && !isActive(s.getScale()))
          return success();
        RankedTensorType uType = tensorTypeOf(s.getUpdate());
        int64_t rank = uType.getRank();
        Value dRows = GatherOp::create(b, loc, uType, d, s.getIndices());
        MLIRContext *ctx = b.getContext();
        auto bk = AffineMap::get(
            rank, 0, {b.getAffineDimExpr(0), b.getAffineDimExpr(1)}, ctx);
        auto id = b.getMultiDimIdentityMap(rank);
        bool sigmoid = hasSigmoidGate(s);
        auto gateOf = [&](OpBuilder &nb, Location nloc, Value g) -> Value {
          if (!sigmoid)
            return g;
          Value one = floatConstant(nb, nloc, g.getType(), 1.0);
          Value e = math::ExpOp::create(nb, nloc,
                                        arith::NegFOp::create(nb, nloc, g));
          return arith::DivFOp::create(
              nb, nloc, one, arith::AddFOp::create(nb, nloc, one, e));
        };
        if (isActive(s.getUpdate()))
          addAdjoint(s.getUpdate(),
                     buildGeneric(b, loc, {dRows, s.getScale()}, {id, bk},
                                  tensor::EmptyOp::create(
                                      b, loc, uType.getShape(),
                                      uType.getElementType()),
                                  id, parallelLoops(rank),
                                  [&](OpBuilder &nb, Location nloc,
                                      ValueRange args) -> Value {
                                    return arith::MulFOp::create(
                                        nb, nloc, args[0],
                                        gateOf(nb, nloc, args[1]));
                                  }));
        if (isActive(s.getScale())) {
          SmallVector<utils::IteratorType> its(rank,
                                               utils::IteratorType::reduction);
          its[0] = its[1] = utils::IteratorType::parallel;
          Value dot = buildGeneric(
              b, loc, {dRows, s.getUpdate()}, {id, id},
              filledTensor(b, loc, tensorTypeOf(s.getScale()), 0.0), bk, its,
              [](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                Value p = arith::MulFOp::create(nb, nloc, args[0], args[1]);
                return arith::AddFOp::create(nb, nloc, args[2], p);
              });
          if (sigmoid) {
            // sigmoid' = s (1 - s).
            RankedTensorType gType = tensorTypeOf(s.getScale());
            AffineMap gid = b.getMultiDimIdentityMap(2);
            dot = buildGeneric(
                b, loc, {dot, s.getScale()}, {gid, gid},
                tensor::EmptyOp::create(b, loc, gType.getShape(),
                                        gType.getElementType()),
                gid, parallelLoops(2),
                [&](OpBuilder &nb, Location nloc, ValueRange args) -> Value {
                  Value sg = gateOf(nb, nloc, args[1]);
                  Value one = floatConstant(nb, nloc, sg.getType(), 1.0);
                  Value dsg = arith::MulFOp::create(
                      nb, nloc, sg, arith::SubFOp::create(nb, nloc, one, sg));
                  return arith::MulFOp::create(nb, nloc, args[0], dsg);
                });
          }
          addAdjoint(s.getScale(), dot);
        }
        return success();
      })
      .Case([&](tensor::EmptyOp) { return success(); })
      .Default([&](Operation *other) -> LogicalResult {
        bool anyActive = llvm::any_of(other->getOperands(),
                                      [&](Value v) { return isActive(v); });
        if (!anyActive && other->getNumRegions()) {
          llvm::SetVector<Value> captured;
          getUsedValuesDefinedAbove(other->getRegions(), captured);
          anyActive =
              llvm::any_of(captured, [&](Value v) { return isActive(v); });
        }
        if (!anyActive)
          return success();
        return other->emitError("mod-generate-grad: cannot differentiate '")
               << other->getName() << "' (no adjoint rule)";
      });
}
