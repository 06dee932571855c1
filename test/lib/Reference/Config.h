//===- Config.h - Model configuration of the reference ----------*- C++ -*-===//
//
// The fields of a Hugging Face `config.json` that the reference transformer
// needs, for the GPT-2 and LLaMA families. Parsed independently of the
// compiler's front end (lib/Frontend) so that a misreading there cannot hide
// behind the same misreading here.
//
//===----------------------------------------------------------------------===//

#ifndef MODREF_CONFIG_H
#define MODREF_CONFIG_H

#include "modrt/Json.h"

#include <cstdint>
#include <string>
#include <vector>

namespace modref {

enum class Family { GPT2, Llama };

struct ModelConfig {
  Family family = Family::GPT2;
  int64_t numLayers = 0;
  int64_t hidden = 0;
  int64_t numHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  int64_t intermediate = 0;
  int64_t vocabSize = 0;
  /// GPT-2's `n_positions` (rows of `wpe`); LLaMA's max_position_embeddings
  /// (0 when absent), which only RoPE scaling reads.
  int64_t maxPositions = 0;
  /// LayerNorm epsilon (GPT-2) or RMSNorm epsilon (LLaMA).
  double normEps = 0.0;
  /// RoPE base (LLaMA only).
  double ropeTheta = 10000.0;
  /// RoPE scaling (LLaMA only), Hugging Face's rope_type and its keys.
  struct RopeScaling {
    /// "default", "linear", "dynamic", "llama3" or "yarn".
    std::string type = "default";
    double factor = 1.0;
    /// llama3: the pre-training context and the band edges.
    double lowFreqFactor = 0.0, highFreqFactor = 0.0;
    /// llama3 (required), yarn (default: maxPositions).
    int64_t originalContext = 0;
    /// yarn; 0 for "not given".
    double attentionFactor = 0.0, mscale = 0.0, mscaleAllDim = 0.0;
    double betaFast = 32.0, betaSlow = 1.0;
    bool truncate = true;
  } rope;
  /// The output projection reuses the token embedding table.
  bool tieWordEmbeddings = true;

  /// Parameter name prefix of block `layer`: `transformer.h.{i}` (GPT-2) or
  /// `model.layers.{i}` (LLaMA).
  std::string blockPrefix(int64_t layer) const;
};

/// The rotation of a RoPE model for one sequence: angle(p, i) =
/// p * invFreq[i], and cos and sin both multiplied by `magnitude`.
struct RopeTable {
  std::vector<double> invFreq;
  double magnitude = 1.0;
};

/// Hugging Face's RoPE frequencies for `config` when the longest position in
/// the batch is `maxPosition` (only "dynamic" depends on it). Written from
/// the published formulas (RoPE, position interpolation, NTK, LLaMA 3.1,
/// YaRN), independently of lib/Frontend.
RopeTable ropeTable(const ModelConfig &config, int64_t maxPosition);

/// Validates and converts a parsed config.json. Errors name `source` and the
/// offending field, e.g. "config.json: field 'n_head' must be a positive
/// integer, got -2".
ModelConfig parseConfig(const modrt::Json &json, const std::string &source);
ModelConfig loadConfig(const std::string &path);

} // namespace modref

#endif // MODREF_CONFIG_H
