//===- Decode.cpp - Prefill and KV-cache decode steps of a model ----------===//

#include "modrt/Decode.h"

#include "modrt/Error.h"

#include <algorithm>
#include <cstring>

using namespace modrt;

namespace {

const TensorSpec *findInput(const EntryPoint &entry, const std::string &name) {
  for (const TensorSpec &spec : entry.inputs)
    if (spec.name == name)
      return &spec;
  return nullptr;
}

const TensorSpec &needInput(const EntryPoint &entry, const std::string &name,
                            DType dtype, size_t rank) {
  const TensorSpec *spec = findInput(entry, name);
  if (!spec)
    throw Error("entry point '" + entry.name + "' has no input '" + name +
                "': not a model compiled from --mod-generate-decode");
  if (spec->dtype != dtype || spec->shape.size() != rank)
    throw Error("entry point '" + entry.name + "': input '" + name +
                "' has an unexpected type " + spec->str());
  return *spec;
}

bool isCache(const TensorSpec &spec) { return spec.name.rfind("cache.", 0) == 0; }

const char kRoutedLengths[] = "routed_lengths.";

bool isRoutedLengths(const TensorSpec &spec) {
  return spec.name.rfind(kRoutedLengths, 0) == 0;
}

/// Inputs the decoder owns and the entry points update in place.
bool isState(const TensorSpec &spec) { return isCache(spec) || isRoutedLengths(spec); }

} // namespace

Decoder::Decoder(Model &model,
                 const std::map<std::string, Tensor> &parameters)
    : model_(model), parameters_(parameters) {
  prefillEntry_ = model.manifest().findEntry("prefill");
  stepEntry_ = model.manifest().findEntry("decode_step");
  if (!prefillEntry_ || !stepEntry_)
    throw Error(model.directory() +
                ": the model has no prefill and decode_step entry points "
                "(compile it after mod-opt --mod-generate-decode); it has: " +
                model.manifest().entryNames());
  const TensorSpec &prefillTokens =
      needInput(*prefillEntry_, "tokens", DType::I32, 2);
  needInput(*prefillEntry_, "positions", DType::I32, 2);
  needInput(*prefillEntry_, "lengths", DType::I32, 1);
  const TensorSpec &stepTokens = needInput(*stepEntry_, "tokens", DType::I32, 1);
  needInput(*stepEntry_, "positions", DType::I32, 1);
  needInput(*stepEntry_, "lengths", DType::I32, 1);
  batch_ = prefillTokens.shape[0];
  prefillLen_ = prefillTokens.shape[1];
  if (stepTokens.shape[0] != batch_)
    throw Error(model.directory() + ": prefill and decode_step disagree on the "
                                    "batch size");
  if (stepEntry_->outputs.empty() || stepEntry_->outputs[0].name != "logits" ||
      stepEntry_->outputs[0].shape.size() != 2 ||
      stepEntry_->outputs[0].dtype != DType::F32)
    throw Error(model.directory() +
                ": decode_step's first output must be f32 logits [B,V]");
  vocab_ = stepEntry_->outputs[0].shape[1];

  for (const EntryPoint *entry : {prefillEntry_, stepEntry_})
    for (const TensorSpec &spec : entry->inputs) {
      if (spec.isParameter()) {
        auto it = parameters.find(spec.name);
        if (it == parameters.end())
          throw Error("no weights for parameter '" + spec.name + "' " +
                      spec.str() + " of entry point '" + entry->name + "'");
        if (it->second.dtype() != spec.dtype || it->second.shape() != spec.shape)
          throw Error("parameter '" + spec.name + "' is " +
                      manifestDTypeName(it->second.dtype()) + "[" +
                      formatShape(it->second.shape()) + "], entry point '" +
                      entry->name + "' expects " + spec.str());
        continue;
      }
      if (!isState(spec))
        continue;
      auto [it, inserted] = caches_.emplace(spec.name, Tensor(spec.dtype, spec.shape));
      if (!inserted && (it->second.dtype() != spec.dtype ||
                        it->second.shape() != spec.shape))
        throw Error(model.directory() + ": prefill and decode_step disagree on " +
                    spec.name);
      if (isRoutedLengths(spec)) {
        if (spec.dtype != DType::I32 || spec.shape.size() != 1 ||
            spec.shape[0] != batch_)
          throw Error(model.directory() + ": " + spec.name + " " + spec.str() +
                      " is not i32 [B]");
        std::string prefix = spec.name.substr(sizeof(kRoutedLengths) - 1);
        if (routedDecoded_.emplace(prefix, 0).second)
          routedOrder_.push_back(prefix);
        continue;
      }
      if (spec.shape.size() < 2 || spec.shape[0] != batch_)
        throw Error(model.directory() + ": cache " + spec.name + " " +
                    spec.str() + " is not [B,Smax,...]");
      if (maxSeqLen_ && spec.shape[1] != maxSeqLen_)
        throw Error(model.directory() + ": the caches disagree on Smax");
      maxSeqLen_ = spec.shape[1];
    }
  if (caches_.empty())
    throw Error(model.directory() + ": decode_step takes no cache.<i> inputs");
  // The caches are updated in place: each must be an output aliasing its
  // input, and the logits the only other output.
  for (const EntryPoint *entry : {prefillEntry_, stepEntry_}) {
    size_t aliased = 0;
    for (const TensorSpec &out : entry->outputs)
      aliased += out.aliasOf && isState(entry->inputs[*out.aliasOf]) ? 1 : 0;
    if (aliased != caches_.size() || entry->outputs.size() != aliased + 1 ||
        entry->outputs[0].name != "logits")
      throw Error(model.directory() + ": entry point '" + entry->name +
                  "' must return the logits and every cache in place "
                  "(alias_of)");
  }
  lengths_.assign(size_t(batch_), 0);
  // A CUDA model: parameters uploaded once, not copied on every call.
  for (const EntryPoint *entry : {prefillEntry_, stepEntry_})
    for (const TensorSpec &spec : entry->inputs)
      if (spec.isParameter() && model_.isDeviceResident(spec.name) &&
          !model_.hasDeviceBuffer(spec.name))
        model_.upload(spec.name, parameters_.at(spec.name));
}

bool Decoder::onDevice(const TensorSpec &spec) const {
  return isCache(spec) && model_.isDeviceResident(spec.name);
}

void Decoder::checkToken(int32_t token, size_t sequence) const {
  if (token < 0 || token >= vocab_)
    throw Error("sequence " + std::to_string(sequence) + ": token id " +
                std::to_string(token) + " is outside the vocabulary [0, " +
                std::to_string(vocab_) + ")");
}

std::vector<Tensor *> Decoder::inputsFor(const EntryPoint &entry,
                                         Tensor &tokens, Tensor &positions,
                                         Tensor &lengths) {
  std::vector<Tensor *> inputs;
  for (const TensorSpec &spec : entry.inputs) {
    if (spec.isParameter() && model_.hasDeviceBuffer(spec.name))
      inputs.push_back(nullptr); // uploaded once (Model::upload)
    else if (spec.isParameter())
      // callInPlace writes only the inputs an output aliases: the caches.
      inputs.push_back(const_cast<Tensor *>(&parameters_.at(spec.name)));
    else if (spec.name == "tokens")
      inputs.push_back(&tokens);
    else if (spec.name == "positions")
      inputs.push_back(&positions);
    else if (spec.name == "lengths")
      inputs.push_back(&lengths);
    else if (onDevice(spec))
      inputs.push_back(nullptr); // its device buffer, updated in place
    else if (isState(spec))
      inputs.push_back(&caches_.at(spec.name));
    else
      throw Error("entry point '" + entry.name + "' takes an input '" +
                  spec.name + "' the decoder does not know");
  }
  return inputs;
}

Tensor Decoder::prefill(const std::vector<std::vector<int32_t>> &prompts) {
  if (int64_t(prompts.size()) != batch_)
    throw Error("expected " + std::to_string(batch_) + " prompts (the batch), got " +
                std::to_string(prompts.size()));
  Tensor tokens(DType::I32, {batch_, prefillLen_});
  Tensor positions(DType::I32, {batch_, prefillLen_});
  Tensor lengths(DType::I32, {batch_});
  for (size_t b = 0; b < prompts.size(); ++b) {
    const std::vector<int32_t> &prompt = prompts[b];
    if (prompt.empty())
      throw Error("sequence " + std::to_string(b) + ": the prompt is empty");
    if (int64_t(prompt.size()) > prefillLen_)
      throw Error("sequence " + std::to_string(b) + ": the prompt has " +
                  std::to_string(prompt.size()) +
                  " tokens, more than the model's prefill length " +
                  std::to_string(prefillLen_));
    for (int64_t i = 0; i < prefillLen_; ++i) {
      int32_t token = i < int64_t(prompt.size()) ? prompt[size_t(i)] : 0;
      checkToken(token, b);
      tokens.data<int32_t>()[int64_t(b) * prefillLen_ + i] = token;
      positions.data<int32_t>()[int64_t(b) * prefillLen_ + i] = int32_t(i);
    }
    lengths.data<int32_t>()[b] = int32_t(prompt.size());
  }
  for (auto &entry : caches_)
    std::memset(entry.second.rawData(), 0, entry.second.byteSize());
  for (const TensorSpec &spec : prefillEntry_->inputs)
    if (onDevice(spec))
      model_.upload(spec.name, caches_.at(spec.name));
  std::vector<Tensor> outputs = model_.callInPlace(
      prefillEntry_->name, inputsFor(*prefillEntry_, tokens, positions, lengths));
  for (size_t b = 0; b < prompts.size(); ++b)
    lengths_[b] = int32_t(prompts[b].size());
  decoded_ = 0;
  for (auto &entry : routedDecoded_)
    entry.second = 0;
  return std::move(outputs.at(0));
}

Tensor Decoder::step(const std::vector<int32_t> &next) {
  return step(next, std::vector<bool>(next.size(), true));
}

Tensor Decoder::step(const std::vector<int32_t> &next,
                     const std::vector<bool> &active) {
  if (int64_t(next.size()) != batch_ || active.size() != next.size())
    throw Error("expected " + std::to_string(batch_) +
                " tokens (one per sequence), got " + std::to_string(next.size()));
  Tensor tokens(DType::I32, {batch_});
  Tensor positions(DType::I32, {batch_});
  Tensor lengths(DType::I32, {batch_});
  for (size_t b = 0; b < next.size(); ++b) {
    checkToken(next[b], b);
    if (active[b] && lengths_[b] >= maxSeqLen_)
      throw Error("sequence " + std::to_string(b) + ": the KV cache is full: "
                  "position " + std::to_string(lengths_[b]) +
                  " needs a slot, but the model was generated with "
                  "max-seq-len " + std::to_string(maxSeqLen_));
    tokens.data<int32_t>()[b] = next[b];
    positions.data<int32_t>()[b] = lengths_[b];
    lengths.data<int32_t>()[b] = lengths_[b];
  }
  std::map<std::string, std::vector<int32_t>> before;
  for (const auto &entry : routedDecoded_) {
    const int32_t *p = caches_.at(kRoutedLengths + entry.first).data<int32_t>();
    before[entry.first].assign(p, p + batch_);
  }
  std::vector<Tensor> outputs = model_.callInPlace(
      stepEntry_->name, inputsFor(*stepEntry_, tokens, positions, lengths));
  // An inactive sequence's token went to the slot past its length, which
  // stays unused (and is overwritten if it ever resumes); in a routed block
  // its length is put back.
  for (size_t b = 0; b < lengths_.size(); ++b)
    if (active[b]) {
      ++lengths_[b];
      ++decoded_;
    }
  for (auto &entry : routedDecoded_) {
    int32_t *p = caches_.at(kRoutedLengths + entry.first).data<int32_t>();
    for (size_t b = 0; b < lengths_.size(); ++b) {
      if (active[b])
        entry.second += p[b] - before[entry.first][b];
      else
        p[b] = before[entry.first][b];
    }
  }
  return std::move(outputs.at(0));
}

std::vector<std::string> Decoder::routedBlocks() const {
  return routedOrder_;
}

int32_t Decoder::routedLength(const std::string &prefix, size_t b) const {
  auto it = caches_.find(kRoutedLengths + prefix);
  if (it == caches_.end() || b >= size_t(batch_))
    throw Error("no routed block '" + prefix + "' or sequence " +
                std::to_string(b));
  return it->second.data<int32_t>()[b];
}

int64_t Decoder::routedDecodedTokens(const std::string &prefix) const {
  auto it = routedDecoded_.find(prefix);
  if (it == routedDecoded_.end())
    throw Error("no routed block '" + prefix + "'");
  return it->second;
}
