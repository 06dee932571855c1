//===- Llama.cpp - LLaMA (Hugging Face LlamaForCausalLM) ------------------===//
//
// h = embed_tokens[tokens]
// per layer: h += o_proj(attn(rope(q), rope(k), v));  h += down(silu(gate) * up)
//            with RMSNorm before each sublayer
// logits = norm(h) · lm_headᵀ (or embed_tokensᵀ when tied)
//
// torch.nn.Linear weights are stored [out, in] and are transposed for the
// GEMM. There are no biases.
//
//===----------------------------------------------------------------------===//

#include "Families.h"

using namespace mlir;
using namespace mlir::mod::frontend;
using namespace mlir::mod::frontend::detail;

static std::string layerPrefix(int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".";
}

void mlir::mod::frontend::detail::declareLlamaParameters(
    const TransformerConfig &config, ParameterList &params) {
  int64_t d = config.hiddenSize, inner = config.intermediateSize;
  int64_t qWidth = config.numHeads * config.headDim;
  int64_t kvWidth = config.numKVHeads * config.headDim;
  std::string weight = normalInit(kInitStd);
  std::string residual = normalInit(residualProjectionStd(config));
  params.add("model.embed_tokens.weight", {config.vocabSize, d}, weight);
  // LlamaDecoderLayer registers self_attn, mlp, then its two norms; keeping
  // that order makes the signature match model.named_parameters().
  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    std::string p = layerPrefix(layer);
    params.add(p + "self_attn.q_proj.weight", {qWidth, d}, weight);
    params.add(p + "self_attn.k_proj.weight", {kvWidth, d}, weight);
    params.add(p + "self_attn.v_proj.weight", {kvWidth, d}, weight);
    params.add(p + "self_attn.o_proj.weight", {d, qWidth}, residual);
    params.add(p + "mlp.gate_proj.weight", {inner, d}, weight);
    params.add(p + "mlp.up_proj.weight", {inner, d}, weight);
    params.add(p + "mlp.down_proj.weight", {d, inner}, residual);
    params.add(p + "input_layernorm.weight", {d}, "ones");
    params.add(p + "post_attention_layernorm.weight", {d}, "ones");
  }
  params.add("model.norm.weight", {d}, "ones");
  if (!config.tieWordEmbeddings)
    params.add("lm_head.weight", {config.vocabSize, d}, weight);
}

/// LlamaAttention: separate q/k/v projections, RoPE on q and k, GQA.
static Value buildAttention(TransformerBuilder &tb,
                            const TransformerConfig &config,
                            const ParameterList &params, const std::string &p,
                            Value x, Value positions) {
  tb.setScope(p + "self_attn");
  auto project = [&](StringRef name, int64_t heads) {
    Value y = tb.linear(x, params.get(p + "self_attn." + name.str()),
                        WeightLayout::OutIn);
    return tb.expand(y, {tb.batch(), tb.seq(), heads, config.headDim},
                     {{0}, {1}, {2, 3}});
  };
  Value q = project("q_proj.weight", config.numHeads);
  Value k = project("k_proj.weight", config.numKVHeads);
  Value v = project("v_proj.weight", config.numKVHeads);
  // The angles are recomputed per layer from the positions argument so each
  // block's slice is self-contained when it is rewritten into a routed block.
  // checkInstanceShape has accepted the configuration for this --seq.
  RopeFrequencies rope =
      llvm::cantFail(computeRopeFrequencies(config, tb.seq()));
  auto [cos, sin] =
      tb.ropeTables(positions, rope.invFreq, rope.attentionScaling);
  q = tb.applyRope(q, cos, sin);
  k = tb.applyRope(k, cos, sin);
  Value context = tb.attention(q, k, v, positions);
  return tb.linear(context, params.get(p + "self_attn.o_proj.weight"),
                   WeightLayout::OutIn);
}

static Value buildMLP(TransformerBuilder &tb, const ParameterList &params,
                      const std::string &p, Value x) {
  tb.setScope(p + "mlp");
  Value gate = tb.linear(x, params.get(p + "mlp.gate_proj.weight"),
                         WeightLayout::OutIn);
  Value up =
      tb.linear(x, params.get(p + "mlp.up_proj.weight"), WeightLayout::OutIn);
  return tb.linear(tb.swiGLU(gate, up), params.get(p + "mlp.down_proj.weight"),
                   WeightLayout::OutIn);
}

Value mlir::mod::frontend::detail::buildLlamaForward(
    TransformerBuilder &tb, const TransformerConfig &config,
    const ParameterList &params, Value tokens, Value positions) {
  tb.setScope("model.embed_tokens");
  Value h = tb.gatherRows(params.get("model.embed_tokens.weight"), tokens);

  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    std::string p = layerPrefix(layer);
    tb.setScope(p + "input_layernorm");
    Value normed = tb.rmsNorm(h, params.get(p + "input_layernorm.weight"),
                              config.normEps);
    Value attn = buildAttention(tb, config, params, p, normed, positions);
    tb.setScope(p + "self_attn");
    h = tb.add(h, attn);
    tb.setScope(p + "post_attention_layernorm");
    normed = tb.rmsNorm(h, params.get(p + "post_attention_layernorm.weight"),
                        config.normEps);
    Value mlp = buildMLP(tb, params, p, normed);
    tb.setScope(p + "mlp");
    h = tb.add(h, mlp);
  }

  tb.setScope("model.norm");
  h = tb.rmsNorm(h, params.get("model.norm.weight"), config.normEps);
  tb.setScope("lm_head");
  Value head = config.tieWordEmbeddings
                   ? params.get("model.embed_tokens.weight")
                   : params.get("lm_head.weight");
  return tb.linear(h, head, WeightLayout::OutIn);
}
