//===- Decode.h - Prefill and KV-cache decode steps of a model --*- C++ -*-===//
//
// Drives the @prefill and @decode_step entry points that
// `mod-opt --mod-generate-decode` generates (see its description): the
// decoder owns the batch's caches (zeroed, [B,Smax,...], the inputs named
// `cache.<i>`) and the per-sequence lengths, passes them to each call and
// takes the updated caches back. Positions are the token's index in its
// sequence: 0..n-1 for a prompt of n tokens, then lengths[b] for each new
// token.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_DECODE_H
#define MODRT_DECODE_H

#include "modrt/Model.h"
#include "modrt/Tensor.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace modrt {

class Decoder {
public:
  /// Checks that `model` has @prefill and @decode_step with matching caches
  /// and that `parameters` holds every parameter they take (by name, with
  /// the manifest's dtype and shape). Throws Error naming what is wrong.
  /// `model` and `parameters` must outlive the decoder.
  Decoder(const Model &model, const std::map<std::string, Tensor> &parameters);

  int64_t batch() const { return batch_; }
  int64_t maxSeqLen() const { return maxSeqLen_; }
  /// The longest prompt @prefill takes.
  int64_t prefillLen() const { return prefillLen_; }
  int64_t vocabSize() const { return vocab_; }
  /// Tokens each sequence's caches hold.
  const std::vector<int32_t> &lengths() const { return lengths_; }

  /// Empties the caches and runs the prompts (one per sequence, 1 to
  /// prefillLen() tokens each, ids in [0, vocab)); returns f32 logits
  /// [B, prefillLen, V], of which row b's first prompts[b].size() positions
  /// are meaningful.
  Tensor prefill(const std::vector<std::vector<int32_t>> &prompts);

  /// Appends one token to every sequence (at position lengths()[b]) and
  /// returns its f32 logits [B,V]. A sequence whose cache is full
  /// (lengths()[b] == maxSeqLen()) is an Error naming it.
  Tensor step(const std::vector<int32_t> &tokens);
  /// The same for the sequences with `active[b]` set; the others (finished
  /// samples) keep their length, and their logits rows mean nothing.
  Tensor step(const std::vector<int32_t> &tokens, const std::vector<bool> &active);

private:
  std::vector<Tensor *> inputsFor(const EntryPoint &entry, Tensor &tokens,
                                  Tensor &positions, Tensor &lengths);
  void checkToken(int32_t token, size_t sequence) const;

  const Model &model_;
  const std::map<std::string, Tensor> &parameters_;
  const EntryPoint *prefillEntry_ = nullptr;
  const EntryPoint *stepEntry_ = nullptr;
  int64_t batch_ = 0, maxSeqLen_ = 0, prefillLen_ = 0, vocab_ = 0;
  std::map<std::string, Tensor> caches_;
  std::vector<int32_t> lengths_;
};

} // namespace modrt

#endif // MODRT_DECODE_H
