//===- DenseToMoD.cpp - dense transformer blocks -> mod.routed_block ------===//
//
// ARCHITECTURE.md section 4: token-axis analysis, residual-chain discovery,
// sublayer classification and block formation live in lib/Analysis; this
// file chooses the blocks to route and rewrites each into a mod.routed_block
// whose body is the block's residual contribution on K gathered tokens.
//
// The rewrite runs on a copy of the function; the original is replaced only
// when every scheduled block converted, so a failure leaves the module as it
// was.
//
//===----------------------------------------------------------------------===//

#include "mod/Analysis/BlockDiscovery.h"
#include "mod/Analysis/Refusal.h"
#include "mod/Analysis/TokenAxisAnalysis.h"
#include "mod/Dialect/MoD/IR/MoDOps.h"
#include "mod/Dialect/MoD/Transforms/Elementwise.h"
#include "mod/Dialect/MoD/Transforms/Passes.h"
#include "mod/Dialect/MoD/Transforms/RoutedBlocks.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <map>
#include <set>

namespace mlir::mod {
#define GEN_PASS_DEF_DENSETOMOD
#include "mod/Dialect/MoD/Transforms/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod;

namespace {

constexpr llvm::StringLiteral kNameAttr = "mod.name";

struct Settings {
  int64_t seqLen = 0, capacity = 0;
  GateKind gate = GateKind::Identity;
  double initStd = 0.02;
  /// Recorded as mod.init_seed when set; unset uses the runtime's seed.
  std::optional<uint64_t> initSeed;
  bool returnRouting = false;
  /// Stochastic routing: each routed block picks K tokens uniformly at random
  /// (top-k of hashed scores of the routing_seed input), no router weight.
  bool stochastic = false;
};

constexpr llvm::StringLiteral kRoutingSeedName = "routing_seed";

std::optional<unsigned> findNamedArg(func::FuncOp func, StringRef name) {
  for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
    if (auto attr = func.getArgAttrOfType<StringAttr>(i, kNameAttr))
      if (attr.getValue() == name)
        return i;
  return std::nullopt;
}

/// What an integer [B,S] argument is used for, seen from the integer values
/// derived from it (inside linalg bodies too).
struct ArgUse {
  /// Converted to a float (RoPE angles), or compared with another value
  /// derived from it (a causal mask p[j] <= p[i]).
  bool position = false;
  /// An index into a float table (an embedding lookup).
  bool embedding = false;
};

ArgUse inspectIntArg(Value arg) {
  ArgUse use;
  auto isInt = [](Type t) {
    Type e = getElementTypeOrSelf(t);
    return isa<IntegerType, IndexType>(e);
  };
  llvm::SmallPtrSet<Value, 32> derived{arg};
  SmallVector<Value> work{arg};
  SmallVector<arith::CmpIOp> compares;
  auto push = [&](Value v) {
    if (isInt(v.getType()) && derived.insert(v).second)
      work.push_back(v);
  };
  // The walk stays on integers, so it stops where an embedding turns ids
  // into activations; the bound guards against huge integer graphs.
  while (!work.empty() && derived.size() < 4096) {
    Value v = work.pop_back_val();
    for (OpOperand &operand : v.getUses()) {
      Operation *user = operand.getOwner();
      if (isa<arith::SIToFPOp, arith::UIToFPOp>(user))
        use.position = true;
      if (auto cmp = dyn_cast<arith::CmpIOp>(user))
        compares.push_back(cmp);
      if (auto extract = dyn_cast<tensor::ExtractOp>(user))
        if (operand.getOperandNumber() > 0 &&
            isa<FloatType>(extract.getType()))
          use.embedding = true;
      if (auto linalgOp = dyn_cast<linalg::LinalgOp>(user))
        if (linalgOp.isDpsInput(&operand))
          push(linalgOp.getMatchingBlockArgument(&operand));
      for (Value r : user->getResults())
        push(r);
    }
  }
  for (arith::CmpIOp cmp : compares)
    if (derived.contains(cmp.getLhs()) && derived.contains(cmp.getRhs()))
      use.position = true;
  return use;
}

/// The token-id and position arguments of a function, found by name
/// (mod.name), by the pass options, or by how they are used.
struct Roles {
  std::optional<unsigned> tokens, positions;
};

/// nullopt: the function has neither (it is not a model to convert).
FailureOr<std::optional<Roles>> findRoles(func::FuncOp func, int tokensOpt,
                                          int positionsOpt) {
  Roles roles;
  unsigned n = func.getNumArguments();
  for (auto [opt, name, slot] :
       {std::make_tuple(positionsOpt, "positions", &roles.positions),
        std::make_tuple(tokensOpt, "tokens", &roles.tokens)}) {
    if (opt >= 0) {
      if (static_cast<unsigned>(opt) >= n)
        return emitRefusal(func)
               << name << "-arg=" << opt << ", but @" << func.getSymName()
               << " has only " << n << " arguments";
      *slot = opt;
    } else if (std::optional<unsigned> i = findNamedArg(func, name)) {
      *slot = *i;
    }
  }
  if (roles.tokens && roles.tokens == roles.positions)
    return emitRefusal(func) << "argument #" << *roles.tokens
                             << " cannot be both the tokens and the positions";
  SmallVector<unsigned> posLike, idLike, embeddingAndPos;
  for (unsigned i = 0; i < n; ++i) {
    if (i == roles.tokens || i == roles.positions)
      continue;
    auto type = dyn_cast<RankedTensorType>(func.getArgument(i).getType());
    if (!type || type.getRank() != 2 || !type.hasStaticShape() ||
        !type.getElementType().isSignlessInteger() ||
        func.getArgAttr(i, kNameAttr))
      continue;
    ArgUse use = inspectIntArg(func.getArgument(i));
    if (use.position)
      posLike.push_back(i);
    else if (use.embedding)
      idLike.push_back(i);
    if (use.position && use.embedding)
      embeddingAndPos.push_back(i);
  }
  auto list = [](ArrayRef<unsigned> args) {
    std::string text;
    for (unsigned a : args)
      text += (text.empty() ? "#" : ", #") + std::to_string(a);
    return text;
  };
  if (!roles.positions && posLike.size() > 1)
    return emitRefusal(func)
           << "arguments " << list(posLike)
           << " of @" << func.getSymName()
           << " are all used like positions (RoPE angles or mask "
              "comparisons); name the positions with positions-arg=N";
  if (!roles.positions && posLike.size() == 1)
    roles.positions = posLike.front();
  else
    for (unsigned i : embeddingAndPos)
      if (i != roles.positions)
        idLike.push_back(i);
  if (!roles.tokens && idLike.size() > 1)
    return emitRefusal(func)
           << "arguments " << list(idLike) << " of @" << func.getSymName()
           << " are all used as embedding indices; say which are the token "
              "ids and the positions with tokens-arg=N and positions-arg=N";
  if (!roles.tokens && idLike.size() == 1)
    roles.tokens = idLike.front();
  if (!roles.tokens && !roles.positions)
    return std::optional<Roles>();
  return std::optional<Roles>(roles);
}

/// Replaces the i64 argument `index` by an i32 one named `name` (the runtime
/// feeds token ids and positions as i32), sign-extended at the top of the
/// function for the ops that read it.
void narrowToI32(func::FuncOp func, unsigned index, StringRef name) {
  BlockArgument old = func.getArgument(index);
  auto type = cast<RankedTensorType>(old.getType());
  OpBuilder b(func.getContext());
  auto attrs = b.getDictionaryAttr(
      b.getNamedAttr(kNameAttr, b.getStringAttr(name)));
  if (type.getElementType().isSignlessInteger(32)) {
    if (!func.getArgAttr(index, kNameAttr))
      func.setArgAttr(index, kNameAttr, b.getStringAttr(name));
    return;
  }
  (void)func.insertArgument(index, type.clone(b.getI32Type()), attrs,
                            old.getLoc());
  BlockArgument narrow = func.getArgument(index);
  b.setInsertionPointToStart(&func.getBody().front());
  Location loc = old.getLoc();
  Type wide = type.getElementType();
  Value init = tensor::EmptyOp::create(b, loc, type.getShape(), wide);
  SmallVector<AffineMap> maps(2, b.getMultiDimIdentityMap(2));
  SmallVector<utils::IteratorType> iters(2, utils::IteratorType::parallel);
  Value extended =
      linalg::GenericOp::create(
          b, loc, type, ValueRange{narrow}, ValueRange{init}, maps, iters,
          [&](OpBuilder &nb, Location nloc, ValueRange args) {
            linalg::YieldOp::create(
                nb, nloc,
                ValueRange{arith::ExtSIOp::create(nb, nloc, wide, args[0])
                               .getResult()});
          })
          .getResult(0);
  old.replaceAllUsesWith(extended);
  (void)func.eraseArgument(index + 1);
}

/// K from the capacity option: a fraction (has a '.') or an absolute count.
FailureOr<int64_t> parseCapacity(Operation *anchor, StringRef text,
                                 int64_t seqLen) {
  if (text.contains('.') || text.contains('e')) {
    double c;
    if (text.getAsDouble(c) || !(c > 0.0) || c > 1.0)
      return emitRefusal(anchor)
             << "capacity '" << text
             << "' must be a fraction in (0, 1] or a token count in [1, S="
             << seqLen << "]";
    int64_t k = std::lround(c * static_cast<double>(seqLen));
    return std::clamp<int64_t>(k, 1, seqLen);
  }
  int64_t k;
  if (text.getAsInteger(10, k) || k < 1 || k > seqLen)
    return emitRefusal(anchor) << "capacity '" << text
                               << "' must be a token count in [1, S="
                               << seqLen << "] or a fraction in (0, 1]";
  return k;
}

/// The router-init-seed option: empty or -1 (no seed: the runtime's seed
/// is used) or a decimal integer in [0, 2^64 - 1], kept exactly.
FailureOr<std::optional<uint64_t>> parseInitSeed(Operation *anchor,
                                                 StringRef text) {
  if (text.empty() || text == "-1")
    return std::optional<uint64_t>();
  uint64_t seed;
  // getAsInteger rejects signs, fractions and values above 2^64 - 1.
  if (!llvm::all_of(text, llvm::isDigit) || text.getAsInteger(10, seed))
    return emitRefusal(anchor)
           << "router-init-seed '" << text
           << "' must be an integer in [0, 18446744073709551615], or -1 for "
              "the runtime's seed";
  return std::optional<uint64_t>(seed);
}

/// The resized copy of `op` inside a routed block: operands remapped through
/// `mapping`, every token factor of size S in result types resized to K, and
/// the static sizes that ops carry as attributes updated to match.
LogicalResult cloneResized(OpBuilder &b, Operation *op, IRMapping &mapping,
                           const TokenAxisAnalysis &axes, int64_t s,
                           int64_t k, Value pk, StringRef blockDesc,
                           llvm::DenseSet<Value> &lifted) {
  if (std::optional<std::string> why = axes.getFailure(op))
    return emitRefusal(op) << blockDesc << ": cannot resize the token axis of '"
                           << op->getName() << "': it " << *why;
  if (op->getNumRegions() && !isa<linalg::LinalgOp>(op))
    return emitRefusal(op) << blockDesc << ": '" << op->getName()
                           << "' has regions; only linalg ops may carry "
                              "bodies inside a routed block";
  if (auto cst = dyn_cast<arith::ConstantOp>(op)) {
    if (axes.hasTokenAxis(cst)) {
      auto dense = dyn_cast<DenseElementsAttr>(cst.getValue());
      if (!dense || !dense.isSplat())
        return emitRefusal(op)
               << blockDesc << ": constant " << cst.getType()
               << " has a token axis and is not derived from the positions "
                  "(e.g. a precomputed S x S mask); derive it from the "
                  "positions input so it can be recomputed for the routed "
                  "tokens";
      auto type = cast<ShapedType>(axes.resizedType(cst, s, k));
      Value v = arith::ConstantOp::create(
          b, cst.getLoc(), type,
          DenseElementsAttr::get(type, dense.getSplatValue<Attribute>()));
      mapping.map(cst.getResult(), v);
      return success();
    }
  }
  // A read inside a body from a tensor with a token axis must index that
  // axis with the op's own token loop (which is resized with it); an index
  // computed from data (e.g. positions[b, arange[i]], as transformers
  // gathers position_ids by cache_position) would address the dense
  // sequence, not the routed tokens.
  if (isa<linalg::LinalgOp>(op)) {
    llvm::SmallBitVector loops = axes.getTokenLoops(op);
    WalkResult gather = op->walk([&](tensor::ExtractOp extract) {
      for (auto [d, idx] : llvm::enumerate(extract.getIndices())) {
        if (!axes.isTokenDim(extract.getTensor(), d))
          continue;
        auto index = idx.getDefiningOp<linalg::IndexOp>();
        if (!index || !loops.test(index.getDim()))
          return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (gather.wasInterrupted())
      return emitRefusal(op)
             << blockDesc << ": '" << op->getName()
             << "' reads a tensor that runs over the tokens at a computed "
                "index (a gather along the token axis); inside a routed block "
                "it would address the dense sequence, not the routed tokens";
  }

  // A linalg.index over a token loop is the token's position in the dense
  // sequence; inside the routed block it becomes the gathered position
  // pk[b, j], read with the op's batch loop.
  //
  // A batch-less position table (Hugging Face builds its causal mask from a
  // 1-D arange(S): linalg.index in an op with no batch loop) has one row for
  // the whole batch, but the routed tokens differ per sequence. Inside the
  // block it is recomputed per sequence: the op gets a new outer loop over
  // the batch (its result a leading [B] dimension, read as pk[b, j]), the
  // reshapes that follow keep that leading dimension, and the first op with
  // a batch loop reads it with that loop (where the dense op broadcast the
  // table over the batch). `lifted` holds the original values whose copies
  // carry that leading dimension.
  llvm::SmallBitVector tokenLoops, batchLoops;
  bool indexesTokens = false;
  if (isa<linalg::LinalgOp>(op)) {
    tokenLoops = axes.getTokenLoops(op);
    op->walk([&](linalg::IndexOp index) {
      indexesTokens |= tokenLoops.test(index.getDim());
    });
    batchLoops = axes.getBatchLoops(op);
  }
  auto isLifted = [&](Value v) { return lifted.contains(v); };
  bool readsLifted = llvm::any_of(op->getOperands(), isLifted);
  WalkResult nestedUse = op->walk([&](Operation *nested) {
    if (nested != op && llvm::any_of(nested->getOperands(), isLifted))
      return WalkResult::interrupt();
    return WalkResult::advance();
  });
  if (nestedUse.wasInterrupted() ||
      (readsLifted && !isa<linalg::LinalgOp, tensor::ExpandShapeOp,
                           tensor::CollapseShapeOp>(op)))
    return emitRefusal(op)
           << blockDesc << ": '" << op->getName()
           << "' reads a position table built without a batch axis (from an "
              "arange), which inside a routed block must be recomputed for "
              "each sequence's routed tokens; only linalg ops and reshapes of "
              "it can be";
  int64_t batch = cast<RankedTensorType>(pk.getType()).getDimSize(0);
  auto withBatch = [&](Value orig) {
    SmallVector<int64_t> shape{batch};
    llvm::append_range(shape, axes.resizedShape(orig, s, k));
    return RankedTensorType::get(
        shape, cast<RankedTensorType>(orig.getType()).getElementType());
  };
  auto shiftGroups = [](ArrayRef<ReassociationIndices> groups) {
    SmallVector<ReassociationIndices> shifted{{0}};
    for (const ReassociationIndices &group : groups) {
      ReassociationIndices g;
      for (int64_t d : group)
        g.push_back(d + 1);
      shifted.push_back(g);
    }
    return shifted;
  };
  if (readsLifted) {
    if (auto expand = dyn_cast<tensor::ExpandShapeOp>(op)) {
      Value r = tensor::ExpandShapeOp::create(
          b, op->getLoc(), withBatch(expand.getResult()),
          mapping.lookup(expand.getSrc()),
          shiftGroups(expand.getReassociationIndices()));
      mapping.map(expand.getResult(), r);
      lifted.insert(expand.getResult());
      return success();
    }
    if (auto collapse = dyn_cast<tensor::CollapseShapeOp>(op)) {
      Value r = tensor::CollapseShapeOp::create(
          b, op->getLoc(), withBatch(collapse.getResult()),
          mapping.lookup(collapse.getSrc()),
          shiftGroups(collapse.getReassociationIndices()));
      mapping.map(collapse.getResult(), r);
      lifted.insert(collapse.getResult());
      return success();
    }
  }
  bool perSequence = indexesTokens || readsLifted;
  if (perSequence && batchLoops.count() > 1)
    return emitRefusal(op)
           << blockDesc << ": '" << op->getName()
           << "' reads token positions but has more than one loop over the "
              "batch axis";
  // No batch loop: the op gets one, unless the batch axis is there but
  // merged with another (e.g. [B*H, S, S] scores), which one loop cannot
  // split. A merged batch factor of size 1 (B = 1, the reshapes of an
  // arange to [1, 1, S, 1]) splits nothing.
  bool addBatchLoop = perSequence && batchLoops.none();
  if (addBatchLoop) {
    for (Value v : llvm::concat<Value>(op->getOperands(), op->getResults()))
      for (const auto &dim : axes.getLayout(v))
        if (llvm::any_of(dim, [](const AxisAtom &a) {
              return a.batch && a.size != 1;
            }))
          return emitRefusal(op)
                 << blockDesc << ": '" << op->getName()
                 << "' reads token positions from a position table without "
                    "a batch axis (an arange) and merges the batch axis with "
                    "another dimension; the table cannot be recomputed for "
                    "each sequence's routed tokens there (keep the batch "
                    "axis a dimension of its own)";
  }

  Operation *clone = b.clone(*op, mapping);
  for (auto [orig, copy] : llvm::zip(op->getResults(), clone->getResults()))
    copy.setType(axes.resizedType(orig, s, k));
  if (perSequence) {
    // Named ops become generics so that their indexing maps can change.
    auto generic = dyn_cast<linalg::GenericOp>(clone);
    if (!generic && (readsLifted || addBatchLoop)) {
      IRRewriter rewriter(b);
      rewriter.setInsertionPoint(clone);
      FailureOr<linalg::GenericOp> general =
          linalg::generalizeNamedOp(rewriter, cast<linalg::LinalgOp>(clone));
      if (failed(general))
        return emitRefusal(op) << blockDesc << ": cannot rewrite '"
                               << op->getName()
                               << "' as a linalg.generic to read the routed "
                                  "tokens' positions per sequence";
      generic = *general;
      clone = generic;
    }
    // The token loop indices, before the loops are renumbered.
    SmallVector<linalg::IndexOp> tokenIndices;
    clone->walk([&](linalg::IndexOp index) {
      if (tokenLoops.test(index.getDim()))
        tokenIndices.push_back(index);
    });
    unsigned batchLoop = addBatchLoop ? 0 : batchLoops.find_first();
    unsigned numInputs = cast<linalg::LinalgOp>(op).getNumDpsInputs();
    if (generic && !addBatchLoop && readsLifted) {
      // The lifted operands' leading dimension is read with the batch loop.
      SmallVector<AffineMap> maps = generic.getIndexingMapsArray();
      for (auto [i, operand] : llvm::enumerate(op->getOperands())) {
        if (!isLifted(operand))
          continue;
        if (i >= numInputs)
          return emitRefusal(op)
                 << blockDesc << ": '" << op->getName()
                 << "' writes into a position table built without a batch "
                    "axis; it cannot be recomputed for each sequence";
        SmallVector<AffineExpr> results{b.getAffineDimExpr(batchLoop)};
        llvm::append_range(results, maps[i].getResults());
        maps[i] = AffineMap::get(maps[i].getNumDims(), maps[i].getNumSymbols(),
                                 results, b.getContext());
      }
      generic.setIndexingMapsAttr(b.getAffineMapArrayAttr(maps));
    } else if (addBatchLoop) {
      // A new outer loop over the batch: every loop moves one up, the
      // lifted operands and the results read it as their leading dimension.
      Location loc = op->getLoc();
      SmallVector<AffineMap> maps;
      for (auto [i, map] : llvm::enumerate(generic.getIndexingMapsArray())) {
        AffineMap shifted = map.shiftDims(1);
        if (i >= numInputs || isLifted(op->getOperand(i))) {
          SmallVector<AffineExpr> results{b.getAffineDimExpr(0)};
          llvm::append_range(results, shifted.getResults());
          shifted = AffineMap::get(shifted.getNumDims(),
                                   shifted.getNumSymbols(), results,
                                   b.getContext());
        }
        maps.push_back(shifted);
      }
      SmallVector<utils::IteratorType> iterators{
          utils::IteratorType::parallel};
      llvm::append_range(iterators, generic.getIteratorTypesArray());
      SmallVector<Value> inits;
      SmallVector<Type> resultTypes;
      b.setInsertionPoint(generic);
      for (auto [i, init] : llvm::enumerate(generic.getDpsInits())) {
        Value orig = op->getOperand(numInputs + i);
        resultTypes.push_back(withBatch(op->getResult(i)));
        if (isLifted(orig)) {
          inits.push_back(init);
          continue;
        }
        auto type = cast<RankedTensorType>(resultTypes.back());
        Value empty = tensor::EmptyOp::create(b, loc, type.getShape(),
                                              type.getElementType());
        // An init the body reads (an accumulator) is copied to every row.
        if (generic.payloadUsesValueFromOperand(
                &generic.getDpsInitsMutable()[i]))
          empty = linalg::BroadcastOp::create(b, loc, init, empty,
                                              ArrayRef<int64_t>{0})
                      ->getResult(0);
        inits.push_back(empty);
      }
      auto batched = linalg::GenericOp::create(
          b, loc, resultTypes, generic.getDpsInputs(), inits, maps, iterators);
      batched.getRegion().takeBody(generic.getRegion());
      batched->walk([&](linalg::IndexOp index) {
        index.setDim(index.getDim() + 1);
      });
      for (auto [orig, r] : llvm::zip(op->getResults(), batched->getResults())) {
        mapping.map(orig, r);
        lifted.insert(orig);
      }
      generic->erase();
      clone = batched;
      b.setInsertionPointAfter(batched);
    }
    for (linalg::IndexOp index : tokenIndices) {
      OpBuilder ib(index.getContext());
      ib.setInsertionPointAfter(index);
      Location loc = index.getLoc();
      Value batchIndex = linalg::IndexOp::create(ib, loc, batchLoop);
      Value pos = tensor::ExtractOp::create(
          ib, loc, pk, ValueRange{batchIndex, index.getResult()});
      Value asIndex =
          arith::IndexCastOp::create(ib, loc, ib.getIndexType(), pos);
      index.getResult().replaceAllUsesExcept(
          asIndex, pos.getDefiningOp<tensor::ExtractOp>());
    }
  }

  // A slice keeps whole token axes: the analysis fails a slice that takes
  // part of one ("takes part of a token axis"), and cloneResized stops on
  // analysis failures above. Its static sizes along them shrink from S to K
  // with the tensor they index.
  auto fixSizes = [&](OffsetSizeAndStrideOpInterface sliceOp,
                      Value full) -> LogicalResult {
    SmallVector<int64_t> oldFull(cast<ShapedType>(full.getType()).getShape());
    SmallVector<int64_t> newFull = axes.resizedShape(full, s, k);
    SmallVector<int64_t> sizes(sliceOp.getStaticSizes());
    for (size_t d = 0; d < sizes.size() && d < oldFull.size(); ++d)
      if (oldFull[d] != newFull[d]) {
        assert(sizes[d] == oldFull[d] &&
               "the token-axis analysis rejects slices of part of a token axis");
        sizes[d] = newFull[d];
      }
    clone->setAttr("static_sizes", DenseI64ArrayAttr::get(b.getContext(), sizes));
    return success();
  };
  if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op))
    return fixSizes(cast<OffsetSizeAndStrideOpInterface>(clone),
                    slice.getSource());
  if (auto insert = dyn_cast<tensor::InsertSliceOp>(op))
    return fixSizes(cast<OffsetSizeAndStrideOpInterface>(clone),
                    insert.getDest());
  if (auto expand = dyn_cast<tensor::ExpandShapeOp>(clone))
    expand.setStaticOutputShape(
        axes.resizedShape(cast<tensor::ExpandShapeOp>(op).getResult(), s, k));
  if (auto empty = dyn_cast<tensor::EmptyOp>(clone))
    if (!empty.getDynamicSizes().empty() && axes.hasTokenAxis(op->getResult(0)))
      return emitRefusal(op) << blockDesc
                             << ": tensor.empty with dynamic sizes on a token axis";
  return success();
}

/// splitmix64's finalizer on an i64 scalar (wrapping arithmetic):
/// z += 0x9e3779b97f4a7c15; z = (z ^ z>>30) * 0xbf58476d1ce4e5b9;
/// z = (z ^ z>>27) * 0x94d049bb133111eb; return z ^ z>>31.
Value buildSplitMix64(OpBuilder &b, Location loc, Value z) {
  Type i64 = b.getI64Type();
  auto cst = [&](uint64_t v) -> Value {
    return arith::ConstantOp::create(b, loc, i64,
                                     b.getIntegerAttr(i64, APInt(64, v)));
  };
  auto xorShift = [&](Value v, uint64_t shift) -> Value {
    return arith::XOrIOp::create(
        b, loc, v, arith::ShRUIOp::create(b, loc, v, cst(shift)));
  };
  z = arith::AddIOp::create(b, loc, z, cst(0x9e3779b97f4a7c15ull));
  z = arith::MulIOp::create(b, loc, xorShift(z, 30), cst(0xbf58476d1ce4e5b9ull));
  z = arith::MulIOp::create(b, loc, xorShift(z, 27), cst(0x94d049bb133111ebull));
  return xorShift(z, 31);
}

/// The stochastic router scores of routed block `blockIndex`: a `[B,S]`
/// tensor of the element type `et` with
///   score[b,s] = (h >> 40) * 2^-24,
///   h = splitmix64(splitmix64(seed) ^ (blockIndex * 2^32 + b * S + s)),
/// uniform in [0, 1) with 24 random bits, a pure function of the
/// routing_seed input, the block and the token's index.
Value buildStochasticScores(OpBuilder &b, Location loc, Value seed,
                            int64_t batch, int64_t seqLen, Type et,
                            unsigned blockIndex) {
  MLIRContext *ctx = b.getContext();
  auto type = RankedTensorType::get({batch, seqLen}, et);
  Value init = tensor::EmptyOp::create(b, loc, type.getShape(), et);
  AffineMap scalar = AffineMap::get(2, 0, {}, ctx);
  AffineMap id = AffineMap::getMultiDimIdentityMap(2, ctx);
  return linalg::GenericOp::create(
             b, loc, type, ValueRange{seed}, ValueRange{init},
             ArrayRef<AffineMap>{scalar, id},
             SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Type i64 = nb.getI64Type();
               auto cst = [&](uint64_t v) -> Value {
                 return arith::ConstantOp::create(
                     nb, nl, i64, nb.getIntegerAttr(i64, APInt(64, v)));
               };
               auto index = [&](unsigned dim) -> Value {
                 return arith::IndexCastOp::create(
                     nb, nl, i64, linalg::IndexOp::create(nb, nl, dim));
               };
               Value row = arith::MulIOp::create(nb, nl, index(0),
                                                 cst(uint64_t(seqLen)));
               Value key = arith::AddIOp::create(
                   nb, nl,
                   arith::AddIOp::create(nb, nl, row, index(1)),
                   cst(uint64_t(blockIndex) << 32));
               Value h = buildSplitMix64(
                   nb, nl,
                   arith::XOrIOp::create(nb, nl, buildSplitMix64(nb, nl, args[0]),
                                         key));
               Value bits = arith::ShRUIOp::create(nb, nl, h, cst(40));
               Value f = arith::UIToFPOp::create(nb, nl, et, bits);
               Value unit = arith::ConstantOp::create(
                   nb, nl, et, nb.getFloatAttr(et, std::ldexp(1.0, -24)));
               linalg::YieldOp::create(
                   nb, nl, arith::MulFOp::create(nb, nl, f, unit).getResult());
             })
      .getResult(0);
}

/// A value that only stands for "a tensor of this shape" or "this shape
/// filled with one scalar": tensor.empty, a splat constant, a linalg.fill (or
/// an input-less linalg.generic yielding a scalar from outside) of such a
/// value. Exporters CSE them, so one of them can be the init of ops whose
/// token axes differ (q.k^T and p.v when head_dim == S).
bool isTrivialInit(Operation *op) {
  if (!op || op->getNumResults() != 1 ||
      !isa<RankedTensorType>(op->getResult(0).getType()))
    return false;
  if (auto empty = dyn_cast<tensor::EmptyOp>(op))
    return empty.getDynamicSizes().empty();
  if (auto cst = dyn_cast<arith::ConstantOp>(op)) {
    auto dense = dyn_cast<DenseElementsAttr>(cst.getValue());
    return dense && dense.isSplat();
  }
  if (auto fill = dyn_cast<linalg::FillOp>(op))
    return fill.hasPureTensorSemantics() &&
           isTrivialInit(fill.getDpsInits()[0].getDefiningOp());
  if (auto generic = dyn_cast<linalg::GenericOp>(op)) {
    if (generic.getNumDpsInputs() != 0 || generic.getNumDpsInits() != 1 ||
        !generic.hasPureTensorSemantics() ||
        !isTrivialInit(generic.getDpsInits()[0].getDefiningOp()))
      return false;
    Block &body = generic.getRegion().front();
    if (body.getOperations().size() != 1)
      return false;
    auto yield = cast<linalg::YieldOp>(body.getTerminator());
    return yield.getValues().size() == 1 &&
           yield.getValues()[0].getParentRegion() != &generic.getRegion();
  }
  return false;
}

/// A copy of the trivial init `op` (and of the trivial init it fills) right
/// after `op`.
Value cloneTrivialInit(OpBuilder &b, Operation *op,
                       SmallVectorImpl<std::pair<Operation *, Operation *>> &clones) {
  IRMapping mapping;
  if (auto dps = dyn_cast<DestinationStyleOpInterface>(op)) {
    Operation *initDef = dps.getDpsInits()[0].getDefiningOp();
    mapping.map(initDef->getResult(0), cloneTrivialInit(b, initDef, clones));
  }
  Operation *clone = b.clone(*op, mapping);
  clones.push_back({clone, op});
  return clone->getResult(0);
}

/// Gives every use of a shared trivial init its own copy, so that the
/// token-axis analysis does not link the layouts of unrelated ops through it.
/// Returns (copy, original) pairs; mergeSharedInits undoes the split.
SmallVector<std::pair<Operation *, Operation *>>
splitSharedInits(func::FuncOp func) {
  SmallVector<std::pair<Operation *, Operation *>> clones;
  SmallVector<Operation *> shared;
  for (Operation &op : func.getBody().front())
    if (isTrivialInit(&op) && !op.getResult(0).hasOneUse() &&
        !op.getResult(0).use_empty())
      shared.push_back(&op);
  for (Operation *op : shared) {
    SmallVector<OpOperand *> uses;
    for (OpOperand &use : op->getResult(0).getUses())
      uses.push_back(&use);
    OpBuilder b(op->getContext());
    for (OpOperand *use : llvm::drop_begin(uses)) {
      b.setInsertionPointAfter(op);
      use->set(cloneTrivialInit(b, op, clones));
    }
  }
  return clones;
}

/// Replaces the copies that splitSharedInits made, where they are still used
/// outside routed blocks, by their originals (which precede them).
void mergeSharedInits(
    ArrayRef<std::pair<Operation *, Operation *>> clones) {
  for (auto [clone, original] : llvm::reverse(clones)) {
    clone->getResult(0).replaceAllUsesWith(original->getResult(0));
    clone->erase();
  }
}

/// `lhs + rhs` elementwise.
Value buildAdd(OpBuilder &b, Location loc, Value lhs, Value rhs) {
  return buildElementwise(
      b, loc, {lhs, rhs}, [](OpBuilder &nb, Location nloc, ValueRange args) {
        return arith::AddFOp::create(nb, nloc, args[0], args[1]).getResult();
      });
}

bool sortByPosition(Operation *a, Operation *b) {
  if (a->getBlock() == b->getBlock())
    return a->isBeforeInBlock(b);
  return a < b;
}

class FunctionRewriter {
public:
  FunctionRewriter(func::FuncOp func, const Settings &settings)
      : func(func), settings(settings) {}

  LogicalResult run(ArrayRef<unsigned> schedule, const TokenAxisAnalysis &axes,
                    const ResidualStructure &structure, Value positions,
                    Value tokens);

  /// Copies of shared inits (splitSharedInits), merged back after the
  /// rewrite.
  SmallVector<std::pair<Operation *, Operation *>> splitInits;

private:
  LogicalResult rewriteBlock(const TransformerBlock &block,
                             const TokenAxisAnalysis &axes, Value positions,
                             Value tokens);

  func::FuncOp func;
  const Settings &settings;
  /// The routing_seed argument (stochastic routing only).
  Value routingSeed;
  /// Indices each routed block selects, by block index (return-routing).
  std::map<unsigned, Value> routingResults;
};

LogicalResult FunctionRewriter::rewriteBlock(const TransformerBlock &block,
                                             const TokenAxisAnalysis &axes,
                                             Value positions, Value tokens) {
  std::string desc = llvm::formatv("block {0} ({1})", block.index, block.prefix);
  if (isa<RoutedBlockOp>(block.sublayers.front().add))
    return emitRefusal(block.sublayers.front().add)
           << desc << " is already a mod.routed_block; schedule only dense "
                      "blocks";
  Value x = block.input(), out = block.output();
  int64_t s = settings.seqLen, k = settings.capacity;
  auto xType = cast<RankedTensorType>(x.getType());

  // The block's own ops, in program order.
  llvm::SetVector<Operation *> blockOps;
  for (const Sublayer &sub : block.sublayers)
    blockOps.insert(sub.ops.begin(), sub.ops.end());
  if (block.sublayers.size() == 2 && !block.parallel)
    blockOps.insert(block.sublayers[0].add);
  SmallVector<Operation *> ordered(blockOps.begin(), blockOps.end());
  llvm::sort(ordered, sortByPosition);

  // Values the block reads from outside. Those with a token axis (masks,
  // RoPE tables) must be recomputed from the gathered positions.
  llvm::SetVector<Value> external;
  for (Operation *op : ordered)
    op->walk([&](Operation *nested) {
      for (Value v : nested->getOperands()) {
        Operation *def = v.getDefiningOp();
        bool inside = def ? (blockOps.contains(def) ||
                             op->isProperAncestor(def) || def == op)
                          : (v.getParentRegion()->getParentOp() != func);
        if (!inside && v != x)
          external.insert(v);
      }
    });
  llvm::SetVector<Operation *> recompute;
  for (Value v : external) {
    if (!axes.hasTokenAxis(v) || v == positions)
      continue;
    if (v == tokens)
      return emitRefusal(func) << desc
                              << ": the block reads the token ids directly; "
                                 "only position-derived values can be "
                                 "recomputed for the routed tokens";
    if (auto arg = dyn_cast<BlockArgument>(v))
      if (arg.getOwner() == &func.getBody().front())
        return emitRefusal(func)
               << desc << ": the block reads argument #" << arg.getArgNumber()
               << ", which runs over the tokens but is not the positions; "
                  "only position-derived values can be recomputed for the "
                  "routed tokens (name the positions with positions-arg=N)";
    llvm::SetVector<Operation *> slice;
    BackwardSliceOptions options;
    options.inclusive = true;
    options.omitBlockArguments = true;
    options.filter = [&](Operation *op) {
      return llvm::any_of(op->getResults(),
                          [&](Value r) { return axes.hasTokenAxis(r); });
    };
    (void)getBackwardSlice(v, &slice, options);
    for (Operation *op : slice) {
      for (Value operand : op->getOperands()) {
        if (!axes.hasTokenAxis(operand) || operand == positions)
          continue;
        Operation *def = operand.getDefiningOp();
        if (!def || !slice.contains(def)) {
          InFlightDiagnostic diag =
              emitRefusal(op)
              << desc << ": '" << op->getName()
              << "' feeds the block a token-dependent value that is not "
                 "derived from the positions";
          diag.attachNote(out.getLoc()) << "the block ends here";
          return diag;
        }
      }
      // A reduction over the tokens (a cumulative sum over the positions,
      // as transformers' packed-sequence detection computes) sums over the
      // whole dense sequence; over the routed tokens it would be another
      // value.
      if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
        llvm::SmallBitVector tokenLoops = axes.getTokenLoops(op);
        for (auto [loop, iter] :
             llvm::enumerate(linalgOp.getIteratorTypesArray()))
          if (iter == utils::IteratorType::reduction && tokenLoops.test(loop)) {
            InFlightDiagnostic diag =
                emitRefusal(op)
                << desc << ": '" << op->getName()
                << "' reduces over the token axis to compute a value the "
                   "block reads (e.g. a cumulative sum over the positions, "
                   "as transformers' packed-sequence detection computes); "
                   "recomputed from the routed tokens' positions it would "
                   "be another value";
            diag.attachNote(out.getLoc()) << "the block ends here";
            return diag;
          }
      }
      recompute.insert(op);
    }
  }

  MLIRContext *ctx = func.getContext();
  OpBuilder b(ctx);
  Operation *outDef = out.getDefiningOp();
  Value routerWeight;
  auto wType = RankedTensorType::get({xType.getDimSize(2)},
                                     xType.getElementType());
  if (settings.stochastic) {
    // No router: a placeholder operand, erased once the block is expanded
    // on the stochastic scores below.
    b.setInsertionPoint(outDef);
    routerWeight = tensor::EmptyOp::create(b, out.getLoc(), wType.getShape(),
                                           wType.getElementType());
  } else {
    // The router weight: a new parameter named after the block.
    unsigned argIndex = func.getNumArguments();
    for (Value seed : {tokens, positions})
      if (seed)
        argIndex = std::min(argIndex, cast<BlockArgument>(seed).getArgNumber());
    // Printed like mod-import's rules, e.g. "normal:0.02".
    std::string initRule;
    llvm::raw_string_ostream(initRule)
        << "normal:" << llvm::format("%.9g", settings.initStd);
    SmallVector<NamedAttribute> attrs{
        b.getNamedAttr(kNameAttr, b.getStringAttr(block.prefix +
                                                  ".mod.router.weight")),
        b.getNamedAttr("mod.kind", b.getStringAttr("parameter")),
        b.getNamedAttr("mod.init", b.getStringAttr(initRule))};
    if (settings.initSeed)
      attrs.push_back(b.getNamedAttr(
          "mod.init_seed",
          b.getIntegerAttr(b.getIntegerType(64, /*isSigned=*/false),
                           APInt(64, *settings.initSeed))));
    // Cannot fail: a func.func takes any argument types.
    LogicalResult inserted = func.insertArgument(
        argIndex, wType, b.getDictionaryAttr(attrs), out.getLoc());
    assert(succeeded(inserted) && "func.func rejected a new argument");
    (void)inserted;
    routerWeight = func.getArgument(argIndex);
  }

  b.setInsertionPoint(outDef);
  auto routed = RoutedBlockOp::create(
      b, outDef->getLoc(), xType, x, positions, routerWeight,
      b.getI64IntegerAttr(k), GateKindAttr::get(ctx, settings.gate));
  routed->setAttr("mod.block", b.getStringAttr(block.prefix));
  Block *body = b.createBlock(&routed.getBody());
  Value xk = body->addArgument(axes.resizedType(x, s, k), x.getLoc());
  Value pk = body->addArgument(axes.resizedType(positions, s, k),
                               positions.getLoc());

  IRMapping mapping;
  mapping.map(x, xk);
  mapping.map(positions, pk);
  SmallVector<Operation *> recomputeOrdered(recompute.begin(), recompute.end());
  llvm::sort(recomputeOrdered, sortByPosition);
  b.setInsertionPointToStart(body);
  llvm::DenseSet<Value> lifted;
  for (Operation *op : llvm::concat<Operation *>(recomputeOrdered, ordered))
    if (failed(cloneResized(b, op, mapping, axes, s, k, pk, desc, lifted)))
      return failure();

  Value d = mapping.lookup(block.sublayers[0].branch);
  if (block.sublayers.size() == 2)
    d = buildAdd(b, out.getLoc(), d,
                 mapping.lookup(block.sublayers[1].branch));
  YieldOp::create(b, out.getLoc(), d);
  out.replaceAllUsesWith(routed.getResult());

  if (settings.stochastic) {
    // Expanded right away: top-k of the hashed scores, the block on the K
    // chosen tokens, added back with scale 1 (no gate, nothing to learn).
    b.setInsertionPoint(routed);
    Value scores = buildStochasticScores(
        b, routed.getLoc(), routingSeed, xType.getDimSize(0), s,
        xType.getElementType(), block.index);
    IRRewriter rewriter(ctx);
    TopKOp topk = expandRoutedBlockOn(routed, scores, /*unitScale=*/true,
                                      rewriter);
    topk->setAttr("mod.block", b.getStringAttr(block.prefix));
    topk->setAttr("mod.routing", b.getStringAttr("stochastic"));
    routerWeight.getDefiningOp()->erase();
    if (settings.returnRouting)
      routingResults[block.index] = topk.getIndices();
    return success();
  }

  if (settings.returnRouting) {
    b.setInsertionPointAfter(routed);
    Location loc = routed.getLoc();
    auto scoreType = RankedTensorType::get(
        {xType.getDimSize(0), xType.getDimSize(1)}, xType.getElementType());
    Value scores = RouterOp::create(b, loc, scoreType, x, routerWeight);
    auto topk = TopKOp::create(
        b, loc,
        RankedTensorType::get({xType.getDimSize(0), k}, b.getI32Type()),
        RankedTensorType::get({xType.getDimSize(0), k}, xType.getElementType()),
        scores, b.getI64IntegerAttr(k));
    routingResults[block.index] = topk.getIndices();
  }
  return success();
}

LogicalResult FunctionRewriter::run(ArrayRef<unsigned> schedule,
                                    const TokenAxisAnalysis &axes,
                                    const ResidualStructure &structure,
                                    Value positions, Value tokens) {
  if (settings.stochastic) {
    MLIRContext *ctx = func.getContext();
    Builder b(ctx);
    unsigned index = func.getNumArguments();
    LogicalResult inserted = func.insertArgument(
        index, RankedTensorType::get({}, b.getI64Type()),
        b.getDictionaryAttr(b.getNamedAttr(
            kNameAttr, b.getStringAttr(kRoutingSeedName))),
        func.getLoc());
    assert(succeeded(inserted) && "func.func rejected a new argument");
    (void)inserted;
    routingSeed = func.getArgument(index);
  }
  // Last block first: rewriting a block replaces its output, which is the
  // next block's input, so the blocks after it must already be rewritten
  // against the value the analysis saw.
  for (unsigned index : llvm::reverse(schedule))
    if (failed(rewriteBlock(structure.blocks[index], axes, positions, tokens)))
      return failure();
  if (!routingResults.empty()) {
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    SmallVector<Value> operands(ret.getOperands());
    SmallVector<Type> results(func.getResultTypes());
    SmallVector<DictionaryAttr> resultAttrs;
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      resultAttrs.push_back(func.getResultAttrDict(i)
                                ? func.getResultAttrDict(i)
                                : DictionaryAttr::get(func.getContext()));
    Builder b(func.getContext());
    for (auto &[index, indices] : routingResults) {
      operands.push_back(indices);
      results.push_back(indices.getType());
      resultAttrs.push_back(b.getDictionaryAttr(b.getNamedAttr(
          kNameAttr, b.getStringAttr("routed_indices." + std::to_string(index)))));
    }
    ret->setOperands(operands);
    func.setFunctionType(
        FunctionType::get(func.getContext(), func.getArgumentTypes(), results));
    func.setAllResultAttrs(resultAttrs);
  }
  mergeSharedInits(splitInits);
  // The dense copies of the routed blocks are now dead.
  Block &entry = func.getBody().front();
  bool erased = true;
  while (erased) {
    erased = false;
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(entry)))
      if (isOpTriviallyDead(&op)) {
        op.erase();
        erased = true;
      }
  }
  if (failed(verify(func)))
    return emitRefusal(func) << "internal error: the MoD rewrite of @"
                            << func.getSymName() << " does not verify";
  return success();
}

struct DenseToMoDPass : mod::impl::DenseToMoDBase<DenseToMoDPass> {
  using DenseToMoDBase::DenseToMoDBase;

  FailureOr<SmallVector<unsigned>> routedBlocks(func::FuncOp func,
                                                unsigned numBlocks) {
    std::set<unsigned> chosen;
    if (schedule == "every-other" || schedule == "every") {
      unsigned period = schedule == "every-other" ? 2 : every.getValue();
      unsigned first = schedule == "every-other" ? 1 : offset.getValue();
      if (period == 0)
        return emitRefusal(func) << "schedule 'every' needs every >= 1";
      for (unsigned i = first; i < numBlocks; i += period)
        chosen.insert(i);
    } else if (schedule == "list") {
      for (unsigned i : blocks) {
        if (i >= numBlocks)
          return emitRefusal(func) << "schedule lists block " << i << ", but @"
                                  << func.getSymName() << " has only "
                                  << numBlocks << " blocks";
        chosen.insert(i);
      }
    } else {
      return emitRefusal(func) << "unknown schedule '" << schedule
                              << "' (expected every-other, every or list)";
    }
    // Asking for MoD and silently getting the dense model back hides a
    // mistake (e.g. every-other on a one-block model): refuse.
    if (chosen.empty())
      return emitRefusal(func)
             << "schedule '" << schedule << "' routes none of the "
             << numBlocks << " blocks of @" << func.getSymName()
             << "; choose a schedule that selects at least one block (e.g. "
                "schedule=list blocks=0)";
    return SmallVector<unsigned>(chosen.begin(), chosen.end());
  }

  /// Converts a copy of `original`, inserted next to it, and returns the
  /// copy; `original` is not touched. On failure the copy is erased.
  FailureOr<func::FuncOp> convert(func::FuncOp original, Roles roles) {
    RankedTensorType posType;
    for (auto [slot, name] : {std::make_pair(roles.positions, "positions"),
                              std::make_pair(roles.tokens, "tokens")}) {
      if (!slot)
        continue;
      auto type =
          dyn_cast<RankedTensorType>(original.getArgument(*slot).getType());
      if (!type || type.getRank() != 2 || !type.hasStaticShape() ||
          !(type.getElementType().isSignlessInteger(32) ||
            type.getElementType().isSignlessInteger(64)))
        return emitRefusal(original)
               << "the " << name << " argument (#" << *slot
               << ") must be a static [B,S] i32 or i64 tensor, got "
               << original.getArgument(*slot).getType();
      if (!posType)
        posType = type;
      else if (type.getShape() != posType.getShape())
        return emitRefusal(original)
               << "the positions " << posType << " and the tokens " << type
               << " differ in shape";
    }

    Settings settings;
    settings.seqLen = posType.getDimSize(1);
    FailureOr<int64_t> k = parseCapacity(original, capacity, settings.seqLen);
    if (failed(k))
      return failure();
    settings.capacity = *k;
    if (gate == "linear")
      settings.gate = GateKind::Identity;
    else if (gate == "sigmoid")
      settings.gate = GateKind::Sigmoid;
    else
      return emitRefusal(original) << "unknown gate '" << gate
                                  << "' (expected linear or sigmoid)";
    if (routing == "stochastic")
      settings.stochastic = true;
    else if (routing != "learned")
      return emitRefusal(original) << "unknown routing '" << routing
                                  << "' (expected learned or stochastic)";
    settings.initStd = routerInitStd;
    FailureOr<std::optional<uint64_t>> seed =
        parseInitSeed(original, routerInitSeed);
    if (failed(seed))
      return failure();
    settings.initSeed = *seed;
    settings.returnRouting = returnRouting;
    if (settings.stochastic && findNamedArg(original, kRoutingSeedName))
      return emitRefusal(original)
             << "@" << original.getSymName()
             << " already has an argument named '" << kRoutingSeedName
             << "'; convert a dense model";

    // Work on a copy so that a failure leaves the module unchanged.
    OpBuilder b(original);
    auto func = cast<func::FuncOp>(b.clone(*original));
    auto discard = [&]() -> FailureOr<func::FuncOp> {
      func.erase();
      return failure();
    };
    // Token ids and positions become i32 arguments named for the runtime;
    // a model without positions (its mask and RoPE come from arange) gets
    // them as a new argument after the token ids.
    if (roles.tokens)
      narrowToI32(func, *roles.tokens, "tokens");
    if (roles.positions) {
      narrowToI32(func, *roles.positions, "positions");
    } else {
      roles.positions = *roles.tokens + 1;
      (void)func.insertArgument(
          *roles.positions, posType.clone(b.getI32Type()),
          b.getDictionaryAttr(
              b.getNamedAttr(kNameAttr, b.getStringAttr("positions"))),
          func.getArgument(*roles.tokens).getLoc());
    }
    Value positions = func.getArgument(*roles.positions);
    Value tokens;
    if (roles.tokens)
      tokens = func.getArgument(*roles.tokens);
    SmallVector<Value> seeds{positions};
    if (tokens)
      seeds.push_back(tokens);
    SmallVector<std::pair<Operation *, Operation *>> splitInits =
        splitSharedInits(func);
    TokenAxisAnalysis axes(func, seeds);
    FailureOr<ResidualStructure> structure = discoverBlocks(func, axes);
    if (failed(structure))
      return discard();
    FailureOr<SmallVector<unsigned>> chosen =
        routedBlocks(original, structure->blocks.size());
    if (failed(chosen))
      return discard();
    FunctionRewriter rewriter(func, settings);
    rewriter.splitInits = std::move(splitInits);
    if (failed(rewriter.run(*chosen, axes, *structure, positions, tokens)))
      return discard();
    return func;
  }

  void runOnOperation() override {
    SmallVector<std::pair<func::FuncOp, Roles>> candidates;
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      FailureOr<std::optional<Roles>> roles =
          findRoles(func, tokensArg, positionsArg);
      if (failed(roles))
        return signalPassFailure();
      if (*roles)
        candidates.push_back({func, **roles});
    }
    if (candidates.empty()) {
      emitRefusal(getOperation())
          << "no function to convert: --mod-dense-to-mod needs a func.func "
             "with a static [B,S] integer argument of token ids (an "
             "embedding index) or positions (RoPE, mask comparisons), found "
             "by their use, by the tokens-arg / positions-arg options, or "
             "named by {mod.name = \"tokens\"} / {mod.name = \"positions\"}";
      return signalPassFailure();
    }
    // All or nothing over the module: every function is converted into a
    // copy first; the originals are replaced only when all copies succeeded,
    // so a failure in a later function leaves the earlier ones as they were.
    SmallVector<func::FuncOp> converted;
    for (auto [func, roles] : candidates) {
      FailureOr<func::FuncOp> copy = convert(func, roles);
      if (failed(copy)) {
        for (func::FuncOp done : converted)
          done.erase();
        return signalPassFailure();
      }
      converted.push_back(*copy);
    }
    for (auto &candidate : candidates)
      candidate.first.erase();
  }
};
} // namespace
