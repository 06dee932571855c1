//===- BlockDiscovery.cpp - residual chain and transformer blocks ---------===//

#include "mod/Analysis/BlockDiscovery.h"
#include "mod/Analysis/Refusal.h"
#include "mod/Dialect/MoD/IR/MoDOps.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "llvm/ADT/SmallBitVector.h"

using namespace mlir;
using namespace mlir::mod;

bool mlir::mod::matchElementwiseAdd(Operation *op, Value &lhs, Value &rhs) {
  if (auto add = dyn_cast<arith::AddFOp>(op)) {
    if (!isa<RankedTensorType>(add.getType()))
      return false;
    lhs = add.getLhs();
    rhs = add.getRhs();
    return true;
  }
  if (auto add = dyn_cast<linalg::AddOp>(op)) {
    if (add.getNumDpsInputs() != 2 || !add.hasPureTensorSemantics())
      return false;
    lhs = add.getDpsInputs()[0];
    rhs = add.getDpsInputs()[1];
    return true;
  }
  auto generic = dyn_cast<linalg::GenericOp>(op);
  if (!generic || generic.getNumDpsInputs() != 2 ||
      generic.getNumDpsInits() != 1 || !generic.hasPureTensorSemantics() ||
      generic.getNumReductionLoops() != 0 ||
      !llvm::all_of(generic.getIndexingMapsArray(),
                    [](AffineMap m) { return m.isIdentity(); }))
    return false;
  Block &body = generic.getRegion().front();
  if (body.getOperations().size() != 2)
    return false;
  auto addf = dyn_cast<arith::AddFOp>(body.front());
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  if (!addf || yield.getValues().size() != 1 ||
      yield.getValues()[0] != addf.getResult())
    return false;
  Value a = body.getArgument(0), b = body.getArgument(1);
  if (!((addf.getLhs() == a && addf.getRhs() == b) ||
        (addf.getLhs() == b && addf.getRhs() == a)))
    return false;
  lhs = generic.getDpsInputs()[0];
  rhs = generic.getDpsInputs()[1];
  return true;
}

namespace {
/// A [B,S,D] value whose axis 1 runs over tokens.
bool isStreamValue(Value v, const TokenAxisAnalysis &axes) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  return type && type.getRank() == 3 && axes.isTokenDim(v, 1);
}

/// Ops (in `func`) whose results transitively depend on `v`.
llvm::SetVector<Operation *> dependents(Value v) {
  llvm::SetVector<Operation *> slice;
  ForwardSliceOptions options;
  getForwardSlice(v, &slice, options);
  return slice;
}

bool dependsOn(Value v, const llvm::SetVector<Operation *> &dependentsOfX) {
  Operation *def = v.getDefiningOp();
  return def && dependentsOfX.contains(def);
}

/// Common prefix of parameter names, cut back to a '.' boundary.
std::string commonPrefix(ArrayRef<std::string> names) {
  if (names.empty())
    return "";
  std::string prefix = names.front();
  for (const std::string &n : names) {
    size_t i = 0;
    while (i < prefix.size() && i < n.size() && prefix[i] == n[i])
      ++i;
    prefix.resize(i);
  }
  // "transformer.h.1." (all names share it) or "transformer.h.1" when one
  // name is the prefix itself: cut to the last complete component.
  bool allLonger = llvm::all_of(names, [&](const std::string &n) {
    return n.size() > prefix.size() && n[prefix.size()] == '.';
  });
  if (!allLonger) {
    size_t dot = prefix.rfind('.');
    prefix.resize(dot == std::string::npos ? 0 : dot);
  }
  while (!prefix.empty() && prefix.back() == '.')
    prefix.pop_back();
  return prefix;
}
} // namespace

static std::string blockPrefix(func::FuncOp func, const TransformerBlock &block,
                               unsigned index) {
  SmallVector<std::string> names;
  llvm::SmallPtrSet<Value, 8> seen;
  auto visit = [&](Value v) {
    auto arg = dyn_cast<BlockArgument>(v);
    if (!arg || arg.getOwner() != &func.getBody().front() ||
        !seen.insert(v).second)
      return;
    if (auto name = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                      "mod.name"))
      names.push_back(name.str());
  };
  for (const Sublayer &s : block.sublayers)
    for (Operation *op : s.ops)
      op->walk([&](Operation *nested) {
        for (Value operand : nested->getOperands())
          visit(operand);
      });
  std::string prefix = commonPrefix(names);
  return prefix.empty() ? "blocks." + std::to_string(index) : prefix;
}

FailureOr<ResidualStructure>
mlir::mod::discoverBlocks(func::FuncOp func, const TokenAxisAnalysis &axes) {
  ResidualStructure result;
  Block &body = func.getBody().front();

  // The chain starts at the skip operand of the first residual add: an add
  // whose one operand depends on the other.
  Value start;
  for (Operation &op : body) {
    if (auto routed = dyn_cast<RoutedBlockOp>(op)) {
      start = routed.getInput();
      break;
    }
    Value a, b;
    if (!matchElementwiseAdd(&op, a, b) || !isStreamValue(op.getResult(0), axes))
      continue;
    if (dependsOn(b, dependents(a)))
      start = a;
    else if (dependsOn(a, dependents(b)))
      start = b;
    if (start)
      break;
  }
  if (!start)
    return emitRefusal(func)
           << "no residual chain found: expected [B,S,D] values updated by "
              "elementwise adds h = h + f(h) along the token axis";

  // Follow the stream: the next residual add uses the current chain value
  // and adds a branch computed from some chain value.
  SmallVector<Value> chainValues{start};
  SmallVector<llvm::SetVector<Operation *>> chainDependents{dependents(start)};
  Value current = start;
  while (true) {
    Operation *next = nullptr;
    Value branch;
    // A block that is already routed is one step of the chain.
    for (Operation *user : current.getUsers())
      if (auto routed = dyn_cast<RoutedBlockOp>(user))
        if (routed.getInput() == current &&
            (!next || user->isBeforeInBlock(next)))
          next = user;
    if (next) {
      Sublayer s;
      s.input = s.skip = current;
      s.add = next;
      s.output = next->getResult(0);
      s.ops.insert(next);
      s.tokenMixingOp = next;
      result.chain.push_back(std::move(s));
      current = next->getResult(0);
      chainValues.push_back(current);
      chainDependents.push_back(dependents(current));
      continue;
    }
    for (Operation *user : current.getUsers()) {
      Value a, b;
      if (!matchElementwiseAdd(user, a, b) || !isStreamValue(user->getResult(0), axes))
        continue;
      Value other = a == current ? b : a;
      if (other == current)
        continue;
      bool fromChain = llvm::any_of(chainDependents, [&](const auto &deps) {
        return dependsOn(other, deps);
      });
      if (fromChain && user->getBlock() == &body) {
        if (!next || user->isBeforeInBlock(next)) {
          next = user;
          branch = other;
        }
      }
    }
    if (!next)
      break;
    Sublayer s;
    s.skip = current;
    s.branch = branch;
    s.add = next;
    s.output = next->getResult(0);
    // The branch reads the most recent chain value it depends on.
    for (int i = chainValues.size() - 1; i >= 0; --i)
      if (dependsOn(branch, chainDependents[i])) {
        s.input = chainValues[i];
        break;
      }
    // The branch's ops: its backward slice restricted to ops that depend on
    // the input; everything else (weights, masks, RoPE tables) is invariant.
    const llvm::SetVector<Operation *> &fromInput =
        chainDependents[llvm::find(chainValues, s.input) - chainValues.begin()];
    llvm::SetVector<Operation *> backward;
    BackwardSliceOptions options;
    options.omitBlockArguments = true;
    options.inclusive = true;
    (void)getBackwardSlice(branch, &backward, options);
    for (Operation *op : backward)
      if (fromInput.contains(op))
        s.ops.insert(op);
    for (Operation *op : s.ops) {
      // An op whose token axes could not be followed may mix tokens in a
      // way the analysis does not understand: never call it position-wise.
      if (axes.getFailure(op)) {
        s.tokenMixingOp = op;
        break;
      }
      llvm::SmallBitVector loops = axes.getTokenLoops(op);
      auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
      if (!linalgOp)
        continue;
      auto iters = linalgOp.getIteratorTypesArray();
      for (int l : loops.set_bits())
        if (iters[l] == utils::IteratorType::reduction) {
          s.tokenMixingOp = op;
          break;
        }
      if (s.tokenMixingOp)
        break;
    }
    result.chain.push_back(std::move(s));
    current = next->getResult(0);
    chainValues.push_back(current);
    chainDependents.push_back(dependents(current));
  }

  // Group sublayers into blocks.
  const auto &chain = result.chain;
  for (size_t i = 0; i < chain.size();) {
    const Sublayer &s = chain[i];
    TransformerBlock block;
    block.index = result.blocks.size();
    block.sublayers.push_back(s);
    if (!s.isTokenMixing()) {
      InFlightDiagnostic diag = emitRefusal(s.add)
          << "position-wise sublayer (block " << block.index
          << ") is not preceded by a token-mixing one; cannot form a "
             "transformer block";
      return diag;
    }
    if (!isa<RoutedBlockOp>(s.add) && i + 1 < chain.size() &&
        !chain[i + 1].isTokenMixing() &&
        (chain[i + 1].input == s.output || chain[i + 1].input == s.input)) {
      block.sublayers.push_back(chain[i + 1]);
      block.parallel = chain[i + 1].input == s.input;
      i += 2;
    } else {
      i += 1;
    }
    block.prefix = blockPrefix(func, block, block.index);
    result.blocks.push_back(std::move(block));
  }
  return result;
}
