//===- ModRunTest.cpp - End-to-end tests of the mod-run tool --------------===//

#include "modrt/Safetensors.h"
#include "TestUtil.h"

#include <sys/wait.h>

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
                             "--print-limit=N", "--precision=N", "--help"})
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
  EXPECT_NE(r.err.find("input 1 ('b') must be f32[2x3], got f32[3x2]"), std::string::npos)
      << r.err;

  // f16 is widened to f32.
  r = run({model.path(), "--entry=sum", "--inputs=" + path});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "total: f32[]\n[] 0\n");
}

} // namespace
