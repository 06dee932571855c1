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
  /// GPT-2's `n_positions` (rows of `wpe`); 0 for LLaMA, whose RoPE accepts
  /// any position.
  int64_t maxPositions = 0;
  /// LayerNorm epsilon (GPT-2) or RMSNorm epsilon (LLaMA).
  double normEps = 0.0;
  /// RoPE base (LLaMA only).
  double ropeTheta = 10000.0;
  /// The output projection reuses the token embedding table.
  bool tieWordEmbeddings = true;

  /// Parameter name prefix of block `layer`: `transformer.h.{i}` (GPT-2) or
  /// `model.layers.{i}` (LLaMA).
  std::string blockPrefix(int64_t layer) const;
};

/// Validates and converts a parsed config.json. Errors name `source` and the
/// offending field, e.g. "config.json: field 'n_head' must be a positive
/// integer, got -2".
ModelConfig parseConfig(const modrt::Json &json, const std::string &source);
ModelConfig loadConfig(const std::string &path);

} // namespace modref

#endif // MODREF_CONFIG_H
