//===- SafetensorsTest.cpp - Reading, writing and rejecting files ---------===//

#include "modrt/Safetensors.h"
#include "modrt/Json.h"
#include "TestUtil.h"

#include <random>
#include <sys/stat.h>
#include <unistd.h>

using namespace modrt;
using modrt::test::readFile;
using modrt::test::TempDir;
using modrt::test::throwsError;
using modrt::test::writeFile;

namespace {

/// 8-byte little-endian length, header, data: a file built byte by byte.
std::string fileBytes(uint64_t headerLength, const std::string &header,
                      const std::string &data) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes += char((headerLength >> (8 * i)) & 0xFF);
  return bytes + header + data;
}
std::string fileBytes(const std::string &header, const std::string &data) {
  return fileBytes(header.size(), header, data);
}

/// A tensor whose bytes are a recognizable pattern.
Tensor patterned(DType dtype, std::vector<int64_t> shape, uint8_t seed) {
  Tensor t(dtype, std::move(shape));
  auto *bytes = static_cast<uint8_t *>(t.rawData());
  for (size_t i = 0; i < t.byteSize(); ++i)
    bytes[i] = dtype == DType::Bool ? uint8_t((i + seed) % 2) : uint8_t(i * 7 + seed);
  return t;
}

class SafetensorsTest : public ::testing::Test {
protected:
  /// Writes `bytes` to a fresh file and returns the Error message reading it.
  ::testing::AssertionResult rejects(const std::string &bytes,
                                     std::vector<std::string> words) {
    std::string path = dir.file("corrupt.safetensors");
    writeFile(path, bytes);
    words.push_back(path); // every message names the file
    return throwsError([&] { readSafetensors(path); }, words);
  }

  TempDir dir;
};

TEST_F(SafetensorsTest, RoundTripsEveryDType) {
  const DType dtypes[] = {DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32,
                          DType::I64, DType::I8,  DType::U8,  DType::Bool};
  std::map<std::string, Tensor> tensors;
  uint8_t seed = 1;
  for (DType dtype : dtypes) {
    std::string name = std::string("t_") + safetensorsDTypeName(dtype);
    tensors.emplace(name, patterned(dtype, {2, 3}, seed++));
    tensors.emplace(name + "_scalar", patterned(dtype, {}, seed++));
    tensors.emplace(name + "_empty", patterned(dtype, {0, 3}, seed++));
  }
  tensors.emplace("deep.layer/0", patterned(DType::F32, {1, 2, 1, 3, 1}, 99));
  std::map<std::string, std::string> metadata{{"format", "pt"}, {"note", "\xC3\xA9\n"}};
  std::string path = dir.file("all.safetensors");
  writeSafetensors(path, tensors, metadata);

  SafetensorsFile back = readSafetensors(path);
  EXPECT_EQ(back.metadata, metadata);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto &[name, tensor] : tensors) {
    auto it = back.tensors.find(name);
    ASSERT_NE(it, back.tensors.end()) << name;
    EXPECT_TRUE(it->second.identical(tensor)) << name;
  }
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"all.safetensors"});
}

TEST_F(SafetensorsTest, WritesTheStandardLayout) {
  std::map<std::string, Tensor> tensors;
  tensors.emplace("b", Tensor::fromValues<float>(DType::F32, {2}, {1.f, 2.f}));
  tensors.emplace("a", Tensor::fromValues<uint16_t>(DType::BF16, {3}, {1, 2, 3}));
  std::string path = dir.file("layout.safetensors");
  writeSafetensors(path, tensors);

  std::string bytes = readFile(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t headerLength = 0;
  for (int i = 7; i >= 0; --i) headerLength = (headerLength << 8) | uint8_t(bytes[i]);
  EXPECT_EQ(headerLength % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + headerLength + 6 + 8);
  std::string header = bytes.substr(8, headerLength);
  // Padded with spaces; tensors in name order, offsets back to back.
  EXPECT_EQ(header.find_last_not_of(' ') + 1,
            std::string(R"({"a":{"data_offsets":[0,6],"dtype":"BF16","shape":[3]},)"
                        R"("b":{"data_offsets":[6,14],"dtype":"F32","shape":[2]}})")
                .size());
  Json json = Json::parse(header);
  EXPECT_EQ(json.find("a")->find("data_offsets")->dump(), "[0,6]");
  EXPECT_EQ(json.find("b")->find("data_offsets")->dump(), "[6,14]");
  EXPECT_EQ(json.find("__metadata__"), nullptr);
  float second;
  std::memcpy(&second, bytes.data() + 8 + headerLength + 6 + 4, 4);
  EXPECT_EQ(second, 2.f);
}

TEST_F(SafetensorsTest, ReadsFilesFromOtherWriters) {
  // Unpadded header, unsorted keys, metadata first, a gap-free data buffer.
  std::string header =
      R"({"__metadata__":{"format":"pt"},"z":{"dtype":"I32","shape":[1],"data_offsets":[4,8]},)"
      R"("y":{"dtype":"I32","shape":[],"data_offsets":[0,4]},)"
      R"("e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})";
  std::string data("\x05\x00\x00\x00\xFF\xFF\xFF\xFF", 8);
  std::string path = dir.file("other.safetensors");
  writeFile(path, fileBytes(header, data));
  SafetensorsFile file = readSafetensors(path);
  EXPECT_EQ(file.metadata.at("format"), "pt");
  EXPECT_EQ(file.tensors.at("y").data<int32_t>()[0], 5);
  EXPECT_EQ(file.tensors.at("z").data<int32_t>()[0], -1);
  EXPECT_EQ(file.tensors.at("z").shape(), std::vector<int64_t>{1});
  EXPECT_EQ(file.tensors.at("e").numElements(), 0);
}

TEST_F(SafetensorsTest, RejectsShortFiles) {
  EXPECT_TRUE(rejects("", {"too short", "0 bytes"}));
  EXPECT_TRUE(rejects(std::string("\x08\x00\x00", 3), {"too short"}));
}

TEST_F(SafetensorsTest, RejectsBadHeaderLength) {
  EXPECT_TRUE(rejects(fileBytes(1000, "{}", ""), {"header length 1000", "file size"}));
  EXPECT_TRUE(rejects(fileBytes(~uint64_t(0), "{}", ""), {"header length", "100 MiB"}));
  EXPECT_TRUE(rejects(fileBytes((100u << 20) + 1, "{}", ""), {"100 MiB"}));
}

TEST_F(SafetensorsTest, RejectsHeadersThatAreNotJsonObjects) {
  EXPECT_TRUE(rejects(fileBytes("{\"a\": ", ""), {"not valid JSON", "at byte"}));
  EXPECT_TRUE(rejects(fileBytes("{} trailing", ""), {"not valid JSON", "expected end of input"}));
  EXPECT_TRUE(rejects(fileBytes(std::string("{}\0\0", 4), ""), {"not valid JSON"}));
  EXPECT_TRUE(rejects(fileBytes("[1, 2]", ""), {"not a JSON object"}));
  EXPECT_TRUE(rejects(fileBytes(R"({"w": 3})", ""), {"tensor 'w'", "not a JSON object"}));
  EXPECT_TRUE(rejects(fileBytes(R"({"w": {"dtype": "F32", "shape": []}})", ""),
                      {"tensor 'w'", "data_offsets"}));
  EXPECT_TRUE(rejects(fileBytes(R"({"__metadata__": {"k": 1}})", ""),
                      {"__metadata__", "\"k\"", "not a string"}));
  EXPECT_TRUE(rejects(fileBytes(R"({"__metadata__": []})", ""), {"__metadata__"}));
}

std::string entry(const std::string &name, const std::string &dtype,
                  const std::string &shape, const std::string &offsets) {
  return "\"" + name + "\": {\"dtype\": " + dtype + ", \"shape\": " + shape +
         ", \"data_offsets\": " + offsets + "}";
}

TEST_F(SafetensorsTest, RejectsBadDTypes) {
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F8_E4M3\"", "[1]", "[0,1]") + "}",
                                std::string(1, '\0')),
                      {"tensor 'w'", "unknown dtype \"F8_E4M3\""}));
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"f32\"", "[1]", "[0,4]") + "}",
                                std::string(4, '\0')),
                      {"unknown dtype \"f32\""}));
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "7", "[1]", "[0,4]") + "}",
                                std::string(4, '\0')),
                      {"tensor 'w'", "\"dtype\" is not a string"}));
}

TEST_F(SafetensorsTest, RejectsBadShapes) {
  std::string data(16, '\0');
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F32\"", "[2, -2]", "[0,16]") + "}", data),
                      {"tensor 'w'", "negative dimension -2"}));
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F32\"", "[4611686018427387904, 4]",
                                            "[0,16]") + "}", data),
                      {"tensor 'w'", "overflows"}));
  // Fits in int64 as an element count, overflows as a byte count.
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F64\"", "[2305843009213693952]",
                                            "[0,16]") + "}", data),
                      {"tensor 'w'", "overflows"}));
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F32\"", "[1.5]", "[0,4]") + "}", data),
                      {"tensor 'w'", "\"shape\" must be an array of integers"}));
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F32\"", "4", "[0,4]") + "}", data),
                      {"tensor 'w'", "\"shape\""}));
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F32\"", "[99999999999999999999]",
                                            "[0,4]") + "}", data),
                      {"tensor 'w'", "integers"}));
}

TEST_F(SafetensorsTest, RejectsBadDataOffsets) {
  std::string data(16, '\0');
  for (const char *offsets : {"[0]", "[0, 4, 8]", "[\"0\", 4]", "[0.5, 4]", "[-4, 4]",
                              "{}", "null", "[0, 1e3]"})
    EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F32\"", "[1]", offsets) + "}", data),
                        {"tensor 'w'", "\"data_offsets\" must be 2 non-negative integers"}))
        << offsets;
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F32\"", "[1]", "[8, 4]") + "}", data),
                      {"tensor 'w'", "begin 8 is greater than end 4"}));
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F32\"", "[1]", "[16, 20]") + "}", data),
                      {"tensor 'w'", "end 20 is beyond the data buffer (16 bytes)"}));
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F32\"", "[1]",
                                            "[0, 9223372036854775807]") + "}", data),
                      {"tensor 'w'", "beyond the data buffer"}));
  EXPECT_TRUE(rejects(fileBytes("{" + entry("w", "\"F32\"", "[3]", "[0, 8]") + "}", data),
                      {"tensor 'w'", "span 8 bytes", "F32[3] needs 12 bytes"}));
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  std::string header = "{" + entry("a", "\"F32\"", "[2]", "[0, 8]") + ", " +
                       entry("b", "\"F32\"", "[2]", "[4, 12]") + "}";
  EXPECT_TRUE(rejects(fileBytes(header, std::string(12, '\0')),
                      {"tensors 'a' and 'b' overlap"}));
  // Same span twice.
  header = "{" + entry("a", "\"I32\"", "[1]", "[0, 4]") + ", " +
           entry("b", "\"I32\"", "[1]", "[0, 4]") + "}";
  EXPECT_TRUE(rejects(fileBytes(header, std::string(4, '\0')), {"overlap"}));
  // Empty tensors may share an offset with anything.
  header = "{" + entry("a", "\"I32\"", "[1]", "[0, 4]") + ", " +
           entry("b", "\"I32\"", "[0]", "[2, 2]") + "}";
  std::string path = dir.file("ok.safetensors");
  writeFile(path, fileBytes(header, std::string(4, '\0')));
  EXPECT_NO_THROW(readSafetensors(path));
}

TEST_F(SafetensorsTest, RejectsTruncatedData) {
  std::string header = "{" + entry("w", "\"F32\"", "[4]", "[0, 16]") + "}";
  EXPECT_TRUE(rejects(fileBytes(header, std::string(12, '\0')),
                      {"tensor 'w'", "beyond the data buffer (12 bytes)", "truncated"}));
  EXPECT_TRUE(rejects(fileBytes(header, ""), {"tensor 'w'", "truncated"}));
}

TEST_F(SafetensorsTest, RejectsDuplicateNames) {
  std::string header = "{" + entry("w", "\"I32\"", "[1]", "[0, 4]") + ", " +
                       entry("w", "\"I32\"", "[1]", "[4, 8]") + "}";
  EXPECT_TRUE(rejects(fileBytes(header, std::string(8, '\0')),
                      {"duplicate key \"w\""}));
}

TEST_F(SafetensorsTest, RejectsUnreadablePaths) {
  EXPECT_TRUE(throwsError([&] { readSafetensors(dir.file("missing")); },
                          {"missing", "cannot open"}));
  EXPECT_TRUE(throwsError([&] { readSafetensors(dir.path()); },
                          {"not a regular file"}));
}

TEST_F(SafetensorsTest, SurvivesRandomCorruption) {
  // Mutated and truncated versions of a valid file must each either load or
  // throw modrt::Error; run under ASan/UBSan or valgrind this also proves
  // the reader never reads out of bounds.
  std::map<std::string, Tensor> tensors;
  tensors.emplace("a", patterned(DType::F32, {3, 2}, 1));
  tensors.emplace("b", patterned(DType::I64, {2}, 2));
  tensors.emplace("c", patterned(DType::BF16, {}, 3));
  std::string good = dir.file("good.safetensors");
  writeSafetensors(good, tensors, {{"k", "v"}});
  const std::string original = readFile(good);
  std::mt19937 rng(12345);
  std::string path = dir.file("fuzz.safetensors");
  int loaded = 0;
  for (int iteration = 0; iteration < 3000; ++iteration) {
    std::string bytes = original;
    int mutations = 1 + int(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      size_t at = rng() % bytes.size();
      switch (rng() % 4) {
      case 0: bytes[at] = char(rng()); break;
      case 1: bytes[at] = "0123456789[]{},:\"-eE."[rng() % 21]; break;
      case 2: bytes.resize(at); break;
      case 3: bytes.insert(at, 1, char(rng())); break;
      }
      if (bytes.empty()) break;
    }
    writeFile(path, bytes);
    try {
      readSafetensors(path);
      ++loaded;
    } catch (const Error &) {
    }
  }
  // Most mutations hit the data buffer or header padding and still load.
  EXPECT_GT(loaded, 0);
}

TEST_F(SafetensorsTest, AtomicWriteKeepsOldFileOnInvalidTensorName) {
  std::string path = dir.file("out.safetensors");
  writeSafetensors(path, {{"x", Tensor(DType::F32, {1})}});
  const std::string before = readFile(path);
  EXPECT_TRUE(throwsError(
      [&] { writeSafetensors(path, {{"__metadata__", Tensor(DType::F32, {1})}}); },
      {path, "invalid tensor name \"__metadata__\""}));
  EXPECT_TRUE(throwsError([&] { writeSafetensors(path, {{"", Tensor()}}); },
                          {"invalid tensor name"}));
  EXPECT_TRUE(throwsError([&] { writeSafetensors(path, {{"\xFF", Tensor()}}); },
                          {"invalid tensor name", "UTF-8"}));
  EXPECT_EQ(readFile(path), before);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.safetensors"});
}

TEST_F(SafetensorsTest, AtomicWriteRemovesTempFileWhenRenameFails) {
  // The target is a directory: the temp file gets written, rename() fails.
  std::string target = dir.file("target");
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  EXPECT_TRUE(throwsError(
      [&] { writeSafetensors(target, {{"x", Tensor(DType::F32, {4})}}); },
      {target, "cannot rename"}));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"target"});
}

TEST_F(SafetensorsTest, AtomicWriteFailsCleanlyInMissingDirectory) {
  std::string path = dir.file("no/such/dir/out.safetensors");
  EXPECT_TRUE(throwsError([&] { writeSafetensors(path, {{"x", Tensor()}}); },
                          {path, "cannot create temporary file"}));
  EXPECT_TRUE(dir.entries().empty());
}

TEST_F(SafetensorsTest, OverwritesAtomically) {
  std::string path = dir.file("out.safetensors");
  writeSafetensors(path, {{"x", Tensor(DType::F32, {1})}});
  writeSafetensors(path, {{"y", Tensor(DType::I8, {3})}});
  SafetensorsFile file = readSafetensors(path);
  ASSERT_EQ(file.tensors.size(), 1u);
  EXPECT_EQ(file.tensors.begin()->first, "y");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.safetensors"});
}

} // namespace
