//===- GenericAdjoint.cpp - adjoints of linalg.generic ---------------------===//
//
// LAGrad-style adjoints of linalg.generic (Peng & Dubach, CC'23): one
// adjoint generic per differentiable (operand, map), whose output map is
// that operand's map and whose loops missing from it become reductions; the
// scalar body is recomputed from the forward inputs and differentiated op by
// op in reverse. A tensor.extract of a differentiable tensor in a body (an
// embedding lookup) scatters its adjoint with an scf.for nest over the
// generic's iteration space: the row it reads is data, so no map exists.
//
//===----------------------------------------------------------------------===//

#include "ReverseAD.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <functional>

using namespace mlir;
using namespace mlir::mod::detail;

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

  // Embedding lookups: scatter each read's adjoint into the table. When the
  // table already has an adjoint (a tied embedding: the LM head, later in
  // the forward, was differentiated first), the scatter adds into it
  // instead of into a new zero-filled table that would then be added to it:
  // for GPT-2 that saves filling and adding two [V,D] tensors per step.
  for (tensor::ExtractOp ex : lookups) {
    SmallVector<int64_t> bounds = op.getStaticLoopRanges();
    Value table = ex.getTensor();
    Value existing = isActive(table) && !stopped.contains(table)
                         ? getAdjoint(table)
                         : Value();
    Value zeros =
        existing ? existing : filledTensor(b, loc, tensorTypeOf(table), 0.0);
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
    if (existing)
      adjoints[table] = grad;
    else
      addAdjoint(table, grad);
  }
  return success();
}

