//===- Sample.cpp - Drawing the next token from logits --------------------===//

#include "modrt/Sample.h"

#include "modrt/Error.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

using namespace modrt;

void SamplingOptions::validate() const {
  if (!std::isfinite(temperature) || temperature < 0)
    throw Error("--temperature must be a finite number >= 0, got " +
                std::to_string(temperature));
  if (topK < 0)
    throw Error("--top-k must be >= 0 (0 keeps every token), got " +
                std::to_string(topK));
  if (!(topP > 0 && topP <= 1))
    throw Error("--top-p must lie in (0, 1] (1 keeps every token), got " +
                std::to_string(topP));
}

Sampler::Sampler(SamplingOptions options, uint64_t seed)
    : options_(options), rng_(seed) {
  options_.validate();
}

int32_t Sampler::sample(const float *logits, int64_t vocab) {
  if (vocab <= 0)
    throw Error("cannot sample from an empty vocabulary");
  if (options_.temperature == 0) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (logits[i] > logits[best]) best = i;
    return int32_t(best);
  }
  // Candidates by decreasing logit, ties by increasing id.
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  size_t keep = order.size();
  if (options_.topK > 0) keep = std::min(keep, size_t(options_.topK));
  std::vector<double> probs(keep);
  double top = double(logits[order[0]]), total = 0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((double(logits[order[i]]) - top) / options_.temperature);
    total += probs[i];
  }
  if (options_.topP < 1) {
    double cumulative = 0;
    size_t nucleus = 0;
    while (nucleus < keep) {
      cumulative += probs[nucleus++] / total;
      if (cumulative >= options_.topP) break;
    }
    keep = nucleus;
    probs.resize(keep);
    total = std::accumulate(probs.begin(), probs.end(), 0.0);
  }
  double u = double(rng_() >> 11) * 0x1.0p-53 * total;
  double cumulative = 0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += probs[i];
    if (u < cumulative) return order[i];
  }
  return order[keep - 1];
}
