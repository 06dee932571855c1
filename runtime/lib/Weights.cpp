//===- Weights.cpp - Load, initialize and save model parameters -----------===//

#include "modrt/Weights.h"

#include "modrt/Safetensors.h"

#include <cmath>
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

std::map<std::string, Tensor> modrt::loadParameters(const EntryPoint &entry,
                                                    const std::string &safetensorsPath,
                                                    bool initMissing, uint64_t seed,
                                                    ParameterLoadReport *report) {
  SafetensorsFile file;
  if (!safetensorsPath.empty()) file = readSafetensors(safetensorsPath);
  const std::string source = safetensorsPath.empty() ? "(no weights file)" : safetensorsPath;

  std::map<std::string, Tensor> parameters;
  std::set<std::string> names;
  for (const TensorSpec &spec : entry.inputs) {
    if (!spec.isParameter()) continue;
    names.insert(spec.name);
    auto it = file.tensors.find(spec.name);
    if (it == file.tensors.end()) {
      if (!initMissing)
        throw MissingParameterError(source + ": missing parameter '" + spec.name + "' " +
                                    spec.str() + " of entry point '" + entry.name + "'");
      parameters.emplace(spec.name, initParameter(spec, seed));
      if (report) report->initialized.push_back(spec.name);
      continue;
    }
    Tensor &tensor = it->second;
    if (tensor.shape() != spec.shape)
      throw Error(source + ": parameter '" + spec.name + "' has shape [" +
                  formatShape(tensor.shape()) + "], but entry point '" + entry.name +
                  "' expects [" + formatShape(spec.shape) + "]");
    if (tensor.dtype() != spec.dtype) {
      bool widen = spec.dtype == DType::F32 &&
                   (tensor.dtype() == DType::F16 || tensor.dtype() == DType::BF16);
      if (!widen)
        throw Error(source + ": parameter '" + spec.name + "' is " + describe(tensor) +
                    ", but entry point '" + entry.name + "' expects " + spec.str());
      tensor = tensor.toF32();
    }
    parameters.emplace(spec.name, std::move(tensor));
  }
  if (report)
    for (const auto &entryInFile : file.tensors)
      if (!names.count(entryInFile.first)) report->unexpected.push_back(entryInFile.first);
  return parameters;
}

void modrt::saveParameters(const std::string &path,
                           const std::map<std::string, Tensor> &parameters,
                           const std::map<std::string, std::string> &metadata) {
  writeSafetensors(path, parameters, metadata);
}
