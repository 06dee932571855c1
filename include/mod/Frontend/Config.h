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

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>

namespace mlir::mod::frontend {

enum class ModelFamily {
  /// GPT-2: learned positions, LayerNorm, fused QKV Conv1D, GELU (tanh).
  GPT2,
  /// LLaMA: RoPE, RMSNorm, grouped-query attention, SwiGLU, no biases.
  Llama,
};

/// The Hugging Face `model_type` string of `family`.
llvm::StringRef getModelTypeName(ModelFamily family);

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
  /// RoPE base (LLaMA only).
  double ropeTheta = 10000.0;
  /// The output projection reuses the token embedding table.
  bool tieWordEmbeddings = true;
};

/// Parses and validates a Hugging Face style configuration. Errors name the
/// offending field; malformed JSON is reported with its line and column.
llvm::Expected<TransformerConfig> parseTransformerConfig(llvm::StringRef json);

/// Checks that the model can be instantiated for `batch` sequences of `seq`
/// tokens (both at least 1, `seq` within the position limit).
llvm::Error checkInstanceShape(const TransformerConfig &config, int64_t batch,
                               int64_t seq);

} // namespace mlir::mod::frontend

#endif // MOD_FRONTEND_CONFIG_H
