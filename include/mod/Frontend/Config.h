//===- Config.h - Hugging Face transformer configurations -------*- C++ -*-===//
//
// The subset of a Hugging Face `config.json` that determines the shapes and
// the forward computation of a dense decoder-only transformer. Parsing
// validates every field mod-import relies on, so the IR builders can assume a
// consistent configuration.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_FRONTEND_CONFIG_H
#define MOD_FRONTEND_CONFIG_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::mod::frontend {

enum class ModelFamily {
  /// GPT-2: learned positions, LayerNorm, fused QKV Conv1D, GELU (tanh).
  GPT2,
  /// LLaMA: RoPE, RMSNorm, grouped-query attention, SwiGLU, no biases.
  Llama,
};

/// The Hugging Face `model_type` string of `family`.
llvm::StringRef getModelTypeName(ModelFamily family);

/// Rotary position embedding scaling, as Hugging Face's `rope_type` (read
/// from transformers 5's `rope_parameters` or 4.x's `rope_scaling`).
enum class RopeType {
  /// inv_freq[i] = theta^(-2i/d).
  Default,
  /// Position interpolation: inv_freq / factor.
  Linear,
  /// Dynamic NTK: the base grows with the sequence length at run time once
  /// it exceeds max_position_embeddings. A compiled model has static
  /// frequencies, so only S <= max_position_embeddings is accepted (where
  /// the frequencies are the default ones).
  Dynamic,
  /// LLaMA 3.1: low frequencies divided by factor, high ones kept, a smooth
  /// blend between.
  Llama3,
  /// YaRN: interpolation blended with extrapolation by a linear ramp over
  /// the dimensions, cos and sin scaled by an attention factor.
  Yarn,
};

struct RopeConfig {
  RopeType type = RopeType::Default;
  double theta = 10000.0;
  /// linear, dynamic, llama3, yarn.
  double factor = 1.0;
  /// llama3 (required) and yarn (optional; default max_position_embeddings).
  std::optional<int64_t> originalMaxPositions;
  /// llama3.
  double lowFreqFactor = 1.0, highFreqFactor = 4.0;
  /// yarn.
  std::optional<double> attentionFactor, mscale, mscaleAllDim;
  double betaFast = 32.0, betaSlow = 1.0;
  bool truncate = true;
};

/// The RoPE table of a configuration: inv_freq for each of the head_dim/2
/// frequency pairs, and the factor that multiplies cos and sin (YaRN's
/// attention factor, 1 otherwise).
struct RopeFrequencies {
  std::vector<double> invFreq;
  double attentionScaling = 1.0;
};

/// One decoder-only transformer, with the fields of both families mapped to
/// common names (GPT-2's `n_embd` is `hiddenSize`, and so on).
struct TransformerConfig {
  ModelFamily family = ModelFamily::GPT2;
  int64_t numLayers = 0;
  int64_t hiddenSize = 0;
  int64_t numHeads = 0;
  /// Equal to `numHeads` unless the model uses grouped-query attention.
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  int64_t intermediateSize = 0;
  int64_t vocabSize = 0;
  /// GPT-2's `n_positions` (the size of the position table) or LLaMA's
  /// optional `max_position_embeddings`; bounds the sequence length.
  std::optional<int64_t> maxPositions;
  /// LayerNorm or RMSNorm epsilon.
  double normEps = 0.0;
  /// RoPE base and scaling (LLaMA only).
  RopeConfig rope;
  /// The output projection reuses the token embedding table.
  bool tieWordEmbeddings = true;
};

/// Limits on what mod-import builds, so that a hostile or mistaken
/// configuration or command line is refused with a message naming the field
/// instead of wrapping sizes around or exhausting memory. Far above any
/// published model (GPT-2 XL: 48 layers, LLaMA 3 405B: 126 layers, hidden
/// 16384, vocabulary 128256).
struct ImportLimits {
  /// n_layer / num_hidden_layers.
  static constexpr int64_t kMaxLayers = 1024;
  /// Every size: n_embd / hidden_size, n_head / num_attention_heads,
  /// num_key_value_heads, head_dim, n_inner / intermediate_size, vocab_size,
  /// n_positions (GPT-2's position table), --batch and --seq. (LLaMA's
  /// max_position_embeddings only bounds --seq and may be larger.)
  static constexpr int64_t kMaxSize = int64_t(1) << 20;
  /// Elements of any one tensor the model holds or computes (parameters,
  /// [B,S,vocab] logits, [B,heads,S,S] attention scores, ...): 2^36, 256 GiB
  /// of f32.
  static constexpr int64_t kMaxTensorElements = int64_t(1) << 36;
  /// Elements of all parameters together: 2^40.
  static constexpr int64_t kMaxParameterElements = int64_t(1) << 40;
  /// Nesting depth of the configuration's JSON (Hugging Face configs nest a
  /// few levels).
  static constexpr unsigned kMaxJsonDepth = 64;
};

/// Parses and validates a Hugging Face style configuration. Errors name the
/// offending field; malformed JSON is reported with its line and column.
/// Duplicate keys (in any object) and nesting deeper than
/// ImportLimits::kMaxJsonDepth are errors, and every size field must lie in
/// [1, ImportLimits::kMaxSize] (layers: [1, kMaxLayers]). Every field must
/// be one mod-import reads or knows not to change the forward computation
/// (bookkeeping, generation defaults, dropout, ...): any other is an error,
/// unless named in `ignoredFields`. RoPE settings are read from transformers
/// 5's `rope_parameters` and 4.x's `rope_theta` / `rope_scaling` alike.
llvm::Expected<TransformerConfig>
parseTransformerConfig(llvm::StringRef json,
                       llvm::ArrayRef<std::string> ignoredFields = {});

/// Hugging Face's RoPE frequencies for `config` (LLaMA) and a compiled
/// sequence length of `seq`, computed in double (transformers computes them
/// in float32; they agree to float32 rounding). Errors for a rope type that
/// depends on the sequence length at run time beyond what a static shape can
/// express (dynamic with `seq` > max_position_embeddings).
llvm::Expected<RopeFrequencies> computeRopeFrequencies(
    const TransformerConfig &config, int64_t seq);

/// Checks that the model can be instantiated for `batch` sequences of `seq`
/// tokens: both in [1, ImportLimits::kMaxSize], `seq` within the position
/// limit, and every tensor of the model within ImportLimits (sizes are
/// computed with overflow checks).
llvm::Error checkInstanceShape(const TransformerConfig &config, int64_t batch,
                               int64_t seq);

} // namespace mlir::mod::frontend

#endif // MOD_FRONTEND_CONFIG_H
