//===- MoDTest.cpp - The reference's Mixture-of-Depths routing ------------===//

#include "TestModels.h"

#include <cmath>
#include <stdexcept>

using namespace modref;
using namespace modref::test;
using modrt::DType;
using modrt::Tensor;

namespace {

template <typename Fn> std::string errorOf(Fn &&fn) {
  try {
    fn();
  } catch (const std::exception &e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ModSpecTest, ParsesCapacityScheduleAndGate) {
  ModSpec d = ModSpec::parse("");
  EXPECT_EQ(d.capacity(16), 2); // 0.125 * 16
  EXPECT_FALSE(d.isRouted(0));
  EXPECT_TRUE(d.isRouted(1));
  EXPECT_FALSE(d.isRouted(2));
  EXPECT_TRUE(d.isRouted(3));
  EXPECT_EQ(d.gate, Gate::Linear);

  // Fractions round half away from zero and clamp to [1, S].
  EXPECT_EQ(ModSpec::parse("capacity=0.125").capacity(4), 1);  // 0.5 -> 1
  EXPECT_EQ(ModSpec::parse("capacity=0.375").capacity(4), 2);  // 1.5 -> 2
  EXPECT_EQ(ModSpec::parse("capacity=0.625").capacity(4), 3);  // 2.5 -> 3
  EXPECT_EQ(ModSpec::parse("capacity=0.01").capacity(4), 1);   // 0.04 -> 0 -> 1
  EXPECT_EQ(ModSpec::parse("capacity=1.0").capacity(7), 7);
  EXPECT_EQ(ModSpec::parse("capacity=1.5").capacity(7), 7);
  EXPECT_EQ(ModSpec::parse("capacity=3").capacity(7), 3);
  EXPECT_EQ(ModSpec::parse("capacity=1").capacity(7), 1);

  ModSpec every = ModSpec::parse("capacity=2,schedule=every:3:offset:0,gate=sigmoid");
  EXPECT_EQ(every.gate, Gate::Sigmoid);
  for (int64_t layer = 0; layer < 7; ++layer)
    EXPECT_EQ(every.isRouted(layer), layer % 3 == 0) << layer;
  ModSpec everyDefaultOffset = ModSpec::parse("schedule=every:2");
  EXPECT_FALSE(everyDefaultOffset.isRouted(0));
  EXPECT_TRUE(everyDefaultOffset.isRouted(1));

  ModSpec list = ModSpec::parse("schedule=list:0,2,5,gate=linear");
  for (int64_t layer = 0; layer < 7; ++layer)
    EXPECT_EQ(list.isRouted(layer), layer == 0 || layer == 2 || layer == 5) << layer;
  EXPECT_NE(errorOf([&] { list.checkBlocks(4); })
                .find("schedule=list names block 5, but the model has 4 blocks"),
            std::string::npos);
}

TEST(ModSpecTest, RejectsBadSpecs) {
  struct Case {
    const char *spec, *words;
  } cases[] = {
      {"capacity=0", "capacity must be an integer >= 1, got '0'"},
      {"capacity=-0.5", "capacity fraction must be a positive number"},
      {"capacity=abc", "capacity must be an integer"},
      {"capacity=2,capacity=3", "'capacity' given twice"},
      {"schedule=sometimes", "unknown schedule 'sometimes'"},
      {"schedule=every:0", "the period of schedule=every must be an integer >= 1"},
      {"schedule=every:2:start:1", "unknown schedule 'every:2:start:1'"},
      {"schedule=list:1,1", "names a block twice"},
      {"schedule=list:1,x", "a block of schedule=list must be an integer"},
      {"gate=relu", "unknown gate 'relu'"},
      {"routing=causal", "unknown routing 'causal' (expected topk, threshold, predictor or stochastic)"},
      {"k=3", "unknown key 'k'"},
      {"capacity=2,3", "expected key=value, got '3'"},
  };
  for (const Case &c : cases) {
    std::string message = errorOf([&] { ModSpec::parse(c.spec); });
    EXPECT_NE(message.find("invalid --mod spec: "), std::string::npos) << message;
    EXPECT_NE(message.find(c.words), std::string::npos) << c.spec << ": " << message;
  }
  EXPECT_NE(errorOf([] { ModSpec::parse("capacity=9").capacity(8); })
                .find("capacity 9 exceeds the sequence length 8"),
            std::string::npos);
}

TEST(RoutingTest, PaperWorkedExample) {
  // ARCHITECTURE.md section 2: S=4, D=8, K=1.
  Activations x(4, 8);
  x.values = {0.5f, -0.2f, 0.1f, 0.3f, 0.0f, 0.4f, -0.1f, 0.2f,
              -0.1f, 0.5f, 0.2f, -0.3f, 0.1f, 0.0f, 0.4f, -0.2f,
              0.3f, 0.3f, -0.4f, 0.1f, 0.2f, 0.1f, 0.0f, 0.5f,
              0.0f, 0.1f, 0.2f, 0.6f, -0.1f, 0.3f, 0.2f, 0.0f};
  const float w[] = {0.2f, 0.1f, -0.1f, 0.3f, 0.2f, 0.4f, 0.0f, 0.1f};
  std::vector<double> r = routerLogits(x, w);
  const double expectedR[] = {0.34, -0.08, 0.29, 0.27};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(r[size_t(i)], expectedR[i], 1e-6) << i;
  EXPECT_EQ(topKAscending(r, 1), (std::vector<int32_t>{0}));

  const std::vector<float> d = {0.10f, 0.05f, -0.02f, 0.20f, 0.00f, 0.15f, -0.05f, 0.10f};
  auto block = [&](const Activations &xk, const std::vector<int32_t> &pk) {
    EXPECT_EQ(xk.rows, 1);
    EXPECT_EQ(pk, (std::vector<int32_t>{0}));
    Activations out(1, 8);
    out.values.assign(d.begin(), d.end());
    return out;
  };
  RoutedOutput out = routeBlock(x, {0, 1, 2, 3}, w, 1, Gate::Linear, block);
  EXPECT_EQ(out.indices, (std::vector<int32_t>{0}));
  const double row0[] = {0.534, -0.183, 0.0932, 0.368, 0.0, 0.451, -0.117, 0.234};
  for (int c = 0; c < 8; ++c) EXPECT_NEAR(out.out.row(0)[c], row0[c], 1e-6) << c;
  for (int64_t i = 1; i < 4; ++i)
    for (int c = 0; c < 8; ++c) EXPECT_EQ(out.out.row(i)[c], x.row(i)[c]);
}

TEST(RoutingTest, ThresholdRoutesPositiveLogitsOnly) {
  EXPECT_EQ(ModSpec::parse("routing=threshold").routing,
            ModSpec::Routing::Threshold);
  EXPECT_EQ(ModSpec::parse("").routing, ModSpec::Routing::TopK);
  // Zero (of either sign) is not routed: sigmoid(0) = 0.5 is not > 0.5.
  EXPECT_EQ(positiveAscending({0.5, -0.0, 0.0, 2, -1, 1e-300}),
            (std::vector<int32_t>{0, 3, 5}));

  // The worked example's x and w route tokens 0, 2, 3 (r = 0.34, -0.08,
  // 0.29, 0.27); the block sees them alone, with their positions, and
  // token 1 passes through.
  Activations x(4, 8);
  x.values = {0.5f, -0.2f, 0.1f, 0.3f, 0.0f, 0.4f, -0.1f, 0.2f,
              -0.1f, 0.5f, 0.2f, -0.3f, 0.1f, 0.0f, 0.4f, -0.2f,
              0.3f, 0.3f, -0.4f, 0.1f, 0.2f, 0.1f, 0.0f, 0.5f,
              0.0f, 0.1f, 0.2f, 0.6f, -0.1f, 0.3f, 0.2f, 0.0f};
  const float w[] = {0.2f, 0.1f, -0.1f, 0.3f, 0.2f, 0.4f, 0.0f, 0.1f};
  auto ones = [&](const Activations &xk, const std::vector<int32_t> &pk) {
    EXPECT_EQ(pk, (std::vector<int32_t>{10, 12, 13}));
    EXPECT_EQ(xk.row(1)[0], x.row(2)[0]);
    Activations out(xk.rows, xk.width);
    out.values.assign(out.values.size(), 1.0);
    return out;
  };
  RoutedOutput out =
      routeBlockThreshold(x, {10, 11, 12, 13}, w, Gate::Sigmoid, ones);
  EXPECT_EQ(out.indices, (std::vector<int32_t>{0, 2, 3}));
  EXPECT_NEAR(out.out.row(0)[0], x.row(0)[0] + 1.0 / (1.0 + std::exp(-0.34)), 1e-6);
  for (int c = 0; c < 8; ++c) EXPECT_EQ(out.out.row(1)[c], x.row(1)[c]);

  // Nothing routed: the block is not called and the output is the input.
  const float negative[] = {-1, -1, -1, -1, -1, -1, -1, -1};
  Activations y(2, 8);
  y.values.assign(16, 1.0);
  bool called = false;
  RoutedOutput none = routeBlockThreshold(
      y, {0, 1}, negative, Gate::Linear,
      [&](const Activations &xk, const std::vector<int32_t> &) {
        called = true;
        return xk;
      });
  EXPECT_FALSE(called);
  EXPECT_TRUE(none.indices.empty());
  EXPECT_EQ(none.out.values, y.values);
}

TEST(RoutingTest, TopKTiesGoToTheLowerIndexAndIndicesAscend) {
  EXPECT_EQ(topKAscending({1, 2, 2, 1}, 1), (std::vector<int32_t>{1}));
  EXPECT_EQ(topKAscending({1, 2, 2, 1}, 3), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(topKAscending({0, 0, 0, 0}, 2), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(topKAscending({5, -1, 7, 6}, 2), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(topKAscending({-0.0f, 0.0f, -1}, 1), (std::vector<int32_t>{0})); // -0 == +0
  EXPECT_EQ(topKAscending({3, 1, 2}, 3), (std::vector<int32_t>{0, 1, 2}));
}

/// h + g(r) ⊙ f(h) for every token: what a routed block with K = S computes.
Activations fullCapacityBlock(const Transformer &model, int64_t layer,
                              const Activations &h, const std::vector<int32_t> &pos,
                              Gate gate) {
  const float *w = model.parameters().get(routerWeightName(model.config(), layer),
                                          {model.config().hidden});
  std::vector<double> r = routerLogits(h, w);
  Activations f = model.blockContribution(layer, h, pos);
  Activations out = h;
  for (int64_t t = 0; t < h.rows; ++t)
    for (int64_t c = 0; c < h.width; ++c)
      out.row(t)[c] += applyGate(gate, r[size_t(t)]) * f.row(t)[c];
  return out;
}

TEST(RoutingTest, FullCapacityScalesEachBlockOutputByItsGate) {
  for (ModelConfig config : {tinyGPT2(3), tinyLlama(2, 3)}) {
    Parameters params(randomParameters(config, 11), "w");
    Transformer model(config, params);
    const std::vector<int32_t> tokens = {4, 1, 9, 9, 0, 2}, pos = {0, 1, 2, 3, 4, 5};
    for (Gate gate : {Gate::Linear, Gate::Sigmoid}) {
      ModSpec spec = ModSpec::parse(std::string("capacity=1.0,schedule=every-other,gate=") +
                                    (gate == Gate::Linear ? "linear" : "sigmoid"));
      ForwardResult mod = forwardMoD(model, i32Tensor({1, 6}, tokens), i32Tensor({1, 6}, pos), spec);
      ASSERT_EQ(mod.routedIndices.size(), 1u);
      EXPECT_EQ(mod.routedIndices.count(1), 1u);
      for (int j = 0; j < 6; ++j) EXPECT_EQ(mod.routedIndices.at(1).data<int32_t>()[j], j);

      Activations h = model.embed(tokens, pos);
      model.applyBlock(0, h, pos);
      h = fullCapacityBlock(model, 1, h, pos, gate);
      model.applyBlock(2, h, pos);
      Activations expected = model.logits(h);
      Tensor expectedLogits = Tensor::fromValues<float>(
          DType::F32, {1, 6, config.vocabSize},
          std::vector<float>(expected.values.begin(), expected.values.end()));
      EXPECT_LT(maxRelativeError(mod.logits, expectedLogits), 1e-6);
      // The gate really scales: the dense model differs.
      EXPECT_GT(maxRelativeError(model.forward(i32Tensor({1, 6}, tokens), i32Tensor({1, 6}, pos)),
                                 expectedLogits),
                1e-3);
    }
  }
}

TEST(RoutingTest, RoutedTokensAttendOnlyToEachOther) {
  ModelConfig config = tinyLlama(2, 2);
  Parameters params(randomParameters(config, 13), "w");
  Transformer model(config, params);
  const std::vector<int32_t> pos = {0, 1, 2, 3, 4};
  // Rows with small random values, except that the router (which reads
  // dimension 0 only) scores rows 1 and 3 far above the others.
  Uniform rng(19);
  Activations x(5, config.hidden);
  for (double &v : x.values) v = rng.next(1.0f);
  x.row(1)[0] = 5.0f;
  x.row(3)[0] = 4.0f;
  std::vector<float> w(size_t(config.hidden), 0.0f);
  w[0] = 1.0f;
  auto block = [&](const Activations &xk, const std::vector<int32_t> &pk) {
    return model.blockContribution(1, xk, pk);
  };
  RoutedOutput a = routeBlock(x, pos, w.data(), 2, Gate::Linear, block);
  ASSERT_EQ(a.indices, (std::vector<int32_t>{1, 3}));
  // Scaling an unselected row down keeps it unselected and must not change
  // anything else: gathered tokens never see it.
  Activations y = x;
  for (int64_t c = 0; c < y.width; ++c) y.row(2)[c] *= 0.25f;
  RoutedOutput b = routeBlock(y, pos, w.data(), 2, Gate::Linear, block);
  ASSERT_EQ(b.indices, a.indices);
  for (int64_t t : {0, 1, 3, 4})
    for (int64_t c = 0; c < x.width; ++c) EXPECT_EQ(a.out.row(t)[c], b.out.row(t)[c]);
  // Unselected rows pass through; selected ones get r·f on the gathered pair.
  for (int64_t t : {0, 2, 4})
    for (int64_t c = 0; c < x.width; ++c) EXPECT_EQ(a.out.row(t)[c], x.row(t)[c]);
  Activations pair(2, x.width);
  std::copy(x.row(1), x.row(2), pair.row(0));
  std::copy(x.row(3), x.row(4), pair.row(1));
  Activations f = model.blockContribution(1, pair, {1, 3});
  std::vector<double> r = routerLogits(x, w.data());
  for (int64_t j = 0; j < 2; ++j)
    for (int64_t c = 0; c < x.width; ++c)
      EXPECT_NEAR(a.out.row(j == 0 ? 1 : 3)[c],
                  x.row(j == 0 ? 1 : 3)[c] + r[size_t(j == 0 ? 1 : 3)] * f.row(j)[c], 1e-6);
}

TEST(RoutingTest, BatchRowsRouteIndependently) {
  ModelConfig config = tinyGPT2(2);
  Parameters params(randomParameters(config, 17), "w");
  Transformer model(config, params);
  ModSpec spec = ModSpec::parse("capacity=2,schedule=list:0,1");
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 10, 9, 8, 7, 0, 5};
  const std::vector<int32_t> pos = {0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8};
  ForwardResult both = forwardMoD(model, i32Tensor({2, 6}, tokens), i32Tensor({2, 6}, pos), spec);
  ASSERT_EQ(both.routedIndices.size(), 2u);
  bool rowsDiffer = false;
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<int32_t> tok(tokens.begin() + b * 6, tokens.begin() + b * 6 + 6);
    std::vector<int32_t> p(pos.begin() + b * 6, pos.begin() + b * 6 + 6);
    ForwardResult one = forwardMoD(model, i32Tensor({1, 6}, tok), i32Tensor({1, 6}, p), spec);
    for (int64_t layer : {0, 1})
      for (int64_t j = 0; j < 2; ++j) {
        int32_t i = both.routedIndices.at(layer).data<int32_t>()[b * 2 + j];
        EXPECT_EQ(i, one.routedIndices.at(layer).data<int32_t>()[j]);
        rowsDiffer |= i != both.routedIndices.at(layer).data<int32_t>()[(1 - b) * 2 + j];
      }
    const int64_t n = 6 * config.vocabSize;
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(both.logits.data<float>()[b * n + i], one.logits.data<float>()[i]);
  }
  EXPECT_TRUE(rowsDiffer) << "the test data should route the two rows differently";
}

/// A tensor of `shape` with `values`.
Tensor f32Tensor(std::vector<int64_t> shape, const std::vector<float> &values) {
  Tensor t(DType::F32, std::move(shape));
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

TEST(RoutingTest, PredictorComputesItsMlpAndDecides) {
  ModelConfig config = tinyLlama(2, 2); // D = 8
  auto tensors = randomParameters(config, 5);
  // H = 2: W1 picks x[0] and x[1]; q = tanh(x0 + 0.1) - 2 tanh(x1 - 0.2) + 0.5.
  std::vector<float> w1(16, 0.0f);
  w1[0 * 2 + 0] = 1.0f;
  w1[1 * 2 + 1] = 1.0f;
  const std::string p = "model.layers.1.mod.predictor.";
  tensors[p + "fc1.weight"] = f32Tensor({8, 2}, w1);
  tensors[p + "fc1.bias"] = f32Tensor({2}, {0.1f, -0.2f});
  tensors[p + "fc2.weight"] = f32Tensor({2}, {1.0f, -2.0f});
  tensors[p + "fc2.bias"] = f32Tensor({}, {0.5f});
  Parameters params(tensors, "w");
  Predictor q = Predictor::load(params, config, 1);
  EXPECT_EQ(q.hidden, 2);
  Activations x(3, 8);
  const double rows[3][2] = {{0.3, 0.9}, {-1.0, -0.5}, {2.0, 0.4}};
  for (int i = 0; i < 3; ++i) {
    x.row(i)[0] = rows[i][0];
    x.row(i)[1] = rows[i][1];
    x.row(i)[5] = 7.0; // ignored by W1
  }
  std::vector<double> logits = q.logits(x);
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(logits[size_t(i)],
                std::tanh(rows[i][0] + 0.1f) - 2 * std::tanh(rows[i][1] - 0.2f) + 0.5,
                1e-7)
        << i;
  // 0.3/0.9: 0.380 - 1.209 + 0.5 < 0; -1/-0.5: -0.716 + 1.233 + 0.5 > 0;
  // 2/0.4: 0.970 - 0.395 + 0.5 > 0.
  EXPECT_EQ(positiveAscending(logits), (std::vector<int32_t>{1, 2}));

  // Predictor routing decides by q, whatever the router says: b2 = 100
  // routes every token, b2 = -100 none.
  tensors[p + "fc2.bias"] = f32Tensor({}, {100.0f});
  Parameters all(tensors, "w");
  Transformer model(config, all);
  ForwardResult routed =
      forwardMoD(model, i32Tensor({1, 4}, {1, 2, 3, 4}), iotaPositions(1, 4),
                 ModSpec::parse("routing=predictor"));
  const Tensor &mask = routed.routedMask.at(1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(mask.data<int32_t>()[i], 1) << i;
  tensors[p + "fc2.bias"] = f32Tensor({}, {-100.0f});
  Parameters none(tensors, "w");
  Transformer skipping(config, none);
  ForwardResult skipped =
      forwardMoD(skipping, i32Tensor({1, 4}, {1, 2, 3, 4}), iotaPositions(1, 4),
                 ModSpec::parse("routing=predictor"));
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(skipped.routedMask.at(1).data<int32_t>()[i], 0) << i;
  // No token routed through block 1: the logits of a model whose block 1 is
  // skipped, i.e. of the one-block model with the same final norm and head.
  ModelConfig one = tinyLlama(2, 1);
  auto oneTensors = tensors;
  Parameters oneParams(oneTensors, "w");
  Transformer oneBlock(one, oneParams);
  Tensor expected = oneBlock.forward(i32Tensor({1, 4}, {1, 2, 3, 4}), iotaPositions(1, 4));
  EXPECT_LT(maxRelativeError(skipped.logits, expected), 1e-6);

  tensors.erase(p + "fc2.bias");
  Parameters missing(tensors, "w.st");
  std::string message = errorOf([&] { Predictor::load(missing, config, 1); });
  EXPECT_NE(message.find("w.st: missing parameter 'model.layers.1.mod.predictor.fc2.bias'"),
            std::string::npos)
      << message;
}

TEST(RoutingTest, MissingRouterWeightIsNamed) {
  ModelConfig config = tinyLlama(2, 2);
  auto tensors = randomParameters(config, 1);
  tensors.erase("model.layers.1.mod.router.weight");
  Parameters params(tensors, "w.st");
  Transformer model(config, params);
  std::string message = errorOf([&] {
    forwardMoD(model, i32Tensor({1, 2}, {1, 2}), iotaPositions(1, 2), ModSpec::parse(""));
  });
  EXPECT_NE(message.find("w.st: missing parameter 'model.layers.1.mod.router.weight' "
                         "(expected shape [8])"),
            std::string::npos) << message;
  message = errorOf([&] {
    forwardMoD(model, i32Tensor({1, 2}, {1, 2}), iotaPositions(1, 2),
               ModSpec::parse("schedule=list:2"));
  });
  EXPECT_NE(message.find("names block 2, but the model has 2 blocks"), std::string::npos)
      << message;
}

} // namespace
