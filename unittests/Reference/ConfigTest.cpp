//===- ConfigTest.cpp - config.json parsing of the reference --------------===//

#include "TestModels.h"

#include <stdexcept>

using namespace modref;
using modref::test::parseJson;

namespace {

/// The message of the error `text` raises (empty if it parses).
std::string errorOf(const std::string &text) {
  try {
    parseJson(text);
  } catch (const std::exception &e) {
    return e.what();
  }
  return "";
}

TEST(ConfigTest, GPT2FieldsAndDefaults) {
  ModelConfig c = parseJson(R"({"model_type": "gpt2", "n_layer": 3, "n_embd": 12,
      "n_head": 4, "n_positions": 32, "vocab_size": 50, "n_inner": null})");
  EXPECT_EQ(c.family, Family::GPT2);
  EXPECT_EQ(c.numLayers, 3);
  EXPECT_EQ(c.hidden, 12);
  EXPECT_EQ(c.numHeads, 4);
  EXPECT_EQ(c.numKVHeads, 4);
  EXPECT_EQ(c.headDim, 3);
  EXPECT_EQ(c.intermediate, 48); // n_inner null: 4 * n_embd
  EXPECT_EQ(c.maxPositions, 32);
  EXPECT_EQ(c.normEps, 1e-5);
  EXPECT_TRUE(c.tieWordEmbeddings);
  EXPECT_EQ(c.blockPrefix(2), "transformer.h.2");
}

TEST(ConfigTest, LlamaFieldsAndDefaults) {
  ModelConfig c = parseJson(R"({"model_type": "llama", "num_hidden_layers": 2,
      "hidden_size": 16, "num_attention_heads": 4, "intermediate_size": 40,
      "vocab_size": 100})");
  EXPECT_EQ(c.family, Family::Llama);
  EXPECT_EQ(c.numKVHeads, 4);
  EXPECT_EQ(c.headDim, 4);
  EXPECT_EQ(c.ropeTheta, 10000.0);
  EXPECT_EQ(c.normEps, 1e-6);
  EXPECT_FALSE(c.tieWordEmbeddings);
  EXPECT_EQ(c.maxPositions, 0);
  EXPECT_EQ(c.blockPrefix(1), "model.layers.1");

  c = parseJson(R"({"model_type": "llama", "num_hidden_layers": 2,
      "hidden_size": 16, "num_attention_heads": 4, "num_key_value_heads": 2,
      "head_dim": 6, "intermediate_size": 40, "vocab_size": 100,
      "tie_word_embeddings": true, "rope_parameters": {"rope_type": "default",
      "rope_theta": 500000.0}})");
  EXPECT_EQ(c.numKVHeads, 2);
  EXPECT_EQ(c.headDim, 6);
  EXPECT_EQ(c.ropeTheta, 500000.0);
  EXPECT_TRUE(c.tieWordEmbeddings);
}

TEST(ConfigTest, ErrorsNameTheField) {
  const std::string gpt2 = R"("model_type": "gpt2", "n_layer": 1, "n_positions": 8,
      "vocab_size": 10)";
  struct Case {
    std::string json, words;
  } cases[] = {
      {R"({"n_layer": 1})", "field 'model_type' is required"},
      {R"({"model_type": "bert"})", "field 'model_type' is \"bert\""},
      {"{" + gpt2 + R"(, "n_embd": 8})", "field 'n_head' is required"},
      {"{" + gpt2 + R"(, "n_embd": 8, "n_head": -2})",
       "field 'n_head' must be a positive integer, got -2"},
      {"{" + gpt2 + R"(, "n_embd": 8.5, "n_head": 2})", "field 'n_embd' must be a positive integer"},
      {"{" + gpt2 + R"(, "n_embd": 9, "n_head": 2})", "field 'n_embd' (9) must be divisible by n_head (2)"},
      {"{" + gpt2 + R"(, "n_embd": 8, "n_head": 2, "activation_function": "relu"})",
       "field 'activation_function' is \"relu\""},
      {"{" + gpt2 + R"(, "n_embd": 8, "n_head": 2, "layer_norm_epsilon": "x"})",
       "field 'layer_norm_epsilon' must be a positive number"},
      {R"({"model_type": "llama", "num_hidden_layers": 1, "hidden_size": 8,
          "num_attention_heads": 4, "num_key_value_heads": 3,
          "intermediate_size": 8, "vocab_size": 4})",
       "field 'num_attention_heads' (4) must be divisible by num_key_value_heads (3)"},
      {R"({"model_type": "llama", "num_hidden_layers": 1, "hidden_size": 12,
          "num_attention_heads": 4, "intermediate_size": 8, "vocab_size": 4})",
       "field 'head_dim' must be even"},
      {R"({"model_type": "llama", "num_hidden_layers": 1, "hidden_size": 8,
          "num_attention_heads": 2, "intermediate_size": 8, "vocab_size": 4,
          "rope_scaling": {"rope_type": "longrope", "factor": 4.0}})",
       "field 'rope_scaling' has rope_type \"longrope\""},
      {R"({"model_type": "llama", "num_hidden_layers": 1, "hidden_size": 8,
          "num_attention_heads": 2, "intermediate_size": 8, "vocab_size": 4,
          "attention_bias": true})",
       "field 'attention_bias' is true"},
  };
  for (const Case &c : cases) {
    std::string message = errorOf(c.json);
    EXPECT_NE(message.find("test-config: "), std::string::npos) << message;
    EXPECT_NE(message.find(c.words), std::string::npos)
        << "message \"" << message << "\" lacks \"" << c.words << "\"";
  }
}

} // namespace
