//===- TokenFile.cpp - corpus reading, tokenization, mapped token files ---===//

#include "modrt/TokenFile.h"

#include "modrt/Error.h"
#include "modrt/FileUtil.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace modrt {

namespace {
constexpr char kMagic[8] = {'M', 'O', 'D', 'C', 'T', 'O', 'K', '1'};
constexpr size_t kHeaderBytes = 64;

void collectFiles(const std::string &path, std::vector<std::string> &files,
                  std::set<std::string> &seen, bool top) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (top)
      throw Error("corpus path '" + path + "': " + std::strerror(errno));
    return; // a dangling link inside a directory
  }
  char *real = ::realpath(path.c_str(), nullptr);
  std::string canonical = real ? real : path;
  std::free(real);
  if (!seen.insert(canonical).second)
    return;
  if (S_ISREG(st.st_mode)) {
    files.push_back(path);
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (top)
      throw Error("corpus path '" + path +
                  "' is neither a regular file nor a directory");
    return;
  }
  DIR *dir = ::opendir(path.c_str());
  if (!dir)
    throw Error("corpus directory '" + path + "': " + std::strerror(errno));
  std::vector<std::string> names;
  while (dirent *entry = ::readdir(dir))
    if (entry->d_name[0] != '.')
      names.emplace_back(entry->d_name);
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  for (const std::string &name : names)
    collectFiles(path + "/" + name, files, seen, /*top=*/false);
}

/// Splits at lines holding only "%" (the fortune format).
void splitDocuments(const std::string &source, const std::string &text,
                    std::vector<Document> &out) {
  std::string current;
  size_t pos = 0;
  auto flush = [&] {
    if (current.find_first_not_of(" \t\r\n") != std::string::npos)
      out.push_back({source, current});
    current.clear();
  };
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    size_t next = end == std::string::npos ? text.size() : end + 1;
    std::string_view line(text.data() + pos,
                          (end == std::string::npos ? text.size() : end) - pos);
    if (line == "%" || line == "%\r")
      flush();
    else
      current.append(text, pos, next - pos);
    pos = next;
  }
  flush();
}

void putU32(std::string &out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(char(v >> (8 * i)));
}
void putU64(std::string &out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(char(v >> (8 * i)));
}
uint32_t getU32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}
uint64_t getU64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}
} // namespace

std::vector<Document> readCorpus(const std::vector<std::string> &paths) {
  if (paths.empty())
    throw Error("no corpus given");
  std::vector<std::string> files;
  std::set<std::string> seen;
  for (const std::string &path : paths)
    collectFiles(path, files, seen, /*top=*/true);
  std::vector<Document> documents;
  for (const std::string &file : files) {
    std::string text = readFile(file);
    if (text.find('\0') != std::string::npos)
      continue; // binary (e.g. strfile's .dat index)
    splitDocuments(file, text, documents);
  }
  if (documents.empty()) {
    std::string list;
    for (const std::string &p : paths)
      list += (list.empty() ? "'" : ", '") + p + "'";
    throw Error("corpus " + list + " holds no text");
  }
  return documents;
}

bool isValidationDocument(const std::string &text, double valFraction) {
  constexpr uint64_t kScale = 1000000;
  auto threshold = static_cast<uint64_t>(std::llround(valFraction * kScale));
  return fnv1a64(text) % kScale < threshold;
}

TokenFileStats writeTokenFile(const std::string &path,
                              const std::vector<Document> &documents,
                              const Tokenizer &tokenizer, double valFraction) {
  if (!(valFraction >= 0.0 && valFraction < 1.0))
    throw Error("validation fraction " + std::to_string(valFraction) +
                " must be in [0, 1)");
  std::vector<uint32_t> train, val;
  TokenFileStats stats;
  const std::vector<uint32_t> separator = tokenizer.documentSeparator();
  for (const Document &doc : documents) {
    bool isVal = isValidationDocument(doc.text, valFraction);
    std::vector<uint32_t> &dst = isVal ? val : train;
    std::vector<uint32_t> ids = tokenizer.encode(doc.text);
    dst.insert(dst.end(), ids.begin(), ids.end());
    dst.insert(dst.end(), separator.begin(), separator.end());
    ++(isVal ? stats.valDocuments : stats.trainDocuments);
  }
  stats.trainTokens = train.size();
  stats.valTokens = val.size();
  unsigned tokenBytes = tokenizer.vocabSize() <= 65536 ? 2 : 4;

  std::string bytes(kMagic, sizeof kMagic);
  putU32(bytes, tokenBytes);
  putU32(bytes, 0);
  putU64(bytes, tokenizer.vocabSize());
  putU64(bytes, stats.trainTokens);
  putU64(bytes, stats.valTokens);
  putU64(bytes, tokenizer.fingerprint());
  putU64(bytes, stats.trainDocuments);
  putU64(bytes, stats.valDocuments);
  bytes.reserve(kHeaderBytes + (train.size() + val.size()) * tokenBytes);
  for (const std::vector<uint32_t> *split : {&train, &val})
    for (uint32_t id : *split) {
      if (tokenBytes == 2) {
        bytes.push_back(char(id));
        bytes.push_back(char(id >> 8));
      } else {
        putU32(bytes, id);
      }
    }
  writeFileAtomically(path, bytes);
  return stats;
}

TokenFile TokenFile::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(path + ": cannot open token file: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  size_t size = size_t(st.st_size);
  if (size < kHeaderBytes) {
    ::close(fd);
    throw Error(path + ": not a modc token file (" + std::to_string(size) +
                " bytes, shorter than the 64-byte header)");
  }
  void *map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED)
    throw Error(path + ": mmap failed: " + std::strerror(errno));
  TokenFile file;
  file.path_ = path;
  file.base_ = static_cast<const unsigned char *>(map);
  file.mappedBytes_ = size;
  const unsigned char *h = file.base_;
  if (std::memcmp(h, kMagic, sizeof kMagic) != 0)
    throw Error(path + ": not a modc token file (bad magic; expected "
                       "\"MODCTOK1\")");
  file.tokenBytes_ = getU32(h + 8);
  if (file.tokenBytes_ != 2 && file.tokenBytes_ != 4)
    throw Error(path + ": token width " + std::to_string(file.tokenBytes_) +
                " bytes is invalid (expected 2 or 4)");
  file.vocabSize_ = getU64(h + 16);
  file.trainTokens_ = getU64(h + 24);
  file.valTokens_ = getU64(h + 32);
  file.fingerprint_ = getU64(h + 40);
  file.trainDocuments_ = getU64(h + 48);
  file.valDocuments_ = getU64(h + 56);
  if (file.vocabSize_ == 0 ||
      (file.tokenBytes_ == 2 && file.vocabSize_ > 65536) ||
      file.vocabSize_ > (uint64_t(1) << 32))
    throw Error(path + ": vocabulary size " + std::to_string(file.vocabSize_) +
                " does not fit " + std::to_string(file.tokenBytes_) +
                "-byte tokens");
  uint64_t tokens = file.trainTokens_ + file.valTokens_;
  uint64_t payload = size - kHeaderBytes;
  if (tokens < file.trainTokens_ || payload % file.tokenBytes_ != 0 ||
      payload / file.tokenBytes_ != tokens)
    throw Error(path + ": header says " + std::to_string(file.trainTokens_) +
                " + " + std::to_string(file.valTokens_) + " tokens but the file "
                "holds " + std::to_string(payload) + " bytes of tokens "
                "(truncated or corrupt)");
  return file;
}

TokenFile::TokenFile(TokenFile &&other) noexcept { *this = std::move(other); }

TokenFile &TokenFile::operator=(TokenFile &&other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    base_ = other.base_;
    mappedBytes_ = other.mappedBytes_;
    tokenBytes_ = other.tokenBytes_;
    vocabSize_ = other.vocabSize_;
    trainTokens_ = other.trainTokens_;
    valTokens_ = other.valTokens_;
    fingerprint_ = other.fingerprint_;
    trainDocuments_ = other.trainDocuments_;
    valDocuments_ = other.valDocuments_;
    other.base_ = nullptr;
    other.mappedBytes_ = 0;
  }
  return *this;
}

TokenFile::~TokenFile() { release(); }

void TokenFile::release() {
  if (base_)
    ::munmap(const_cast<unsigned char *>(base_), mappedBytes_);
  base_ = nullptr;
}

uint32_t TokenFile::token(Split split, uint64_t i) const {
  uint64_t index = (split == Split::Train ? 0 : trainTokens_) + i;
  const unsigned char *p = base_ + kHeaderBytes + index * tokenBytes_;
  return tokenBytes_ == 2 ? uint32_t(p[0] | (p[1] << 8)) : getU32(p);
}

void TokenFile::copy(Split split, uint64_t start, uint64_t count,
                     int32_t *out) const {
  uint64_t n = size(split);
  if (start > n || count > n - start)
    throw Error(path_ + ": tokens [" + std::to_string(start) + ", " +
                std::to_string(start + count) + ") are outside the " +
                (split == Split::Train ? "training" : "validation") +
                " split of " + std::to_string(n) + " tokens");
  for (uint64_t i = 0; i < count; ++i)
    out[i] = static_cast<int32_t>(token(split, start + i));
}

void TokenFile::requireTokens(Split split, uint64_t count) const {
  uint64_t n = size(split);
  if (n < count)
    throw Error(path_ + ": the " +
                std::string(split == Split::Train ? "training" : "validation") +
                " split holds " + std::to_string(n) + " tokens, fewer than the " +
                std::to_string(count) + " one window needs (sequence length + "
                "1); use a larger corpus or a shorter sequence");
}

void TokenFile::requireTokenizer(const Tokenizer &tokenizer) const {
  if (tokenizer.fingerprint() != fingerprint_ ||
      tokenizer.vocabSize() != vocabSize_)
    throw Error(path_ + ": was written by another tokenizer (vocabulary " +
                std::to_string(vocabSize_) + ") than " + tokenizer.describe() +
                " (vocabulary " + std::to_string(tokenizer.vocabSize()) + ")");
}

} // namespace modrt
