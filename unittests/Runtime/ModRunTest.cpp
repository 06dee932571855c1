//===- ModRunTest.cpp - End-to-end tests of the mod-run tool --------------===//

#include "modrt/Safetensors.h"
#include "modrt/Weights.h"
#include "TestUtil.h"

#include <sys/wait.h>

#include <cmath>
#include <cstdio>

using namespace modrt;
using modrt::test::readFile;
using modrt::test::TempDir;

namespace {

struct RunResult {
  int exitCode;
  std::string out, err;
};

std::string quote(const std::string &arg) {
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

class ModRunTest : public ::testing::Test {
protected:
  void SetUp() override {
    modrt::test::writeTestModel(model, modrt::test::kTestManifest);
  }

  RunResult run(const std::vector<std::string> &args) {
    std::string command = quote(MODRT_MOD_RUN);
    for (const std::string &arg : args) command += " " + quote(arg);
    command += " >" + quote(work.file("stdout")) + " 2>" + quote(work.file("stderr"));
    int status = std::system(command.c_str());
    EXPECT_TRUE(WIFEXITED(status)) << "mod-run did not exit normally: " << command;
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, readFile(work.file("stdout")),
            readFile(work.file("stderr"))};
  }

  /// Inputs for "add": a as f32, b as bf16 (converted by mod-run), plus an
  /// unrelated tensor that must be ignored.
  std::string writeAddInputs() {
    std::map<std::string, Tensor> inputs;
    inputs.emplace("a", Tensor::fromValues<float>(DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6}));
    std::vector<uint16_t> b;
    for (float v : {0.5f, -1.f, 2.f, 0.25f, 100.f, -3.f}) b.push_back(floatToBFloat16(v));
    inputs.emplace("b", Tensor::fromValues<uint16_t>(DType::BF16, {2, 3}, b));
    inputs.emplace("unused", Tensor(DType::I8, {7}));
    std::string path = work.file("inputs.safetensors");
    writeSafetensors(path, inputs);
    return path;
  }

  TempDir model, work;
};

TEST_F(ModRunTest, HelpDescribesEveryOption) {
  RunResult r = run({"--help"});
  EXPECT_EQ(r.exitCode, 0);
  for (const char *option : {"--entry=NAME", "--inputs=FILE", "--outputs=FILE", "--print",
                             "--print-limit=N", "--precision=N", "--help", "--weights=PATH",
                             "--init-missing", "--seed=N", "--save-weights=FILE",
                             "--prompt=TEXT", "--top=N", "byte 0x20"})
    EXPECT_NE(r.out.find(option), std::string::npos) << option;
}

TEST_F(ModRunTest, RunsAndWritesOutputs) {
  std::string inputs = writeAddInputs();
  std::string outputs = work.file("out.safetensors");
  RunResult r = run({model.path(), "--entry=add", "--inputs=" + inputs,
                     "--outputs=" + outputs});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, ""); // --outputs without --print prints nothing
  SafetensorsFile file = readSafetensors(outputs);
  ASSERT_EQ(file.tensors.count("sum"), 1u);
  const Tensor &sum = file.tensors.at("sum");
  EXPECT_EQ(sum.shape(), (std::vector<int64_t>{2, 3}));
  const float expected[] = {1.5f, 1.f, 5.f, 4.25f, 105.f, 3.f};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(sum.data<float>()[i], expected[i]) << i;
  EXPECT_EQ(file.metadata.at("modc.entry_point"), "add");
}

TEST_F(ModRunTest, PrintsOutputsRowByRow) {
  std::string inputs = writeAddInputs();
  RunResult r = run({model.path(), "--entry=add", "--inputs=" + inputs});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "sum: f32[2x3]\n[0,:] 1.5 1 5\n[1,:] 4.25 105 3\n");

  r = run({model.path(), "--entry=add", "--inputs=" + inputs, "--print-limit=4",
           "--precision=2"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "sum: f32[2x3]\n[0,:] 1.5 1 5\n[1,:] 4.2 ...\n"
                   "... 2 more values not shown (--print-limit=0 shows all)\n");

  std::string xPath = work.file("x.safetensors");
  writeSafetensors(xPath, {{"x", Tensor::fromValues<float>(DType::F32, {2, 3},
                                                           {1, 2, 3, 4, 5, 6})}});
  r = run({model.path(), "--entry=sum", "--inputs=" + xPath, "--print",
           "--outputs=" + work.file("o.safetensors")});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "total: f32[]\n[] 156\n"); // 1+2+3 + 10*(4+5+6)
}

TEST_F(ModRunTest, RunsEntryWithoutInputs) {
  RunResult r = run({model.path(), "--entry=iota"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "values: i64[4]\n[:] 0 1 2 3\n");
}

TEST_F(ModRunTest, ReportsErrors) {
  std::string inputs = writeAddInputs();
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> words;
  };
  std::vector<Case> cases = {
      {{model.path()}, {"several entry points", "available: add, sum, iota"}},
      {{model.path(), "--entry=nope"}, {"no entry point 'nope'", "available: add, sum, iota"}},
      {{model.path(), "--entry=add"}, {"takes inputs", "f32[2x3] a", "--inputs="}},
      {{}, {"no model directory given"}},
      {{model.path(), "--bogus"}, {"unknown option '--bogus'", "--help"}},
      {{model.path(), "--entry"}, {"--entry requires a value"}},
      {{model.path(), "--print-limit=-1"}, {"invalid value '-1' for --print-limit"}},
      {{model.path(), "--precision=18"}, {"invalid value '18' for --precision"}},
      {{model.path(), model.path()}, {"only one model directory"}},
      {{work.file("nowhere"), "--entry=iota"}, {"cannot open manifest"}},
      {{model.path(), "--entry=add", "--inputs=" + work.file("none.safetensors")},
       {"none.safetensors", "cannot open"}},
      {{model.path(), "--entry=sum", "--inputs=" + inputs}, {"no tensor named 'x'", "f32[2x3]"}},
      {{model.path(), "--entry=iota",
        "--outputs=" + work.file("missing-dir/out.safetensors")},
       {"cannot create temporary file"}},
  };
  for (const Case &c : cases) {
    RunResult r = run(c.args);
    EXPECT_EQ(r.exitCode, 1) << c.words.front();
    EXPECT_EQ(r.err.rfind("mod-run: error: ", 0), 0u) << r.err;
    for (const std::string &word : c.words)
      EXPECT_NE(r.err.find(word), std::string::npos) << "stderr: " << r.err << "lacks: " << word;
  }
}

TEST_F(ModRunTest, RejectsMismatchedInputs) {
  std::map<std::string, Tensor> tensors;
  tensors.emplace("a", Tensor(DType::I32, {2, 3}));
  tensors.emplace("b", Tensor(DType::F32, {3, 2}));
  tensors.emplace("x", Tensor(DType::F16, {2, 3}));
  std::string path = work.file("bad.safetensors");
  writeSafetensors(path, tensors);
  RunResult r = run({model.path(), "--entry=add", "--inputs=" + path});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("tensor 'a' is i32[2x3], but the input must be f32[2x3]"),
            std::string::npos) << r.err;

  tensors.erase("a");
  tensors.emplace("a", Tensor(DType::F32, {2, 3}));
  writeSafetensors(path, tensors);
  r = run({model.path(), "--entry=add", "--inputs=" + path});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("tensor 'b' is f32[3x2], but the input must be f32[2x3]"),
            std::string::npos)
      << r.err;

  // f16 is widened to f32.
  r = run({model.path(), "--entry=sum", "--inputs=" + path});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "total: f32[]\n[] 0\n");
}

//===----------------------------------------------------------------------===//
// Parameters (--weights, --init-missing, --seed, --save-weights) and
// language-model conveniences (--prompt, --top)
//===----------------------------------------------------------------------===//

/// "add" with `b` a parameter (init ones); "lm" (TestModel.c's _modrt_lm)
/// with two data inputs and two parameters.
const char kParameterManifest[] = R"({
  "format": "modc-manifest", "version": 1, "target": "cpu", "library": "model.so",
  "entry_points": [
    {"name": "add", "symbol": "_modrt_add",
     "inputs":  [{"name": "a", "dtype": "f32", "shape": [2, 3], "kind": "input"},
                 {"name": "b", "dtype": "f32", "shape": [2, 3], "kind": "parameter",
                  "init": "ones"}],
     "outputs": [{"name": "sum", "dtype": "f32", "shape": [2, 3]}]},
    {"name": "lm", "symbol": "_modrt_lm",
     "inputs":  [{"name": "tokens", "dtype": "i32", "shape": [2, 4]},
                 {"name": "positions", "dtype": "i32", "shape": [2, 4]},
                 {"name": "table", "dtype": "f32", "shape": [256, 256], "kind": "parameter",
                  "init": "normal:1.0"},
                 {"name": "bias", "dtype": "f32", "shape": [256], "kind": "parameter",
                  "init": "zeros"}],
     "outputs": [{"name": "logits", "dtype": "f32", "shape": [2, 4, 256]},
                 {"name": "seen", "dtype": "i32", "shape": [2, 4, 2]}]}]
})";

class ModRunWeightsTest : public ModRunTest {
protected:
  void SetUp() override {
    ModRunTest::SetUp();
    modrt::test::writeTestModel(paramModel, kParameterManifest);
    a = work.file("a.safetensors");
    writeSafetensors(a, {{"a", Tensor::fromValues<float>(DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6})}});
  }

  /// Runs "lm" on a fixed prompt and returns its outputs.
  SafetensorsFile runLm(std::vector<std::string> extra) {
    std::vector<std::string> args = {paramModel.path(), "--entry=lm", "--prompt=hi",
                                     "--outputs=" + work.file("lm.safetensors")};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = run(args);
    EXPECT_EQ(r.exitCode, 0) << r.err;
    return readSafetensors(work.file("lm.safetensors"));
  }

  TempDir paramModel;
  std::string a;
};

TEST_F(ModRunWeightsTest, LoadsParametersFromWeightsFile) {
  // b as bf16 (widened to the f32 parameter) plus a stray tensor.
  std::vector<uint16_t> b;
  for (float v : {0.5f, -1.f, 2.f, 0.25f, 100.f, -3.f}) b.push_back(floatToBFloat16(v));
  std::string weights = work.file("w.safetensors");
  writeSafetensors(weights, {{"b", Tensor::fromValues<uint16_t>(DType::BF16, {2, 3}, b)},
                             {"stray", Tensor(DType::F32, {1})}});
  RunResult r = run({paramModel.path(), "--entry=add", "--inputs=" + a, "--weights=" + weights});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "sum: f32[2x3]\n[0,:] 1.5 1 5\n[1,:] 4.25 105 3\n");
  EXPECT_NE(r.err.find("warning: " + weights + ": tensor 'stray' is no parameter of entry "
                       "point 'add'; ignored"),
            std::string::npos) << r.err;
}

TEST_F(ModRunWeightsTest, ReadsParametersFromInputsWithoutWeightsFile) {
  // As before manifests marked parameters: one file holds everything.
  std::string inputs = work.file("all.safetensors");
  writeSafetensors(inputs, {{"a", Tensor::fromValues<float>(DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6})},
                            {"b", Tensor::fromValues<float>(DType::F32, {2, 3}, {6, 5, 4, 3, 2, 1})}});
  RunResult r = run({paramModel.path(), "--entry=add", "--inputs=" + inputs});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "sum: f32[2x3]\n[0,:] 7 7 7\n[1,:] 7 7 7\n");
  EXPECT_EQ(r.err, ""); // the data input 'a' is no stray
}

TEST_F(ModRunWeightsTest, ReportsParameterErrors) {
  std::string weights = work.file("w.safetensors");
  writeSafetensors(weights, {{"c", Tensor(DType::F32, {2, 3})}});
  RunResult r = run({paramModel.path(), "--entry=add", "--inputs=" + a, "--weights=" + weights});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("missing parameter 'b' f32[2x3] of entry point 'add'; --init-missing"),
            std::string::npos) << r.err;

  writeSafetensors(weights, {{"b", Tensor(DType::F32, {3, 2})}});
  r = run({paramModel.path(), "--entry=add", "--inputs=" + a, "--weights=" + weights});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("parameter 'b' has shape [3x2], but entry point 'add' expects [2x3]"),
            std::string::npos) << r.err;
  // --init-missing does not excuse a wrong shape.
  r = run({paramModel.path(), "--entry=add", "--inputs=" + a, "--weights=" + weights,
           "--init-missing"});
  EXPECT_EQ(r.exitCode, 1);

  r = run({paramModel.path(), "--entry=lm", "--prompt=hi"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("entry point 'lm' has 2 parameters (the first is f32[256x256] table); "
                       "load them with --weights=FILE.safetensors or initialize them with "
                       "--init-missing"),
            std::string::npos) << r.err;
  r = run({paramModel.path(), "--entry=add", "--inputs=" + a});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("missing parameter 'b' f32[2x3] of entry point 'add'; --init-missing "
                       "initializes parameters the inputs file lacks"),
            std::string::npos) << r.err;
  r = run({paramModel.path(), "--entry=add", "--inputs=" + a, "--init-missing", "--seed=-1"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("invalid value '-1' for --seed"), std::string::npos) << r.err;
}

TEST_F(ModRunWeightsTest, InitializesMissingParameters) {
  // Without a weights file, b is all ones.
  std::vector<std::string> args = {paramModel.path(), "--entry=add", "--inputs=" + a,
                                   "--init-missing"};
  RunResult r = run(args);
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "sum: f32[2x3]\n[0,:] 2 3 4\n[1,:] 5 6 7\n");
  // A weights file that matches none of the parameters is another model's:
  // --init-missing refuses it rather than running on random parameters.
  std::string weights = work.file("w.safetensors");
  writeSafetensors(weights, {{"other", Tensor(DType::F32, {1})}});
  args.push_back("--weights=" + weights);
  r = run(args);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find(weights + ": none of its 1 tensors (e.g. 'other') is a parameter of "
                       "entry point 'add' (e.g. 'b')"),
            std::string::npos) << r.err;
}

TEST_F(ModRunWeightsTest, InitializationIsDeterministicAndSavedWeightsReload) {
  SafetensorsFile first = runLm({"--init-missing", "--seed=5",
                                 "--save-weights=" + work.file("w5.safetensors")});
  SafetensorsFile again = runLm({"--init-missing", "--seed=5"});
  SafetensorsFile other = runLm({"--init-missing", "--seed=6",
                                 "--save-weights=" + work.file("w6.safetensors")});
  EXPECT_TRUE(first.tensors.at("logits").identical(again.tensors.at("logits")));
  EXPECT_FALSE(first.tensors.at("logits").identical(other.tensors.at("logits")));

  SafetensorsFile saved = readSafetensors(work.file("w5.safetensors"));
  ASSERT_EQ(saved.tensors.size(), 2u);
  EXPECT_EQ(saved.metadata.at("format"), "pt");
  EXPECT_TRUE(saved.tensors.at("bias").identical(Tensor(DType::F32, {256})));
  EXPECT_FALSE(saved.tensors.at("table").identical(
      readSafetensors(work.file("w6.safetensors")).tensors.at("table")));
  // The same numbers as the library's initializer, whatever the order.
  Manifest manifest = Manifest::parse(kParameterManifest, "m");
  EXPECT_TRUE(saved.tensors.at("table").identical(
      initParameter(manifest.findEntry("lm")->inputs[2], 5)));

  // Reloading the saved weights reproduces the run exactly.
  SafetensorsFile reloaded = runLm({"--weights=" + work.file("w5.safetensors")});
  EXPECT_TRUE(first.tensors.at("logits").identical(reloaded.tensors.at("logits")));
}

TEST_F(ModRunWeightsTest, PromptFillsTokensAndPositions) {
  SafetensorsFile out = runLm({"--init-missing"});
  const Tensor &seen = out.tensors.at("seen");
  // "hi" then spaces in both rows; positions 0..3.
  const int32_t expected[] = {'h', 0, 'i', 1, ' ', 2, ' ', 3, 'h', 0, 'i', 1, ' ', 2, ' ', 3};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(seen.data<int32_t>()[i], expected[i]) << i;

  RunResult r = run({paramModel.path(), "--entry=lm", "--init-missing", "--prompt=hello"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("--prompt is 5 bytes long, but entry point 'lm' takes sequences of 4 tokens"),
            std::string::npos) << r.err;
  r = run({paramModel.path(), "--entry=add", "--init-missing", "--prompt=hi"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("--prompt needs a data input named 'tokens'"), std::string::npos) << r.err;
  r = run({paramModel.path(), "--entry=add", "--init-missing", "--inputs=" + a, "--top=3"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("--top needs an output named 'logits'"), std::string::npos) << r.err;
}

TEST_F(ModRunWeightsTest, TopListsTheMostLikelyNextTokens) {
  // After the last prompt byte 'i' the table favours '!' (logit 3), then
  // newline (2), then every other byte equally (0), ties by ascending id.
  Tensor table(DType::F32, {256, 256});
  table.data<float>()['i' * 256 + '!'] = 3.0f;
  table.data<float>()['i' * 256 + '\n'] = 2.0f;
  table.data<float>()[' ' * 256 + 'x'] = 9.0f; // the padding position must not be used
  std::string weights = work.file("w.safetensors");
  writeSafetensors(weights, {{"table", table}, {"bias", Tensor(DType::F32, {256})}});
  RunResult r = run({paramModel.path(), "--entry=lm", "--weights=" + weights, "--prompt=hi",
                     "--top=3"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  double total = std::exp(3.0) + std::exp(2.0) + 254.0;
  char expected[512];
  std::snprintf(expected, sizeof expected,
                "top 3 next tokens after position 1 of row %d:\n"
                "  '!'        id 33     p=%.6f\n"
                "  '\\x0A'     id 10     p=%.6f\n"
                "  '\\x00'     id 0      p=%.6f\n",
                0, std::exp(3.0) / total, std::exp(2.0) / total, 1.0 / total);
  std::string row0 = expected;
  std::string row1 = row0;
  row1.replace(row1.find("row 0"), 5, "row 1");
  EXPECT_EQ(r.out, row0 + row1);
}

} // namespace
