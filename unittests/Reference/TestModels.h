//===- TestModels.h - Small models for the reference self-tests -*- C++ -*-===//

#ifndef MODREF_UNITTESTS_TESTMODELS_H
#define MODREF_UNITTESTS_TESTMODELS_H

#include "MoD.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace modref::test {

/// Deterministic uniform values in [-scale, scale) (splitmix64), so the
/// tests need no <random> and give the same numbers everywhere.
class Uniform {
public:
  explicit Uniform(uint64_t seed) : state_(seed) {}
  float next(float scale) {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return float((double(z >> 11) * 0x1.0p-53 * 2.0 - 1.0) * scale);
  }

private:
  uint64_t state_;
};

inline ModelConfig parseJson(const std::string &text) {
  return parseConfig(modrt::Json::parse(text), "test-config");
}

/// 2 layers, D=8, 2 heads, I=12, V=11, 16 positions.
inline ModelConfig tinyGPT2(int64_t layers = 2) {
  return parseJson(R"({"model_type": "gpt2", "n_layer": )" + std::to_string(layers) +
                   R"(, "n_embd": 8, "n_head": 2, "n_positions": 16,
                       "vocab_size": 11, "n_inner": 12})");
}

/// 2 layers, D=8, 4 query heads sharing 2 KV heads (hd=2), I=12, V=11.
inline ModelConfig tinyLlama(int64_t kvHeads = 2, int64_t layers = 2) {
  return parseJson(R"({"model_type": "llama", "num_hidden_layers": )" +
                   std::to_string(layers) +
                   R"(, "hidden_size": 8, "num_attention_heads": 4,
                       "num_key_value_heads": )" + std::to_string(kvHeads) +
                   R"(, "intermediate_size": 12, "vocab_size": 11,
                       "rms_norm_eps": 1e-5, "rope_theta": 100.0})");
}

/// Every parameter a model of `config` reads, with its shape, plus the
/// router weight of every block.
inline std::map<std::string, std::vector<int64_t>> parameterShapes(const ModelConfig &c) {
  const int64_t D = c.hidden, I = c.intermediate, V = c.vocabSize;
  const int64_t q = c.numHeads * c.headDim, kv = c.numKVHeads * c.headDim;
  std::map<std::string, std::vector<int64_t>> shapes;
  for (int64_t i = 0; i < c.numLayers; ++i) {
    std::string p = c.blockPrefix(i) + ".";
    shapes[p + "mod.router.weight"] = {D};
    if (c.family == Family::GPT2) {
      for (const char *ln : {"ln_1", "ln_2"}) {
        shapes[p + ln + ".weight"] = {D};
        shapes[p + ln + ".bias"] = {D};
      }
      shapes[p + "attn.c_attn.weight"] = {D, 3 * D};
      shapes[p + "attn.c_attn.bias"] = {3 * D};
      shapes[p + "attn.c_proj.weight"] = {D, D};
      shapes[p + "attn.c_proj.bias"] = {D};
      shapes[p + "mlp.c_fc.weight"] = {D, I};
      shapes[p + "mlp.c_fc.bias"] = {I};
      shapes[p + "mlp.c_proj.weight"] = {I, D};
      shapes[p + "mlp.c_proj.bias"] = {D};
    } else {
      shapes[p + "input_layernorm.weight"] = {D};
      shapes[p + "post_attention_layernorm.weight"] = {D};
      shapes[p + "self_attn.q_proj.weight"] = {q, D};
      shapes[p + "self_attn.k_proj.weight"] = {kv, D};
      shapes[p + "self_attn.v_proj.weight"] = {kv, D};
      shapes[p + "self_attn.o_proj.weight"] = {D, q};
      shapes[p + "mlp.gate_proj.weight"] = {I, D};
      shapes[p + "mlp.up_proj.weight"] = {I, D};
      shapes[p + "mlp.down_proj.weight"] = {D, I};
    }
  }
  if (c.family == Family::GPT2) {
    shapes["transformer.wte.weight"] = {V, D};
    shapes["transformer.wpe.weight"] = {c.maxPositions, D};
    shapes["transformer.ln_f.weight"] = {D};
    shapes["transformer.ln_f.bias"] = {D};
  } else {
    shapes["model.embed_tokens.weight"] = {V, D};
    shapes["model.norm.weight"] = {D};
  }
  if (!c.tieWordEmbeddings) shapes["lm_head.weight"] = {V, D};
  return shapes;
}

/// Random f32 parameters; norm weights are centred on 1 as in a real model.
inline std::map<std::string, modrt::Tensor> randomParameters(const ModelConfig &c,
                                                             uint64_t seed) {
  Uniform rng(seed);
  std::map<std::string, modrt::Tensor> tensors;
  for (const auto &[name, shape] : parameterShapes(c)) {
    modrt::Tensor t(modrt::DType::F32, shape);
    bool isNorm = name.find("norm") != std::string::npos ||
                  name.find("ln_") != std::string::npos;
    bool isNormWeight = isNorm && name.find(".weight") != std::string::npos;
    for (int64_t i = 0; i < t.numElements(); ++i)
      t.data<float>()[i] = (isNormWeight ? 1.0f : 0.0f) + rng.next(0.5f);
    tensors.emplace(name, std::move(t));
  }
  return tensors;
}

inline modrt::Tensor i32Tensor(std::vector<int64_t> shape, const std::vector<int32_t> &v) {
  return modrt::Tensor::fromValues<int32_t>(modrt::DType::I32, std::move(shape), v);
}

/// Row-major [B,S] positions 0..S-1 in every row.
inline modrt::Tensor iotaPositions(int64_t b, int64_t s) {
  std::vector<int32_t> v;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < s; ++j) v.push_back(int32_t(j));
  return i32Tensor({b, s}, v);
}

/// Largest |a - e| / max(|e|, 1e-3 · max|e|) over two equally shaped tensors.
inline double maxRelativeError(const modrt::Tensor &actual, const modrt::Tensor &expected) {
  EXPECT_EQ(actual.shape(), expected.shape());
  double scale = 0.0, worst = 0.0;
  for (int64_t i = 0; i < expected.numElements(); ++i)
    scale = std::max(scale, std::fabs(expected.elementAsDouble(i)));
  for (int64_t i = 0; i < expected.numElements(); ++i) {
    double e = expected.elementAsDouble(i), a = actual.elementAsDouble(i);
    worst = std::max(worst, std::fabs(a - e) / std::max(std::fabs(e), 1e-3 * scale));
  }
  return worst;
}

} // namespace modref::test

#endif // MODREF_UNITTESTS_TESTMODELS_H
