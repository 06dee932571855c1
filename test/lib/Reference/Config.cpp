//===- Config.cpp - Model configuration of the reference ------------------===//

#include "Config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

using modrt::Json;
using namespace modref;

std::string ModelConfig::blockPrefix(int64_t layer) const {
  return (family == Family::GPT2 ? "transformer.h." : "model.layers.") +
         std::to_string(layer);
}

namespace {

/// Typed field access with Hugging Face's conventions: an absent key and an
/// explicit null both mean "use the default".
class Fields {
public:
  Fields(const Json &json, const std::string &source)
      : json_(json), source_(source) {}

  const std::string &source() const { return source_; }

  [[noreturn]] void fail(const std::string &field, const std::string &what) const {
    throw std::runtime_error(source_ + ": field '" + field + "' " + what);
  }

  const Json *get(const std::string &field) const {
    const Json *value = json_.find(field);
    return value && !value->isNull() ? value : nullptr;
  }

  int64_t positiveInt(const std::string &field) const {
    const Json *value = get(field);
    if (!value) fail(field, "is required");
    return checkPositive(field, *value);
  }

  int64_t positiveInt(const std::string &field, int64_t fallback) const {
    const Json *value = get(field);
    return value ? checkPositive(field, *value) : fallback;
  }

  double positiveNumber(const std::string &field, double fallback) const {
    const Json *value = get(field);
    if (!value) return fallback;
    if (!value->isNumber() || !(value->asDouble() > 0))
      fail(field, "must be a positive number, got " + value->dump());
    return value->asDouble();
  }

  bool boolean(const std::string &field, bool fallback) const {
    const Json *value = get(field);
    if (!value) return fallback;
    if (!value->isBool()) fail(field, "must be true or false, got " + value->dump());
    return value->asBool();
  }

  std::string string(const std::string &field, const std::string &fallback) const {
    const Json *value = get(field);
    if (!value) return fallback;
    if (!value->isString()) fail(field, "must be a string, got " + value->dump());
    return value->asString();
  }

private:
  int64_t checkPositive(const std::string &field, const Json &value) const {
    if (!value.isInteger() || value.asInt() <= 0)
      fail(field, "must be a positive integer, got " + value.dump());
    return value.asInt();
  }

  const Json &json_;
  const std::string &source_;
};

void parseGPT2(const Fields &f, ModelConfig &c) {
  c.family = Family::GPT2;
  c.numLayers = f.positiveInt("n_layer");
  c.hidden = f.positiveInt("n_embd");
  c.numHeads = f.positiveInt("n_head");
  c.numKVHeads = c.numHeads;
  c.maxPositions = f.positiveInt("n_positions");
  c.vocabSize = f.positiveInt("vocab_size");
  c.intermediate = f.positiveInt("n_inner", 4 * c.hidden);
  c.normEps = f.positiveNumber("layer_norm_epsilon", 1e-5);
  c.tieWordEmbeddings = f.boolean("tie_word_embeddings", true);
  if (c.hidden % c.numHeads != 0)
    f.fail("n_embd", "(" + std::to_string(c.hidden) +
                         ") must be divisible by n_head (" +
                         std::to_string(c.numHeads) + ")");
  c.headDim = c.hidden / c.numHeads;
  // GPT-2 computes GELU with the tanh approximation under both names.
  std::string act = f.string("activation_function", "gelu_new");
  if (act != "gelu_new" && act != "gelu_pytorch_tanh")
    f.fail("activation_function", "is \"" + act + "\"; the reference implements "
           "only the tanh GELU (\"gelu_new\", \"gelu_pytorch_tanh\")");
  if (!f.boolean("scale_attn_weights", true))
    f.fail("scale_attn_weights", "is false; the reference always scales "
           "attention scores by 1/sqrt(head_dim)");
  if (f.boolean("scale_attn_by_inverse_layer_idx", false))
    f.fail("scale_attn_by_inverse_layer_idx", "is true, which the reference "
           "does not implement");
}

void parseLlama(const Fields &f, ModelConfig &c) {
  c.family = Family::Llama;
  c.numLayers = f.positiveInt("num_hidden_layers");
  c.hidden = f.positiveInt("hidden_size");
  c.numHeads = f.positiveInt("num_attention_heads");
  c.numKVHeads = f.positiveInt("num_key_value_heads", c.numHeads);
  c.intermediate = f.positiveInt("intermediate_size");
  c.vocabSize = f.positiveInt("vocab_size");
  c.normEps = f.positiveNumber("rms_norm_eps", 1e-6);
  c.tieWordEmbeddings = f.boolean("tie_word_embeddings", false);
  if (c.numHeads % c.numKVHeads != 0)
    f.fail("num_attention_heads", "(" + std::to_string(c.numHeads) +
           ") must be divisible by num_key_value_heads (" +
           std::to_string(c.numKVHeads) + ")");
  if (f.get("head_dim")) {
    c.headDim = f.positiveInt("head_dim");
  } else {
    if (c.hidden % c.numHeads != 0)
      f.fail("hidden_size", "(" + std::to_string(c.hidden) +
             ") must be divisible by num_attention_heads (" +
             std::to_string(c.numHeads) + ") when head_dim is not given");
    c.headDim = c.hidden / c.numHeads;
  }
  if (c.headDim % 2 != 0)
    f.fail("head_dim", "must be even for rotary embeddings, got " +
           std::to_string(c.headDim));

  // transformers 5 writes rope_parameters {rope_theta, rope_type, ...};
  // 4.x a top-level rope_theta and rope_scaling {type | rope_type, ...}.
  c.ropeTheta = f.positiveNumber("rope_theta", 10000.0);
  c.maxPositions = f.positiveInt("max_position_embeddings", 0);
  auto &r = c.rope;
  bool factorGiven = false;
  std::string typeField = "rope_parameters";
  for (const char *field : {"rope_scaling", "rope_parameters"}) {
    const Json *rope = f.get(field);
    if (!rope) continue;
    if (!rope->isObject()) f.fail(field, "must be an object, got " + rope->dump());
    std::string where = f.source() + ": " + field;
    Fields sub(*rope, where);
    if (sub.get("rope_type") || sub.get("type")) typeField = field;
    r.type = sub.string("rope_type", sub.string("type", r.type));
    if (!f.get("rope_theta")) c.ropeTheta = sub.positiveNumber("rope_theta", c.ropeTheta);
    factorGiven = factorGiven || sub.get("factor");
    r.factor = sub.positiveNumber("factor", r.factor);
    r.lowFreqFactor = sub.positiveNumber("low_freq_factor", r.lowFreqFactor);
    r.highFreqFactor = sub.positiveNumber("high_freq_factor", r.highFreqFactor);
    r.originalContext = sub.positiveInt("original_max_position_embeddings", r.originalContext);
    r.attentionFactor = sub.positiveNumber("attention_factor", r.attentionFactor);
    r.mscale = sub.positiveNumber("mscale", r.mscale);
    r.mscaleAllDim = sub.positiveNumber("mscale_all_dim", r.mscaleAllDim);
    r.betaFast = sub.positiveNumber("beta_fast", r.betaFast);
    r.betaSlow = sub.positiveNumber("beta_slow", r.betaSlow);
    r.truncate = sub.boolean("truncate", r.truncate);
  }
  if (r.type != "default" && r.type != "linear" && r.type != "dynamic" &&
      r.type != "llama3" && r.type != "yarn")
    f.fail(typeField, "has rope_type \"" + r.type + "\"; the reference "
           "implements default, linear, dynamic, llama3 and yarn");
  // transformers 5 defaults the pre-training context of llama3 and yarn to
  // max_position_embeddings, and yarn's factor to their ratio.
  if (r.originalContext == 0) r.originalContext = c.maxPositions;
  if (r.type == "yarn" && !factorGiven && r.originalContext > 0)
    r.factor = double(c.maxPositions) / double(r.originalContext);
  if (r.type == "llama3" && (r.lowFreqFactor <= 0 || r.highFreqFactor <= r.lowFreqFactor ||
                             r.originalContext <= 0))
    f.fail("rope_parameters", "rope_type llama3 needs low_freq_factor < "
           "high_freq_factor and original_max_position_embeddings");

  std::string act = f.string("hidden_act", "silu");
  if (act != "silu")
    f.fail("hidden_act", "is \"" + act + "\"; the reference implements only \"silu\"");
  for (const char *field : {"attention_bias", "mlp_bias"})
    if (f.boolean(field, false))
      f.fail(field, "is true; the reference implements LLaMA without biases");
}

} // namespace

ModelConfig modref::parseConfig(const Json &json, const std::string &source) {
  if (!json.isObject())
    throw std::runtime_error(source + ": the configuration must be a JSON object");
  Fields fields(json, source);
  const Json *type = fields.get("model_type");
  if (!type) fields.fail("model_type", "is required (\"gpt2\" or \"llama\")");
  if (!type->isString())
    fields.fail("model_type", "must be a string, got " + type->dump());
  ModelConfig config;
  if (type->asString() == "gpt2")
    parseGPT2(fields, config);
  else if (type->asString() == "llama")
    parseLlama(fields, config);
  else
    fields.fail("model_type", "is \"" + type->asString() +
                "\"; the reference supports \"gpt2\" and \"llama\"");
  return config;
}

RopeTable modref::ropeTable(const ModelConfig &c, int64_t maxPosition) {
  const ModelConfig::RopeScaling &r = c.rope;
  const double d = double(c.headDim), twoPi = 6.283185307179586476925286766559;
  const int64_t pairs = c.headDim / 2;
  RopeTable table;
  double theta = c.ropeTheta;
  if (r.type == "dynamic" && maxPosition + 1 > c.maxPositions) {
    // NTK-aware: the base grows with the sequence length L beyond the
    // trained context M. transformers takes L over the whole batch and
    // keeps the grown base across calls; only L <= M is modelled here.
    throw std::runtime_error(
        "rope_type dynamic with positions beyond max_position_embeddings: the "
        "reference does not model the run-time rescaling");
  }
  for (int64_t i = 0; i < pairs; ++i) {
    // Pair i turns by `omega` radians per position; `wavelength` positions
    // per turn.
    double omega = std::exp(-std::log(theta) * (2.0 * double(i)) / d);
    double wavelength = twoPi / omega;
    if (r.type == "linear") {
      // Position interpolation: position p is read as p / factor.
      omega = omega / r.factor;
    } else if (r.type == "llama3") {
      // Wavelengths shorter than context/high_freq_factor keep their
      // frequency, longer than context/low_freq_factor are interpolated by
      // factor, and the band between blends the two linearly in
      // context/wavelength.
      double turns = double(r.originalContext) / wavelength;
      if (turns < r.lowFreqFactor) {
        omega /= r.factor;
      } else if (turns <= r.highFreqFactor) {
        double w = (turns - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
        omega = w * omega + (1.0 - w) * omega / r.factor;
      }
    } else if (r.type == "yarn") {
      // YaRN: dimensions whose pair completes more than beta_fast turns
      // over the original context extrapolate (keep omega), fewer than
      // beta_slow interpolate (omega / factor), with a linear ramp over the
      // dimension index between, whose ends transformers rounds outwards
      // (floor, ceil) unless truncate is false.
      double context = double(r.originalContext > 0 ? r.originalContext : c.maxPositions);
      auto dimensionFor = [&](double turns) {
        // Solve context * omega(j) / 2pi = turns for the index j.
        return d * std::log(context / (turns * twoPi)) / (2.0 * std::log(theta));
      };
      double lo = dimensionFor(r.betaFast), hi = dimensionFor(r.betaSlow);
      if (r.truncate) {
        lo = std::floor(lo);
        hi = std::ceil(hi);
      }
      lo = std::max(lo, 0.0);
      hi = std::min(hi, d - 1.0);
      if (hi == lo) hi += 0.001;
      double toInterpolate = std::min(1.0, std::max(0.0, (double(i) - lo) / (hi - lo)));
      omega = toInterpolate * (omega / r.factor) + (1.0 - toInterpolate) * omega;
    }
    table.invFreq.push_back(omega);
  }
  if (r.type == "yarn") {
    auto m = [&](double scale) {
      return r.factor <= 1.0 ? 1.0 : 1.0 + 0.1 * scale * std::log(r.factor);
    };
    table.magnitude = r.attentionFactor > 0   ? r.attentionFactor
                      : (r.mscale > 0 && r.mscaleAllDim > 0) ? m(r.mscale) / m(r.mscaleAllDim)
                                                             : m(1.0);
  }
  return table;
}

ModelConfig modref::loadConfig(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open configuration");
  std::ostringstream text;
  text << in.rdbuf();
  Json json;
  try {
    json = Json::parse(text.str());
  } catch (const std::exception &e) {
    throw std::runtime_error(path + ": invalid JSON: " + e.what());
  }
  return parseConfig(json, path);
}
