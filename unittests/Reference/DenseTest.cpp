//===- DenseTest.cpp - The reference's dense forward pass -----------------===//
//
// The reference is checked against a hand-computed case and against a second
// implementation written here in a different style (whole matrices in
// double, an additive -inf mask, RoPE via rotate_half on concatenated
// cos/sin tables as Hugging Face writes it), so that a slip in one of the
// two does not repeat in the other.
//
//===----------------------------------------------------------------------===//

#include "TestModels.h"

#include <cmath>
#include <stdexcept>

using namespace modref;
using namespace modref::test;
using modrt::DType;
using modrt::Tensor;

namespace {

using Matrix = std::vector<std::vector<double>>;
using TensorMap = std::map<std::string, Tensor>;

Matrix zeros(size_t rows, size_t cols) { return Matrix(rows, std::vector<double>(cols, 0.0)); }

/// A 2-D parameter as a matrix; a 1-D one as a single row.
Matrix param(const TensorMap &p, const std::string &name) {
  const Tensor &t = p.at(name);
  size_t rows = t.rank() == 2 ? size_t(t.shape()[0]) : 1;
  size_t cols = size_t(t.shape().back());
  Matrix m = zeros(rows, cols);
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) m[r][c] = t.data<float>()[r * cols + c];
  return m;
}

Matrix transpose(const Matrix &a) {
  Matrix t = zeros(a[0].size(), a.size());
  for (size_t r = 0; r < a.size(); ++r)
    for (size_t c = 0; c < a[0].size(); ++c) t[c][r] = a[r][c];
  return t;
}

Matrix matmul(const Matrix &a, const Matrix &b) {
  Matrix out = zeros(a.size(), b[0].size());
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t k = 0; k < b.size(); ++k)
      for (size_t j = 0; j < b[0].size(); ++j) out[i][j] += a[i][k] * b[k][j];
  return out;
}

Matrix addRow(Matrix a, const Matrix &row) {
  for (auto &r : a)
    for (size_t c = 0; c < r.size(); ++c) r[c] += row[0][c];
  return a;
}

Matrix add(Matrix a, const Matrix &b) {
  for (size_t r = 0; r < a.size(); ++r)
    for (size_t c = 0; c < a[r].size(); ++c) a[r][c] += b[r][c];
  return a;
}

Matrix columns(const Matrix &a, size_t begin, size_t count) {
  Matrix out = zeros(a.size(), count);
  for (size_t r = 0; r < a.size(); ++r)
    for (size_t c = 0; c < count; ++c) out[r][c] = a[r][begin + c];
  return out;
}

Matrix layerNorm(const Matrix &x, const Matrix &w, const Matrix &b, double eps) {
  Matrix out = x;
  for (auto &row : out) {
    double n = double(row.size()), mean = 0, var = 0;
    for (double v : row) mean += v / n;
    for (double v : row) var += (v - mean) * (v - mean) / n;
    for (size_t c = 0; c < row.size(); ++c)
      row[c] = (row[c] - mean) / std::sqrt(var + eps) * w[0][c] + b[0][c];
  }
  return out;
}

Matrix rmsNorm(const Matrix &x, const Matrix &w, double eps) {
  Matrix out = x;
  for (auto &row : out) {
    double ms = 0;
    for (double v : row) ms += v * v / double(row.size());
    for (size_t c = 0; c < row.size(); ++c) row[c] = row[c] / std::sqrt(ms + eps) * w[0][c];
  }
  return out;
}

/// Hugging Face's apply_rotary_pos_emb on one head: x*cos + rotate_half(x)*sin.
Matrix rope(const Matrix &x, const std::vector<int32_t> &pos, double theta) {
  size_t hd = x[0].size(), half = hd / 2;
  Matrix out = x;
  for (size_t t = 0; t < x.size(); ++t) {
    std::vector<double> cosTable(hd), sinTable(hd), rotated(hd);
    for (size_t i = 0; i < hd; ++i) {
      double freq = 1.0 / std::pow(theta, double(2 * (i % half)) / double(hd));
      cosTable[i] = std::cos(pos[t] * freq);
      sinTable[i] = std::sin(pos[t] * freq);
      rotated[i] = i < half ? -x[t][i + half] : x[t][i - half];
    }
    for (size_t i = 0; i < hd; ++i) out[t][i] = x[t][i] * cosTable[i] + rotated[i] * sinTable[i];
  }
  return out;
}

/// softmax(q kᵀ / sqrt(hd) + mask) v with mask = -inf where pos[j] > pos[i].
Matrix attend(const Matrix &q, const Matrix &k, const Matrix &v,
              const std::vector<int32_t> &pos) {
  Matrix scores = matmul(q, transpose(k));
  for (size_t i = 0; i < scores.size(); ++i) {
    double total = 0, top = -INFINITY;
    for (size_t j = 0; j < scores.size(); ++j) {
      scores[i][j] = scores[i][j] / std::sqrt(double(q[0].size())) +
                     (pos[j] > pos[i] ? -INFINITY : 0.0);
      top = std::max(top, scores[i][j]);
    }
    for (double &s : scores[i]) total += (s = std::exp(s - top));
    for (double &s : scores[i]) s /= total;
  }
  return matmul(scores, v);
}

/// Logits of one sequence, computed without the reference library.
Matrix naiveForward(const ModelConfig &c, const TensorMap &p,
                    const std::vector<int32_t> &tokens, const std::vector<int32_t> &pos) {
  const bool gpt2 = c.family == Family::GPT2;
  const size_t D = size_t(c.hidden), hd = size_t(c.headDim);
  Matrix table = param(p, gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight");
  Matrix h;
  for (size_t t = 0; t < tokens.size(); ++t) {
    h.push_back(table[size_t(tokens[t])]);
    if (gpt2)
      for (size_t d = 0; d < D; ++d)
        h[t][d] += param(p, "transformer.wpe.weight")[size_t(pos[t])][d];
  }
  for (int64_t layer = 0; layer < c.numLayers; ++layer) {
    std::string pre = c.blockPrefix(layer) + ".";
    auto w = [&](const std::string &name) { return param(p, pre + name); };
    Matrix attnOut;
    if (gpt2) {
      Matrix x = layerNorm(h, w("ln_1.weight"), w("ln_1.bias"), c.normEps);
      Matrix qkv = addRow(matmul(x, w("attn.c_attn.weight")), w("attn.c_attn.bias"));
      Matrix ctx = zeros(h.size(), D);
      for (size_t head = 0; head < size_t(c.numHeads); ++head) {
        Matrix o = attend(columns(qkv, head * hd, hd), columns(qkv, D + head * hd, hd),
                          columns(qkv, 2 * D + head * hd, hd), pos);
        for (size_t t = 0; t < h.size(); ++t)
          for (size_t d = 0; d < hd; ++d) ctx[t][head * hd + d] = o[t][d];
      }
      attnOut = addRow(matmul(ctx, w("attn.c_proj.weight")), w("attn.c_proj.bias"));
    } else {
      Matrix x = rmsNorm(h, w("input_layernorm.weight"), c.normEps);
      Matrix q = matmul(x, transpose(w("self_attn.q_proj.weight")));
      Matrix k = matmul(x, transpose(w("self_attn.k_proj.weight")));
      Matrix v = matmul(x, transpose(w("self_attn.v_proj.weight")));
      Matrix ctx = zeros(h.size(), size_t(c.numHeads) * hd);
      size_t group = size_t(c.numHeads / c.numKVHeads);
      for (size_t head = 0; head < size_t(c.numHeads); ++head) {
        size_t kvHead = head / group;
        Matrix o = attend(rope(columns(q, head * hd, hd), pos, c.ropeTheta),
                          rope(columns(k, kvHead * hd, hd), pos, c.ropeTheta),
                          columns(v, kvHead * hd, hd), pos);
        for (size_t t = 0; t < h.size(); ++t)
          for (size_t d = 0; d < hd; ++d) ctx[t][head * hd + d] = o[t][d];
      }
      attnOut = matmul(ctx, transpose(w("self_attn.o_proj.weight")));
    }
    h = add(h, attnOut);
    Matrix mlpOut;
    if (gpt2) {
      Matrix x = layerNorm(h, w("ln_2.weight"), w("ln_2.bias"), c.normEps);
      Matrix u = addRow(matmul(x, w("mlp.c_fc.weight")), w("mlp.c_fc.bias"));
      for (auto &row : u)
        for (double &e : row)
          e = 0.5 * e * (1 + std::tanh(std::sqrt(2 / M_PI) * (e + 0.044715 * std::pow(e, 3))));
      mlpOut = addRow(matmul(u, w("mlp.c_proj.weight")), w("mlp.c_proj.bias"));
    } else {
      Matrix x = rmsNorm(h, w("post_attention_layernorm.weight"), c.normEps);
      Matrix g = matmul(x, transpose(w("mlp.gate_proj.weight")));
      Matrix u = matmul(x, transpose(w("mlp.up_proj.weight")));
      for (size_t r = 0; r < g.size(); ++r)
        for (size_t i = 0; i < g[r].size(); ++i) g[r][i] = g[r][i] / (1 + std::exp(-g[r][i])) * u[r][i];
      mlpOut = matmul(g, transpose(w("mlp.down_proj.weight")));
    }
    h = add(h, mlpOut);
  }
  h = gpt2 ? layerNorm(h, param(p, "transformer.ln_f.weight"), param(p, "transformer.ln_f.bias"),
                       c.normEps)
           : rmsNorm(h, param(p, "model.norm.weight"), c.normEps);
  Matrix head = c.tieWordEmbeddings ? table : param(p, "lm_head.weight");
  return matmul(h, transpose(head));
}

/// Runs the library and the naive implementation on the same batch.
void expectMatchesNaive(const ModelConfig &config, const TensorMap &tensors,
                        const Tensor &tokens, const Tensor &positions) {
  Parameters params(tensors, "test");
  Transformer model(config, params);
  Tensor logits = model.forward(tokens, positions);
  const int64_t B = tokens.shape()[0], S = tokens.shape()[1], V = config.vocabSize;
  ASSERT_EQ(logits.shape(), (std::vector<int64_t>{B, S, V}));
  Tensor expected(DType::F32, {B, S, V});
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> tok(tokens.data<int32_t>() + b * S, tokens.data<int32_t>() + (b + 1) * S);
    std::vector<int32_t> pos(positions.data<int32_t>() + b * S,
                             positions.data<int32_t>() + (b + 1) * S);
    Matrix m = naiveForward(config, tensors, tok, pos);
    for (int64_t s = 0; s < S; ++s)
      for (int64_t v = 0; v < V; ++v)
        expected.data<float>()[(b * S + s) * V + v] = float(m[size_t(s)][size_t(v)]);
  }
  // Both compute in double; only the library's f32 output rounds.
  double largest = 0, worstAbs = 0;
  for (int64_t i = 0; i < expected.numElements(); ++i) {
    largest = std::max(largest, std::fabs(expected.elementAsDouble(i)));
    worstAbs = std::max(worstAbs, std::fabs(expected.elementAsDouble(i) - logits.elementAsDouble(i)));
  }
  EXPECT_LT(worstAbs, 1e-7 * largest);
  EXPECT_LT(maxRelativeError(logits, expected), 1e-6);
}

// Row 1 has repeated and out-of-order positions: attention is causal by
// position, not by index.
const Tensor kTokens = i32Tensor({2, 5}, {1, 4, 7, 10, 0, 3, 3, 9, 2, 5});
const Tensor kPositions = i32Tensor({2, 5}, {0, 1, 2, 3, 4, 2, 0, 1, 1, 5});

TEST(DenseTest, GPT2MatchesNaiveImplementation) {
  ModelConfig config = tinyGPT2();
  expectMatchesNaive(config, randomParameters(config, 1), kTokens, kPositions);
}

TEST(DenseTest, LlamaMatchesNaiveImplementation) {
  ModelConfig config = tinyLlama(/*kvHeads=*/2);
  expectMatchesNaive(config, randomParameters(config, 2), kTokens, kPositions);
  config.tieWordEmbeddings = true;
  expectMatchesNaive(config, randomParameters(config, 3), kTokens, kPositions);
}

TEST(DenseTest, GPT2HandComputed) {
  // D=2, one head, n_inner=1, V=2. LayerNorm of a 2-vector (a,b) with a
  // tiny eps is (sign(a-b), -sign(a-b)), which makes every step exact:
  //   h0 = wte = I;  LN1 rows (1,-1), (-1,1);  q = 0 so attention is uniform
  //   over visible keys; v = LN1;  ctx = (1,-1), mean((1,-1),(-1,1)) = (0,0)
  //   a = ctx + (0.5, 0) = (1.5,-1), (0.5,0);  h1 = (2.5,-1), (0.5,1)
  //   LN2 rows (1,-1), (-1,1);  u = first column = 1, -1
  //   m = gelu(u)·(1,2) = (g1, 2 g1), (g-1, 2 g-1)
  //   f = a + m;  h2 = h1 + m = (2.5+g1, -1+2g1), (0.5+g-1, 1+2g-1)
  //   with g1 = 0.841, g-1 = -0.159:  LN_f rows (1,-1), (-1,1)
  //   logits = (LN_f * (2,3) + (0.1,0)) · I.
  ModelConfig c = parseJson(R"({"model_type": "gpt2", "n_layer": 1, "n_embd": 2,
      "n_head": 1, "n_positions": 2, "vocab_size": 2, "n_inner": 1,
      "layer_norm_epsilon": 1e-14})");
  auto f32 = [](std::vector<int64_t> shape, std::vector<float> v) {
    return Tensor::fromValues<float>(DType::F32, std::move(shape), v);
  };
  TensorMap p;
  p.emplace("transformer.wte.weight", f32({2, 2}, {1, 0, 0, 1}));
  p.emplace("transformer.wpe.weight", f32({2, 2}, {0, 0, 0, 0}));
  for (const char *ln : {"transformer.h.0.ln_1", "transformer.h.0.ln_2"}) {
    p.emplace(std::string(ln) + ".weight", f32({2}, {1, 1}));
    p.emplace(std::string(ln) + ".bias", f32({2}, {0, 0}));
  }
  p.emplace("transformer.h.0.attn.c_attn.weight",
            f32({2, 6}, {0, 0, 0, 0, 1, 0, /**/ 0, 0, 0, 0, 0, 1}));
  p.emplace("transformer.h.0.attn.c_attn.bias", f32({6}, {0, 0, 0, 0, 0, 0}));
  p.emplace("transformer.h.0.attn.c_proj.weight", f32({2, 2}, {1, 0, 0, 1}));
  p.emplace("transformer.h.0.attn.c_proj.bias", f32({2}, {0.5f, 0}));
  p.emplace("transformer.h.0.mlp.c_fc.weight", f32({2, 1}, {1, 0}));
  p.emplace("transformer.h.0.mlp.c_fc.bias", f32({1}, {0}));
  p.emplace("transformer.h.0.mlp.c_proj.weight", f32({1, 2}, {1, 2}));
  p.emplace("transformer.h.0.mlp.c_proj.bias", f32({2}, {0, 0}));
  p.emplace("transformer.ln_f.weight", f32({2}, {2, 3}));
  p.emplace("transformer.ln_f.bias", f32({2}, {0.1f, 0}));
  Parameters params(std::move(p), "hand");
  Transformer model(c, params);

  const double g1 = 0.5 * (1 + std::tanh(std::sqrt(2 / M_PI) * 1.044715)); // gelu(1)
  const double gm1 = -0.5 * (1 + std::tanh(-std::sqrt(2 / M_PI) * 1.044715)); // gelu(-1)
  Activations x(2, 2);
  x.values = {1, 0, 0, 1};
  Activations f = model.blockContribution(0, x, {0, 1});
  const double expectedF[] = {1.5 + g1, -1 + 2 * g1, 0.5 + gm1, 2 * gm1};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(f.values[size_t(i)], expectedF[i], 1e-6) << i;

  Tensor logits = model.forward(i32Tensor({1, 2}, {0, 1}), i32Tensor({1, 2}, {0, 1}));
  const float expectedLogits[] = {2.1f, -3.f, -1.9f, 3.f};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(logits.data<float>()[i], expectedLogits[i], 1e-5) << i;
}

TEST(DenseTest, RotaryEmbedding) {
  Activations x(3, 4);
  x.values = {1, 2, 3, 4, /**/ 1, 2, 3, 4, /**/ 1, 2, 3, 4};
  Activations y = x;
  applyRotaryEmbedding(y, /*heads=*/1, /*headDim=*/4, /*theta=*/100.0, {0, 1, 7});
  // Position 0 is the identity.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y.values[size_t(i)], x.values[size_t(i)]);
  // Pair (0,2) turns by p·1, pair (1,3) by p·100^(-1/2) = p/10.
  for (int row = 1; row < 3; ++row) {
    double p = row == 1 ? 1 : 7;
    const double *r = y.row(row);
    EXPECT_NEAR(r[0], 1 * std::cos(p) - 3 * std::sin(p), 1e-6);
    EXPECT_NEAR(r[2], 3 * std::cos(p) + 1 * std::sin(p), 1e-6);
    EXPECT_NEAR(r[1], 2 * std::cos(p / 10) - 4 * std::sin(p / 10), 1e-6);
    EXPECT_NEAR(r[3], 4 * std::cos(p / 10) + 2 * std::sin(p / 10), 1e-6);
  }
  // Scores depend only on relative position: <R(m)q, R(n)k> = <R(m+5)q, R(n+5)k>.
  Activations q(2, 4), k(2, 4);
  q.values = {0.3f, -1, 2, 0.5f, 0.3f, -1, 2, 0.5f};
  k.values = {1, 0.2f, -0.7f, 1.5f, 1, 0.2f, -0.7f, 1.5f};
  applyRotaryEmbedding(q, 1, 4, 100.0, {3, 8});
  applyRotaryEmbedding(k, 1, 4, 100.0, {1, 6});
  double a = 0, b = 0;
  for (int i = 0; i < 4; ++i) {
    a += double(q.row(0)[i]) * k.row(0)[i];
    b += double(q.row(1)[i]) * k.row(1)[i];
  }
  EXPECT_NEAR(a, b, 1e-5);
}

TEST(DenseTest, GroupedQueryAttentionEqualsMultiHeadWithSharedKV) {
  // 4 query heads over 2 KV heads equals 4 KV heads in which heads 2h and
  // 2h+1 carry copies of KV head h.
  ModelConfig gqa = tinyLlama(/*kvHeads=*/2);
  ModelConfig mha = tinyLlama(/*kvHeads=*/4);
  TensorMap gqaParams = randomParameters(gqa, 5);
  TensorMap mhaParams;
  const int64_t hd = gqa.headDim, D = gqa.hidden;
  for (const auto &[name, t] : gqaParams) {
    bool isKV = name.find("k_proj") != std::string::npos ||
                name.find("v_proj") != std::string::npos;
    if (!isKV) {
      mhaParams.emplace(name, t);
      continue;
    }
    Tensor wide(DType::F32, {4 * hd, D});
    for (int64_t head = 0; head < 4; ++head)
      for (int64_t r = 0; r < hd; ++r)
        for (int64_t c = 0; c < D; ++c)
          wide.data<float>()[(head * hd + r) * D + c] =
              t.data<float>()[((head / 2) * hd + r) * D + c];
    mhaParams.emplace(name, std::move(wide));
  }
  Parameters a(gqaParams, "gqa"), b(mhaParams, "mha");
  Tensor la = Transformer(gqa, a).forward(kTokens, kPositions);
  Tensor lb = Transformer(mha, b).forward(kTokens, kPositions);
  EXPECT_LT(maxRelativeError(la, lb), 1e-6);
  // The comparison can fail: 4 independent KV heads give other logits.
  EXPECT_GT(maxRelativeError(Transformer(mha, Parameters(randomParameters(mha, 5), "x"))
                                 .forward(kTokens, kPositions),
                             la),
            1e-3);
}

TEST(DenseTest, HalfPrecisionWeightsAreWidened) {
  ModelConfig config = tinyGPT2(1);
  TensorMap f32 = randomParameters(config, 7), bf16;
  for (auto &[name, t] : f32) {
    std::vector<uint16_t> bits;
    for (int64_t i = 0; i < t.numElements(); ++i) {
      bits.push_back(modrt::floatToBFloat16(t.data<float>()[i]));
      t.data<float>()[i] = modrt::bfloat16ToFloat(bits.back()); // same values in f32
    }
    bf16.emplace(name, Tensor::fromValues<uint16_t>(DType::BF16, t.shape(), bits));
  }
  Parameters a(f32, "f32"), b(bf16, "bf16");
  Tensor la = Transformer(config, a).forward(kTokens, kPositions);
  Tensor lb = Transformer(config, b).forward(kTokens, kPositions);
  EXPECT_TRUE(la.identical(lb));
}

/// The message of the std::exception `fn` throws.
template <typename Fn> std::string errorOf(Fn &&fn) {
  try {
    fn();
  } catch (const std::exception &e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DenseTest, ErrorsNameTheParameterAndInput) {
  ModelConfig config = tinyGPT2();
  TensorMap tensors = randomParameters(config, 1);
  tensors.erase("transformer.h.1.mlp.c_fc.bias");
  std::string message = errorOf([&] { Transformer(config, Parameters(tensors, "w.st")); });
  EXPECT_NE(message.find("w.st: missing parameter 'transformer.h.1.mlp.c_fc.bias' "
                         "(expected shape [12])"),
            std::string::npos) << message;

  tensors = randomParameters(config, 1);
  tensors.at("transformer.wpe.weight") = Tensor(DType::F32, {8, 8});
  message = errorOf([&] { Transformer(config, Parameters(tensors, "w.st")); });
  EXPECT_NE(message.find("parameter 'transformer.wpe.weight' has shape [8x8], expected [16x8]"),
            std::string::npos) << message;

  tensors = randomParameters(config, 1);
  tensors.at("transformer.ln_f.bias") = Tensor(DType::I32, {8});
  message = errorOf([&] { Transformer(config, Parameters(tensors, "w.st")); });
  EXPECT_NE(message.find("'transformer.ln_f.bias' is i32"), std::string::npos) << message;

  Parameters params(randomParameters(config, 1), "w.st");
  Transformer model(config, params);
  message = errorOf([&] { model.forward(i32Tensor({1, 2}, {3, 11}), iotaPositions(1, 2)); });
  EXPECT_NE(message.find("tokens[0,1] = 11 is outside the vocabulary [0, 11)"),
            std::string::npos) << message;
  message = errorOf([&] { model.forward(i32Tensor({1, 2}, {3, 1}), i32Tensor({1, 2}, {0, 16})); });
  EXPECT_NE(message.find("positions[0,1] = 16 is outside [0, 16)"), std::string::npos) << message;
  message = errorOf([&] { model.forward(i32Tensor({1, 2}, {3, 1}), iotaPositions(2, 1)); });
  EXPECT_NE(message.find("must have the same shape"), std::string::npos) << message;
}

} // namespace
