//===- Config.cpp - Hugging Face transformer configurations --------------===//

#include "mod/Frontend/Config.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"

#include <nlohmann/json.hpp>

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
  FieldReader(const json::Object &object, llvm::StringRef modelType)
      : object(object), modelType(modelType) {}

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
      return makeError("field '" + key + "' = " + (*value ? "true" : "false") +
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
    return makeError("missing required field '" + key + "' for model_type '" +
                     modelType + "'");
  }

  llvm::Error wrongType(llvm::StringRef key, llvm::StringRef expected) const {
    return makeError("field '" + key + "' must be " + expected + ", got " +
                     describe(*object.get(key)));
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
      return makeError("field '" + key + "' must be at least 1, got " +
                       llvm::Twine(*value));
    if (*value > max)
      return tooLarge(key, llvm::Twine(*value).str(), max);
    return *value;
  }

  llvm::Error tooLarge(llvm::StringRef key, const std::string &value,
                       int64_t max) const {
    return makeError("field '" + key + "' must be at most " +
                     llvm::Twine(max) + " (mod-import's limit), got " + value);
  }

  llvm::Expected<double> number(llvm::StringRef key, bool allowZero) {
    std::optional<double> value = object.get(key)->getAsNumber();
    if (!value)
      return wrongType(key, "a number");
    if (!std::isfinite(*value) || *value < 0.0 || (!allowZero && *value == 0.0))
      return makeError("field '" + key + "' must be " +
                       (allowZero ? "non-negative" : "positive") + ", got " +
                       describe(*object.get(key)));
    return *value;
  }

  const json::Object &object;
  llvm::StringRef modelType;
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
  MODC_ASSIGN_OR_RETURN(config.ropeTheta,
                        fields.optionalPositive("rope_theta", 10000.0));
  MODC_ASSIGN_OR_RETURN(config.tieWordEmbeddings,
                        fields.optionalBool("tie_word_embeddings", false));
  // Only a bound on --seq: no size limit of its own.
  MODC_ASSIGN_OR_RETURN(config.maxPositions,
                        fields.optionalInt("max_position_embeddings",
                                           std::numeric_limits<int64_t>::max()));

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
  if (fields.present("rope_scaling"))
    return makeError("field 'rope_scaling' is not supported for model_type "
                     "'llama' (only null or absent: plain RoPE)");
  return config;
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
mlir::mod::frontend::parseTransformerConfig(llvm::StringRef text) {
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
  if (*modelType == "gpt2")
    return parseGPT2(fields);
  if (*modelType == "llama")
    return parseLlama(fields);
  return makeError("unsupported model_type '" + *modelType +
                   "' (supported: gpt2, llama)");
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
  return checkTensorSizes(config, batch, seq);
}
