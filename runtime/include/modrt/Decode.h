//===- Decode.h - Prefill and KV-cache decode steps of a model --*- C++ -*-===//
//
// Drives the @prefill and @decode_step entry points that
// `mod-opt --mod-generate-decode` generates (see its description): the
// decoder owns the batch's caches (zeroed, [B,Smax,...], the inputs named
// `cache.<i>`) and the per-sequence lengths, passes them to each call and
// takes the updated caches back. For MoD models each routed block also has
// `routed_lengths.<prefix>` [B] i32: the tokens its own caches hold per
// sequence (only the tokens routed through it), updated in place by the
// entry points like the caches. Positions are the token's index in its
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
  /// `model` and `parameters` must outlive the decoder. For a CUDA model
  /// the decoder uploads the device-resident parameters not uploaded yet
  /// (Model::upload) and keeps the KV caches on the device between steps
  /// (zeroed by each prefill; never copied to the host); the routed lengths
  /// (B integers per routed block) travel with each call.
  Decoder(Model &model, const std::map<std::string, Tensor> &parameters);

  int64_t batch() const { return batch_; }
  int64_t maxSeqLen() const { return maxSeqLen_; }
  /// The longest prompt @prefill takes.
  int64_t prefillLen() const { return prefillLen_; }
  int64_t vocabSize() const { return vocab_; }
  /// Tokens each sequence's caches hold.
  const std::vector<int32_t> &lengths() const { return lengths_; }

  /// The routed blocks of an MoD model (the inputs `routed_lengths.<prefix>`
  /// of the entry points), by prefix, e.g. "transformer.h.1", in order.
  std::vector<std::string> routedBlocks() const;
  /// Tokens of sequence b that block `prefix`'s cache holds (the tokens the
  /// block processed).
  int32_t routedLength(const std::string &prefix, size_t b) const;
  /// Tokens that decode steps appended to active sequences since the last
  /// prefill, and how many of them went through block `prefix`.
  int64_t decodedTokens() const { return decoded_; }
  int64_t routedDecodedTokens(const std::string &prefix) const;

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

  /// Whether `spec` is a cache kept in the model's device buffer.
  bool onDevice(const TensorSpec &spec) const;

  Model &model_;
  const std::map<std::string, Tensor> &parameters_;
  const EntryPoint *prefillEntry_ = nullptr;
  const EntryPoint *stepEntry_ = nullptr;
  int64_t batch_ = 0, maxSeqLen_ = 0, prefillLen_ = 0, vocab_ = 0;
  /// Caches and routed lengths: donated inputs the entry points update in
  /// place.
  std::map<std::string, Tensor> caches_;
  std::map<std::string, int64_t> routedDecoded_;
  std::vector<std::string> routedOrder_;
  int64_t decoded_ = 0;
  std::vector<int32_t> lengths_;
};

} // namespace modrt

#endif // MODRT_DECODE_H
