//===- TokenFile.h - Corpora tokenized once, memory-mapped for training -*- C++ -*-===//
//
// A corpus is a list of text files or directories. Directories are walked
// recursively in sorted order (hidden entries skipped, each file read once
// even when reached through several links), files holding a NUL byte are
// skipped as binary (e.g. the `.dat` indexes next to fortune files), and a
// line holding only `%` ends a document (the fortune/strfile format); any
// other file is one document.
//
// Each document goes to the validation split iff
// fnv1a64(text) % 1'000'000 < valFraction * 1'000'000, so the split depends on
// the text alone: the same corpus gives the same split on every run and in
// every order. Documents are tokenized and each is followed by the
// tokenizer's document separator.
//
// File layout (little-endian), written through a temporary and a rename:
//
//   0  char[8] "MODCTOK1"      32 u64 val_tokens
//   8  u32 token_bytes (2|4)   40 u64 tokenizer fingerprint
//   12 u32 reserved (0)        48 u64 train_documents
//   16 u64 vocab_size          56 u64 val_documents
//   24 u64 train_tokens        64 tokens: train split, then validation split
//
// uint16 tokens are used when the vocabulary fits, uint32 otherwise.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_TOKENFILE_H
#define MODRT_TOKENFILE_H

#include "modrt/Tokenizer.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace modrt {

struct Document {
  std::string source; // file the document came from, for messages
  std::string text;
};

/// Reads every document under `paths`. Throws Error for a missing path or
/// when no document has any text.
std::vector<Document> readCorpus(const std::vector<std::string> &paths);

/// True iff `text` belongs to the validation split for `valFraction`.
bool isValidationDocument(const std::string &text, double valFraction);

struct TokenFileStats {
  uint64_t trainTokens = 0, valTokens = 0;
  uint64_t trainDocuments = 0, valDocuments = 0;
};

/// Tokenizes `documents` and writes the token file at `path` (temporary +
/// rename; a special file such as /dev/null is written directly).
TokenFileStats writeTokenFile(const std::string &path,
                              const std::vector<Document> &documents,
                              const Tokenizer &tokenizer, double valFraction);

enum class Split { Train, Validation };

/// A token file mapped read-only into memory. Every header field is checked
/// against the file size when it is opened.
class TokenFile {
public:
  static TokenFile open(const std::string &path);

  TokenFile(TokenFile &&other) noexcept;
  TokenFile &operator=(TokenFile &&other) noexcept;
  TokenFile(const TokenFile &) = delete;
  TokenFile &operator=(const TokenFile &) = delete;
  ~TokenFile();

  const std::string &path() const { return path_; }
  uint64_t vocabSize() const { return vocabSize_; }
  uint64_t tokenizerFingerprint() const { return fingerprint_; }
  unsigned tokenBytes() const { return tokenBytes_; }
  uint64_t size(Split split) const {
    return split == Split::Train ? trainTokens_ : valTokens_;
  }
  uint64_t documents(Split split) const {
    return split == Split::Train ? trainDocuments_ : valDocuments_;
  }
  /// Token `i` of `split`; `i` < size(split).
  uint32_t token(Split split, uint64_t i) const;
  /// Copies tokens [start, start + count) of `split` into `out` as int32.
  /// Throws Error when the range is outside the split.
  void copy(Split split, uint64_t start, uint64_t count, int32_t *out) const;

  /// Throws Error naming the file, the split and both sizes unless `split`
  /// holds at least `count` tokens.
  void requireTokens(Split split, uint64_t count) const;
  /// Throws Error unless the file was written by `tokenizer`.
  void requireTokenizer(const Tokenizer &tokenizer) const;

private:
  TokenFile() = default;
  void release();

  std::string path_;
  const unsigned char *base_ = nullptr;
  size_t mappedBytes_ = 0;
  unsigned tokenBytes_ = 0;
  uint64_t vocabSize_ = 0, trainTokens_ = 0, valTokens_ = 0, fingerprint_ = 0;
  uint64_t trainDocuments_ = 0, valDocuments_ = 0;
};

} // namespace modrt

#endif // MODRT_TOKENFILE_H
