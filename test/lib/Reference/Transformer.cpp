//===- Transformer.cpp - Reference dense transformer ----------------------===//

#include "Transformer.h"

#include "modrt/Safetensors.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

using modrt::DType;
using modrt::Tensor;
using namespace modref;

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

Parameters::Parameters(std::map<std::string, Tensor> tensors, std::string source)
    : source_(std::move(source)) {
  for (auto &[name, tensor] : tensors) {
    DType d = tensor.dtype();
    bool isFloat = d == DType::F32 || d == DType::F16 || d == DType::BF16 ||
                   d == DType::F64;
    // Integer tensors are kept as they are and rejected if ever requested:
    // weight files may carry unrelated buffers.
    tensors_.emplace(name, isFloat ? tensor.toF32() : std::move(tensor));
  }
}

Parameters Parameters::load(const std::string &path) {
  return Parameters(modrt::readSafetensors(path).tensors, path);
}

const float *Parameters::get(const std::string &name,
                             const std::vector<int64_t> &shape) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw std::runtime_error(source_ + ": missing parameter '" + name +
                             "' (expected shape [" + modrt::formatShape(shape) +
                             "])");
  const Tensor &t = it->second;
  if (t.dtype() != DType::F32)
    throw std::runtime_error(source_ + ": parameter '" + name + "' is " +
                             modrt::manifestDTypeName(t.dtype()) +
                             ", expected a floating-point tensor");
  if (t.shape() != shape)
    throw std::runtime_error(source_ + ": parameter '" + name + "' has shape [" +
                             modrt::formatShape(t.shape()) + "], expected [" +
                             modrt::formatShape(shape) + "]");
  return t.data<float>();
}

const std::vector<int64_t> &Parameters::shapeOf(const std::string &name,
                                                const std::string &what) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw std::runtime_error(source_ + ": missing parameter '" + name + "' (" +
                             what + ")");
  return it->second.shape();
}

//===----------------------------------------------------------------------===//
// Building blocks (one sequence, row-major [rows, width])
//===----------------------------------------------------------------------===//

namespace {

/// y = x·W + b with W stored [in, out] (GPT-2's Conv1D).
Activations linearInOut(const Activations &x, const float *w, int64_t out,
                        const float *bias) {
  Activations y(x.rows, out);
  std::vector<double> acc(static_cast<size_t>(out));
  for (int64_t t = 0; t < x.rows; ++t) {
    for (int64_t o = 0; o < out; ++o) acc[size_t(o)] = bias ? bias[o] : 0.0;
    // Walks W row by row so the inner loop is contiguous.
    for (int64_t i = 0; i < x.width; ++i) {
      double xi = x.row(t)[i];
      const float *wRow = w + i * out;
      for (int64_t o = 0; o < out; ++o) acc[size_t(o)] += xi * wRow[o];
    }
    for (int64_t o = 0; o < out; ++o) y.row(t)[o] = acc[size_t(o)];
  }
  return y;
}

/// y = x·Wᵀ with W stored [out, in] (torch.nn.Linear, no bias).
Activations linearOutIn(const Activations &x, const float *w, int64_t out) {
  Activations y(x.rows, out);
  for (int64_t t = 0; t < x.rows; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double acc = 0.0;
      const float *wRow = w + o * x.width;
      for (int64_t i = 0; i < x.width; ++i) acc += x.row(t)[i] * wRow[i];
      y.row(t)[o] = acc;
    }
  return y;
}

void addInPlace(Activations &h, const Activations &delta) {
  for (size_t i = 0; i < h.values.size(); ++i) h.values[i] += delta.values[i];
}

double geluTanh(double x) {
  const double kSqrt2OverPi = 0.7978845608028654; // sqrt(2/pi)
  return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + 0.044715 * x * x * x)));
}

double silu(double x) { return x / (1.0 + std::exp(-x)); }

} // namespace

void modref::applyRotaryEmbedding(Activations &x, int64_t heads, int64_t hd,
                                  double theta, const std::vector<int32_t> &positions) {
  RopeTable table;
  for (int64_t i = 0; i < hd / 2; ++i)
    table.invFreq.push_back(std::pow(theta, -2.0 * double(i) / double(hd)));
  applyRotaryEmbedding(x, heads, hd, table, positions);
}

void modref::applyRotaryEmbedding(Activations &x, int64_t heads, int64_t hd,
                                  const RopeTable &table,
                                  const std::vector<int32_t> &positions) {
  const int64_t half = hd / 2;
  for (int64_t t = 0; t < x.rows; ++t)
    for (int64_t i = 0; i < half; ++i) {
      double angle = double(positions[size_t(t)]) * table.invFreq[size_t(i)];
      double c = table.magnitude * std::cos(angle), s = table.magnitude * std::sin(angle);
      for (int64_t h = 0; h < heads; ++h) {
        double *head = x.row(t) + h * hd;
        double a = head[i], b = head[i + half];
        head[i] = a * c - b * s;
        head[i + half] = b * c + a * s;
      }
    }
}

//===----------------------------------------------------------------------===//
// Transformer
//===----------------------------------------------------------------------===//

Transformer::Transformer(const ModelConfig &config, const Parameters &params)
    : config_(config), params_(params) {
  const int64_t D = config.hidden, I = config.intermediate, V = config.vocabSize;
  const int64_t qDim = config.numHeads * config.headDim;
  const int64_t kvDim = config.numKVHeads * config.headDim;
  for (int64_t i = 0; i < config.numLayers; ++i) {
    const std::string p = config.blockPrefix(i) + ".";
    auto get = [&](const std::string &name, std::vector<int64_t> shape) {
      return params.get(p + name, shape);
    };
    Layer l;
    if (config.family == Family::GPT2) {
      l.norm1 = get("ln_1.weight", {D});
      l.norm1Bias = get("ln_1.bias", {D});
      l.qkv = get("attn.c_attn.weight", {D, 3 * D});
      l.qkvBias = get("attn.c_attn.bias", {3 * D});
      l.attnOut = get("attn.c_proj.weight", {D, D});
      l.attnOutBias = get("attn.c_proj.bias", {D});
      l.norm2 = get("ln_2.weight", {D});
      l.norm2Bias = get("ln_2.bias", {D});
      l.fc = get("mlp.c_fc.weight", {D, I});
      l.fcBias = get("mlp.c_fc.bias", {I});
      l.mlpOut = get("mlp.c_proj.weight", {I, D});
      l.mlpOutBias = get("mlp.c_proj.bias", {D});
    } else {
      l.norm1 = get("input_layernorm.weight", {D});
      l.q = get("self_attn.q_proj.weight", {qDim, D});
      l.k = get("self_attn.k_proj.weight", {kvDim, D});
      l.v = get("self_attn.v_proj.weight", {kvDim, D});
      l.o = get("self_attn.o_proj.weight", {D, qDim});
      l.norm2 = get("post_attention_layernorm.weight", {D});
      l.gate = get("mlp.gate_proj.weight", {I, D});
      l.up = get("mlp.up_proj.weight", {I, D});
      l.down = get("mlp.down_proj.weight", {D, I});
    }
    layers_.push_back(l);
  }
  if (config.family == Family::GPT2) {
    tokenEmbedding_ = params.get("transformer.wte.weight", {V, D});
    positionEmbedding_ = params.get("transformer.wpe.weight", {config.maxPositions, D});
    finalNorm_ = params.get("transformer.ln_f.weight", {D});
    finalNormBias_ = params.get("transformer.ln_f.bias", {D});
  } else {
    tokenEmbedding_ = params.get("model.embed_tokens.weight", {V, D});
    finalNorm_ = params.get("model.norm.weight", {D});
  }
  outputProjection_ = config.tieWordEmbeddings
                          ? tokenEmbedding_
                          : params.get("lm_head.weight", {V, D});
}

TokenBatch Transformer::checkInputs(const Tensor &tokens,
                                    const Tensor &positions) const {
  auto checkType = [](const char *name, const Tensor &t) {
    if (t.dtype() != DType::I32 || t.rank() != 2)
      throw std::runtime_error(std::string("input '") + name + "' must be i32 [B,S], got " +
                               modrt::manifestDTypeName(t.dtype()) + "[" +
                               modrt::formatShape(t.shape()) + "]");
  };
  checkType("tokens", tokens);
  checkType("positions", positions);
  if (tokens.shape() != positions.shape())
    throw std::runtime_error("inputs 'tokens' [" + modrt::formatShape(tokens.shape()) +
                             "] and 'positions' [" +
                             modrt::formatShape(positions.shape()) +
                             "] must have the same shape");
  TokenBatch batch;
  batch.batch = tokens.shape()[0];
  batch.seqLen = tokens.shape()[1];
  const int32_t *tok = tokens.data<int32_t>(), *pos = positions.data<int32_t>();
  for (int64_t b = 0; b < batch.batch; ++b) {
    std::vector<int32_t> rowTokens, rowPositions;
    for (int64_t s = 0; s < batch.seqLen; ++s) {
      int32_t t = tok[b * batch.seqLen + s], p = pos[b * batch.seqLen + s];
      std::string where = "[" + std::to_string(b) + "," + std::to_string(s) + "]";
      if (t < 0 || t >= config_.vocabSize)
        throw std::runtime_error("tokens" + where + " = " + std::to_string(t) +
                                 " is outside the vocabulary [0, " +
                                 std::to_string(config_.vocabSize) + ")");
      // GPT-2's position table bounds the positions; RoPE takes any.
      const int64_t bound = config_.family == Family::GPT2 ? config_.maxPositions : 0;
      if (p < 0 || (bound > 0 && p >= bound))
        throw std::runtime_error(
            "positions" + where + " = " + std::to_string(p) + " is outside [0, " +
            (bound > 0 ? std::to_string(bound) + ")" : std::string("inf)")));
      rowTokens.push_back(t);
      rowPositions.push_back(p);
    }
    batch.tokens.push_back(std::move(rowTokens));
    batch.positions.push_back(std::move(rowPositions));
  }
  return batch;
}

Activations Transformer::embed(const std::vector<int32_t> &tokens,
                               const std::vector<int32_t> &positions) const {
  const int64_t D = config_.hidden;
  Activations h(int64_t(tokens.size()), D);
  for (int64_t t = 0; t < h.rows; ++t) {
    const float *e = tokenEmbedding_ + int64_t(tokens[size_t(t)]) * D;
    for (int64_t d = 0; d < D; ++d) h.row(t)[d] = e[d];
    if (positionEmbedding_) {
      const float *pe = positionEmbedding_ + int64_t(positions[size_t(t)]) * D;
      for (int64_t d = 0; d < D; ++d) h.row(t)[d] += pe[d];
    }
  }
  return h;
}

Activations Transformer::norm(const Activations &x, const float *weight,
                              const float *bias) const {
  Activations y(x.rows, x.width);
  const double n = double(x.width), eps = config_.normEps;
  for (int64_t t = 0; t < x.rows; ++t) {
    const double *in = x.row(t);
    double *out = y.row(t);
    if (config_.family == Family::GPT2) {
      // LayerNorm with the biased (population) variance.
      double mean = 0.0, var = 0.0;
      for (int64_t d = 0; d < x.width; ++d) mean += in[d];
      mean /= n;
      for (int64_t d = 0; d < x.width; ++d) var += (in[d] - mean) * (in[d] - mean);
      var /= n;
      double inv = 1.0 / std::sqrt(var + eps);
      for (int64_t d = 0; d < x.width; ++d)
        out[d] = (in[d] - mean) * inv * weight[d] + bias[d];
    } else {
      double meanSquare = 0.0;
      for (int64_t d = 0; d < x.width; ++d) meanSquare += in[d] * in[d];
      meanSquare /= n;
      double inv = 1.0 / std::sqrt(meanSquare + eps);
      for (int64_t d = 0; d < x.width; ++d) out[d] = in[d] * inv * weight[d];
    }
  }
  return y;
}

Activations Transformer::attention(const Layer &l, const Activations &x,
                                   const std::vector<int32_t> &positions) const {
  const int64_t T = x.rows, H = config_.numHeads, KV = config_.numKVHeads;
  const int64_t hd = config_.headDim, D = config_.hidden;
  Activations q(T, H * hd), k(T, KV * hd), v(T, KV * hd);
  if (config_.family == Family::GPT2) {
    // c_attn's output columns are q | k | v.
    Activations qkv = linearInOut(x, l.qkv, 3 * D, l.qkvBias);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d) {
        q.row(t)[d] = qkv.row(t)[d];
        k.row(t)[d] = qkv.row(t)[D + d];
        v.row(t)[d] = qkv.row(t)[2 * D + d];
      }
  } else {
    q = linearOutIn(x, l.q, H * hd);
    k = linearOutIn(x, l.k, KV * hd);
    v = linearOutIn(x, l.v, KV * hd);
    int32_t last = 0;
    for (int32_t p : positions) last = std::max(last, p);
    RopeTable table = ropeTable(config_, last);
    applyRotaryEmbedding(q, H, hd, table, positions);
    applyRotaryEmbedding(k, KV, hd, table, positions);
  }

  const double scale = 1.0 / std::sqrt(double(hd));
  const int64_t groupSize = H / KV;
  Activations context(T, H * hd);
  std::vector<double> weights(static_cast<size_t>(T));
  for (int64_t h = 0; h < H; ++h) {
    const int64_t kvHead = h / groupSize;
    for (int64_t i = 0; i < T; ++i) {
      const double *qi = q.row(i) + h * hd;
      // Scores of the visible keys; every query sees at least itself.
      double maxScore = -INFINITY;
      for (int64_t j = 0; j < T; ++j) {
        if (positions[size_t(j)] > positions[size_t(i)]) continue;
        const double *kj = k.row(j) + kvHead * hd;
        double dot = 0.0;
        for (int64_t d = 0; d < hd; ++d) dot += qi[d] * kj[d];
        weights[size_t(j)] = dot * scale;
        maxScore = std::max(maxScore, weights[size_t(j)]);
      }
      double total = 0.0;
      for (int64_t j = 0; j < T; ++j) {
        if (positions[size_t(j)] > positions[size_t(i)]) continue;
        weights[size_t(j)] = std::exp(weights[size_t(j)] - maxScore);
        total += weights[size_t(j)];
      }
      double *out = context.row(i) + h * hd;
      for (int64_t d = 0; d < hd; ++d) {
        double acc = 0.0;
        for (int64_t j = 0; j < T; ++j)
          if (positions[size_t(j)] <= positions[size_t(i)])
            acc += weights[size_t(j)] * v.row(j)[kvHead * hd + d];
        out[d] = acc / total;
      }
    }
  }
  if (config_.family == Family::GPT2)
    return linearInOut(context, l.attnOut, D, l.attnOutBias);
  return linearOutIn(context, l.o, D);
}

Activations Transformer::mlp(const Layer &l, const Activations &x) const {
  const int64_t D = config_.hidden, I = config_.intermediate;
  if (config_.family == Family::GPT2) {
    Activations hidden = linearInOut(x, l.fc, I, l.fcBias);
    for (double &value : hidden.values) value = geluTanh(value);
    return linearInOut(hidden, l.mlpOut, D, l.mlpOutBias);
  }
  Activations gate = linearOutIn(x, l.gate, I);
  Activations up = linearOutIn(x, l.up, I);
  for (size_t i = 0; i < gate.values.size(); ++i)
    gate.values[i] = silu(gate.values[i]) * up.values[i];
  return linearOutIn(gate, l.down, D);
}

void Transformer::applyBlock(int64_t layer, Activations &h,
                             const std::vector<int32_t> &positions) const {
  const Layer &l = layers_.at(size_t(layer));
  addInPlace(h, attention(l, norm(h, l.norm1, l.norm1Bias), positions));
  addInPlace(h, mlp(l, norm(h, l.norm2, l.norm2Bias)));
}

Activations Transformer::blockContribution(int64_t layer, const Activations &x,
                                           const std::vector<int32_t> &positions) const {
  const Layer &l = layers_.at(size_t(layer));
  Activations a = attention(l, norm(x, l.norm1, l.norm1Bias), positions);
  Activations h1 = x;
  addInPlace(h1, a);
  Activations f = mlp(l, norm(h1, l.norm2, l.norm2Bias));
  addInPlace(f, a);
  return f;
}

Activations Transformer::logits(const Activations &h) const {
  return linearOutIn(norm(h, finalNorm_, finalNormBias_), outputProjection_,
                     config_.vocabSize);
}

Tensor Transformer::forward(const Tensor &tokens, const Tensor &positions) const {
  TokenBatch batch = checkInputs(tokens, positions);
  const int64_t V = config_.vocabSize;
  Tensor out(DType::F32, {batch.batch, batch.seqLen, V});
  for (int64_t b = 0; b < batch.batch; ++b) {
    Activations h = embed(batch.tokens[size_t(b)], batch.positions[size_t(b)]);
    for (int64_t layer = 0; layer < config_.numLayers; ++layer)
      applyBlock(layer, h, batch.positions[size_t(b)]);
    Activations rowLogits = logits(h);
    float *dst = out.data<float>() + b * batch.seqLen * V;
    for (size_t i = 0; i < rowLogits.values.size(); ++i) dst[i] = float(rowLogits.values[i]);
  }
  return out;
}
