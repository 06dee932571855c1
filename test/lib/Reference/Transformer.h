//===- Transformer.h - Reference dense transformer --------------*- C++ -*-===//
//
// A deliberately plain implementation of the GPT-2 and LLaMA forward passes
// with Hugging Face semantics, used as the oracle of the numerical tests. It
// shares no code with the compiler: plain loops over rows and columns, f32
// parameters as stored, and every activation and accumulation in double, so
// its own rounding error (~1e-15 relative, until the logits are rounded to
// f32 on output) is far below the f32 error the compiled code is held to.
//
// Everything works on one sequence at a time; batch rows never interact.
//
//===----------------------------------------------------------------------===//

#ifndef MODREF_TRANSFORMER_H
#define MODREF_TRANSFORMER_H

#include "Config.h"

#include "modrt/Tensor.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace modref {

/// Model parameters by Hugging Face name. Floating-point tensors of any
/// width (f16, bf16, f32, f64) are converted to f32 on construction.
class Parameters {
public:
  Parameters() = default;
  /// `source` names the tensors' origin (usually a file) in messages.
  Parameters(std::map<std::string, modrt::Tensor> tensors, std::string source);
  static Parameters load(const std::string &path);

  bool contains(const std::string &name) const { return tensors_.count(name) != 0; }
  /// The values of `name`, which must exist with exactly `shape`; errors name
  /// the source, the tensor and both shapes.
  const float *get(const std::string &name, const std::vector<int64_t> &shape) const;
  /// The shape of `name`, which must exist (the error names the source and
  /// `what` is expected of it).
  const std::vector<int64_t> &shapeOf(const std::string &name,
                                      const std::string &what) const;
  const std::string &source() const { return source_; }

private:
  std::map<std::string, modrt::Tensor> tensors_;
  std::string source_;
};

/// Rows of equal width, row-major: one sequence's hidden states.
struct Activations {
  int64_t rows = 0;
  int64_t width = 0;
  std::vector<double> values;

  Activations() = default;
  Activations(int64_t rows, int64_t width)
      : rows(rows), width(width), values(size_t(rows * width), 0.0) {}
  double *row(int64_t i) { return values.data() + i * width; }
  const double *row(int64_t i) const { return values.data() + i * width; }
};

/// Token ids and positions of a batch, checked against the configuration.
struct TokenBatch {
  int64_t batch = 0;
  int64_t seqLen = 0;
  std::vector<std::vector<int32_t>> tokens;    // [batch][seqLen]
  std::vector<std::vector<int32_t>> positions; // [batch][seqLen]
};

/// Rotates each of the `heads` heads of every row of `x` [T, heads*headDim]
/// in place by its token's position, in Hugging Face's rotate_half
/// convention: inv_freq[i] = theta^(-2i/headDim) for i < headDim/2, angle =
/// position * inv_freq[i], and dimension i pairs with i + headDim/2.
void applyRotaryEmbedding(Activations &x, int64_t heads, int64_t headDim,
                          double theta, const std::vector<int32_t> &positions);
/// The same with the frequencies and magnitude of `table` (RoPE scaling).
void applyRotaryEmbedding(Activations &x, int64_t heads, int64_t headDim,
                          const RopeTable &table, const std::vector<int32_t> &positions);

class Transformer {
public:
  /// Resolves every dense parameter up front, so a missing or misshapen
  /// tensor is reported before any computation. `params` must outlive this.
  Transformer(const ModelConfig &config, const Parameters &params);

  const ModelConfig &config() const { return config_; }
  const Parameters &parameters() const { return params_; }

  /// Checks that `tokens` and `positions` are i32 [B,S] of the same shape,
  /// token ids lie in [0, vocab_size) and positions are non-negative (and
  /// below n_positions for GPT-2).
  TokenBatch checkInputs(const modrt::Tensor &tokens,
                         const modrt::Tensor &positions) const;

  /// Input embeddings of one sequence (GPT-2 adds the position table).
  Activations embed(const std::vector<int32_t> &tokens,
                    const std::vector<int32_t> &positions) const;
  /// h <- h + attn(norm1(h)); h <- h + mlp(norm2(h)): the dense block.
  void applyBlock(int64_t layer, Activations &h,
                  const std::vector<int32_t> &positions) const;
  /// The block's residual contribution f = a + m for the tokens in `x`
  /// alone, where a = attn(norm1(x)) and m = mlp(norm2(x + a)); attention is
  /// causal by `positions`. This is what a routed block adds (scaled by the
  /// gate) to the tokens it selected.
  Activations blockContribution(int64_t layer, const Activations &x,
                                const std::vector<int32_t> &positions) const;
  /// Final normalization and output projection: [T,D] -> [T,V].
  Activations logits(const Activations &h) const;

  /// The dense forward pass: tokens, positions i32 [B,S] -> logits f32
  /// [B,S,V].
  modrt::Tensor forward(const modrt::Tensor &tokens,
                        const modrt::Tensor &positions) const;

private:
  struct Layer {
    // Normalizations (biases are GPT-2 only).
    const float *norm1 = nullptr, *norm1Bias = nullptr;
    const float *norm2 = nullptr, *norm2Bias = nullptr;
    // GPT-2: fused c_attn [D,3D] + bias, c_proj [D,D] + bias, Conv1D layout.
    const float *qkv = nullptr, *qkvBias = nullptr;
    const float *attnOut = nullptr, *attnOutBias = nullptr;
    const float *fc = nullptr, *fcBias = nullptr;
    const float *mlpOut = nullptr, *mlpOutBias = nullptr;
    // LLaMA: separate projections, Linear layout [out,in], no biases.
    const float *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr;
    const float *gate = nullptr, *up = nullptr, *down = nullptr;
  };

  Activations attention(const Layer &layer, const Activations &normed,
                        const std::vector<int32_t> &positions) const;
  Activations mlp(const Layer &layer, const Activations &normed) const;
  Activations norm(const Activations &x, const float *weight,
                   const float *bias) const;

  ModelConfig config_;
  const Parameters &params_;
  std::vector<Layer> layers_;
  const float *tokenEmbedding_ = nullptr; // [V,D]
  const float *positionEmbedding_ = nullptr; // GPT-2 [P,D]
  const float *finalNorm_ = nullptr, *finalNormBias_ = nullptr;
  const float *outputProjection_ = nullptr; // [V,D]
};

} // namespace modref

#endif // MODREF_TRANSFORMER_H
