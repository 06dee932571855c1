//===- ModelTest.cpp - Loading a model library and calling entry points ---===//
//
// Uses modrt_test_model (TestModel.c), a hand-written library that follows
// the compiled code's calling convention.
//
//===----------------------------------------------------------------------===//

#include "modrt/Model.h"
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

  writeFile(dir.file("manifest.json"), modrt::test::kTestManifest);
  EXPECT_TRUE(throwsError([&] { Model::load(dir.path()); },
                          {dir.file("model.so"), "cannot load model library"}));

  // Not a shared library at all.
  writeFile(dir.file("model.so"), "not an ELF file");
  EXPECT_TRUE(throwsError([&] { Model::load(dir.path()); },
                          {"cannot load model library"}));

  std::string manifest = modrt::test::kTestManifest;
  manifest.replace(manifest.find("_modrt_sum"), 10, "_modrt_gone");
  writeTestModel(dir, manifest);
  EXPECT_TRUE(throwsError([&] { Model::load(dir.path()); },
                          {"entry point 'sum'", "symbol '_modrt_gone' not found"}));
}

} // namespace
