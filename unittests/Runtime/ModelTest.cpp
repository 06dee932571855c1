//===- ModelTest.cpp - Loading a model library and calling entry points ---===//
//
// Uses modrt_test_model (TestModel.c), a hand-written library that follows
// the compiled code's calling convention.
//
//===----------------------------------------------------------------------===//

#include "modrt/Model.h"
#include "modrt/Sha256.h"
#include "TestUtil.h"

using namespace modrt;
using modrt::test::TempDir;
using modrt::test::throwsError;
using modrt::test::writeFile;
using modrt::test::writeTestModel;

namespace {

Tensor f32(std::vector<int64_t> shape, std::vector<float> values) {
  return Tensor::fromValues<float>(DType::F32, std::move(shape), values);
}

TEST(ModelTest, MemRefDescriptorLayout) {
  Tensor t(DType::F32, {2, 3, 4});
  std::vector<int64_t> d = makeMemRefDescriptor(t);
  ASSERT_EQ(d.size(), 9u);
  void *allocated, *aligned;
  std::memcpy(&allocated, &d[0], sizeof allocated);
  std::memcpy(&aligned, &d[1], sizeof aligned);
  EXPECT_EQ(allocated, t.rawData());
  EXPECT_EQ(aligned, t.rawData());
  EXPECT_EQ(d[2], 0);
  EXPECT_EQ(std::vector<int64_t>(d.begin() + 3, d.begin() + 6), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(std::vector<int64_t>(d.begin() + 6, d.end()), (std::vector<int64_t>{12, 4, 1}));

  Tensor scalar(DType::I64, {});
  EXPECT_EQ(makeMemRefDescriptor(scalar).size(), 3u);
  Tensor empty(DType::F32, {0, 5});
  std::vector<int64_t> e = makeMemRefDescriptor(empty);
  EXPECT_EQ(std::vector<int64_t>(e.begin() + 3, e.end()), (std::vector<int64_t>{0, 5, 5, 1}));
}

TEST(ModelTest, CallsEntryPoints) {
  TempDir dir;
  writeTestModel(dir);
  Model model = Model::load(dir.path());
  EXPECT_EQ(model.manifest().entryPoints.size(), 3u);

  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = f32({2, 3}, {10, 20, 30, 40, 50, 60});
  std::vector<Tensor> out = model.call("add", {&a, &b});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].dtype(), DType::F32);
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{2, 3}));
  const float expected[] = {11, 22, 33, 44, 55, 66};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out[0].data<float>()[i], expected[i]) << i;

  // Rank-0 output: row 0 weighs 1, row 1 weighs 10.
  std::vector<Tensor> total = model.call("sum", {&a});
  ASSERT_EQ(total.size(), 1u);
  EXPECT_TRUE(total[0].shape().empty());
  EXPECT_EQ(total[0].data<float>()[0], 6.0f + 10.0f * 15.0f);

  std::vector<Tensor> iota = model.call("iota", {});
  ASSERT_EQ(iota.size(), 1u);
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(iota[0].data<int64_t>()[i], i);

  // A moved model keeps working.
  Model moved = std::move(model);
  EXPECT_EQ(moved.call("iota", {})[0].data<int64_t>()[3], 3);
}

TEST(ModelTest, CallIntoReusesTheCallersOutputs) {
  TempDir dir;
  writeTestModel(dir);
  Model model = Model::load(dir.path());
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = f32({2, 3}, {10, 20, 30, 40, 50, 60});
  // Not the manifest's outputs: replaced by tensors of the right type.
  std::vector<Tensor> outs;
  outs.emplace_back(DType::F32, std::vector<int64_t>{3, 2});
  model.callInto("add", {&a, &b}, outs);
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(outs[0].data<float>()[5], 66.0f);
  // Right type: the same buffer is overwritten, whatever it held.
  const void *buffer = outs[0].rawData();
  outs[0].data<float>()[0] = 1e9f;
  model.callInto("add", {&b, &b}, outs);
  EXPECT_EQ(outs[0].rawData(), buffer);
  const float expected[] = {20, 40, 60, 80, 100, 120};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(outs[0].data<float>()[i], expected[i]) << i;
  // Inputs are checked as in call.
  EXPECT_TRUE(throwsError([&] { model.callInto("add", {&a}, outs); },
                          {"expected 2 inputs, got 1"}));
}

TEST(ModelTest, ValidatesInputs) {
  TempDir dir;
  writeTestModel(dir);
  Model model = Model::load(dir.path());
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor transposed = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor ints(DType::I32, {2, 3});
  Tensor vector(DType::F32, {6});

  EXPECT_TRUE(throwsError([&] { model.call("add", {&a}); },
                          {"entry point 'add'", "expected 2 inputs, got 1"}));
  EXPECT_TRUE(throwsError([&] { model.call("iota", {&a}); },
                          {"expected 0 inputs, got 1"}));
  EXPECT_TRUE(throwsError([&] { model.call("add", {&a, &transposed}); },
                          {"input 1 ('b')", "must be f32[2x3]", "got f32[3x2]"}));
  EXPECT_TRUE(throwsError([&] { model.call("add", {&ints, &a}); },
                          {"input 0 ('a')", "must be f32[2x3]", "got i32[2x3]"}));
  EXPECT_TRUE(throwsError([&] { model.call("sum", {&vector}); },
                          {"input 0 ('x')", "f32[2x3]", "got f32[6]"}));
  EXPECT_TRUE(throwsError([&] { model.call("add", {&a, nullptr}); },
                          {"input 1 ('b') is null"}));
  EXPECT_TRUE(throwsError([&] { model.call("forward", {}); },
                          {"no entry point 'forward'", "available: add, sum, iota"}));
}

TEST(ModelTest, LoadErrors) {
  TempDir dir;
  EXPECT_TRUE(throwsError([&] { Model::load(dir.path()); },
                          {dir.file("manifest.json"), "cannot open manifest"}));

  writeTestModel(dir);
  std::filesystem::remove(dir.file("model.so"));
  EXPECT_TRUE(throwsError([&] { Model::load(dir.path()); },
                          {dir.file("model.so"), "cannot load model library"}));

  // Not a shared library at all, though the manifest records its digest.
  writeFile(dir.file("model.so"), "not an ELF file");
  {
    std::string manifest = modrt::test::kTestManifest;
    const std::string key = "\"library\": \"model.so\"";
    manifest.insert(manifest.find(key) + key.size(),
                    ", \"library_sha256\": \"" + Sha256::hex("not an ELF file") + "\"");
    writeFile(dir.file("manifest.json"), manifest);
  }
  EXPECT_TRUE(throwsError([&] { Model::load(dir.path()); },
                          {"cannot load model library"}));

  std::string manifest = modrt::test::kTestManifest;
  manifest.replace(manifest.find("_modrt_sum"), 10, "_modrt_gone");
  writeTestModel(dir, manifest);
  EXPECT_TRUE(throwsError([&] { Model::load(dir.path()); },
                          {"entry point 'sum'", "symbol '_modrt_gone' not found"}));
}

// Issue 13, item 6: a truncated or corrupted model.so crashed inside dlopen.
// Its digest is checked against the manifest before any of its code runs.
TEST(ModelTest, RefusesLibraryThatDoesNotMatchItsDigest) {
  TempDir dir;
  writeTestModel(dir);
  const std::string library = modrt::test::readFile(dir.file("model.so"));
  ASSERT_GT(library.size(), 1000u);

  writeFile(dir.file("model.so"), library.substr(0, library.size() / 2));
  EXPECT_TRUE(throwsError([&] { Model::load(dir.path()); },
                          {dir.file("model.so"), "SHA-256", "truncated, corrupted"}));

  std::string corrupted = library;
  corrupted[corrupted.size() / 3] ^= 0x5a;
  writeFile(dir.file("model.so"), corrupted);
  EXPECT_TRUE(throwsError([&] { Model::load(dir.path()); }, {"SHA-256", "recompile"}));

  // A manifest without a digest cannot vouch for any library.
  writeFile(dir.file("model.so"), library);
  writeFile(dir.file("manifest.json"), modrt::test::kTestManifest);
  EXPECT_TRUE(throwsError([&] { Model::load(dir.path()); },
                          {"records no \"library_sha256\"", "recompile"}));
}

// Issue 13, item 6: a manifest declaring a smaller output than the code
// writes made the model write past its buffer (SIGSEGV). The library's
// signature strings are checked against the manifest at load.
TEST(ModelTest, RefusesManifestThatDisagreesWithTheLibrary) {
  TempDir dir;
  auto rejects = [&](const std::string &from, const std::string &to,
                     const std::vector<std::string> &words) {
    std::string manifest = modrt::test::kTestManifest;
    size_t at = manifest.find(from);
    if (at == std::string::npos) return ::testing::AssertionFailure() << "no " << from;
    manifest.replace(at, from.size(), to);
    writeTestModel(dir, manifest);
    return throwsError([&] { Model::load(dir.path()); }, words);
  };
  // Output smaller than what _modrt_add writes.
  EXPECT_TRUE(rejects(R"("name": "sum", "dtype": "f32", "shape": [2, 3])",
                      R"("name": "sum", "dtype": "f32", "shape": [1, 3])",
                      {"entry point 'add'", "the manifest declares in:f32[2x3],f32[2x3];out:f32[1x3]",
                       "compiled for in:f32[2x3],f32[2x3];out:f32[2x3]"}));
  // Input smaller than what _modrt_sum reads.
  EXPECT_TRUE(rejects(R"("name": "x", "dtype": "f32", "shape": [2, 3])",
                      R"("name": "x", "dtype": "f32", "shape": [2])",
                      {"entry point 'sum'", "out:f32[]", "does not belong to this library"}));
  // Another dtype of the same size.
  EXPECT_TRUE(rejects(R"("name": "values", "dtype": "i64")", R"("name": "values", "dtype": "f64")",
                      {"entry point 'iota'", "out:f64[4]", "out:i64[4]"}));
  // A missing input.
  EXPECT_TRUE(rejects("},\n                 {\"name\": \"b\", \"dtype\": \"f32\", \"shape\": [2, 3]}",
                      "}", {"entry point 'add'", "declares in:f32[2x3];out:f32[2x3]"}));
  // Symbols without a signature, or not following the naming scheme.
  EXPECT_TRUE(rejects("_modrt_iota", "_modrt_unsigned",
                      {"entry point 'iota'", "signature symbol '_modrtsig_unsigned' not found"}));
  EXPECT_TRUE(rejects("\"symbol\": \"_modrt_iota\"", "\"symbol\": \"_modrtsig_iota\"",
                      {"entry point 'iota'", "does not start with \"_modrt_\""}));

  // The genuine manifest loads.
  writeTestModel(dir);
  EXPECT_NO_THROW(Model::load(dir.path()));
}

} // namespace
