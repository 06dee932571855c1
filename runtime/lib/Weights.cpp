//===- Weights.cpp - Load, initialize and save model parameters -----------===//

#include "modrt/Weights.h"

#include "modrt/FileUtil.h"
#include "modrt/Json.h"
#include "modrt/Safetensors.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

using namespace modrt;

namespace {

/// xoshiro256** 1.0 (Blackman and Vigna), seeded through splitmix64 as its
/// authors recommend, so that similar seeds give unrelated streams.
class Xoshiro256 {
public:
  explicit Xoshiro256(uint64_t seed) {
    for (uint64_t &word : state_) {
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      word = z ^ (z >> 31);
    }
  }

  uint64_t next() {
    uint64_t result = rotl(state_[1] * 5, 7) * 9;
    uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }

private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

/// Standard normal values by Box-Muller, using both values of each pair.
class NormalStream {
public:
  explicit NormalStream(uint64_t seed) : rng_(seed) {}

  double next() {
    if (hasSpare_) {
      hasSpare_ = false;
      return spare_;
    }
    const double twoPi = 6.283185307179586476925286766559;
    double u1 = 1.0 - rng_.uniform(); // (0, 1]: log stays finite
    double u2 = rng_.uniform();
    double radius = std::sqrt(-2.0 * std::log(u1));
    spare_ = radius * std::sin(twoPi * u2);
    hasSpare_ = true;
    return radius * std::cos(twoPi * u2);
  }

private:
  Xoshiro256 rng_;
  bool hasSpare_ = false;
  double spare_ = 0.0;
};

/// Stores `value` as element `i` of a floating-point tensor.
void storeFloat(Tensor &t, int64_t i, double value) {
  switch (t.dtype()) {
  case DType::F32: t.data<float>()[i] = float(value); break;
  case DType::F64: t.data<double>()[i] = value; break;
  case DType::F16: t.data<uint16_t>()[i] = floatToHalf(float(value)); break;
  case DType::BF16: t.data<uint16_t>()[i] = floatToBFloat16(float(value)); break;
  default: throw Error("storeFloat: not a floating-point tensor");
  }
}

std::string describe(const Tensor &t) {
  return std::string(manifestDTypeName(t.dtype())) + "[" + formatShape(t.shape()) + "]";
}

} // namespace

uint64_t modrt::parameterSeed(const std::string &name, uint64_t seed) {
  uint64_t hash = 0xCBF29CE484222325ull; // FNV-1a 64 offset basis
  for (unsigned char c : name) {
    hash ^= c;
    hash *= 0x100000001B3ull; // FNV-1a 64 prime
  }
  return hash ^ seed;
}

Tensor modrt::initParameter(const TensorSpec &spec, uint64_t seed) {
  if (!spec.init)
    throw Error("parameter '" + spec.name + "' " + spec.str() +
                " has no \"init\" rule in the manifest, so it cannot be "
                "initialized; provide it in the weights file");
  DType d = spec.dtype;
  if (d != DType::F32 && d != DType::F64 && d != DType::F16 && d != DType::BF16)
    throw Error("parameter '" + spec.name + "' is " + spec.str() +
                "; only floating-point parameters can be initialized");
  Tensor t(d, spec.shape);
  const ParameterInit &init = *spec.init;
  if (init.kind == ParameterInit::Kind::Zeros) return t; // Tensor starts zeroed
  if (init.kind == ParameterInit::Kind::Ones) {
    for (int64_t i = 0; i < t.numElements(); ++i) storeFloat(t, i, 1.0);
    return t;
  }
  NormalStream normal(parameterSeed(spec.name, spec.initSeed.value_or(seed)));
  for (int64_t i = 0; i < t.numElements(); ++i) storeFloat(t, i, init.std * normal.next());
  return t;
}

namespace {

bool endsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Reads a Hugging Face shard index and the shards it names.
SafetensorsFile readShardIndex(const std::string &indexPath) {
  namespace fs = std::filesystem;
  Json index;
  try {
    index = Json::parse(readFile(indexPath));
  } catch (const Error &e) {
    throw Error(indexPath + ": not a safetensors shard index: " + e.what());
  }
  const Json *map = index.isObject() ? index.find("weight_map") : nullptr;
  if (!map || !map->isObject())
    throw Error(indexPath + ": a safetensors shard index needs a \"weight_map\" "
                "object of {tensor name: shard file}");
  // Shards in the order they are first named; each is read once.
  std::map<std::string, std::vector<std::string>> shardTensors;
  std::vector<std::string> shardOrder;
  for (const auto &[name, file] : map->asObject()) {
    if (!file.isString() || file.asString().empty())
      throw Error(indexPath + ": \"weight_map\" entry for tensor '" + name +
                  "' must be a shard file name, got " + file.dump());
    const std::string &shard = file.asString();
    fs::path shardPath(shard);
    bool escapes = shardPath.is_absolute();
    for (const fs::path &part : shardPath)
      if (part == "..") escapes = true;
    if (escapes)
      throw Error(indexPath + ": shard file '" + shard + "' (tensor '" + name +
                  "') must be a path relative to the index's directory, "
                  "without '..'");
    auto [it, inserted] = shardTensors.try_emplace(shard);
    if (inserted) shardOrder.push_back(shard);
    it->second.push_back(name);
  }
  if (shardOrder.empty())
    throw Error(indexPath + ": \"weight_map\" names no tensor");
  const fs::path dir = fs::path(indexPath).parent_path();
  SafetensorsFile result;
  std::map<std::string, std::string> shardOf;
  for (const std::string &shard : shardOrder) {
    const std::string shardPath = (dir / shard).string();
    SafetensorsFile part;
    try {
      part = readSafetensors(shardPath);
    } catch (const Error &e) {
      throw Error(indexPath + ": shard " + shard + ": " + e.what());
    }
    for (const std::string &name : shardTensors[shard])
      if (!part.tensors.count(name))
        throw Error(indexPath + ": tensor '" + name + "' is mapped to " + shard +
                    ", which does not hold it");
    for (auto &[name, tensor] : part.tensors) {
      auto [it, inserted] = shardOf.emplace(name, shard);
      if (!inserted)
        throw Error(indexPath + ": tensor '" + name + "' is in two shards, " +
                    it->second + " and " + shard);
      result.tensors.emplace(name, std::move(tensor));
    }
    for (auto &[key, value] : part.metadata) result.metadata.emplace(key, value);
  }
  return result;
}

/// Base-model prefixes of the Hugging Face families (GPT2LMHeadModel's
/// `transformer`, LlamaForCausalLM's `model`): checkpoints of the base model
/// alone name the parameters without them.
const char *const kBasePrefixes[] = {"transformer.", "model."};

} // namespace

SafetensorsFile modrt::readWeights(const std::string &path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const char *name : {"params.safetensors", "model.safetensors"}) {
      fs::path candidate = fs::path(path) / name;
      if (fs::exists(candidate, ec)) return readSafetensors(candidate.string());
    }
    fs::path index = fs::path(path) / "model.safetensors.index.json";
    if (fs::exists(index, ec)) return readShardIndex(index.string());
    throw Error(path + ": directory holds no params.safetensors, "
                "model.safetensors or model.safetensors.index.json");
  }
  if (endsWith(path, ".json")) return readShardIndex(path);
  return readSafetensors(path);
}

bool modrt::isKnownBuffer(const std::string &name) {
  for (const char *suffix : {".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq"})
    if (endsWith(name, suffix) || name == std::string(suffix).substr(1)) return true;
  return false;
}

std::map<std::string, Tensor> modrt::loadParameters(const EntryPoint &entry,
                                                    const std::string &safetensorsPath,
                                                    bool initMissing, uint64_t seed,
                                                    ParameterLoadReport *report) {
  SafetensorsFile file;
  if (!safetensorsPath.empty()) file = readWeights(safetensorsPath);
  const std::string source = safetensorsPath.empty() ? "(no weights file)" : safetensorsPath;

  // Exact names first, so that a prefixed or unprefixed alias never takes a
  // tensor that some parameter names exactly.
  std::set<std::string> claimed;
  for (const TensorSpec &spec : entry.inputs)
    if (spec.isParameter() && file.tensors.count(spec.name)) claimed.insert(spec.name);
  auto findTensor = [&](const std::string &name) -> std::string {
    if (file.tensors.count(name)) return name;
    std::vector<std::string> aliases;
    for (const std::string prefix : kBasePrefixes) {
      if (name.compare(0, prefix.size(), prefix) == 0)
        aliases.push_back(name.substr(prefix.size()));
      else
        aliases.push_back(prefix + name);
    }
    for (const std::string &alias : aliases)
      if (file.tensors.count(alias) && claimed.insert(alias).second) return alias;
    return {};
  };

  std::map<std::string, Tensor> parameters;
  std::set<std::string> used;
  std::vector<const TensorSpec *> missing;
  size_t parameterCount = 0;
  for (const TensorSpec &spec : entry.inputs) {
    if (!spec.isParameter()) continue;
    ++parameterCount;
    std::string key = findTensor(spec.name);
    if (key.empty()) {
      if (!initMissing)
        throw MissingParameterError(source + ": missing parameter '" + spec.name + "' " +
                                    spec.str() + " of entry point '" + entry.name + "'");
      missing.push_back(&spec);
      continue;
    }
    used.insert(key);
    Tensor &tensor = file.tensors.at(key);
    const std::string what =
        key == spec.name ? "parameter '" + spec.name + "'"
                         : "tensor '" + key + "' (parameter '" + spec.name + "')";
    if (tensor.shape() != spec.shape)
      throw Error(source + ": " + what + " has shape [" + formatShape(tensor.shape()) +
                  "], but entry point '" + entry.name + "' expects [" +
                  formatShape(spec.shape) + "]");
    if (tensor.dtype() != spec.dtype) {
      bool widen = spec.dtype == DType::F32 &&
                   (tensor.dtype() == DType::F16 || tensor.dtype() == DType::BF16);
      if (!widen)
        throw Error(source + ": " + what + " is " + describe(tensor) +
                    ", but entry point '" + entry.name + "' expects " + spec.str());
      tensor = tensor.toF32();
    }
    if (report && key != spec.name) report->renamed.emplace_back(spec.name, key);
    parameters.emplace(spec.name, std::move(tensor));
  }

  // Tensors that are neither a parameter, nor a data input (a --inputs file
  // may carry both), nor a known buffer.
  std::set<std::string> dataInputs;
  for (const TensorSpec &spec : entry.inputs)
    if (!spec.isParameter()) dataInputs.insert(spec.name);
  std::vector<std::string> strays, buffers;
  for (const auto &entryInFile : file.tensors) {
    const std::string &name = entryInFile.first;
    if (used.count(name)) continue;
    if (isKnownBuffer(name))
      buffers.push_back(name);
    else
      strays.push_back(name);
  }
  if (!missing.empty() && parameters.empty() && parameterCount > 0 &&
      !safetensorsPath.empty()) {
    std::vector<std::string> foreign;
    for (const std::string &name : strays)
      if (!dataInputs.count(name)) foreign.push_back(name);
    if (!foreign.empty())
      throw Error(source + ": none of its " + std::to_string(foreign.size()) +
                  " tensors (e.g. '" + foreign.front() + "') is a parameter of entry "
                  "point '" + entry.name + "' (e.g. '" + missing.front()->name +
                  "'), by exact name or with the base-model prefix ('transformer.', "
                  "'model.') added or removed; refusing to initialize all " +
                  std::to_string(parameterCount) + " parameters with --init-missing. "
                  "Is this the checkpoint of another model?");
  }
  for (const TensorSpec *spec : missing) {
    parameters.emplace(spec->name, initParameter(*spec, seed));
    if (report) report->initialized.push_back(spec->name);
  }
  if (report) {
    report->unexpected = std::move(strays);
    report->ignoredBuffers = std::move(buffers);
  }
  return parameters;
}

void modrt::printLoadReport(const std::string &tool, const std::string &entry,
                            const std::string &source, const ParameterLoadReport &report,
                            uint64_t seed, bool warnUnexpected) {
  if (!report.renamed.empty()) {
    const auto &[param, tensor] = report.renamed.front();
    std::fprintf(stderr,
                 "%s: note: read %zu parameter(s) from %s under the checkpoint's "
                 "names (base-model prefix added or removed), e.g. '%s' from '%s'\n",
                 tool.c_str(), report.renamed.size(), source.c_str(), param.c_str(),
                 tensor.c_str());
  }
  if (!report.ignoredBuffers.empty())
    std::fprintf(stderr,
                 "%s: note: ignored %zu non-parameter buffer(s) in %s (e.g. '%s')\n",
                 tool.c_str(), report.ignoredBuffers.size(), source.c_str(),
                 report.ignoredBuffers.front().c_str());
  if (warnUnexpected)
    for (const std::string &name : report.unexpected)
      std::fprintf(stderr, "%s: warning: %s: tensor '%s' is no parameter of entry point "
                   "'%s'; ignored\n", tool.c_str(), source.c_str(), name.c_str(),
                   entry.c_str());
  if (!source.empty() && !report.initialized.empty()) {
    std::string names;
    for (const std::string &name : report.initialized) names += " " + name;
    std::fprintf(stderr,
                 "%s: note: initialized %zu parameter(s) missing from %s (seed "
                 "%llu):%s\n",
                 tool.c_str(), report.initialized.size(), source.c_str(),
                 static_cast<unsigned long long>(seed), names.c_str());
  }
}

void modrt::saveParameters(const std::string &path,
                           const std::map<std::string, Tensor> &parameters,
                           const std::map<std::string, std::string> &metadata) {
  writeSafetensors(path, parameters, metadata);
}
