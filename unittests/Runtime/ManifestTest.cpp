//===- ManifestTest.cpp - Parsing and validating manifest.json ------------===//

#include "modrt/Manifest.h"
#include "TestUtil.h"

using namespace modrt;
using modrt::test::TempDir;
using modrt::test::throwsError;
using modrt::test::writeFile;

namespace {

const char kGood[] = R"json({
  "format": "modc-manifest", "version": 1, "target": "cpu", "library": "model.so",
  "B": 1, "S": 4, "capacities": [2, 2], "schedule": {"kind": "every-other"},
  "entry_points": [
    {"name": "forward", "symbol": "_modrt_forward", "init": "normal(0.02)",
     "inputs":  [{"name": "x", "dtype": "f32", "shape": [1, 4, 8]},
                 {"name": "p", "dtype": "i32", "shape": [1, 4], "role": "positions"}],
     "outputs": [{"name": "result0", "dtype": "f32", "shape": [1, 4, 8]}]},
    {"name": "loss", "symbol": "_modrt_loss",
     "inputs": [], "outputs": [{"name": "l", "dtype": "bf16", "shape": []}]}]
})json";

/// kGood with `from` replaced by `to` (which must occur exactly once).
std::string edited(const std::string &from, const std::string &to,
                   std::string text = kGood) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

::testing::AssertionResult rejects(const std::string &text,
                                   std::vector<std::string> words) {
  words.push_back("test.json");
  return throwsError([&] { Manifest::parse(text, "test.json"); }, words);
}

TEST(ManifestTest, ParsesAndIgnoresUnknownKeys) {
  Manifest m = Manifest::parse(kGood, "test.json");
  EXPECT_EQ(m.version, 1);
  EXPECT_EQ(m.target, "cpu");
  EXPECT_EQ(m.library, "model.so");
  ASSERT_EQ(m.entryPoints.size(), 2u);
  const EntryPoint &forward = m.entryPoints[0];
  EXPECT_EQ(forward.name, "forward");
  EXPECT_EQ(forward.symbol, "_modrt_forward");
  ASSERT_EQ(forward.inputs.size(), 2u);
  EXPECT_EQ(forward.inputs[0].name, "x");
  EXPECT_EQ(forward.inputs[0].dtype, DType::F32);
  EXPECT_EQ(forward.inputs[0].shape, (std::vector<int64_t>{1, 4, 8}));
  EXPECT_EQ(forward.inputs[1].dtype, DType::I32);
  EXPECT_EQ(forward.inputs[1].str(), "i32[1x4]");
  ASSERT_EQ(forward.outputs.size(), 1u);
  EXPECT_EQ(forward.outputs[0].name, "result0");
  const EntryPoint *loss = m.findEntry("loss");
  ASSERT_NE(loss, nullptr);
  EXPECT_TRUE(loss->inputs.empty());
  EXPECT_EQ(loss->outputs[0].dtype, DType::BF16);
  EXPECT_TRUE(loss->outputs[0].shape.empty());
  EXPECT_EQ(m.findEntry("nope"), nullptr);
  EXPECT_EQ(m.entryNames(), "forward, loss");
  // Newer keys stay reachable for code that knows them.
  EXPECT_EQ(m.json.find("S")->asInt(), 4);
}

TEST(ManifestTest, LoadsFromFile) {
  TempDir dir;
  writeFile(dir.file("manifest.json"), kGood);
  EXPECT_EQ(Manifest::load(dir.file("manifest.json")).entryPoints.size(), 2u);
  EXPECT_TRUE(throwsError([&] { Manifest::load(dir.file("missing.json")); },
                          {"missing.json", "cannot open manifest"}));
}

TEST(ManifestTest, RejectsDuplicateKeys) {
  // A second "library" must not silently replace the first.
  EXPECT_TRUE(rejects(edited(R"("library": "model.so",)",
                             R"("library": "model.so", "library": "other.so",)"),
                      {"invalid JSON", "duplicate key \"library\""}));
  EXPECT_TRUE(rejects(edited(R"("symbol": "_modrt_forward",)",
                             R"("symbol": "_modrt_forward", "symbol": "x",)"),
                      {"duplicate key \"symbol\"", "/entry_points/0"}));
}

TEST(ManifestTest, RejectsInvalidDocuments) {
  EXPECT_TRUE(rejects("{", {"invalid JSON", "at byte 1"}));
  EXPECT_TRUE(rejects("[]", {"not a JSON object"}));
  EXPECT_TRUE(rejects(edited(R"("format": "modc-manifest")", R"("format": "onnx")"),
                      {"\"format\" is \"onnx\"", "modc-manifest"}));
  EXPECT_TRUE(rejects(edited(R"("format": "modc-manifest", )", ""), {"missing \"format\""}));
  EXPECT_TRUE(rejects(edited(R"("version": 1)", R"("version": 2)"),
                      {"unsupported manifest version 2"}));
  EXPECT_TRUE(rejects(edited(R"("version": 1)", R"("version": "1")"),
                      {"\"version\" must be an integer"}));
  EXPECT_TRUE(rejects(edited(R"("target": "cpu")", R"("target": "tpu")"),
                      {"unknown target \"tpu\""}));
  EXPECT_TRUE(rejects(edited(R"("library": "model.so")", R"("library": "")"),
                      {"\"library\" must be a non-empty string"}));
  for (const char *escape : {"/tmp/evil.so", "../evil.so", "a/../../evil.so", "a/.."})
    EXPECT_TRUE(rejects(edited(R"("library": "model.so")",
                               std::string(R"("library": ")") + escape + "\""),
                        {"relative path inside the model directory"}))
        << escape;
}

TEST(ManifestTest, RejectsInvalidEntryPoints) {
  EXPECT_TRUE(rejects(R"({"format": "modc-manifest", "version": 1, "target": "cpu",
                          "library": "m.so", "entry_points": []})",
                      {"\"entry_points\" is empty"}));
  EXPECT_TRUE(rejects(R"({"format": "modc-manifest", "version": 1, "target": "cpu",
                          "library": "m.so", "entry_points": {}})",
                      {"\"entry_points\" must be an array"}));
  EXPECT_TRUE(rejects(R"({"format": "modc-manifest", "version": 1, "target": "cpu",
                          "library": "m.so", "entry_points": [3]})",
                      {"entry_points[0]: must be an object"}));
  EXPECT_TRUE(rejects(edited(R"("name": "loss")", R"("name": "forward")"),
                      {"entry_points[1] ('forward')", "duplicate entry point name"}));
  EXPECT_TRUE(rejects(edited(R"("symbol": "_modrt_loss",)", ""),
                      {"entry_points[1] ('loss')", "missing \"symbol\""}));
  EXPECT_TRUE(rejects(edited(R"("inputs": [],)", ""),
                      {"entry_points[1] ('loss')", "missing \"inputs\""}));
}

TEST(ManifestTest, RejectsInvalidTensorSpecs) {
  EXPECT_TRUE(rejects(edited(R"("name": "p", "dtype": "i32")", R"("name": "p", "dtype": "q7")"),
                      {"entry_points[0] ('forward'): inputs[1]", "unknown dtype \"q7\""}));
  EXPECT_TRUE(rejects(edited(R"("shape": [1, 4], )", R"("shape": [1, -4], )"),
                      {"inputs[1]", "non-negative integers, got -4"}));
  EXPECT_TRUE(rejects(edited(R"("shape": [1, 4], )", R"("shape": "1x4", )"),
                      {"inputs[1]", "\"shape\" must be an array"}));
  EXPECT_TRUE(rejects(edited(R"("shape": [1, 4], )",
                             R"("shape": [4611686018427387904, 4], )"),
                      {"inputs[1]", "too large"}));
  EXPECT_TRUE(rejects(edited(R"("name": "p")", R"("name": "x")"),
                      {"inputs[1]", "duplicate name \"x\""}));
  EXPECT_TRUE(rejects(edited(R"("name": "l")", R"("name": 5)"),
                      {"outputs[0]", "\"name\" must be a non-empty string"}));
  EXPECT_TRUE(rejects(edited(R"({"name": "l", "dtype": "bf16", "shape": []})", "7"),
                      {"outputs[0]: must be an object"}));
}

TEST(ManifestTest, OutputAliases) {
  Manifest m = Manifest::parse(
      edited(R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8]})",
             R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8], "alias_of": "x"})"),
      "test.json");
  ASSERT_TRUE(m.entryPoints[0].outputs[0].aliasOf);
  EXPECT_EQ(*m.entryPoints[0].outputs[0].aliasOf, 0u);
  EXPECT_FALSE(m.entryPoints[1].outputs[0].aliasOf);
  EXPECT_TRUE(rejects(edited(R"("name": "result0", "dtype": "f32", "shape": [1, 4, 8]})",
                             R"("name": "result0", "dtype": "f32", "shape": [1, 4, 8], "alias_of": "nope"})"),
                      {"outputs[0]", "\"alias_of\" names no input: \"nope\""}));
  EXPECT_TRUE(rejects(edited(R"("name": "result0", "dtype": "f32", "shape": [1, 4, 8]})",
                             R"("name": "result0", "dtype": "f32", "shape": [1, 4, 8], "alias_of": 0})"),
                      {"outputs[0]", "\"alias_of\" must be an input name"}));
  EXPECT_TRUE(rejects(edited(R"("name": "result0", "dtype": "f32", "shape": [1, 4, 8]})",
                             R"("name": "result0", "dtype": "f32", "shape": [1, 4, 8], "alias_of": "p"})"),
                      {"outputs[0]", "output 'result0' (f32[1x4x8]) cannot alias input 'p' (i32[1x4])"}));
  EXPECT_TRUE(rejects(
      edited(R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8]})",
             R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8], "alias_of": "x"},
                {"name": "result1", "dtype": "f32", "shape": [1, 4, 8], "alias_of": "x"})"),
      {"outputs[1]", "input 'x' is aliased by two outputs"}));
}

TEST(ManifestTest, DeviceResidency) {
  auto cuda = [](std::string text) {
    return edited(R"("target": "cpu")", R"("target": "cuda")", std::move(text));
  };
  // An input and the output that updates it in place.
  Manifest m = Manifest::parse(
      cuda(edited(R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8]})",
                  R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8], "alias_of": "x", "residency": "device"})",
                  edited(R"({"name": "x", "dtype": "f32", "shape": [1, 4, 8])",
                         R"({"name": "x", "dtype": "f32", "shape": [1, 4, 8], "residency": "device")"))),
      "test.json");
  EXPECT_TRUE(m.entryPoints[0].inputs[0].deviceResident);
  EXPECT_TRUE(m.entryPoints[0].outputs[0].deviceResident);
  EXPECT_FALSE(m.entryPoints[0].inputs[1].deviceResident);
  // "host" is the default, spelled out.
  Manifest h = Manifest::parse(
      edited(R"({"name": "x", "dtype": "f32", "shape": [1, 4, 8])",
             R"({"name": "x", "dtype": "f32", "shape": [1, 4, 8], "residency": "host")"),
      "test.json");
  EXPECT_FALSE(h.entryPoints[0].inputs[0].deviceResident);
  EXPECT_TRUE(rejects(
      edited(R"({"name": "x", "dtype": "f32", "shape": [1, 4, 8])",
             R"({"name": "x", "dtype": "f32", "shape": [1, 4, 8], "residency": "gpu")"),
      {"\"residency\" must be \"host\" or \"device\", got \"gpu\""}));
  // Only CUDA models have device buffers.
  EXPECT_TRUE(rejects(
      edited(R"({"name": "x", "dtype": "f32", "shape": [1, 4, 8])",
             R"({"name": "x", "dtype": "f32", "shape": [1, 4, 8], "residency": "device")"),
      {"input 'x' has \"residency\": \"device\" but the target is \"cpu\""}));
  // A resident output that aliases nothing stays in the model's device
  // buffer of its name (gradients passed from @loss_and_grad to
  // @adamw_step), here read by the other entry point as a resident input.
  Manifest g = Manifest::parse(
      cuda(edited(R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8]})",
                  R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8], "residency": "device"})",
                  edited(R"("inputs": [], "outputs")",
                         R"("inputs": [{"name": "result0", "dtype": "f32", "shape": [1, 4, 8], "residency": "device"}], "outputs")"))),
      "test.json");
  EXPECT_TRUE(g.entryPoints[0].outputs[0].deviceResident);
  EXPECT_FALSE(g.entryPoints[0].outputs[0].aliasOf);
  EXPECT_TRUE(g.entryPoints[1].inputs[0].deviceResident);
  // One buffer per name: the reader must agree on dtype and shape.
  EXPECT_TRUE(rejects(
      cuda(edited(R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8]})",
                  R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8], "residency": "device"})",
                  edited(R"("inputs": [], "outputs")",
                         R"("inputs": [{"name": "result0", "dtype": "f32", "shape": [4, 8], "residency": "device"}], "outputs")"))),
      {"device-resident input 'result0' is f32[4x8] here but f32[1x4x8] "
       "elsewhere"}));
  // Not the name of an input of the same call that it does not alias.
  EXPECT_TRUE(rejects(
      cuda(edited(R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8]})",
                  R"({"name": "x", "dtype": "f32", "shape": [1, 4, 8], "residency": "device"})")),
      {"outputs[0]", "output 'x' has \"residency\": \"device\" and the name "
       "of an input it does not alias"}));
  // An output that updates an input in place is resident exactly when the
  // input is.
  EXPECT_TRUE(rejects(
      cuda(edited(R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8]})",
                  R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8], "alias_of": "x", "residency": "device"})")),
      {"output 'result0' has \"residency\": \"device\" but aliases input "
       "'x', which is not device-resident"}));
  EXPECT_TRUE(rejects(
      cuda(edited(R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8]})",
                  R"({"name": "result0", "dtype": "f32", "shape": [1, 4, 8], "alias_of": "x"})",
                  edited(R"({"name": "x", "dtype": "f32", "shape": [1, 4, 8])",
                         R"({"name": "x", "dtype": "f32", "shape": [1, 4, 8], "residency": "device")"))),
      {"updates device-resident input 'x' in place but is not"}));
}

TEST(ManifestTest, GemmPrecision) {
  // Absent: f32 (CPU models, and CUDA models compiled before the key).
  EXPECT_EQ(Manifest::parse(kGood, "test.json").gemmPrecision, "f32");
  std::string cuda = edited("\"target\": \"cpu\"", "\"target\": \"cuda\"");
  for (const char *value : {"f32", "tf32", "bf16"}) {
    Manifest m = Manifest::parse(
        edited("\"library\": \"model.so\",",
               std::string("\"library\": \"model.so\", \"gemm_precision\": \"") +
                   value + "\",",
               cuda),
        "test.json");
    EXPECT_EQ(m.gemmPrecision, value);
  }
  Manifest bf16 = Manifest::parse(
      edited("\"library\": \"model.so\",",
             "\"library\": \"model.so\", \"gemm_precision\": \"bf16\",", cuda),
      "test.json");
  EXPECT_EQ(bf16.gemmPrecisionDescription(),
            "bf16 (bf16 GEMM operands, f32 accumulation, f32 master weights)");
  EXPECT_TRUE(rejects(edited("\"library\": \"model.so\",",
                             "\"library\": \"model.so\", "
                             "\"gemm_precision\": \"fp16\",",
                             cuda),
                      {"unknown \"gemm_precision\" \"fp16\""}));
  EXPECT_TRUE(rejects(edited("\"library\": \"model.so\",",
                             "\"library\": \"model.so\", "
                             "\"gemm_precision\": 16,",
                             cuda),
                      {"gemm_precision"}));
  // A CPU model's GEMMs are f32.
  EXPECT_TRUE(rejects(edited("\"library\": \"model.so\",",
                             "\"library\": \"model.so\", "
                             "\"gemm_precision\": \"bf16\","),
                      {"needs the \"cuda\" target"}));
}

} // namespace
