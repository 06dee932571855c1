//===- SampleTest.cpp - modrt::Sampler ------------------------------------===//

#include "modrt/Error.h"
#include "modrt/Sample.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

using namespace modrt;

namespace {

std::vector<int32_t> draw(SamplingOptions options, uint64_t seed,
                          const std::vector<float> &logits, int n) {
  Sampler sampler(options, seed);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i)
    out.push_back(sampler.sample(logits.data(), int64_t(logits.size())));
  return out;
}

TEST(SamplerTest, TemperatureZeroIsArgmaxWithTiesToTheLowerId) {
  SamplingOptions greedy;
  greedy.temperature = 0;
  EXPECT_EQ(draw(greedy, 1, {0.1f, 3.f, -2.f, 3.f}, 5),
            (std::vector<int32_t>(5, 1)));
  EXPECT_EQ(draw(greedy, 2, {-1.f}, 1), (std::vector<int32_t>{0}));
}

TEST(SamplerTest, SameSeedSameTokensOtherSeedOtherTokens) {
  std::vector<float> logits(50, 0.f);
  SamplingOptions options;
  EXPECT_EQ(draw(options, 7, logits, 40), draw(options, 7, logits, 40));
  EXPECT_NE(draw(options, 7, logits, 40), draw(options, 8, logits, 40));
}

TEST(SamplerTest, FrequenciesFollowTheSoftmax) {
  // p = (0.5, 0.3, 0.2) at temperature 1; at temperature 2 the logits halve.
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplingOptions options;
  const int n = 40000;
  std::vector<int> counts(3, 0);
  for (int32_t t : draw(options, 3, logits, n)) ++counts[size_t(t)];
  const double p[] = {0.5, 0.3, 0.2};
  for (int i = 0; i < 3; ++i) // 5 standard deviations
    EXPECT_NEAR(counts[size_t(i)] / double(n), p[i],
                5 * std::sqrt(p[i] * (1 - p[i]) / n)) << i;

  options.temperature = 2;
  counts.assign(3, 0);
  for (int32_t t : draw(options, 4, logits, n)) ++counts[size_t(t)];
  double z = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.2);
  for (int i = 0; i < 3; ++i) {
    double q = std::sqrt(p[i]) / z;
    EXPECT_NEAR(counts[size_t(i)] / double(n), q, 5 * std::sqrt(q * (1 - q) / n)) << i;
  }
}

TEST(SamplerTest, TopKAndTopPRestrictTheCandidates) {
  std::vector<float> logits = {1.f, 4.f, 3.f, 2.f, 0.f};
  SamplingOptions topK;
  topK.topK = 2;
  std::set<int32_t> seen;
  for (int32_t t : draw(topK, 5, logits, 500)) seen.insert(t);
  EXPECT_EQ(seen, (std::set<int32_t>{1, 2}));

  // Probabilities ~ (0.032, 0.64, 0.24, 0.087, 0.012): top-p 0.8 keeps the
  // two most likely (0.64 + 0.24 >= 0.8), top-p 0.5 only the first.
  SamplingOptions topP;
  topP.topP = 0.8;
  seen.clear();
  for (int32_t t : draw(topP, 6, logits, 500)) seen.insert(t);
  EXPECT_EQ(seen, (std::set<int32_t>{1, 2}));
  topP.topP = 0.5;
  EXPECT_EQ(draw(topP, 6, logits, 20), (std::vector<int32_t>(20, 1)));
}

TEST(SamplerTest, RejectsBadOptions) {
  auto message = [](SamplingOptions o) {
    try {
      Sampler s(o, 0);
    } catch (const Error &e) {
      return std::string(e.what());
    }
    return std::string();
  };
  SamplingOptions o;
  o.temperature = -1;
  EXPECT_NE(message(o).find("--temperature must be a finite number >= 0"), std::string::npos);
  o = SamplingOptions();
  o.temperature = NAN;
  EXPECT_NE(message(o).find("--temperature"), std::string::npos);
  o = SamplingOptions();
  o.topK = -2;
  EXPECT_NE(message(o).find("--top-k must be >= 0"), std::string::npos);
  o = SamplingOptions();
  o.topP = 1.5;
  EXPECT_NE(message(o).find("--top-p must lie in (0, 1]"), std::string::npos);
}

} // namespace
