//===- Config.cpp - Hugging Face transformer configurations --------------===//

#include "mod/Frontend/Config.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

using namespace mlir::mod::frontend;
namespace json = llvm::json;

llvm::StringRef mlir::mod::frontend::getModelTypeName(ModelFamily family) {
  switch (family) {
  case ModelFamily::GPT2:
    return "gpt2";
  case ModelFamily::Llama:
    return "llama";
  }
  llvm_unreachable("unknown model family");
}

namespace {
llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// A short rendering of a JSON value for error messages.
std::string describe(const json::Value &value) {
  // llvm::json prints doubles with 17 digits (1e-5 as 1.0000000000000001e-05);
  // show the number as the user most likely wrote it.
  if (value.kind() == json::Value::Number && !value.getAsInteger())
    return llvm::formatv("{0}", llvm::format("%.9g", *value.getAsNumber()))
        .str();
  std::string text = llvm::formatv("{0}", value).str();
  if (text.size() > 40)
    text = text.substr(0, 37) + "...";
  return text;
}

/// Typed access to the fields of the root object. Every accessor reports the
/// field by name, so a user can fix the config without reading this code.
/// JSON `null` counts as absent, as Hugging Face writes e.g. `"n_inner": null`.
class FieldReader {
public:
  /// `prefix` names a nested object in messages ("rope_parameters.").
  FieldReader(const json::Object &object, llvm::StringRef modelType,
              llvm::StringRef prefix = "")
      : object(object), modelType(modelType), prefix(prefix.str()) {}

  const json::Object &getObject() const { return object; }
  const std::string &getPrefix() const { return prefix; }

  /// An integer in [1, max].
  llvm::Expected<int64_t> requiredInt(llvm::StringRef key,
                                      int64_t max = ImportLimits::kMaxSize) {
    if (!present(key))
      return missing(key);
    return positiveInt(key, max);
  }

  llvm::Expected<std::optional<int64_t>>
  optionalInt(llvm::StringRef key, int64_t max = ImportLimits::kMaxSize) {
    if (!present(key))
      return std::nullopt;
    llvm::Expected<int64_t> value = positiveInt(key, max);
    if (!value)
      return value.takeError();
    return *value;
  }

  llvm::Expected<double> requiredNonNegative(llvm::StringRef key) {
    if (!present(key))
      return missing(key);
    return number(key, /*allowZero=*/true);
  }

  llvm::Expected<double> optionalPositive(llvm::StringRef key,
                                          double fallback) {
    if (!present(key))
      return fallback;
    return number(key, /*allowZero=*/false);
  }

  llvm::Expected<bool> optionalBool(llvm::StringRef key, bool fallback) {
    if (!present(key))
      return fallback;
    if (std::optional<bool> value = object.get(key)->getAsBoolean())
      return *value;
    return wrongType(key, "a boolean");
  }

  llvm::Expected<std::optional<llvm::StringRef>>
  optionalString(llvm::StringRef key) {
    if (!present(key))
      return std::nullopt;
    if (std::optional<llvm::StringRef> value = object.get(key)->getAsString())
      return *value;
    return wrongType(key, "a string");
  }

  /// Fails when `key` is set to anything but `expected`: the field selects a
  /// variant of the architecture that mod-import does not build.
  llvm::Error requireBoolOrAbsent(llvm::StringRef key, bool expected) {
    llvm::Expected<bool> value = optionalBool(key, expected);
    if (!value)
      return value.takeError();
    if (*value != expected)
      return makeError("field '" + prefix + key + "' = " +
                       (*value ? "true" : "false") +
                       " is not supported for model_type '" + modelType +
                       "' (only " + (expected ? "true" : "false") + ")");
    return llvm::Error::success();
  }

  bool present(llvm::StringRef key) const {
    const json::Value *value = object.get(key);
    return value && value->kind() != json::Value::Null;
  }

private:
  llvm::Error missing(llvm::StringRef key) const {
    return makeError("missing required field '" + prefix + key +
                     "' for model_type '" + modelType + "'");
  }

  llvm::Error wrongType(llvm::StringRef key, llvm::StringRef expected) const {
    return makeError("field '" + prefix + key + "' must be " + expected +
                     ", got " + describe(*object.get(key)));
  }

  llvm::Expected<int64_t> positiveInt(llvm::StringRef key, int64_t max) {
    const json::Value &json = *object.get(key);
    std::optional<int64_t> value = json.getAsInteger();
    // Integers beyond int64 (llvm::json keeps them as uint64) are too large,
    // not of the wrong type.
    if (!value)
      if (std::optional<uint64_t> big = json.getAsUINT64())
        return tooLarge(key, std::to_string(*big), max);
    if (!value)
      return wrongType(key, "an integer");
    if (*value < 1)
      return makeError("field '" + prefix + key + "' must be at least 1, got " +
                       llvm::Twine(*value));
    if (*value > max)
      return tooLarge(key, llvm::Twine(*value).str(), max);
    return *value;
  }

  llvm::Error tooLarge(llvm::StringRef key, const std::string &value,
                       int64_t max) const {
    return makeError("field '" + prefix + key + "' must be at most " +
                     llvm::Twine(max) + " (mod-import's limit), got " + value);
  }

  llvm::Expected<double> number(llvm::StringRef key, bool allowZero) {
    std::optional<double> value = object.get(key)->getAsNumber();
    if (!value)
      return wrongType(key, "a number");
    if (!std::isfinite(*value) || *value < 0.0 || (!allowZero && *value == 0.0))
      return makeError("field '" + prefix + key + "' must be " +
                       (allowZero ? "non-negative" : "positive") + ", got " +
                       describe(*object.get(key)));
    return *value;
  }

  const json::Object &object;
  llvm::StringRef modelType;
  std::string prefix;
};

/// Unwraps an Expected into `out`, or returns its error from the caller.
#define MODC_ASSIGN_OR_RETURN(out, expr)                                       \
  do {                                                                         \
    auto valueOrError = (expr);                                                \
    if (!valueOrError)                                                         \
      return valueOrError.takeError();                                         \
    out = *valueOrError;                                                       \
  } while (false)

llvm::Error checkDivides(llvm::StringRef numeratorKey, int64_t numerator,
                         llvm::StringRef denominatorKey, int64_t denominator) {
  if (numerator % denominator == 0)
    return llvm::Error::success();
  return makeError("'" + numeratorKey + "' (" + llvm::Twine(numerator) +
                   ") is not divisible by '" + denominatorKey + "' (" +
                   llvm::Twine(denominator) + ")");
}

llvm::Expected<TransformerConfig> parseGPT2(FieldReader &fields) {
  TransformerConfig config;
  config.family = ModelFamily::GPT2;
  MODC_ASSIGN_OR_RETURN(config.numLayers,
                        fields.requiredInt("n_layer", ImportLimits::kMaxLayers));
  MODC_ASSIGN_OR_RETURN(config.hiddenSize, fields.requiredInt("n_embd"));
  MODC_ASSIGN_OR_RETURN(config.numHeads, fields.requiredInt("n_head"));
  MODC_ASSIGN_OR_RETURN(config.maxPositions, fields.requiredInt("n_positions"));
  MODC_ASSIGN_OR_RETURN(config.vocabSize, fields.requiredInt("vocab_size"));
  MODC_ASSIGN_OR_RETURN(config.normEps,
                        fields.requiredNonNegative("layer_norm_epsilon"));
  std::optional<int64_t> inner;
  MODC_ASSIGN_OR_RETURN(inner, fields.optionalInt("n_inner"));
  config.intermediateSize = inner.value_or(4 * config.hiddenSize);
  // GPT2LMHeadModel always ties lm_head to wte unless told otherwise.
  MODC_ASSIGN_OR_RETURN(config.tieWordEmbeddings,
                        fields.optionalBool("tie_word_embeddings", true));

  if (llvm::Error err =
          checkDivides("n_embd", config.hiddenSize, "n_head", config.numHeads))
    return std::move(err);
  config.numKVHeads = config.numHeads;
  config.headDim = config.hiddenSize / config.numHeads;

  // Both names denote the tanh approximation that GPT-2 was trained with.
  std::optional<llvm::StringRef> activation;
  MODC_ASSIGN_OR_RETURN(activation, fields.optionalString("activation_function"));
  if (activation && *activation != "gelu_new" &&
      *activation != "gelu_pytorch_tanh")
    return makeError("field 'activation_function' = '" + *activation +
                     "' is not supported for model_type 'gpt2' (supported: "
                     "gelu_new, gelu_pytorch_tanh)");
  if (llvm::Error err = fields.requireBoolOrAbsent("scale_attn_weights", true))
    return std::move(err);
  if (llvm::Error err =
          fields.requireBoolOrAbsent("scale_attn_by_inverse_layer_idx", false))
    return std::move(err);
  return config;
}

/// The names of RoPE scaling types (Hugging Face's `rope_type`).
std::optional<RopeType> parseRopeType(llvm::StringRef name) {
  return llvm::StringSwitch<std::optional<RopeType>>(name)
      .Case("default", RopeType::Default)
      .Case("linear", RopeType::Linear)
      .Case("dynamic", RopeType::Dynamic)
      .Case("llama3", RopeType::Llama3)
      .Case("yarn", RopeType::Yarn)
      .Default(std::nullopt);
}

/// The RoPE fields of a LLaMA configuration in either spelling: transformers
/// 5's `rope_parameters` {rope_theta, rope_type, ...} or 4.x's top-level
/// `rope_theta` and `rope_scaling` {type | rope_type, ...}. Where both
/// spellings give a value, they must agree. Every key of the RoPE object must
/// be one the type uses: an unknown key could change the frequencies.
llvm::Error parseRope(FieldReader &fields, TransformerConfig &config) {
  const json::Object &root = fields.getObject();
  // The merged RoPE object and, for messages, where each key came from.
  json::Object merged;
  llvm::StringMap<std::string> origin;
  for (llvm::StringRef field : {"rope_parameters", "rope_scaling"}) {
    if (!fields.present(field))
      continue;
    const json::Object *object = root.get(field)->getAsObject();
    if (!object)
      return makeError("field '" + field + "' must be an object or null, got " +
                       describe(*root.get(field)));
    for (const auto &[key, value] : *object) {
      if (value.kind() == json::Value::Null)
        continue;
      auto [it, inserted] = merged.try_emplace(key, value);
      if (!inserted && it->second != value)
        return makeError("'" + origin[key] + "." + key.str() + "' = " +
                         describe(it->second) + " and '" + field + "." +
                         key.str() + "' = " + describe(value) + " disagree");
      if (inserted)
        origin[key] = field.str();
    }
  }
  auto qualified = [&](llvm::StringRef key) {
    return origin.count(key) ? origin[key] + "." + key.str() : key.str();
  };

  // rope_theta: top level (4.x) and/or inside the object (5).
  std::optional<double> theta;
  if (fields.present("rope_theta")) {
    MODC_ASSIGN_OR_RETURN(theta, fields.optionalPositive("rope_theta", 0.0));
  }
  if (merged.get("rope_theta")) {
    FieldReader sub(merged, "llama", origin["rope_theta"] + ".");
    double inner;
    MODC_ASSIGN_OR_RETURN(inner, sub.optionalPositive("rope_theta", 0.0));
    if (theta && *theta != inner)
      return makeError("'rope_theta' = " + describe(*root.get("rope_theta")) +
                       " and '" + qualified("rope_theta") + "' = " +
                       describe(*merged.get("rope_theta")) + " disagree");
    theta = inner;
  }
  config.rope.theta = theta.value_or(10000.0);

  // The type: `rope_type`, or the older `type`.
  std::string typeName = "default";
  for (llvm::StringRef key : {"rope_type", "type"}) {
    const json::Value *value = merged.get(key);
    if (!value)
      continue;
    std::optional<llvm::StringRef> name = value->getAsString();
    if (!name)
      return makeError("field '" + qualified(key) + "' must be a string, got " +
                       describe(*value));
    if (key == "type" && merged.get("rope_type") && *name != typeName)
      return makeError("'" + qualified("rope_type") + "' = '" + typeName +
                       "' and '" + qualified("type") + "' = '" + *name +
                       "' disagree");
    typeName = name->str();
  }
  std::optional<RopeType> type = parseRopeType(typeName);
  if (!type)
    return makeError("RoPE type '" + typeName + "' (field '" +
                     qualified(merged.get("rope_type") ? "rope_type" : "type") +
                     "') is not supported (supported: default, linear, "
                     "dynamic, llama3, yarn)");
  config.rope.type = *type;

  // The keys each type reads; anything else is refused.
  llvm::SmallVector<llvm::StringRef> known = {"rope_type", "type", "rope_theta",
                                              "partial_rotary_factor"};
  switch (*type) {
  case RopeType::Default:
    break;
  case RopeType::Linear:
  case RopeType::Dynamic:
    known.append({"factor"});
    break;
  case RopeType::Llama3:
    known.append({"factor", "low_freq_factor", "high_freq_factor",
                  "original_max_position_embeddings"});
    break;
  case RopeType::Yarn:
    known.append({"factor", "attention_factor", "beta_fast", "beta_slow",
                  "mscale", "mscale_all_dim", "original_max_position_embeddings",
                  "truncate"});
    break;
  }
  for (const auto &[key, value] : merged)
    if (!llvm::is_contained(known, key.str()))
      return makeError("field '" + qualified(key) + "' is not understood for "
                       "RoPE type '" + typeName + "' (it would change the "
                       "rotary frequencies; mod-import reads: " +
                       llvm::join(known, ", ") + ")");

  // Typed reads, each named by where it came from.
  auto number = [&](llvm::StringRef key,
                    std::optional<double> &out) -> llvm::Error {
    if (!merged.get(key))
      return llvm::Error::success();
    FieldReader sub(merged, "llama", origin[key] + ".");
    double value;
    MODC_ASSIGN_OR_RETURN(value, sub.optionalPositive(key, 0.0));
    out = value;
    return llvm::Error::success();
  };
  auto required = [&](llvm::StringRef key, double &out) -> llvm::Error {
    std::optional<double> value;
    if (llvm::Error err = number(key, value))
      return err;
    if (!value)
      return makeError("RoPE type '" + typeName + "' needs field '" + key +
                       "' in 'rope_parameters' (or 4.x's 'rope_scaling')");
    out = *value;
    return llvm::Error::success();
  };
  std::optional<double> partial;
  if (llvm::Error err = number("partial_rotary_factor", partial))
    return err;
  if (partial && *partial != 1.0)
    return makeError("field '" + qualified("partial_rotary_factor") + "' = " +
                     describe(*merged.get("partial_rotary_factor")) +
                     " is not supported (only 1: RoPE on the whole head)");
  if (*type == RopeType::Default)
    return llvm::Error::success();
  // transformers 5 derives YaRN's factor from the two context lengths.
  if (*type != RopeType::Yarn || merged.get("factor"))
    if (llvm::Error err = required("factor", config.rope.factor))
      return err;
  if (merged.get("original_max_position_embeddings")) {
    FieldReader sub(merged, "llama",
                    origin["original_max_position_embeddings"] + ".");
    std::optional<int64_t> value;
    MODC_ASSIGN_OR_RETURN(value,
                          sub.optionalInt("original_max_position_embeddings",
                                          std::numeric_limits<int64_t>::max()));
    config.rope.originalMaxPositions = value;
  }
  if (*type == RopeType::Llama3) {
    if (llvm::Error err = required("low_freq_factor", config.rope.lowFreqFactor))
      return err;
    if (llvm::Error err =
            required("high_freq_factor", config.rope.highFreqFactor))
      return err;
    // transformers 5 defaults it to max_position_embeddings.
    if (!config.rope.originalMaxPositions)
      config.rope.originalMaxPositions = config.maxPositions;
    if (!config.rope.originalMaxPositions)
      return makeError("RoPE type 'llama3' needs field "
                       "'original_max_position_embeddings' in "
                       "'rope_parameters' (or 4.x's 'rope_scaling'), or "
                       "'max_position_embeddings'");
    if (config.rope.highFreqFactor <= config.rope.lowFreqFactor)
      return makeError("RoPE type 'llama3' needs 'high_freq_factor' (" +
                       describe(*merged.get("high_freq_factor")) +
                       ") > 'low_freq_factor' (" +
                       describe(*merged.get("low_freq_factor")) + ")");
  }
  if (*type == RopeType::Yarn) {
    if (!merged.get("factor")) {
      std::optional<int64_t> original = config.rope.originalMaxPositions;
      if (!original || !config.maxPositions)
        return makeError("RoPE type 'yarn' needs field 'factor' (or both "
                         "'original_max_position_embeddings' and "
                         "'max_position_embeddings', whose ratio it is)");
      config.rope.factor = double(*config.maxPositions) / double(*original);
    }
    if (llvm::Error err = number("attention_factor", config.rope.attentionFactor))
      return err;
    if (llvm::Error err = number("mscale", config.rope.mscale))
      return err;
    if (llvm::Error err = number("mscale_all_dim", config.rope.mscaleAllDim))
      return err;
    std::optional<double> beta;
    if (llvm::Error err = number("beta_fast", beta))
      return err;
    config.rope.betaFast = beta.value_or(32.0);
    beta.reset();
    if (llvm::Error err = number("beta_slow", beta))
      return err;
    config.rope.betaSlow = beta.value_or(1.0);
    if (merged.get("truncate")) {
      FieldReader sub(merged, "llama", origin["truncate"] + ".");
      MODC_ASSIGN_OR_RETURN(config.rope.truncate,
                            sub.optionalBool("truncate", true));
    }
  }
  return llvm::Error::success();
}

llvm::Expected<TransformerConfig> parseLlama(FieldReader &fields) {
  TransformerConfig config;
  config.family = ModelFamily::Llama;
  MODC_ASSIGN_OR_RETURN(config.hiddenSize, fields.requiredInt("hidden_size"));
  MODC_ASSIGN_OR_RETURN(config.numLayers,
                        fields.requiredInt("num_hidden_layers",
                                           ImportLimits::kMaxLayers));
  MODC_ASSIGN_OR_RETURN(config.numHeads,
                        fields.requiredInt("num_attention_heads"));
  MODC_ASSIGN_OR_RETURN(config.intermediateSize,
                        fields.requiredInt("intermediate_size"));
  MODC_ASSIGN_OR_RETURN(config.vocabSize, fields.requiredInt("vocab_size"));
  MODC_ASSIGN_OR_RETURN(config.normEps,
                        fields.requiredNonNegative("rms_norm_eps"));
  // The defaults below are LlamaConfig's: no GQA, base 10000, untied head.
  std::optional<int64_t> kvHeads;
  MODC_ASSIGN_OR_RETURN(kvHeads, fields.optionalInt("num_key_value_heads"));
  config.numKVHeads = kvHeads.value_or(config.numHeads);
  MODC_ASSIGN_OR_RETURN(config.tieWordEmbeddings,
                        fields.optionalBool("tie_word_embeddings", false));
  // Only a bound on --seq: no size limit of its own.
  MODC_ASSIGN_OR_RETURN(config.maxPositions,
                        fields.optionalInt("max_position_embeddings",
                                           std::numeric_limits<int64_t>::max()));
  if (llvm::Error err = parseRope(fields, config))
    return std::move(err);
  if (fields.present("partial_rotary_factor")) {
    double partial;
    MODC_ASSIGN_OR_RETURN(partial,
                          fields.optionalPositive("partial_rotary_factor", 1.0));
    if (partial != 1.0)
      return makeError("field 'partial_rotary_factor' = " +
                       describe(*fields.getObject().get("partial_rotary_factor")) +
                       " is not supported (only 1: RoPE on the whole head)");
  }

  std::optional<int64_t> headDim;
  MODC_ASSIGN_OR_RETURN(headDim, fields.optionalInt("head_dim"));
  if (headDim) {
    config.headDim = *headDim;
  } else {
    if (llvm::Error err = checkDivides("hidden_size", config.hiddenSize,
                                       "num_attention_heads", config.numHeads))
      return std::move(err);
    config.headDim = config.hiddenSize / config.numHeads;
  }
  if (llvm::Error err =
          checkDivides("num_attention_heads", config.numHeads,
                       "num_key_value_heads", config.numKVHeads))
    return std::move(err);
  // rotate_half pairs element i with element i + head_dim/2.
  if (config.headDim % 2 != 0)
    return makeError("head dimension " + llvm::Twine(config.headDim) +
                     (headDim ? " ('head_dim')"
                              : " ('hidden_size' / 'num_attention_heads')") +
                     " must be even for rotary position embeddings");

  std::optional<llvm::StringRef> activation;
  MODC_ASSIGN_OR_RETURN(activation, fields.optionalString("hidden_act"));
  if (activation && *activation != "silu")
    return makeError("field 'hidden_act' = '" + *activation +
                     "' is not supported for model_type 'llama' (supported: "
                     "silu)");
  if (llvm::Error err = fields.requireBoolOrAbsent("attention_bias", false))
    return std::move(err);
  if (llvm::Error err = fields.requireBoolOrAbsent("mlp_bias", false))
    return std::move(err);
  return config;
}

/// Fields of any Hugging Face configuration that do not change the forward
/// computation: bookkeeping, tokenizer ids, generation defaults, output
/// switches, classification heads, initialization and dropout (mod-import
/// builds the inference graph; mod-train applies no dropout), precision and
/// kernel choices that compute the same function (f32 throughout here).
constexpr llvm::StringLiteral kHarmlessFields[] = {
    "_name_or_path", "_attn_implementation", "_attn_implementation_autoset",
    "_commit_hash", "architectures", "attn_implementation", "auto_map",
    "bad_words_ids", "begin_suppress_tokens", "bos_token_id",
    "chunk_size_feed_forward", "cross_attention_hidden_size",
    "decoder_start_token_id", "diversity_penalty", "do_sample", "dtype",
    "early_stopping", "encoder_no_repeat_ngram_size", "eos_token_id",
    "exponential_decay_length_penalty", "finetuning_task",
    "forced_bos_token_id", "forced_eos_token_id", "gradient_checkpointing",
    "id2label", "initializer_range", "is_decoder", "label2id",
    "length_penalty", "max_length", "min_length", "model_type",
    "no_repeat_ngram_size", "num_beam_groups", "num_beams", "num_labels",
    "num_return_sequences", "output_attentions", "output_hidden_states",
    "output_scores", "pad_token_id", "prefix", "problem_type",
    "remove_invalid_values", "repetition_penalty", "return_dict",
    "return_dict_in_generate", "sep_token_id", "suppress_tokens",
    "task_specific_params", "temperature", "tf_legacy_loss",
    "tie_encoder_decoder", "tokenizer_class", "top_k", "top_p", "torch_dtype",
    "torchscript", "transformers_version", "typical_p", "use_bfloat16",
    "use_cache",
};

/// Per family: the fields parseGPT2 / parseLlama read, and the family's own
/// harmless ones.
constexpr llvm::StringLiteral kGPT2Fields[] = {
    "activation_function", "add_cross_attention", "is_encoder_decoder",
    "layer_norm_epsilon", "n_embd", "n_head", "n_inner", "n_layer",
    "n_positions", "pruned_heads", "scale_attn_by_inverse_layer_idx",
    "scale_attn_weights", "tie_word_embeddings", "vocab_size",
    // Harmless: dropout, the double-heads model's summary head, the context
    // size of old configs (n_positions bounds it), fp16 upcasting.
    "attn_pdrop", "embd_pdrop", "n_ctx", "reorder_and_upcast_attn",
    "resid_pdrop", "summary_activation", "summary_first_dropout",
    "summary_proj_to_labels", "summary_type", "summary_use_proj",
};
constexpr llvm::StringLiteral kLlamaFields[] = {
    "add_cross_attention", "attention_bias", "head_dim", "hidden_act",
    "hidden_size", "intermediate_size", "is_encoder_decoder",
    "max_position_embeddings", "mlp_bias", "num_attention_heads",
    "num_hidden_layers", "num_key_value_heads", "partial_rotary_factor",
    "pruned_heads", "rms_norm_eps", "rope_parameters", "rope_scaling",
    "rope_theta", "tie_word_embeddings", "vocab_size",
    // Harmless: dropout; tensor-parallel slicing of the projections in
    // pretraining (the same products, summed in another order).
    "attention_dropout", "pretraining_tp",
};

/// Every field of the configuration must be known: one that changes the
/// computation and is not read would be a silently wrong model. Fields in
/// `extraHarmless` (--ignore-config-field) are accepted as they are.
llvm::Error checkKnownFields(const json::Object &object, ModelFamily family,
                             llvm::ArrayRef<std::string> extraHarmless) {
  llvm::ArrayRef<llvm::StringLiteral> own =
      family == ModelFamily::GPT2 ? llvm::ArrayRef(kGPT2Fields)
                                  : llvm::ArrayRef(kLlamaFields);
  llvm::SmallVector<std::string> unknown;
  for (const auto &[key, value] : object) {
    llvm::StringRef name = key;
    if (llvm::is_contained(kHarmlessFields, name) ||
        llvm::is_contained(own, name) ||
        llvm::is_contained(extraHarmless, name.str()))
      continue;
    unknown.push_back(name.str());
  }
  if (unknown.empty())
    return llvm::Error::success();
  llvm::sort(unknown);
  return makeError(
      llvm::Twine(unknown.size() == 1 ? "field '" : "fields '") +
      llvm::join(unknown, "', '") + "' " +
      (unknown.size() == 1 ? "is" : "are") + " not understood for model_type '" +
      getModelTypeName(family) + "': mod-import cannot tell whether " +
      (unknown.size() == 1 ? "it changes" : "they change") +
      " the computation (if not, pass --ignore-config-field=" + unknown[0] +
      ")");
}

/// Fields that would change the architecture unless they hold their
/// default (checked for both families).
llvm::Error checkArchitectureDefaults(FieldReader &fields) {
  if (llvm::Error err = fields.requireBoolOrAbsent("add_cross_attention", false))
    return err;
  if (llvm::Error err = fields.requireBoolOrAbsent("is_encoder_decoder", false))
    return err;
  if (fields.present("pruned_heads")) {
    const json::Value *value = fields.getObject().get("pruned_heads");
    const json::Object *heads = value->getAsObject();
    if (!heads || !heads->empty())
      return makeError("field 'pruned_heads' = " + describe(*value) +
                       " is not supported (only {}: no pruned heads)");
  }
  return llvm::Error::success();
}

/// Where the JSON nests deeper than ImportLimits::kMaxJsonDepth, as
/// "line L, column C", or nullopt. A plain scan (brackets outside strings),
/// so it bounds the depth before any recursive parser sees the text, even
/// in text that is malformed further on.
std::optional<std::string> findExcessiveNesting(llvm::StringRef text) {
  unsigned depth = 0, line = 1, column = 0;
  bool inString = false, escaped = false;
  for (char c : text) {
    ++column;
    if (c == '\n') {
      ++line;
      column = 0;
    }
    if (inString) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        inString = false;
      continue;
    }
    if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > ImportLimits::kMaxJsonDepth)
        return llvm::formatv("line {0}, column {1}", line, column).str();
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

/// Finds duplicate keys with nlohmann/json's (iterative) SAX parser:
/// llvm::json keeps the last of them silently. Syntax errors are left to
/// llvm::json::parse, which reports them with line and column.
class DuplicateKeyFinder {
public:
  std::optional<std::string> duplicate;

  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(int64_t) { return value(); }
  bool number_unsigned(uint64_t) { return value(); }
  bool number_float(double, const std::string &) { return value(); }
  bool string(std::string &) { return value(); }
  bool binary(nlohmann::json::binary_t &) { return value(); }
  bool start_object(std::size_t) {
    open.push_back({true, {}, {}});
    return true;
  }
  bool start_array(std::size_t) {
    open.push_back({false, {}, {}});
    return true;
  }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string &key) {
    Container &top = open.back();
    if (!top.keys.insert(key).second) {
      std::string where;
      for (size_t i = 0; i + 1 < open.size(); ++i)
        where += open[i].isObject ? "." + open[i].key
                                  : "[" + std::to_string(open[i].items) + "]";
      duplicate = "duplicate key '" + key + "'" +
                  (where.empty() ? std::string()
                                 : " in the object at '" +
                                       where.substr(where[0] == '.') + "'");
      return false;
    }
    top.key = key;
    return true;
  }
  bool parse_error(std::size_t, const std::string &,
                   const nlohmann::detail::exception &) {
    return false;
  }

private:
  struct Container {
    bool isObject;
    std::set<std::string> keys;
    std::string key;
    size_t items = 0;
  };

  bool value() {
    if (!open.empty() && !open.back().isObject)
      ++open.back().items;
    return true;
  }
  bool close() {
    open.pop_back();
    return value();
  }

  std::vector<Container> open;
};

/// llvm::json reports "[line:col, byte=N]: message"; rewrite it in the
/// "line L, column C" form users know from compilers.
llvm::Error describeParseError(llvm::Error err) {
  std::string text = llvm::toString(std::move(err));
  unsigned line = 0, column = 0;
  llvm::StringRef rest(text);
  if (rest.consume_front("[")) {
    auto [position, message] = rest.split("]: ");
    auto [lineText, tail] = position.split(':');
    llvm::StringRef columnText = tail.split(',').first;
    if (!lineText.getAsInteger(10, line) &&
        !columnText.getAsInteger(10, column))
      return makeError("malformed JSON at line " + llvm::Twine(line) +
                       ", column " + llvm::Twine(column) + ": " + message);
  }
  return makeError("malformed JSON: " + text);
}
} // namespace

llvm::Expected<TransformerConfig>
mlir::mod::frontend::parseTransformerConfig(
    llvm::StringRef text, llvm::ArrayRef<std::string> ignoredFields) {
  // llvm::json::parse recurses once per nesting level: bound the depth
  // before calling it.
  if (std::optional<std::string> where = findExcessiveNesting(text))
    return makeError("malformed JSON at " + *where + ": nested deeper than " +
                     llvm::Twine(ImportLimits::kMaxJsonDepth) + " levels");
  DuplicateKeyFinder duplicates;
  (void)nlohmann::json::sax_parse(text.begin(), text.end(), &duplicates);
  if (duplicates.duplicate)
    return makeError("malformed JSON: " + *duplicates.duplicate);
  llvm::Expected<json::Value> root = json::parse(text);
  if (!root)
    return describeParseError(root.takeError());
  const json::Object *object = root->getAsObject();
  if (!object)
    return makeError("the configuration must be a JSON object, got " +
                     describe(*root));
  const json::Value *typeValue = object->get("model_type");
  if (!typeValue)
    return makeError("missing required field 'model_type' (supported: gpt2, "
                     "llama)");
  std::optional<llvm::StringRef> modelType = typeValue->getAsString();
  if (!modelType)
    return makeError("field 'model_type' must be a string, got " +
                     describe(*typeValue));
  FieldReader fields(*object, *modelType);
  llvm::Expected<TransformerConfig> config =
      *modelType == "gpt2"    ? parseGPT2(fields)
      : *modelType == "llama" ? parseLlama(fields)
                              : llvm::Expected<TransformerConfig>(makeError(
                                    "unsupported model_type '" + *modelType +
                                    "' (supported: gpt2, llama)"));
  if (!config)
    return config.takeError();
  if (llvm::Error err = checkArchitectureDefaults(fields))
    return std::move(err);
  if (llvm::Error err =
          checkKnownFields(*object, config->family, ignoredFields))
    return std::move(err);
  return config;
}

namespace {
/// The element count of `shape`, or nullopt when it overflows int64.
std::optional<int64_t> elementCount(llvm::ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t dim : shape)
    if (llvm::MulOverflow(count, dim, count))
      return std::nullopt;
  return count;
}

/// Every tensor whose size grows with the configuration and the instance
/// shape, sized with overflow checks, against ImportLimits.
llvm::Error checkTensorSizes(const TransformerConfig &config, int64_t batch,
                             int64_t seq) {
  bool gpt2 = config.family == ModelFamily::GPT2;
  int64_t d = config.hiddenSize, inner = config.intermediateSize;
  std::optional<int64_t> qWidth = elementCount({config.numHeads, config.headDim});
  std::optional<int64_t> kvWidth =
      elementCount({config.numKVHeads, config.headDim});
  if (!qWidth || !kvWidth)
    return makeError("heads x head dimension overflows");
  struct Tensor {
    const char *what;
    llvm::SmallVector<int64_t, 4> shape;
    /// Parameters: how many of them the model holds.
    int64_t copies = 0;
  };
  llvm::SmallVector<Tensor> tensors = {
      {"the token embedding [vocab, hidden]", {config.vocabSize, d}, 1},
      {"the attention query projection [hidden, heads*head_dim]",
       {d, *qWidth}, config.numLayers},
      {"the attention key/value projections [hidden, kv_heads*head_dim]",
       {d, *kvWidth}, 2 * config.numLayers},
      {"the attention output projection [heads*head_dim, hidden]",
       {*qWidth, d}, config.numLayers},
      {"an MLP projection [hidden, intermediate]", {d, inner},
       (gpt2 ? 2 : 3) * config.numLayers},
      {"the hidden states [batch, seq, hidden]", {batch, seq, d}},
      {"the MLP activations [batch, seq, intermediate]", {batch, seq, inner}},
      {"the attention queries [batch, seq, heads*head_dim]",
       {batch, seq, *qWidth}},
      {"the attention scores [batch, heads, seq, seq]",
       {batch, config.numHeads, seq, seq}},
      {"the logits [batch, seq, vocab]", {batch, seq, config.vocabSize}},
      {"the RoPE tables [batch, seq, head_dim]", {batch, seq, config.headDim}},
  };
  if (gpt2)
    tensors.push_back({"the position embedding [n_positions, hidden]",
                       {config.maxPositions.value_or(1), d}, 1});
  if (!config.tieWordEmbeddings)
    tensors.push_back({"the output projection [vocab, hidden]",
                       {config.vocabSize, d}, 1});
  int64_t parameters = 0;
  for (const Tensor &t : tensors) {
    std::optional<int64_t> count = elementCount(t.shape);
    if (!count || *count > ImportLimits::kMaxTensorElements) {
      std::string dims;
      llvm::raw_string_ostream os(dims);
      llvm::interleave(t.shape, os, ", ");
      return makeError(llvm::Twine(t.what) + " = [" + dims + "] would have " +
                       (count ? llvm::Twine(*count).str()
                              : std::string("more than 2^63")) +
                       " elements, more than mod-import's limit of " +
                       llvm::Twine(ImportLimits::kMaxTensorElements));
    }
    std::optional<int64_t> total = elementCount({*count, t.copies});
    if (!total || llvm::AddOverflow(parameters, *total, parameters) ||
        parameters > ImportLimits::kMaxParameterElements)
      return makeError("the model's parameters would have more than " +
                       llvm::Twine(ImportLimits::kMaxParameterElements) +
                       " elements (mod-import's limit)");
  }
  return llvm::Error::success();
}
} // namespace

llvm::Error mlir::mod::frontend::checkInstanceShape(
    const TransformerConfig &config, int64_t batch, int64_t seq) {
  if (batch < 1)
    return makeError("--batch must be at least 1, got " + llvm::Twine(batch));
  if (seq < 1)
    return makeError("--seq must be at least 1, got " + llvm::Twine(seq));
  for (auto [name, value] : {std::pair{"--batch", batch}, {"--seq", seq}})
    if (value > ImportLimits::kMaxSize)
      return makeError(llvm::Twine(name) + " must be at most " +
                       llvm::Twine(ImportLimits::kMaxSize) +
                       " (mod-import's limit), got " + llvm::Twine(value));
  if (config.maxPositions && seq > *config.maxPositions)
    return makeError(
        "--seq=" + llvm::Twine(seq) + " exceeds '" +
        (config.family == ModelFamily::GPT2 ? "n_positions"
                                            : "max_position_embeddings") +
        "' (" + llvm::Twine(*config.maxPositions) + ")");
  if (config.family == ModelFamily::Llama) {
    llvm::Expected<RopeFrequencies> rope = computeRopeFrequencies(config, seq);
    if (!rope)
      return rope.takeError();
  }
  return checkTensorSizes(config, batch, seq);
}

static constexpr double kPi = 3.14159265358979323846;

llvm::Expected<RopeFrequencies>
mlir::mod::frontend::computeRopeFrequencies(const TransformerConfig &config,
                                            int64_t seq) {
  const RopeConfig &rope = config.rope;
  const int64_t dim = config.headDim, half = dim / 2;
  RopeFrequencies result;
  result.invFreq.resize(half);
  // theta^(-2i/dim), the frequencies every type starts from.
  auto plain = [&](int64_t i) {
    return 1.0 / std::pow(rope.theta, double(2 * i) / double(dim));
  };
  switch (rope.type) {
  case RopeType::Default:
    for (int64_t i = 0; i < half; ++i)
      result.invFreq[i] = plain(i);
    break;
  case RopeType::Linear:
    for (int64_t i = 0; i < half; ++i)
      result.invFreq[i] = plain(i) / rope.factor;
    break;
  case RopeType::Dynamic: {
    // transformers grows the base to theta * (factor * L / M - (factor -
    // 1))^(dim / (dim - 2)) once the sequence length L = max(position) + 1
    // exceeds M = max_position_embeddings, and uses the plain frequencies
    // below. Static frequencies can follow only the latter.
    if (!config.maxPositions)
      return makeError("RoPE type 'dynamic' needs 'max_position_embeddings' "
                       "(the length beyond which it rescales)");
    if (seq > *config.maxPositions)
      return makeError(
          "RoPE type 'dynamic' rescales the frequencies with the sequence "
          "length at run time once it exceeds max_position_embeddings (" +
          llvm::Twine(*config.maxPositions) + "); a compiled model's "
          "frequencies are fixed, so --seq=" + llvm::Twine(seq) +
          " is not supported (use --seq <= max_position_embeddings)");
    for (int64_t i = 0; i < half; ++i)
      result.invFreq[i] = plain(i);
    break;
  }
  case RopeType::Llama3: {
    const double context = double(*rope.originalMaxPositions);
    const double lowWavelen = context / rope.lowFreqFactor;
    const double highWavelen = context / rope.highFreqFactor;
    for (int64_t i = 0; i < half; ++i) {
      double f = plain(i), wavelen = 2.0 * kPi / f;
      if (wavelen < highWavelen) {
        result.invFreq[i] = f;
      } else if (wavelen > lowWavelen) {
        result.invFreq[i] = f / rope.factor;
      } else {
        double smooth = (context / wavelen - rope.lowFreqFactor) /
                        (rope.highFreqFactor - rope.lowFreqFactor);
        result.invFreq[i] = (1.0 - smooth) * f / rope.factor + smooth * f;
      }
    }
    break;
  }
  case RopeType::Yarn: {
    std::optional<int64_t> original = rope.originalMaxPositions;
    if (!original)
      original = config.maxPositions;
    if (!original)
      return makeError("RoPE type 'yarn' needs 'original_max_position_embeddings' "
                       "or 'max_position_embeddings'");
    auto mscaleOf = [](double scale, double m) {
      return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
    };
    if (rope.attentionFactor)
      result.attentionScaling = *rope.attentionFactor;
    else if (rope.mscale && rope.mscaleAllDim)
      result.attentionScaling = mscaleOf(rope.factor, *rope.mscale) /
                                mscaleOf(rope.factor, *rope.mscaleAllDim);
    else
      result.attentionScaling = mscaleOf(rope.factor, 1.0);
    // The dimension (of `dim`) whose wavelength makes `rotations` turns
    // over the original context.
    auto correctionDim = [&](double rotations) {
      return double(dim) *
             std::log(double(*original) / (rotations * 2.0 * kPi)) /
             (2.0 * std::log(rope.theta));
    };
    double low = correctionDim(rope.betaFast);
    double high = correctionDim(rope.betaSlow);
    if (rope.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, double(dim - 1));
    if (low == high)
      high += 0.001;
    for (int64_t i = 0; i < half; ++i) {
      double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
      double extrapolation = 1.0 - ramp;
      double f = plain(i);
      result.invFreq[i] =
          f / rope.factor * (1.0 - extrapolation) + f * extrapolation;
    }
    break;
  }
  }
  return result;
}
