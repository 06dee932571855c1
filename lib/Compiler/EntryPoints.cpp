//===- EntryPoints.cpp - entry points and manifest.json -------------------===//

#include "mod/Compiler/EntryPoints.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

using namespace mlir;
using namespace mlir::mod;

/// Argument attributes that carry runtime metadata into the manifest.
static constexpr llvm::StringLiteral kNameAttr = "mod.name",
                                     kKindAttr = "mod.kind",
                                     kInitAttr = "mod.init",
                                     kInitSeedAttr = "mod.init_seed",
                                     kAliasesAttr = "mod.aliases",
                                     kResidentAttr = "mod.device_resident";

static std::optional<std::string> dtypeName(Type t) {
  if (t.isF32())
    return "f32";
  if (t.isF64())
    return "f64";
  if (t.isSignlessInteger(32))
    return "i32";
  if (t.isSignlessInteger(64))
    return "i64";
  return std::nullopt;
}

/// Describes one entry-point tensor, or reports why the runtime cannot pass it.
static FailureOr<TensorSpec> describe(func::FuncOp fn, Type type,
                                      std::string name, StringRef role) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return fn.emitError() << "entry point @" << fn.getSymName() << ": " << role
                          << " '" << name
                          << "' must be a tensor with a static shape, got "
                          << type;
  std::optional<std::string> dtype = dtypeName(tensor.getElementType());
  if (!dtype)
    return fn.emitError() << "entry point @" << fn.getSymName() << ": " << role
                          << " '" << name << "' has element type "
                          << tensor.getElementType()
                          << ", which the runtime does not support (use f32, "
                             "f64, i32 or i64)";
  return TensorSpec{std::move(name), *dtype,
                    SmallVector<int64_t>(tensor.getShape()), "", "",
                    std::nullopt, "", false};
}

FailureOr<std::vector<EntryPoint>> mlir::mod::collectEntryPoints(ModuleOp module) {
  std::vector<EntryPoint> entries;
  for (auto fn : module.getOps<func::FuncOp>()) {
    if (fn.isPrivate() || fn.isExternal())
      continue;
    EntryPoint entry{fn.getSymName().str(), {}, {}};
    for (auto [i, type] : llvm::enumerate(fn.getArgumentTypes())) {
      std::string name = "arg" + std::to_string(i);
      if (auto attr = fn.getArgAttrOfType<StringAttr>(i, kNameAttr))
        name = attr.str();
      FailureOr<TensorSpec> spec = describe(fn, type, name, "argument");
      if (failed(spec))
        return failure();
      if (auto attr = fn.getArgAttrOfType<StringAttr>(i, kKindAttr))
        spec->kind = attr.str();
      if (auto attr = fn.getArgAttrOfType<StringAttr>(i, kInitAttr))
        spec->init = attr.str();
      if (Attribute attr = fn.getArgAttr(i, kInitSeedAttr)) {
        // ui64 as --mod-dense-to-mod writes it, or a non-negative i64.
        auto seed = dyn_cast<IntegerAttr>(attr);
        auto seedType = seed ? dyn_cast<IntegerType>(seed.getType()) : nullptr;
        if (!seedType || seedType.getWidth() > 64 ||
            (!seedType.isUnsigned() && seed.getValue().isNegative()))
          return fn.emitError()
                 << "entry point @" << fn.getSymName() << ": argument '"
                 << spec->name << "' has " << kInitSeedAttr << " = " << attr
                 << "; expected an integer in [0, 2^64-1]";
        spec->initSeed = seed.getValue().getZExtValue();
      }
      spec->deviceResident = fn.getArgAttr(i, kResidentAttr) != nullptr;
      entry.inputs.push_back(*spec);
    }
    for (auto [i, type] : llvm::enumerate(fn.getResultTypes())) {
      std::string name = "result" + std::to_string(i);
      if (auto attr = fn.getResultAttrOfType<StringAttr>(i, kNameAttr))
        name = attr.str();
      FailureOr<TensorSpec> spec = describe(fn, type, name, "result");
      if (failed(spec))
        return failure();
      if (auto alias = fn.getResultAttrOfType<IntegerAttr>(i, kAliasesAttr)) {
        int64_t arg = alias.getInt();
        if (arg < 0 || arg >= int64_t(fn.getNumArguments()) ||
            fn.getArgumentTypes()[arg] != type)
          return fn.emitError()
                 << "entry point @" << fn.getSymName() << ": result '" << name
                 << "' has mod.aliases = " << arg
                 << ", which is not an argument of the same type " << type;
        for (const TensorSpec &other : entry.outputs)
          if (other.aliasOf == entry.inputs[arg].name)
            return fn.emitError()
                   << "entry point @" << fn.getSymName() << ": argument '"
                   << other.aliasOf << "' is aliased by two results";
        spec->aliasOf = entry.inputs[arg].name;
      }
      spec->deviceResident = fn.getResultAttr(i, kResidentAttr) != nullptr;
      entry.outputs.push_back(*spec);
    }
    // The metadata now lives in the manifest; LLVM has no use for it.
    // mod.aliases stays for --mod-read-only-entry-arguments, which consumes
    // it (the aliased arguments are the only writable ones), and
    // mod.device_resident for --mod-gpu-device-buffers (no copy).
    for (StringRef attrName : {kNameAttr, kKindAttr, kInitAttr, kInitSeedAttr}) {
      auto key = StringAttr::get(module.getContext(), attrName);
      for (unsigned i = 0, e = fn.getNumArguments(); i < e; ++i)
        fn.removeArgAttr(i, key);
      for (unsigned i = 0, e = fn.getNumResults(); i < e; ++i)
        fn.removeResultAttr(i, key);
    }
    fn->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                UnitAttr::get(module.getContext()));
    entries.push_back(std::move(entry));
  }
  if (entries.empty()) {
    module.emitError() << "no entry point: the module has no public func.func "
                          "with a body";
    return failure();
  }
  return entries;
}

std::string EntryPoint::signature() const {
  auto list = [](const std::vector<TensorSpec> &specs) {
    std::string out;
    for (const TensorSpec &spec : specs) {
      if (!out.empty())
        out += ',';
      out += spec.dtype + "[";
      for (auto [i, dim] : llvm::enumerate(spec.shape))
        out += (i ? "x" : "") + std::to_string(dim);
      out += "]";
      // The code takes a device pointer for it: a runtime that read the
      // manifest without the residency would pass host memory.
      if (spec.deviceResident)
        out += "@device";
    }
    return out;
  };
  return "in:" + list(inputs) + ";out:" + list(outputs);
}

static llvm::json::Value toJson(const TensorSpec &spec) {
  llvm::json::Array shape;
  for (int64_t d : spec.shape)
    shape.push_back(d);
  llvm::json::Object object{{"name", spec.name},
                            {"dtype", spec.dtype},
                            {"shape", std::move(shape)}};
  if (!spec.kind.empty())
    object["kind"] = spec.kind;
  if (!spec.init.empty())
    object["init"] = spec.init;
  if (spec.initSeed)
    object["init_seed"] = *spec.initSeed;
  if (!spec.aliasOf.empty())
    object["alias_of"] = spec.aliasOf;
  if (spec.deviceResident)
    object["residency"] = "device";
  return object;
}

std::string mlir::mod::buildManifest(ArrayRef<EntryPoint> entries,
                                     const ManifestInfo &info) {
  llvm::json::Array entryArray;
  for (const EntryPoint &entry : entries) {
    llvm::json::Array inputs, outputs;
    for (const TensorSpec &s : entry.inputs)
      inputs.push_back(toJson(s));
    for (const TensorSpec &s : entry.outputs)
      outputs.push_back(toJson(s));
    entryArray.push_back(llvm::json::Object{{"name", entry.name},
                                            {"symbol", entry.wrapperSymbol()},
                                            {"inputs", std::move(inputs)},
                                            {"outputs", std::move(outputs)}});
  }
  llvm::json::Object manifest{{"format", "modc-manifest"},
                              {"version", 1},
                              {"target", info.target},
                              {"library", info.library},
                              {"entry_points", std::move(entryArray)}};
  if (!info.librarySha256.empty())
    manifest["library_sha256"] = info.librarySha256;
  if (!info.gemmPrecision.empty())
    manifest["gemm_precision"] = info.gemmPrecision;
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(manifest))) << "\n";
  return text;
}
