//===- Manifest.cpp - manifest.json written by mod-compile ----------------===//

#include "modrt/Manifest.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace modrt;

std::optional<ParameterInit> ParameterInit::parse(std::string_view text) {
  ParameterInit init;
  if (text == "zeros") {
    init.kind = Kind::Zeros;
    return init;
  }
  if (text == "ones") {
    init.kind = Kind::Ones;
    return init;
  }
  constexpr std::string_view prefix = "normal:";
  if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view number = text.substr(prefix.size());
  // from_chars, unlike strtod, does not depend on the C locale.
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(),
                                   init.std);
  if (number.empty() || ec != std::errc() || ptr != number.data() + number.size() ||
      !std::isfinite(init.std) || init.std < 0)
    return std::nullopt;
  init.kind = Kind::Normal;
  return init;
}

std::string ParameterInit::str() const {
  switch (kind) {
  case Kind::Zeros: return "zeros";
  case Kind::Ones: return "ones";
  case Kind::Normal: break;
  }
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "normal:%.17g", std);
  return buffer;
}

std::string TensorSpec::str() const {
  return std::string(manifestDTypeName(dtype)) + "[" + formatShape(shape) + "]";
}

const EntryPoint *Manifest::findEntry(std::string_view name) const {
  for (const EntryPoint &entry : entryPoints)
    if (entry.name == name) return &entry;
  return nullptr;
}

std::string Manifest::entryNames() const {
  std::string out;
  for (const EntryPoint &entry : entryPoints) {
    if (!out.empty()) out += ", ";
    out += entry.name;
  }
  return out;
}

namespace {
/// Field accessors that turn a missing or mistyped key into an Error naming
/// the document and the path to the key.
class Reader {
public:
  explicit Reader(const std::string &source) : source_(source) {}

  [[noreturn]] void fail(const std::string &where, const std::string &what) const {
    throw Error(source_ + ": " + (where.empty() ? "" : where + ": ") + what);
  }

  const Json &member(const Json &object, const char *key,
                     const std::string &where) const {
    const Json *value = object.find(key);
    if (!value) fail(where, std::string("missing \"") + key + "\"");
    return *value;
  }

  const std::string &string(const Json &object, const char *key,
                            const std::string &where) const {
    const Json &value = member(object, key, where);
    if (!value.isString() || value.asString().empty())
      fail(where, std::string("\"") + key + "\" must be a non-empty string");
    return value.asString();
  }

  const Json::Array &array(const Json &object, const char *key,
                           const std::string &where) const {
    const Json &value = member(object, key, where);
    if (!value.isArray())
      fail(where, std::string("\"") + key + "\" must be an array");
    return value.asArray();
  }

  TensorSpec tensorSpec(const Json &json, const std::string &where) const {
    if (!json.isObject()) fail(where, "must be an object");
    TensorSpec spec;
    spec.name = string(json, "name", where);
    const std::string &dtypeName = string(json, "dtype", where);
    std::optional<DType> dtype = dtypeFromManifestName(dtypeName);
    if (!dtype) fail(where, "unknown dtype \"" + dtypeName + "\"");
    spec.dtype = *dtype;
    for (const Json &dim : array(json, "shape", where)) {
      if (!dim.isInteger() || dim.asInt() < 0)
        fail(where, "\"shape\" must hold non-negative integers, got " + dim.dump());
      spec.shape.push_back(dim.asInt());
    }
    if (!checkedNumElements(spec.shape, spec.dtype))
      fail(where, "shape [" + formatShape(spec.shape) + "] is too large");
    if (const Json *residency = json.find("residency")) {
      if (!residency->isString() || (residency->asString() != "device" &&
                                     residency->asString() != "host"))
        fail(where, "\"residency\" must be \"host\" or \"device\", got " +
                        residency->dump());
      spec.deviceResident = residency->asString() == "device";
    }
    return spec;
  }

  /// Reads "kind" and "init" of an entry point input.
  void inputRole(const Json &json, TensorSpec &spec, const std::string &where) const {
    if (const Json *kind = json.find("kind")) {
      if (!kind->isString() ||
          (kind->asString() != "input" && kind->asString() != "parameter"))
        fail(where, "\"kind\" must be \"input\" or \"parameter\", got " + kind->dump());
      spec.kind = kind->asString() == "parameter" ? InputKind::Parameter : InputKind::Data;
    }
    const Json *init = json.find("init");
    // A data input's init means nothing to this runtime; newer compilers may
    // put other rules there.
    if (!init || !spec.isParameter()) return;
    if (const Json *seed = json.find("init_seed")) {
      // Any uint64, exactly; 1e3 or 2^64 are not seeds.
      if (!seed->isUnsigned64())
        fail(where, "\"init_seed\" of parameter '" + spec.name +
                        "' must be a non-negative integer of at most "
                        "18446744073709551615 (2^64-1), got " + seed->dump());
      spec.initSeed = seed->asUint64();
    }
    if (init->isString()) spec.init = ParameterInit::parse(init->asString());
    if (!spec.init)
      fail(where, "\"init\" of parameter '" + spec.name + "' must be "
                  "\"normal:<std>\" (std a non-negative number), \"zeros\" or "
                  "\"ones\", got " + init->dump());
  }

  std::vector<TensorSpec> tensorSpecs(const Json &entry, const char *key,
                                      const std::string &where) const {
    std::vector<TensorSpec> specs;
    std::set<std::string> names;
    const Json::Array &items = array(entry, key, where);
    for (size_t i = 0; i < items.size(); ++i) {
      std::string itemWhere = where + ": " + key + "[" + std::to_string(i) + "]";
      specs.push_back(tensorSpec(items[i], itemWhere));
      if (std::string_view(key) == "inputs")
        inputRole(items[i], specs.back(), itemWhere);
      // Names are how mod-run finds inputs and labels outputs.
      if (!names.insert(specs.back().name).second)
        fail(itemWhere, "duplicate name \"" + specs.back().name + "\"");
    }
    return specs;
  }

  /// Reads the "alias_of" of every output: the name of an input of the same
  /// dtype and shape that no other output aliases.
  void aliases(const Json &json, EntryPoint &entry, const std::string &where) const {
    const Json::Array &items = array(json, "outputs", where);
    std::set<size_t> taken;
    for (size_t i = 0; i < items.size(); ++i) {
      const Json *alias = items[i].find("alias_of");
      if (!alias) continue;
      std::string itemWhere = where + ": outputs[" + std::to_string(i) + "]";
      TensorSpec &out = entry.outputs[i];
      if (!alias->isString())
        fail(itemWhere, "\"alias_of\" must be an input name, got " + alias->dump());
      size_t k = 0;
      while (k < entry.inputs.size() && entry.inputs[k].name != alias->asString()) ++k;
      if (k == entry.inputs.size())
        fail(itemWhere, "\"alias_of\" names no input: \"" + alias->asString() + "\"");
      const TensorSpec &in = entry.inputs[k];
      if (in.dtype != out.dtype || in.shape != out.shape)
        fail(itemWhere, "output '" + out.name + "' (" + out.str() +
                            ") cannot alias input '" + in.name + "' (" + in.str() + ")");
      if (!taken.insert(k).second)
        fail(itemWhere, "input '" + in.name + "' is aliased by two outputs");
      out.aliasOf = k;
    }
    for (size_t i = 0; i < entry.outputs.size(); ++i) {
      const TensorSpec &out = entry.outputs[i];
      std::string itemWhere = where + ": outputs[" + std::to_string(i) + "]";
      if (!out.aliasOf) {
        // A device-resident output that aliases nothing stays in the
        // model's device buffer of its name (gradients for adamw_step):
        // reading and writing one buffer in a call needs "alias_of".
        if (out.deviceResident)
          for (const TensorSpec &in : entry.inputs)
            if (in.name == out.name)
              fail(itemWhere, "output '" + out.name + "' has \"residency\": "
                   "\"device\" and the name of an input it does not alias "
                   "(they would share one device buffer)");
        continue;
      }
      if (out.deviceResident != entry.inputs[*out.aliasOf].deviceResident)
        fail(itemWhere,
             out.deviceResident
                 ? "output '" + out.name + "' has \"residency\": \"device\" "
                   "but aliases input '" + entry.inputs[*out.aliasOf].name +
                   "', which is not device-resident"
                 : "output '" + out.name + "' updates device-resident input '" +
                       entry.inputs[*out.aliasOf].name +
                       "' in place but is not \"residency\": \"device\"");
    }
  }

private:
  const std::string &source_;
};
} // namespace

Manifest Manifest::parse(std::string_view text, const std::string &source) {
  Reader reader(source);
  Manifest manifest;
  try {
    manifest.json = Json::parse(text);
  } catch (const Error &e) {
    reader.fail("", std::string("invalid JSON: ") + e.what());
  }
  const Json &root = manifest.json;
  if (!root.isObject()) reader.fail("", "manifest is not a JSON object");

  const std::string &format = reader.string(root, "format", "");
  if (format != "modc-manifest")
    reader.fail("", "\"format\" is \"" + format + "\", expected \"modc-manifest\"");
  const Json &version = reader.member(root, "version", "");
  if (!version.isInteger())
    reader.fail("", "\"version\" must be an integer");
  if (version.asInt() != kVersion)
    reader.fail("", "unsupported manifest version " + version.dump() +
                        " (this runtime reads version " +
                        std::to_string(kVersion) + ")");
  manifest.version = version.asInt();

  manifest.target = reader.string(root, "target", "");
  if (manifest.target != "cpu" && manifest.target != "cuda")
    reader.fail("", "unknown target \"" + manifest.target +
                        "\" (expected \"cpu\" or \"cuda\")");

  manifest.library = reader.string(root, "library", "");
  // The library must live inside the model directory.
  if (manifest.library.front() == '/' || manifest.library == ".." ||
      manifest.library.rfind("../", 0) == 0 ||
      manifest.library.find("/../") != std::string::npos ||
      (manifest.library.size() >= 3 &&
       manifest.library.compare(manifest.library.size() - 3, 3, "/..") == 0))
    reader.fail("", "\"library\" must be a relative path inside the model "
                    "directory, got \"" + manifest.library + "\"");

  if (root.find("library_sha256")) {
    manifest.librarySha256 = reader.string(root, "library_sha256", "");
    if (manifest.librarySha256.size() != 64 ||
        manifest.librarySha256.find_first_not_of("0123456789abcdef") !=
            std::string::npos)
      reader.fail("", "\"library_sha256\" must be 64 lowercase hex digits, "
                      "got \"" + manifest.librarySha256 + "\"");
  }

  if (root.find("gemm_precision")) {
    manifest.gemmPrecision = reader.string(root, "gemm_precision", "");
    if (manifest.gemmPrecision != "f32" && manifest.gemmPrecision != "tf32" &&
        manifest.gemmPrecision != "bf16")
      reader.fail("", "unknown \"gemm_precision\" \"" +
                          manifest.gemmPrecision +
                          "\" (expected \"f32\", \"tf32\" or \"bf16\")");
    if (manifest.gemmPrecision != "f32" && manifest.target != "cuda")
      reader.fail("", "\"gemm_precision\" \"" + manifest.gemmPrecision +
                          "\" needs the \"cuda\" target, not \"" +
                          manifest.target + "\"");
  }

  const Json::Array &entries = reader.array(root, "entry_points", "");
  if (entries.empty()) reader.fail("", "\"entry_points\" is empty");
  for (size_t i = 0; i < entries.size(); ++i) {
    std::string where = "entry_points[" + std::to_string(i) + "]";
    const Json &json = entries[i];
    if (!json.isObject()) reader.fail(where, "must be an object");
    EntryPoint entry;
    entry.name = reader.string(json, "name", where);
    where += " ('" + entry.name + "')";
    if (manifest.findEntry(entry.name))
      reader.fail(where, "duplicate entry point name");
    entry.symbol = reader.string(json, "symbol", where);
    entry.inputs = reader.tensorSpecs(json, "inputs", where);
    entry.outputs = reader.tensorSpecs(json, "outputs", where);
    reader.aliases(json, entry, where);
    manifest.entryPoints.push_back(std::move(entry));
  }
  // Device-resident tensors are one buffer per name for the whole model.
  std::map<std::string, const TensorSpec *> resident;
  for (const EntryPoint &entry : manifest.entryPoints)
    for (const auto *specs : {&entry.inputs, &entry.outputs})
      for (const TensorSpec &spec : *specs) {
        if (!spec.deviceResident) continue;
        const char *role = specs == &entry.inputs ? "input" : "output";
        if (manifest.target != "cuda")
          reader.fail("entry point '" + entry.name + "'",
                      std::string(role) + " '" + spec.name +
                          "' has \"residency\": \"device\" but the target "
                          "is \"" + manifest.target + "\"");
        auto [it, inserted] = resident.emplace(spec.name, &spec);
        if (!inserted &&
            (it->second->dtype != spec.dtype || it->second->shape != spec.shape))
          reader.fail("entry point '" + entry.name + "'",
                      "device-resident " + std::string(role) + " '" +
                          spec.name + "' is " + spec.str() + " here but " +
                          it->second->str() +
                          " elsewhere (they share one buffer)");
      }
  return manifest;
}

std::string Manifest::gemmPrecisionDescription() const {
  if (gemmPrecision == "tf32")
    return "tf32 (f32 GEMMs on TF32 tensor cores)";
  if (gemmPrecision == "bf16")
    return "bf16 (bf16 GEMM operands, f32 accumulation, f32 master weights)";
  return gemmPrecision;
}

Manifest Manifest::load(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open manifest");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(path + ": cannot read manifest");
  return parse(text.str(), path);
}
