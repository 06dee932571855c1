//===- WeightsTest.cpp - Loading, initializing and saving parameters ------===//

#include "modrt/Safetensors.h"
#include "modrt/Weights.h"
#include "TestUtil.h"

#include <cmath>

using namespace modrt;
using modrt::test::TempDir;
using modrt::test::throwsError;

namespace {

/// An entry point with a data input and three parameters.
const char kManifest[] = R"({
  "format": "modc-manifest", "version": 1, "target": "cpu", "library": "model.so",
  "entry_points": [
    {"name": "forward", "symbol": "_f",
     "inputs": [
       {"name": "tokens", "dtype": "i32", "shape": [1, 4], "kind": "input", "init": "whatever"},
       {"name": "w.weight", "dtype": "f32", "shape": [3, 4], "kind": "parameter",
        "init": "normal:0.5"},
       {"name": "w.bias", "dtype": "f32", "shape": [4], "kind": "parameter", "init": "zeros"},
       {"name": "norm.weight", "dtype": "bf16", "shape": [4], "kind": "parameter",
        "init": "ones"}],
     "outputs": [{"name": "y", "dtype": "f32", "shape": [1, 4]}]}]
})";

Manifest manifest(const std::string &text = kManifest) {
  return Manifest::parse(text, "test.json");
}

std::string replaced(std::string text, const std::string &from, const std::string &to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(WeightsTest, ManifestKindAndInit) {
  Manifest m = manifest();
  const std::vector<TensorSpec> &in = m.entryPoints[0].inputs;
  EXPECT_FALSE(in[0].isParameter());
  EXPECT_FALSE(in[0].init); // a data input's init is ignored
  ASSERT_TRUE(in[1].isParameter());
  ASSERT_TRUE(in[1].init);
  EXPECT_EQ(in[1].init->kind, ParameterInit::Kind::Normal);
  EXPECT_EQ(in[1].init->std, 0.5);
  EXPECT_EQ(in[1].init->str(), "normal:0.5");
  EXPECT_EQ(in[2].init->kind, ParameterInit::Kind::Zeros);
  EXPECT_EQ(in[3].init->str(), "ones");

  EXPECT_TRUE(throwsError([] { manifest(replaced(kManifest, "\"init\": \"zeros\"", "\"init\": \"uniform\"")); },
                          {"test.json", "inputs[2]", "\"init\" of parameter 'w.bias' must be",
                           "\"normal:<std>\"", "got \"uniform\""}));
  for (const char *bad : {"normal:", "normal:-1", "normal:x", "normal:0.1x", "normal:inf"})
    EXPECT_TRUE(throwsError([&] { manifest(replaced(kManifest, "normal:0.5", bad)); },
                            {"\"init\" of parameter 'w.weight'"})) << bad;
  EXPECT_TRUE(throwsError([] { manifest(replaced(kManifest, "\"init\": \"zeros\"", "\"init\": 0")); },
                          {"got 0"}));
  EXPECT_TRUE(throwsError([] { manifest(replaced(kManifest, "\"kind\": \"input\"", "\"kind\": \"buffer\"")); },
                          {"inputs[0]", "\"kind\" must be \"input\" or \"parameter\", got \"buffer\""}));
  // A parameter without init parses; it just cannot be initialized.
  Manifest noInit = manifest(replaced(kManifest, ", \"init\": \"zeros\"", ""));
  EXPECT_FALSE(noInit.entryPoints[0].inputs[2].init);
  EXPECT_TRUE(throwsError([&] { initParameter(noInit.entryPoints[0].inputs[2], 0); },
                          {"parameter 'w.bias' f32[4] has no \"init\" rule"}));
}

TEST(WeightsTest, LoadsConvertsAndReports) {
  TempDir dir;
  Manifest m = manifest();
  const EntryPoint &entry = m.entryPoints[0];
  std::vector<uint16_t> half;
  for (int i = 0; i < 12; ++i) half.push_back(floatToBFloat16(0.25f * float(i) - 1.0f));
  std::map<std::string, Tensor> file;
  file.emplace("w.weight", Tensor::fromValues<uint16_t>(DType::BF16, {3, 4}, half));
  std::vector<uint16_t> f16 = {floatToHalf(1.5f), floatToHalf(-2), 0, floatToHalf(0.125f)};
  file.emplace("w.bias", Tensor::fromValues<uint16_t>(DType::F16, {4}, f16));
  std::vector<uint16_t> ones(4, floatToBFloat16(3.0f));
  file.emplace("norm.weight", Tensor::fromValues<uint16_t>(DType::BF16, {4}, ones));
  file.emplace("tokens", Tensor(DType::I32, {1, 4})); // a data input, not a parameter
  file.emplace("stray", Tensor(DType::F32, {2}));
  writeSafetensors(dir.file("w.safetensors"), file);

  ParameterLoadReport report;
  std::map<std::string, Tensor> p = loadParameters(entry, dir.file("w.safetensors"), false, 0, &report);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p.at("w.weight").dtype(), DType::F32); // bf16 widened for an f32 parameter
  for (int i = 0; i < 12; ++i) EXPECT_EQ(p.at("w.weight").data<float>()[i], 0.25f * float(i) - 1.0f);
  EXPECT_EQ(p.at("w.bias").data<float>()[0], 1.5f);
  EXPECT_EQ(p.at("w.bias").data<float>()[1], -2.0f);
  EXPECT_EQ(p.at("norm.weight").dtype(), DType::BF16); // kept: the parameter is bf16
  EXPECT_TRUE(report.initialized.empty());
  EXPECT_EQ(report.unexpected, (std::vector<std::string>{"stray", "tokens"}));

  // Missing, misshapen and mistyped tensors are errors that name them.
  file.erase("w.bias");
  writeSafetensors(dir.file("w.safetensors"), file);
  try {
    loadParameters(entry, dir.file("w.safetensors"), false, 0);
    ADD_FAILURE() << "no error for a missing parameter";
  } catch (const MissingParameterError &e) {
    EXPECT_NE(std::string(e.what()).find("missing parameter 'w.bias' f32[4] of entry point 'forward'"),
              std::string::npos) << e.what();
  }
  p = loadParameters(entry, dir.file("w.safetensors"), true, 7, &report);
  EXPECT_EQ(report.initialized, (std::vector<std::string>{"w.bias"}));
  EXPECT_TRUE(p.at("w.bias").identical(Tensor(DType::F32, {4})));

  file.emplace("w.bias", Tensor(DType::F32, {5}));
  writeSafetensors(dir.file("w.safetensors"), file);
  EXPECT_TRUE(throwsError([&] { loadParameters(entry, dir.file("w.safetensors"), true, 0); },
                          {"w.safetensors", "parameter 'w.bias' has shape [5]", "expects [4]"}));
  file.erase("w.bias");
  file.emplace("w.bias", Tensor(DType::I32, {4}));
  writeSafetensors(dir.file("w.safetensors"), file);
  EXPECT_TRUE(throwsError([&] { loadParameters(entry, dir.file("w.safetensors"), false, 0); },
                          {"parameter 'w.bias' is i32[4], but entry point 'forward' expects f32[4]"}));
  // f32 data is not narrowed into a bf16 parameter behind the user's back.
  file.erase("w.bias");
  file.erase("norm.weight");
  file.emplace("w.bias", Tensor(DType::F32, {4}));
  file.emplace("norm.weight", Tensor(DType::F32, {4}));
  writeSafetensors(dir.file("w.safetensors"), file);
  EXPECT_TRUE(throwsError([&] { loadParameters(entry, dir.file("w.safetensors"), false, 0); },
                          {"parameter 'norm.weight' is f32[4]", "expects bf16[4]"}));
}

TEST(WeightsTest, InitializationIsDeterministicPerName) {
  Manifest m = manifest();
  const TensorSpec &w = m.entryPoints[0].inputs[1];
  Tensor a = initParameter(w, 42), b = initParameter(w, 42), c = initParameter(w, 43);
  EXPECT_TRUE(a.identical(b));
  EXPECT_FALSE(a.identical(c));
  TensorSpec renamed = w;
  renamed.name = "v.weight";
  EXPECT_FALSE(initParameter(renamed, 42).identical(a));

  // Independent of parameter order: the same parameter listed after
  // another one gets the same values.
  const char *twoParams = R"({"format": "modc-manifest", "version": 1, "target": "cpu",
    "library": "m.so", "entry_points": [{"name": "f", "symbol": "_f", "outputs": [],
    "inputs": [%s, %s]}]})";
  const std::string first = R"({"name": "w.weight", "dtype": "f32", "shape": [3, 4],
                                "kind": "parameter", "init": "normal:0.5"})";
  const std::string second = R"({"name": "u", "dtype": "f32", "shape": [64],
                                 "kind": "parameter", "init": "normal:1.0"})";
  char buffer[1024];
  std::snprintf(buffer, sizeof buffer, twoParams, first.c_str(), second.c_str());
  Manifest ab = manifest(buffer);
  std::snprintf(buffer, sizeof buffer, twoParams, second.c_str(), first.c_str());
  Manifest ba = manifest(buffer);
  EXPECT_TRUE(loadParameters(ab.entryPoints[0], "", true, 42)
                  .at("w.weight")
                  .identical(loadParameters(ba.entryPoints[0], "", true, 42).at("w.weight")));
  EXPECT_TRUE(loadParameters(ab.entryPoints[0], "", true, 42).at("w.weight").identical(a));

  EXPECT_EQ(parameterSeed("w.weight", 0) ^ parameterSeed("w.weight", 5), 5u);
  EXPECT_EQ(parameterSeed("", 0), 0xCBF29CE484222325ull);  // FNV-1a 64 offset basis
  EXPECT_EQ(parameterSeed("a", 0), 0xAF63DC4C8601EC8Cull); // FNV-1a 64 of "a"

  // Pinned values (checked against an independent Python transcription of
  // the documented generator): a change of generator must be deliberate. A
  // longer tensor of the same name and seed starts with the same values.
  const float pinned[] = {-0.804168224f, -0.017617777f, 0.272963077f, 0.632023036f};
  TensorSpec big = w;
  big.shape = {100, 100};
  Tensor n = initParameter(big, 42);
  for (int i = 0; i < 4; ++i) {
    EXPECT_FLOAT_EQ(a.data<float>()[i], pinned[i]) << i;
    EXPECT_EQ(n.data<float>()[i], a.data<float>()[i]) << i;
  }
  double sum = 0, squares = 0;
  for (int64_t i = 0; i < n.numElements(); ++i) {
    sum += n.data<float>()[i];
    squares += double(n.data<float>()[i]) * n.data<float>()[i];
  }
  double mean = sum / 1e4, std = std::sqrt(squares / 1e4 - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.02); // 4 standard errors of 0.5/100
  EXPECT_NEAR(std, 0.5, 0.015);

  const TensorSpec &ones = m.entryPoints[0].inputs[3];
  Tensor o = initParameter(ones, 0);
  EXPECT_EQ(o.dtype(), DType::BF16);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(o.elementAsDouble(i), 1.0);
  TensorSpec ints = w;
  ints.dtype = DType::I32;
  EXPECT_TRUE(throwsError([&] { initParameter(ints, 0); },
                          {"only floating-point parameters can be initialized"}));
}

TEST(WeightsTest, SavedParametersReloadIdentically) {
  TempDir dir;
  Manifest m = manifest();
  std::map<std::string, Tensor> p = loadParameters(m.entryPoints[0], "", true, 9);
  ASSERT_EQ(p.size(), 3u);
  saveParameters(dir.file("saved.safetensors"), p);
  SafetensorsFile file = readSafetensors(dir.file("saved.safetensors"));
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  std::map<std::string, Tensor> q = loadParameters(m.entryPoints[0], dir.file("saved.safetensors"), false, 0);
  for (const auto &[name, t] : p) EXPECT_TRUE(q.at(name).identical(t)) << name;
}

} // namespace

namespace {
TEST(WeightsTest, ManifestInitSeedOverridesTheRunSeed) {
  // --mod-dense-to-mod's router-init-seed reaches the manifest as init_seed:
  // that parameter's values then ignore the run's --seed.
  Manifest seeded = manifest(replaced(kManifest, "\"init\": \"normal:0.5\"",
                                      "\"init\": \"normal:0.5\", \"init_seed\": 7"));
  const TensorSpec &w = seeded.entryPoints[0].inputs[1];
  ASSERT_TRUE(w.initSeed);
  EXPECT_EQ(*w.initSeed, 7u);
  EXPECT_TRUE(initParameter(w, 1).identical(initParameter(w, 2)));
  Manifest unseeded = manifest();
  const TensorSpec &plain = unseeded.entryPoints[0].inputs[1];
  EXPECT_FALSE(plain.initSeed);
  EXPECT_TRUE(initParameter(w, 123).identical(initParameter(plain, 7)));
  // Issue 13 item 4: every uint64 is a seed, kept exactly (2^63 and above
  // used to overflow), and anything else is refused naming file and field.
  for (const char *max : {"18446744073709551615", "9223372036854775808"}) {
    Manifest big = manifest(replaced(kManifest, "\"init\": \"normal:0.5\"",
                                     std::string("\"init\": \"normal:0.5\", \"init_seed\": ") + max));
    ASSERT_TRUE(big.entryPoints[0].inputs[1].initSeed);
    EXPECT_EQ(std::to_string(*big.entryPoints[0].inputs[1].initSeed), max);
  }
  for (const char *bad : {"-1", "1.5", "\"7\"", "1e3", "18446744073709551616", "-9223372036854775809"})
    EXPECT_TRUE(throwsError(
        [&] {
          manifest(replaced(kManifest, "\"init\": \"normal:0.5\"",
                            std::string("\"init\": \"normal:0.5\", \"init_seed\": ") + bad));
        },
        {"test.json", "\"init_seed\" of parameter 'w.weight' must be a non-negative integer"}))
        << bad;
}
} // namespace
