//===- FlopReport.cpp - forward FLOPs per block, dense vs MoD -------------===//

#include "mod/Analysis/BlockDiscovery.h"
#include "mod/Analysis/TokenAxisAnalysis.h"
#include "mod/Dialect/MoD/IR/MoDOps.h"
#include "mod/Dialect/MoD/Transforms/Passes.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/SourceMgr.h"

namespace mlir::mod {
#define GEN_PASS_DEF_FLOPREPORT
#include "mod/Dialect/MoD/Transforms/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using namespace mlir::mod;

namespace {
struct Flops {
  int64_t matmul = 0, attention = 0, router = 0, elementwise = 0, topkCmp = 0;
  int64_t total() const { return matmul + attention + router + elementwise; }
  Flops &operator+=(const Flops &o) {
    matmul += o.matmul;
    attention += o.attention;
    router += o.router;
    elementwise += o.elementwise;
    topkCmp += o.topkCmp;
    return *this;
  }
};

struct BlockFlops {
  std::string prefix;
  bool routed = false;
  int64_t capacity = 0;
  Flops flops;
};

struct FunctionReport {
  std::string name;
  int64_t batch = 0, seqLen = 0;
  std::vector<BlockFlops> blocks;
  Flops outside; // embedding, final norm, head: everything not in a block
  Flops total() const {
    Flops t = outside;
    for (const BlockFlops &b : blocks)
      t += b.flops;
    return t;
  }
};

int64_t elements(Type t) {
  auto shaped = dyn_cast<ShapedType>(t);
  return shaped && shaped.hasStaticShape() ? shaped.getNumElements() : 0;
}

int64_t floatOpsInBody(Operation *op) {
  int64_t n = 0;
  for (Region &r : op->getRegions())
    r.walk([&](Operation *inner) {
      if (inner->getNumResults() == 1 &&
          isa<FloatType>(inner->getResult(0).getType()) &&
          !isa<arith::ConstantOp>(inner) &&
          (inner->getDialect()->getNamespace() == "arith" ||
           inner->getDialect()->getNamespace() == "math"))
        ++n;
    });
  return n;
}

/// Steps of the radix select that lowers mod.topk: per row, one pass forming
/// the keys, one histogram pass per byte of the score, one compaction pass.
int64_t radixSelectSteps(int64_t batch, int64_t seq, unsigned bits) {
  return batch * (bits / 8 + 2) * seq;
}

/// FLOPs of one op (recursing into routed blocks).
void countOp(Operation *op, const TokenAxisAnalysis &axes, Flops &f) {
  if (auto routed = dyn_cast<RoutedBlockOp>(op)) {
    auto in = cast<RankedTensorType>(routed.getInput().getType());
    int64_t b = in.getDimSize(0), s = in.getDimSize(1), d = in.getDimSize(2);
    int64_t k = routed.getCapacity();
    f.router += 2 * b * s * d;
    f.topkCmp += radixSelectSteps(b, s, in.getElementTypeBitWidth());
    f.elementwise += 2 * b * k * d; // scale and add back
    if (routed.getGate() == GateKind::Sigmoid)
      f.elementwise += 4 * b * k;
    for (Operation &inner : routed.getBody().front())
      countOp(&inner, axes, f);
    return;
  }
  if (auto router = dyn_cast<RouterOp>(op)) {
    f.router += 2 * elements(router.getInput().getType());
    return;
  }
  if (auto topk = dyn_cast<TopKOp>(op)) {
    auto in = cast<RankedTensorType>(topk.getInput().getType());
    f.topkCmp += radixSelectSteps(in.getDimSize(0), in.getDimSize(1),
                                  in.getElementTypeBitWidth());
    return;
  }
  if (auto scatter = dyn_cast<ScatterAddOp>(op)) {
    f.elementwise += 2 * elements(scatter.getUpdate().getType());
    if (scatter.getGate() == GateKind::Sigmoid) // neg, exp, add, div
      f.elementwise += 4 * elements(scatter.getScale().getType());
    return;
  }
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
    int64_t iterations = 1;
    for (int64_t range : linalgOp.getStaticLoopRanges())
      iterations *= range;
    int64_t flops = iterations * floatOpsInBody(op);
    bool contraction = linalgOp.getNumReductionLoops() > 0 &&
                       linalg::isaContractionOpInterface(linalgOp);
    if (!contraction) {
      f.elementwise += flops;
      return;
    }
    if (axes.getTokenLoops(op).count() >= 2)
      f.attention += flops;
    else
      f.matmul += flops;
    return;
  }
  // Elementwise arith/math directly on tensors.
  if (op->getNumResults() == 1 && isa<RankedTensorType>(op->getResult(0).getType()) &&
      isa<FloatType>(getElementTypeOrSelf(op->getResult(0).getType())) &&
      !isa<arith::ConstantOp>(op) &&
      (op->getDialect()->getNamespace() == "arith" ||
       op->getDialect()->getNamespace() == "math"))
    f.elementwise += elements(op->getResult(0).getType());
}

FailureOr<FunctionReport> analyze(func::FuncOp func) {
  FunctionReport report;
  report.name = func.getSymName().str();
  Value positions, tokens;
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    if (auto n = func.getArgAttrOfType<StringAttr>(i, "mod.name")) {
      if (n.getValue() == "positions")
        positions = func.getArgument(i);
      if (n.getValue() == "tokens")
        tokens = func.getArgument(i);
    }
  if (!positions)
    return func.emitError()
           << "--mod-flop-report needs an argument named 'positions'";
  auto posType = cast<RankedTensorType>(positions.getType());
  report.batch = posType.getDimSize(0);
  report.seqLen = posType.getDimSize(1);
  SmallVector<Value> seeds{positions};
  if (tokens)
    seeds.push_back(tokens);
  // Inside a routed block the gathered tokens (xk, pk) carry the token axis.
  func.walk([&](RoutedBlockOp routed) {
    for (BlockArgument arg : routed.getBody().getArguments())
      seeds.push_back(arg);
  });
  TokenAxisAnalysis axes(func, seeds);
  FailureOr<ResidualStructure> structure = discoverBlocks(func, axes);
  if (failed(structure))
    return failure();

  DenseMap<Operation *, unsigned> owner;
  for (const TransformerBlock &block : structure->blocks) {
    BlockFlops bf;
    bf.prefix = block.prefix;
    bf.capacity = report.seqLen;
    for (const Sublayer &s : block.sublayers) {
      for (Operation *op : s.ops)
        owner[op] = block.index;
      owner[s.add] = block.index;
      if (auto routed = dyn_cast<RoutedBlockOp>(s.add)) {
        bf.routed = true;
        bf.capacity = routed.getCapacity();
        if (auto name = routed->getAttrOfType<StringAttr>("mod.block"))
          bf.prefix = name.str();
      }
    }
    report.blocks.push_back(bf);
  }
  // Values a block reads that no other part of the function needs (its
  // causal mask, its RoPE tables) are part of that block's cost.
  // The embedding that produces the residual stream stays outside blocks.
  llvm::SetVector<Operation *> embedding;
  if (!structure->chain.empty()) {
    BackwardSliceOptions options;
    options.inclusive = true;
    (void)getBackwardSlice(structure->chain.front().input, &embedding, options);
  }
  Block &body = func.getBody().front();
  for (Operation &op : llvm::reverse(body)) {
    if (owner.count(&op) || op.getNumResults() == 0 || op.use_empty() ||
        embedding.contains(&op))
      continue;
    std::optional<unsigned> common;
    bool shared = false;
    for (Operation *user : op.getUsers()) {
      Operation *top = body.findAncestorOpInBlock(*user);
      auto it = top ? owner.find(top) : owner.end();
      if (it == owner.end() || (common && *common != it->second)) {
        shared = true;
        break;
      }
      common = it->second;
    }
    if (!shared && common)
      owner[&op] = *common;
  }
  // A router and top-k that repeat a routed block's own (--mod-dense-to-mod
  // return-routing exposes the chosen tokens that way) cost nothing: they
  // merge with the block's after expansion and CSE.
  llvm::SmallPtrSet<Operation *, 8> duplicates;
  func.walk([&](RouterOp router) {
    for (Operation *user : router.getInput().getUsers())
      if (auto routed = dyn_cast<RoutedBlockOp>(user))
        if (routed.getRouterWeight() == router.getWeight()) {
          duplicates.insert(router);
          for (Operation *topk : router->getUsers())
            if (auto t = dyn_cast<TopKOp>(topk);
                t && t.getK() == routed.getCapacity())
              duplicates.insert(topk);
        }
  });
  for (Operation &op : body) {
    if (duplicates.contains(&op))
      continue;
    auto it = owner.find(&op);
    countOp(&op, axes, it == owner.end() ? report.outside
                                         : report.blocks[it->second].flops);
  }
  return report;
}

std::string human(int64_t n) {
  const char *units[] = {"", "K", "M", "G", "T", "P"};
  double v = static_cast<double>(n);
  int u = 0;
  while (std::abs(v) >= 1000.0 && u < 5) {
    v /= 1000.0;
    ++u;
  }
  return u == 0 ? std::to_string(n) : llvm::formatv("{0:F2}{1}", v, units[u]).str();
}

void printText(llvm::raw_ostream &os, const FunctionReport &r,
               const FunctionReport *dense) {
  os << "forward FLOPs of @" << r.name << " (B=" << r.batch
     << ", S=" << r.seqLen << ")\n";
  os << llvm::formatv("{0,-6} {1,-24} {2,-6} {3,6} {4,16} {5,16} {6,14} {7,16} "
                      "{8,18} {9,12}",
                      "block", "prefix", "kind", "K", "matmul", "attention",
                      "router", "elementwise", "total", "topk_cmp");
  if (dense)
    os << llvm::formatv(" {0,18} {1,8}", "dense_total", "ratio");
  os << "\n";
  auto row = [&](StringRef idx, StringRef prefix, StringRef kind, int64_t k,
                 const Flops &f, const Flops *d) {
    os << llvm::formatv("{0,-6} {1,-24} {2,-6} {3,6} {4,16} {5,16} {6,14} "
                        "{7,16} {8,18} {9,12}",
                        idx, prefix, kind, k < 0 ? std::string("") : std::to_string(k), f.matmul, f.attention, f.router,
                        f.elementwise, f.total(), f.topkCmp);
    if (d)
      os << llvm::formatv(" {0,18} {1,8:F4}", d->total(),
                          d->total() ? double(f.total()) / double(d->total())
                                     : 0.0);
    os << "\n";
  };
  for (auto [i, b] : llvm::enumerate(r.blocks)) {
    const Flops *d = dense && i < dense->blocks.size() ? &dense->blocks[i].flops
                                                       : nullptr;
    row(std::to_string(i), b.prefix, b.routed ? "routed" : "dense", b.capacity,
        b.flops, dense ? d : nullptr);
  }
  row("-", "(outside blocks)", "-", r.seqLen, r.outside,
      dense ? &dense->outside : nullptr);
  Flops t = r.total();
  Flops dt = dense ? dense->total() : Flops();
  row("total", "", "", -1, t, dense ? &dt : nullptr);
  os << "total forward FLOPs: " << t.total() << " (" << human(t.total())
     << ")\n";
  if (dense)
    os << llvm::formatv("dense baseline: {0} ({1}); MoD/dense = {2:F4}\n",
                        dt.total(), human(dt.total()),
                        double(t.total()) / double(dt.total()));
}

llvm::json::Object toJson(const Flops &f) {
  return llvm::json::Object{{"matmul", f.matmul},
                            {"attention", f.attention},
                            {"router", f.router},
                            {"elementwise", f.elementwise},
                            {"total", f.total()},
                            {"topk_cmp", f.topkCmp}};
}

llvm::json::Value jsonReport(const FunctionReport &r, const FunctionReport *dense) {
  llvm::json::Array blocks;
  for (auto [i, b] : llvm::enumerate(r.blocks)) {
    llvm::json::Object o{{"index", int64_t(i)},
                         {"prefix", b.prefix},
                         {"routed", b.routed},
                         {"capacity", b.capacity},
                         {"flops", toJson(b.flops)}};
    if (dense && i < dense->blocks.size())
      o["dense_flops"] = toJson(dense->blocks[i].flops);
    blocks.push_back(std::move(o));
  }
  llvm::json::Object o{{"function", r.name},
                       {"batch", r.batch},
                       {"seq_len", r.seqLen},
                       {"blocks", std::move(blocks)},
                       {"outside_blocks", toJson(r.outside)},
                       {"total", toJson(r.total())}};
  if (dense) {
    o["dense_total"] = toJson(dense->total());
    o["ratio"] = double(r.total().total()) / double(dense->total().total());
  }
  return o;
}

struct FlopReportPass : mod::impl::FlopReportBase<FlopReportPass> {
  using FlopReportBase::FlopReportBase;

  void runOnOperation() override {
    if (format != "text" && format != "json") {
      getOperation().emitError() << "unknown format '" << format
                                 << "' (expected text or json)";
      return signalPassFailure();
    }
    // The baseline is parsed into its own context-owned module.
    OwningOpRef<ModuleOp> baselineModule;
    if (!baseline.empty()) {
      llvm::SourceMgr mgr;
      std::string err;
      auto buffer = llvm::MemoryBuffer::getFile(baseline);
      if (!buffer) {
        getOperation().emitError() << "cannot read baseline '" << baseline
                                   << "': " << buffer.getError().message();
        return signalPassFailure();
      }
      mgr.AddNewSourceBuffer(std::move(*buffer), llvm::SMLoc());
      baselineModule = parseSourceFile<ModuleOp>(mgr, &getContext());
      if (!baselineModule) {
        getOperation().emitError() << "cannot parse baseline '" << baseline << "'";
        return signalPassFailure();
      }
    }
    llvm::json::Array reports;
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      if (func.isExternal() || func.isPrivate())
        continue;
      FailureOr<FunctionReport> report = analyze(func);
      if (failed(report))
        return signalPassFailure();
      std::optional<FunctionReport> dense;
      if (baselineModule) {
        auto denseFunc =
            baselineModule->lookupSymbol<func::FuncOp>(func.getSymName());
        if (!denseFunc) {
          func.emitError() << "baseline '" << baseline << "' has no @"
                           << func.getSymName();
          return signalPassFailure();
        }
        FailureOr<FunctionReport> d = analyze(denseFunc);
        if (failed(d))
          return signalPassFailure();
        if (d->blocks.size() != report->blocks.size()) {
          func.emitError() << "baseline @" << func.getSymName() << " has "
                           << d->blocks.size() << " blocks, this module "
                           << report->blocks.size();
          return signalPassFailure();
        }
        dense = std::move(*d);
      }
      if (format == "json")
        reports.push_back(jsonReport(*report, dense ? &*dense : nullptr));
      else
        printText(llvm::outs(), *report, dense ? &*dense : nullptr);
    }
    if (format == "json")
      llvm::outs() << llvm::formatv("{0:2}", llvm::json::Value(std::move(reports)))
                   << "\n";
    markAllAnalysesPreserved();
  }
};
} // namespace
