//===- Tokenizer.cpp - byte-level and SentencePiece tokenizers ------------===//

#include "modrt/Tokenizer.h"

#include "modrt/Error.h"
#include "modrt/FileUtil.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <unordered_map>

namespace modrt {

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

//===----------------------------------------------------------------------===//
// Bytes
//===----------------------------------------------------------------------===//

uint64_t ByteTokenizer::fingerprint() const { return fnv1a64("byte"); }

std::vector<uint32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<uint32_t> ids;
  ids.reserve(text.size());
  for (unsigned char c : text)
    ids.push_back(c);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<uint32_t> &ids) const {
  std::string text;
  text.reserve(ids.size());
  for (uint32_t id : ids) {
    if (id >= 256)
      throw Error("byte tokenizer: token id " + std::to_string(id) +
                  " is outside the vocabulary of 256");
    text.push_back(static_cast<char>(id));
  }
  return text;
}

//===----------------------------------------------------------------------===//
// SentencePiece
//===----------------------------------------------------------------------===//

struct SentencePieceTokenizer::Impl {
  sentencepiece::SentencePieceProcessor processor;
};

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer>
SentencePieceTokenizer::load(const std::string &path) {
  std::string serialized = readFile(path);
  auto impl = std::make_unique<Impl>();
  auto status = impl->processor.LoadFromSerializedProto(serialized);
  if (!status.ok())
    throw Error("'" + path + "' is not a SentencePiece model: " +
                status.ToString());
  std::unique_ptr<SentencePieceTokenizer> tokenizer(
      new SentencePieceTokenizer(std::move(impl)));
  tokenizer->path_ = path;
  tokenizer->fingerprint_ = fnv1a64(serialized);
  return tokenizer;
}

std::string SentencePieceTokenizer::describe() const {
  return "sentencepiece:" + path_;
}

uint32_t SentencePieceTokenizer::vocabSize() const {
  return static_cast<uint32_t>(impl_->processor.GetPieceSize());
}

std::vector<uint32_t>
SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  auto status = impl_->processor.Encode(text, &ids);
  if (!status.ok())
    throw Error("SentencePiece encoding failed: " + status.ToString());
  return std::vector<uint32_t>(ids.begin(), ids.end());
}

std::string
SentencePieceTokenizer::decode(const std::vector<uint32_t> &ids) const {
  std::vector<int> signedIds;
  signedIds.reserve(ids.size());
  uint32_t vocab = vocabSize();
  for (uint32_t id : ids) {
    if (id >= vocab)
      throw Error("token id " + std::to_string(id) +
                  " is outside the SentencePiece vocabulary of " +
                  std::to_string(vocab));
    signedIds.push_back(static_cast<int>(id));
  }
  std::string text;
  auto status = impl_->processor.Decode(signedIds, &text);
  if (!status.ok())
    throw Error("SentencePiece decoding failed: " + status.ToString());
  return text;
}

std::vector<uint32_t> SentencePieceTokenizer::documentSeparator() const {
  int eos = impl_->processor.eos_id();
  if (eos >= 0)
    return {static_cast<uint32_t>(eos)};
  return encode("\n");
}

namespace {
/// Feeds the trainer one line of the corpus at a time (SentencePiece trains
/// on sentences; newlines are a user-defined piece of their own).
class LineIterator : public sentencepiece::SentenceIterator {
public:
  explicit LineIterator(const std::vector<std::string> &documents)
      : documents_(documents) {
    advance();
  }
  bool done() const override { return doc_ >= documents_.size(); }
  void Next() override { advance(); }
  const std::string &value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }

private:
  void advance() {
    while (doc_ < documents_.size()) {
      const std::string &d = documents_[doc_];
      if (pos_ >= d.size()) {
        ++doc_;
        pos_ = 0;
        continue;
      }
      size_t end = d.find('\n', pos_);
      if (end == std::string::npos)
        end = d.size();
      line_ = d.substr(pos_, end - pos_);
      pos_ = end + 1;
      if (!line_.empty())
        return;
    }
  }
  const std::vector<std::string> &documents_;
  size_t doc_ = 0, pos_ = 0;
  std::string line_;
};
} // namespace

void SentencePieceTokenizer::train(const std::vector<std::string> &documents,
                                   uint32_t vocabSize,
                                   const std::string &modelPath,
                                   unsigned threads) {
  if (vocabSize < 300)
    throw Error("SentencePiece vocabulary size " + std::to_string(vocabSize) +
                " is too small: byte fallback alone needs 259 pieces; use 300 "
                "or more");
  std::unordered_map<std::string, std::string> args{
      {"model_type", "unigram"},
      {"vocab_size", std::to_string(vocabSize)},
      {"character_coverage", "1.0"},
      {"byte_fallback", "true"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"split_digits", "true"},
      {"user_defined_symbols", "\n"},
      {"max_sentence_length", "16384"},
      {"num_threads", std::to_string(threads ? threads : 1)},
      {"minloglevel", "1"},
  };
  // The trainer samples and shuffles sentences with a global generator: fix
  // its seed so that the same corpus gives the same model on every run.
  sentencepiece::SetRandomGeneratorSeed(1);
  LineIterator lines(documents);
  std::string serialized;
  auto status =
      sentencepiece::SentencePieceTrainer::Train(args, &lines, &serialized);
  if (!status.ok())
    throw Error("SentencePiece training failed: " + status.ToString());
  writeFileAtomically(modelPath, serialized);
}

std::unique_ptr<Tokenizer> Tokenizer::open(const std::string &spec) {
  if (spec == "byte")
    return std::make_unique<ByteTokenizer>();
  return SentencePieceTokenizer::load(spec);
}

} // namespace modrt
