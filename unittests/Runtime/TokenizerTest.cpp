//===- TokenizerTest.cpp - tokenizers, corpora and token files ------------===//

#include "modrt/Error.h"
#include "modrt/FileUtil.h"
#include "modrt/TokenFile.h"
#include "modrt/Tokenizer.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

using namespace modrt;
using modrt::test::TempDir;

#define EXPECT_THROW_MSG(statement, message)                                   \
  EXPECT_TRUE(modrt::test::throwsError([&] { (void)(statement); }, {message}))

namespace {

std::string allBytes() {
  std::string s;
  for (int i = 0; i < 256; ++i)
    s.push_back(char(i));
  return s;
}

void writeText(const std::string &path, const std::string &text) {
  modrt::test::writeFile(path, text);
}

/// A few hundred lines of varied English-like text, so that SentencePiece
/// has something to learn from.
std::vector<std::string> syntheticDocuments(unsigned count) {
  const char *words[] = {"the",   "model", "routes", "tokens", "through",
                         "every", "other", "block",  "and",    "skips",
                         "rest",  "of",    "depth",  "mixture", "compute",
                         "42",    "2024",  "MoD",    "fast",   "loss"};
  std::mt19937 rng(7);
  std::vector<std::string> docs;
  for (unsigned d = 0; d < count; ++d) {
    std::string doc;
    unsigned lines = 1 + rng() % 4;
    for (unsigned l = 0; l < lines; ++l) {
      unsigned n = 3 + rng() % 9;
      for (unsigned w = 0; w < n; ++w) {
        doc += words[rng() % 20];
        doc += (w + 1 < n) ? " " : (rng() % 2 ? ".\n" : "!\n");
      }
    }
    docs.push_back(doc);
  }
  return docs;
}

TEST(ByteTokenizer, RoundTripsEveryByte) {
  ByteTokenizer t;
  std::string text = allBytes() + "\xff\xfe invalid UTF-8 \xc3";
  std::vector<uint32_t> ids = t.encode(text);
  ASSERT_EQ(ids.size(), text.size());
  EXPECT_EQ(ids[65], 65u);
  EXPECT_EQ(t.decode(ids), text);
}

TEST(ByteTokenizer, RejectsIdsOutsideTheVocabulary) {
  ByteTokenizer t;
  EXPECT_THROW_MSG(t.decode({65, 256}), "token id 256 is outside the vocabulary of 256");
}

TEST(SentencePieceTokenizer, TrainsAndRoundTripsExactly) {
  TempDir dir;
  std::string model = dir.path() + "/spm.model";
  SentencePieceTokenizer::train(syntheticDocuments(400), 320, model, 1);
  auto spm = SentencePieceTokenizer::load(model);
  EXPECT_EQ(spm->vocabSize(), 320u);
  // Unseen text: other words, unicode, tabs, runs of spaces, blank lines,
  // leading whitespace: identity normalization plus byte fallback keep all.
  for (std::string text :
       {std::string("the model routes tokens\n"),
        std::string("  Unseen words\t\ttabs  and   spaces\n\n\nüñïçødé ✓ 漢字"),
        std::string(""), std::string("\n"), allBytes().substr(1, 127)}) {
    std::vector<uint32_t> ids = spm->encode(text);
    EXPECT_EQ(spm->decode(ids), text) << "text: " << text;
  }
  // Trained pieces compress the training language.
  std::string seen = "the model routes tokens through every other block\n";
  EXPECT_LT(spm->encode(seen).size(), seen.size() / 2);
}

TEST(SentencePieceTokenizer, TrainingIsDeterministic) {
  TempDir dir;
  std::vector<std::string> docs = syntheticDocuments(300);
  SentencePieceTokenizer::train(docs, 300, dir.path() + "/a.model", 1);
  SentencePieceTokenizer::train(docs, 300, dir.path() + "/b.model", 1);
  EXPECT_EQ(readFile(dir.path() + "/a.model"), readFile(dir.path() + "/b.model"));
  EXPECT_EQ(SentencePieceTokenizer::load(dir.path() + "/a.model")->fingerprint(),
            SentencePieceTokenizer::load(dir.path() + "/b.model")->fingerprint());
}

TEST(SentencePieceTokenizer, ErrorsNameTheProblem) {
  TempDir dir;
  EXPECT_THROW_MSG(SentencePieceTokenizer::load(dir.path() + "/missing.model"),
                   "missing.model: cannot open");
  writeText(dir.path() + "/junk.model", "this is not a protobuf");
  EXPECT_THROW_MSG(SentencePieceTokenizer::load(dir.path() + "/junk.model"),
                   "is not a SentencePiece model");
  EXPECT_THROW_MSG(
      SentencePieceTokenizer::train({"abc"}, 100, dir.path() + "/x.model"),
      "vocabulary size 100 is too small");
  EXPECT_FALSE(std::ifstream(dir.path() + "/x.model").good());
}

TEST(Corpus, WalksDirectoriesInOrderAndSplitsFortunes) {
  TempDir dir;
  ::mkdir((dir.path() + "/b").c_str(), 0755);
  writeText(dir.path() + "/b/z", "third\n%\nfourth\n");
  writeText(dir.path() + "/a", "first\n%\n\n%\nsecond\n");
  writeText(dir.path() + "/.hidden", "never");
  writeText(dir.path() + "/a.dat", std::string("\0\1binary", 8));
  ASSERT_EQ(::symlink("a", (dir.path() + "/a.u8").c_str()), 0);
  std::vector<Document> docs = readCorpus({dir.path()});
  ASSERT_EQ(docs.size(), 4u);
  EXPECT_EQ(docs[0].text, "first\n");
  EXPECT_EQ(docs[1].text, "second\n");
  EXPECT_EQ(docs[2].text, "third\n");
  EXPECT_EQ(docs[3].text, "fourth\n");
  EXPECT_EQ(docs[2].source, dir.path() + "/b/z");
}

TEST(Corpus, EmptyOrMissingCorpusIsAnError) {
  TempDir dir;
  writeText(dir.path() + "/empty", "\n%\n  \n");
  EXPECT_THROW_MSG(readCorpus({dir.path()}), "holds no text");
  EXPECT_THROW_MSG(readCorpus({dir.path() + "/nope"}), "nope': No such file");
  EXPECT_THROW_MSG(readCorpus({}), "no corpus given");
}

std::vector<Document> documentsOf(const std::vector<std::string> &texts) {
  std::vector<Document> docs;
  for (const std::string &t : texts)
    docs.push_back({"test", t});
  return docs;
}

TEST(TokenFile, WritesSplitsAndMapsTokens) {
  TempDir dir;
  std::vector<std::string> texts;
  for (std::string &d : syntheticDocuments(200))
    texts.push_back(d);
  ByteTokenizer bytes;
  std::string path = dir.path() + "/tokens.bin";
  TokenFileStats stats = writeTokenFile(path, documentsOf(texts), bytes, 0.2);
  EXPECT_EQ(stats.trainDocuments + stats.valDocuments, 200u);
  // The hash split is close to the fraction asked for.
  EXPECT_GT(stats.valDocuments, 20u);
  EXPECT_LT(stats.valDocuments, 70u);

  TokenFile file = TokenFile::open(path);
  EXPECT_EQ(file.vocabSize(), 256u);
  EXPECT_EQ(file.tokenBytes(), 2u);
  EXPECT_EQ(file.size(Split::Train), stats.trainTokens);
  EXPECT_EQ(file.size(Split::Validation), stats.valTokens);
  std::string train, val;
  for (const std::string &t : texts)
    (isValidationDocument(t, 0.2) ? val : train) += t + "\n";
  std::vector<int32_t> window(train.size());
  file.copy(Split::Train, 0, train.size(), window.data());
  std::string decodedTrain;
  for (int32_t id : window)
    decodedTrain.push_back(char(id));
  EXPECT_EQ(decodedTrain, train);
  std::vector<uint32_t> valIds;
  for (uint64_t i = 0; i < file.size(Split::Validation); ++i)
    valIds.push_back(file.token(Split::Validation, i));
  EXPECT_EQ(bytes.decode(valIds), val);

  EXPECT_THROW_MSG(file.copy(Split::Validation, 1, val.size(), window.data()),
                   "outside the validation split");
  EXPECT_THROW_MSG(file.requireTokens(Split::Train, train.size() + 1),
                   "fewer than the");
  file.requireTokens(Split::Train, train.size());
  file.requireTokenizer(bytes);
}

TEST(TokenFile, SameCorpusGivesTheSameBytes) {
  TempDir dir;
  std::vector<Document> docs = documentsOf(syntheticDocuments(50));
  writeTokenFile(dir.path() + "/a", docs, ByteTokenizer(), 0.1);
  std::reverse(docs.begin(), docs.end());
  std::reverse(docs.begin(), docs.end());
  writeTokenFile(dir.path() + "/b", docs, ByteTokenizer(), 0.1);
  EXPECT_EQ(readFile(dir.path() + "/a"), readFile(dir.path() + "/b"));
}

TEST(TokenFile, RejectsCorruptFiles) {
  TempDir dir;
  std::string path = dir.path() + "/t.bin";
  writeTokenFile(path, documentsOf({"hello world\n", "more text\n"}),
                 ByteTokenizer(), 0.0);
  std::string good = readFile(path);

  writeText(path, good.substr(0, good.size() - 1));
  EXPECT_THROW_MSG(TokenFile::open(path), "truncated or corrupt");
  writeText(path, good.substr(0, 10));
  EXPECT_THROW_MSG(TokenFile::open(path), "shorter than the 64-byte header");
  std::string bad = good;
  bad[0] = 'X';
  writeText(path, bad);
  EXPECT_THROW_MSG(TokenFile::open(path), "bad magic");
  bad = good;
  bad[8] = 3;
  writeText(path, bad);
  EXPECT_THROW_MSG(TokenFile::open(path), "token width 3 bytes is invalid");
  bad = good;
  bad[16] = 0;
  bad[17] = 0;
  bad[18] = 2; // vocabulary 131072 in 2-byte tokens
  writeText(path, bad);
  EXPECT_THROW_MSG(TokenFile::open(path), "does not fit 2-byte tokens");
  bad = good;
  bad[31] = char(0x80); // train token count near 2^63
  writeText(path, bad);
  EXPECT_THROW_MSG(TokenFile::open(path), "truncated or corrupt");
  EXPECT_THROW_MSG(TokenFile::open(dir.path() + "/none"), "cannot open token file");
}

TEST(TokenFile, RefusesAnotherTokenizer) {
  TempDir dir;
  std::string model = dir.path() + "/spm.model";
  SentencePieceTokenizer::train(syntheticDocuments(300), 300, model, 1);
  auto spm = SentencePieceTokenizer::load(model);
  std::string path = dir.path() + "/t.bin";
  writeTokenFile(path, documentsOf(syntheticDocuments(20)), *spm, 0.0);
  TokenFile file = TokenFile::open(path);
  EXPECT_EQ(file.vocabSize(), 300u);
  file.requireTokenizer(*spm);
  EXPECT_THROW_MSG(file.requireTokenizer(ByteTokenizer()),
                   "was written by another tokenizer");
}

TEST(FileUtil, WritesSpecialFilesDirectly) {
  // /dev/null stays a character device.
  writeFileAtomically("/dev/null", "discarded");
  struct stat st;
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  TempDir dir;
  EXPECT_THROW_MSG(writeFileAtomically(dir.path(), "x"), "is a directory");
  EXPECT_THROW_MSG(writeFileAtomically(dir.path() + "/no/such/dir/f", "x"),
                   "cannot create temporary file");
}

} // namespace
