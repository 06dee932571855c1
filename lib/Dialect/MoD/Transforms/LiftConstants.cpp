//===- LiftConstants.cpp - weight constants -> named parameters ------------===//
//
// Issue 15 item 7: torch-mlir freezes weights into dense_resource constants.
// Lifting them into parameters lets the runtime load them from safetensors
// (the file this pass writes, or a checkpoint with the same names) and lets
// training update them.
//
//===----------------------------------------------------------------------===//

#include "mod/Analysis/Refusal.h"
#include "mod/Dialect/MoD/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

namespace mlir::mod {
#define GEN_PASS_DEF_LIFTCONSTANTS
#include "mod/Dialect/MoD/Transforms/Passes.h.inc"
} // namespace mlir::mod

using namespace mlir;
using mlir::mod::emitRefusal;

namespace {

/// The first name a location carries (NameLoc, possibly inside fused or
/// call-site locations).
std::optional<std::string> locationName(Location loc) {
  std::optional<std::string> found;
  loc->walk([&](Location sub) {
    if (auto named = dyn_cast<NameLoc>(sub)) {
      found = named.getName().str();
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return found;
}

/// Safetensors' name of a float element type, or "" when it has none.
StringRef safetensorsDType(Type t) {
  if (t.isF32())
    return "F32";
  if (t.isF64())
    return "F64";
  if (t.isF16())
    return "F16";
  if (t.isBF16())
    return "BF16";
  return "";
}

/// The little-endian bytes of a constant, or nullopt when the IR does not
/// hold them (an elided resource) or they are not densely packed.
std::optional<ArrayRef<char>> constantBytes(Attribute value,
                                            RankedTensorType type) {
  int64_t want =
      type.getNumElements() * (type.getElementTypeBitWidth() / 8);
  ArrayRef<char> data;
  if (auto dense = dyn_cast<DenseElementsAttr>(value)) {
    if (dense.isSplat())
      return std::nullopt;
    data = dense.getRawData();
  } else if (auto resource = dyn_cast<DenseResourceElementsAttr>(value)) {
    AsmResourceBlob *blob = resource.getRawHandle().getBlob();
    if (!blob)
      return std::nullopt;
    data = blob->getData();
  } else {
    return std::nullopt;
  }
  if (static_cast<int64_t>(data.size()) != want)
    return std::nullopt;
  return data;
}

struct Lifted {
  std::string name;
  RankedTensorType type;
  ArrayRef<char> bytes;
};

LogicalResult writeSafetensors(Operation *anchor, StringRef path,
                               ArrayRef<Lifted> tensors) {
  std::string header = "{";
  uint64_t offset = 0;
  for (const Lifted &t : tensors) {
    if (header.size() > 1)
      header += ",";
    header += "\"" + t.name + "\":{\"dtype\":\"" +
              safetensorsDType(t.type.getElementType()).str() +
              "\",\"shape\":[";
    for (auto [i, d] : llvm::enumerate(t.type.getShape()))
      header += (i ? "," : "") + std::to_string(d);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + t.bytes.size()) + "]}";
    offset += t.bytes.size();
  }
  header += "}";
  while (header.size() % 8)
    header += ' ';
  std::error_code ec;
  llvm::ToolOutputFile out(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return emitRefusal(anchor) << "cannot write the lifted weights to '"
                               << path << "': " << ec.message();
  uint64_t size = header.size();
  char le[8];
  for (int i = 0; i < 8; ++i)
    le[i] = static_cast<char>((size >> (8 * i)) & 0xff);
  out.os().write(le, 8);
  out.os() << header;
  for (const Lifted &t : tensors)
    out.os().write(t.bytes.data(), t.bytes.size());
  out.os().flush();
  if (out.os().has_error())
    return emitRefusal(anchor) << "cannot write the lifted weights to '"
                               << path << "'";
  out.keep();
  return success();
}

struct LiftConstantsPass
    : mod::impl::LiftConstantsBase<LiftConstantsPass> {
  using LiftConstantsBase::LiftConstantsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    // Names already taken by arguments.
    llvm::StringSet<> taken;
    module.walk([&](func::FuncOp func) {
      for (unsigned i = 0; i < func.getNumArguments(); ++i)
        if (auto name = func.getArgAttrOfType<StringAttr>(i, "mod.name"))
          taken.insert(name.getValue());
    });

    // Phase 1: find the constants and their names; nothing changes yet.
    SmallVector<Lifted> tensors;
    DenseMap<Attribute, unsigned> byValue; // constant value -> tensors index
    SmallVector<std::pair<arith::ConstantOp, unsigned>> sites;
    unsigned unnamed = 0;
    WalkResult walk = module.walk([&](arith::ConstantOp cst) {
      auto type = dyn_cast<RankedTensorType>(cst.getType());
      if (!type || !type.hasStaticShape() ||
          !isa<FloatType>(type.getElementType()) ||
          type.getNumElements() < minElements ||
          !cst->getParentOfType<func::FuncOp>() ||
          cst->getParentOp() != cst->getParentOfType<func::FuncOp>())
        return WalkResult::advance();
      if (auto dense = dyn_cast<DenseElementsAttr>(cst.getValue());
          dense && dense.isSplat())
        return WalkResult::advance();
      auto [it, inserted] = byValue.try_emplace(cst.getValue(), tensors.size());
      if (inserted) {
        std::optional<ArrayRef<char>> bytes =
            safetensorsDType(type.getElementType()).empty()
                ? std::nullopt
                : constantBytes(cst.getValue(), type);
        if (!bytes) {
          emitRefusal(cst) << "cannot lift constant " << type
                           << " into a parameter: its data is not in the IR "
                              "(an elided dense_resource?) or its element "
                              "type has no safetensors dtype";
          return WalkResult::interrupt();
        }
        std::string name;
        if (std::optional<std::string> fromLoc = locationName(cst.getLoc()))
          name = *fromLoc;
        else if (auto resource =
                     dyn_cast<DenseResourceElementsAttr>(cst.getValue()))
          name = resource.getRawHandle().getKey().str();
        else
          name = "constant_" + std::to_string(unnamed++);
        if (!locationName(cst.getLoc()))
          std::replace(name.begin(), name.end(), '.', '_');
        if (name.empty() || name.find('"') != std::string::npos ||
            name.find('\\') != std::string::npos)
          name = "constant_" + std::to_string(unnamed++);
        std::string unique = name;
        for (unsigned n = 1; taken.contains(unique); ++n)
          unique = name + "." + std::to_string(n);
        taken.insert(unique);
        tensors.push_back({unique, type, *bytes});
      }
      sites.push_back({cst, it->second});
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();
    if (tensors.empty())
      return;
    if (weights.empty()) {
      emitRefusal(module) << "--mod-lift-constants needs weights=FILE: the "
                          << tensors.size()
                          << " lifted constants' values must go somewhere";
      return signalPassFailure();
    }
    // Phase 2: the values, before the IR that refers to them by name.
    if (failed(writeSafetensors(module, weights, tensors)))
      return signalPassFailure();

    // Phase 3: one argument per (function, constant).
    Builder b(ctx);
    std::map<std::pair<Operation *, unsigned>, Value> args;
    for (auto [cst, index] : sites) {
      auto func = cst->getParentOfType<func::FuncOp>();
      Value &arg = args[{func.getOperation(), index}];
      if (!arg) {
        const Lifted &t = tensors[index];
        SmallVector<NamedAttribute> attrs{
            b.getNamedAttr("mod.name", b.getStringAttr(t.name)),
            b.getNamedAttr("mod.kind", b.getStringAttr("parameter")),
            b.getNamedAttr("mod.init", b.getStringAttr(init))};
        unsigned at = func.getNumArguments();
        (void)func.insertArgument(at, t.type, b.getDictionaryAttr(attrs),
                                  cst.getLoc());
        arg = func.getArgument(at);
      }
      cst.getResult().replaceAllUsesWith(arg);
      cst.erase();
    }
  }
};
} // namespace
