//===- GPT2.cpp - GPT-2 (Hugging Face GPT2LMHeadModel) --------------------===//
//
// h = wte[tokens] + wpe[positions]
// per layer: h += c_proj(attn(c_attn(ln_1(h))));  h += mlp(ln_2(h))
// logits = ln_f(h) · wteᵀ (or lm_head.weightᵀ when untied)
//
// Conv1D weights are stored [in, out], so projections need no transpose.
//
//===----------------------------------------------------------------------===//

#include "Families.h"

using namespace mlir;
using namespace mlir::mod::frontend;
using namespace mlir::mod::frontend::detail;

static std::string layerPrefix(int64_t layer) {
  return "transformer.h." + std::to_string(layer) + ".";
}

void mlir::mod::frontend::detail::declareGPT2Parameters(
    const TransformerConfig &config, ParameterList &params) {
  int64_t d = config.hiddenSize, inner = config.intermediateSize;
  std::string weight = normalInit(kInitStd);
  std::string residual = normalInit(residualProjectionStd(config));
  params.add("transformer.wte.weight", {config.vocabSize, d}, weight);
  params.add("transformer.wpe.weight", {*config.maxPositions, d}, weight);
  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    std::string p = layerPrefix(layer);
    params.add(p + "ln_1.weight", {d}, "ones");
    params.add(p + "ln_1.bias", {d}, "zeros");
    params.add(p + "attn.c_attn.weight", {d, 3 * d}, weight);
    params.add(p + "attn.c_attn.bias", {3 * d}, "zeros");
    params.add(p + "attn.c_proj.weight", {d, d}, residual);
    params.add(p + "attn.c_proj.bias", {d}, "zeros");
    params.add(p + "ln_2.weight", {d}, "ones");
    params.add(p + "ln_2.bias", {d}, "zeros");
    params.add(p + "mlp.c_fc.weight", {d, inner}, weight);
    params.add(p + "mlp.c_fc.bias", {inner}, "zeros");
    params.add(p + "mlp.c_proj.weight", {inner, d}, residual);
    params.add(p + "mlp.c_proj.bias", {d}, "zeros");
  }
  params.add("transformer.ln_f.weight", {d}, "ones");
  params.add("transformer.ln_f.bias", {d}, "zeros");
  if (!config.tieWordEmbeddings)
    params.add("lm_head.weight", {config.vocabSize, d}, weight);
}

/// GPT2Attention: one fused c_attn GEMM, split q | k | v along the last dim.
static Value buildAttention(TransformerBuilder &tb,
                            const TransformerConfig &config,
                            const ParameterList &params, const std::string &p,
                            Value x, Value positions) {
  tb.setScope(p + "attn");
  int64_t d = config.hiddenSize;
  Value qkv = tb.linear(x, params.get(p + "attn.c_attn.weight"),
                        WeightLayout::InOut, params.get(p + "attn.c_attn.bias"));
  SmallVector<int64_t> headShape{tb.batch(), tb.seq(), config.numHeads,
                                 config.headDim};
  auto heads = [&](int64_t index) {
    return tb.expand(tb.sliceLast(qkv, index * d, d), headShape,
                     {{0}, {1}, {2, 3}});
  };
  Value context = tb.attention(heads(0), heads(1), heads(2), positions);
  return tb.linear(context, params.get(p + "attn.c_proj.weight"),
                   WeightLayout::InOut, params.get(p + "attn.c_proj.bias"));
}

static Value buildMLP(TransformerBuilder &tb, const ParameterList &params,
                      const std::string &p, Value x) {
  tb.setScope(p + "mlp");
  Value hidden = tb.linear(x, params.get(p + "mlp.c_fc.weight"),
                           WeightLayout::InOut, params.get(p + "mlp.c_fc.bias"));
  return tb.linear(tb.geluTanh(hidden), params.get(p + "mlp.c_proj.weight"),
                   WeightLayout::InOut, params.get(p + "mlp.c_proj.bias"));
}

Value mlir::mod::frontend::detail::buildGPT2Forward(
    TransformerBuilder &tb, const TransformerConfig &config,
    const ParameterList &params, Value tokens, Value positions) {
  tb.setScope("transformer.wte");
  Value tokenEmbeds = tb.gatherRows(params.get("transformer.wte.weight"), tokens);
  tb.setScope("transformer.wpe");
  Value positionEmbeds =
      tb.gatherRows(params.get("transformer.wpe.weight"), positions);
  Value h = tb.add(tokenEmbeds, positionEmbeds);

  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    std::string p = layerPrefix(layer);
    tb.setScope(p + "ln_1");
    Value normed = tb.layerNorm(h, params.get(p + "ln_1.weight"),
                                params.get(p + "ln_1.bias"), config.normEps);
    Value attn = buildAttention(tb, config, params, p, normed, positions);
    tb.setScope(p + "attn");
    h = tb.add(h, attn);
    tb.setScope(p + "ln_2");
    normed = tb.layerNorm(h, params.get(p + "ln_2.weight"),
                          params.get(p + "ln_2.bias"), config.normEps);
    Value mlp = buildMLP(tb, params, p, normed);
    tb.setScope(p + "mlp");
    h = tb.add(h, mlp);
  }

  tb.setScope("transformer.ln_f");
  h = tb.layerNorm(h, params.get("transformer.ln_f.weight"),
                   params.get("transformer.ln_f.bias"), config.normEps);
  tb.setScope("lm_head");
  Value head = config.tieWordEmbeddings ? params.get("transformer.wte.weight")
                                        : params.get("lm_head.weight");
  return tb.linear(h, head, WeightLayout::OutIn);
}
