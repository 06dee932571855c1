//===- Sample.h - Drawing the next token from logits ------------*- C++ -*-===//
//
// Temperature, top-k and top-p (nucleus) sampling, reproducible from a seed:
// the generator is std::mt19937_64 (its output is fixed by the C++ standard)
// and a uniform double is its top 53 bits times 2^-53, so the same seed
// gives the same tokens with any standard library.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_SAMPLE_H
#define MODRT_SAMPLE_H

#include <cstdint>
#include <random>

namespace modrt {

struct SamplingOptions {
  /// 0: greedy (the most likely token, the lowest id on ties).
  double temperature = 1.0;
  /// Keep the k most likely tokens; 0 keeps all.
  int64_t topK = 0;
  /// Keep the most likely tokens whose probabilities sum to at least p
  /// (after top-k and temperature); 1 keeps all.
  double topP = 1.0;

  /// Throws Error naming the option when a value is out of range
  /// (temperature < 0 or not finite, topK < 0, topP not in (0, 1]).
  void validate() const;
};

class Sampler {
public:
  Sampler(SamplingOptions options, uint64_t seed);
  /// A token id in [0, vocab) drawn from `logits`.
  int32_t sample(const float *logits, int64_t vocab);

private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

} // namespace modrt

#endif // MODRT_SAMPLE_H
