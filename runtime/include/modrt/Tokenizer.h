//===- Tokenizer.h - Text <-> token ids -------------------------*- C++ -*-===//
//
// The tokenizers modc trains and samples with:
//
// - "byte": every byte of the UTF-8 text is one token (vocabulary 256). The
//   default: nothing to train, exact on any input.
// - SentencePiece (Debian's libsentencepiece): a `.model` file, either trained
//   on the corpus by `SentencePieceTokenizer::train` (byte fallback and the
//   identity normalizer, so that decode(encode(text)) == text for any text)
//   or a LLaMA-style `tokenizer.model` loaded as it is.
//
// A tokenizer has a 64-bit fingerprint (of "byte", or of the serialized
// SentencePiece model), which token files record so that a file is never read
// with a different tokenizer than the one that wrote it.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_TOKENIZER_H
#define MODRT_TOKENIZER_H

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace modrt {

class Tokenizer {
public:
  virtual ~Tokenizer() = default;

  /// "byte" or "sentencepiece:<path>", as used in messages and metadata.
  virtual std::string describe() const = 0;
  virtual uint32_t vocabSize() const = 0;
  virtual uint64_t fingerprint() const = 0;
  virtual std::vector<uint32_t> encode(std::string_view text) const = 0;
  /// Throws Error for an id >= vocabSize().
  virtual std::string decode(const std::vector<uint32_t> &ids) const = 0;
  /// The tokens appended after every document of a corpus: "\n" for bytes
  /// (documents end up separated by a blank line), end-of-sequence for a
  /// SentencePiece model that has one.
  virtual std::vector<uint32_t> documentSeparator() const = 0;

  /// "byte" gives the byte tokenizer; anything else is a SentencePiece model
  /// file. Throws Error when the file is missing or not a model.
  static std::unique_ptr<Tokenizer> open(const std::string &spec);
};

class ByteTokenizer final : public Tokenizer {
public:
  std::string describe() const override { return "byte"; }
  uint32_t vocabSize() const override { return 256; }
  uint64_t fingerprint() const override;
  std::vector<uint32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<uint32_t> &ids) const override;
  std::vector<uint32_t> documentSeparator() const override { return {'\n'}; }
};

class SentencePieceTokenizer final : public Tokenizer {
public:
  ~SentencePieceTokenizer() override;

  /// Loads a SentencePiece `.model` file.
  static std::unique_ptr<SentencePieceTokenizer> load(const std::string &path);

  /// Trains a model of `vocabSize` pieces on `documents` and writes it to
  /// `modelPath` (through a temporary and a rename). The model has byte
  /// fallback, the identity normalizer and no dummy prefix, so encoding
  /// round-trips any text exactly. `threads` bounds the trainer's threads.
  static void train(const std::vector<std::string> &documents,
                    uint32_t vocabSize, const std::string &modelPath,
                    unsigned threads = 2);

  std::string describe() const override;
  uint32_t vocabSize() const override;
  uint64_t fingerprint() const override { return fingerprint_; }
  std::vector<uint32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<uint32_t> &ids) const override;
  std::vector<uint32_t> documentSeparator() const override;

private:
  struct Impl;
  explicit SentencePieceTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string path_;
  uint64_t fingerprint_ = 0;
};

/// FNV-1a, 64 bit: the fingerprint and split hash used by token files.
uint64_t fnv1a64(std::string_view bytes);

} // namespace modrt

#endif // MODRT_TOKENIZER_H
