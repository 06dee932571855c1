//===- ToolTest.cpp - The mod-reference command line ----------------------===//

#include "TestModels.h"

#include "modrt/Safetensors.h"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace modref;
using namespace modref::test;
using modrt::DType;
using modrt::Tensor;

namespace {

std::string quote(const std::string &arg) {
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct RunResult {
  int exitCode;
  std::string out, err;
};

class ToolTest : public ::testing::Test {
protected:
  void SetUp() override {
    const char *base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/modref-test-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    ASSERT_NE(mkdtemp(buffer.data()), nullptr);
    dir = buffer.data();

    std::ofstream(file("config.json"))
        << R"({"model_type": "gpt2", "n_layer": 2, "n_embd": 8, "n_head": 2,
              "n_positions": 16, "vocab_size": 11, "n_inner": 12})";
    config = loadConfig(file("config.json"));
    modrt::writeSafetensors(file("w.safetensors"), randomParameters(config, 23));
    tokens = i32Tensor({2, 4}, {1, 5, 9, 2, 7, 7, 3, 0});
    positions = iotaPositions(2, 4);
    modrt::writeSafetensors(file("in.safetensors"),
                            {{"tokens", tokens}, {"positions", positions}});
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  std::string file(const std::string &name) const { return dir + "/" + name; }

  RunResult run(const std::vector<std::string> &args) {
    std::string command = quote(MODREF_TOOL);
    for (const std::string &arg : args) command += " " + quote(arg);
    command += " >" + quote(file("stdout")) + " 2>" + quote(file("stderr"));
    int status = std::system(command.c_str());
    EXPECT_TRUE(WIFEXITED(status)) << command;
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, readFile(file("stdout")),
            readFile(file("stderr"))};
  }

  std::vector<std::string> forwardArgs(const std::string &out) {
    return {"forward", "--config=" + file("config.json"), "--weights=" + file("w.safetensors"),
            "--inputs=" + file("in.safetensors"), "-o", file(out)};
  }

  std::string dir;
  ModelConfig config;
  Tensor tokens, positions;
};

TEST_F(ToolTest, ForwardWritesTheLibrarysLogits) {
  RunResult r = run(forwardArgs("out.safetensors"));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  modrt::SafetensorsFile out = modrt::readSafetensors(file("out.safetensors"));
  ASSERT_EQ(out.tensors.size(), 1u);
  Parameters params = Parameters::load(file("w.safetensors"));
  EXPECT_TRUE(out.tensors.at("logits").identical(Transformer(config, params).forward(tokens, positions)));

  std::vector<std::string> args = forwardArgs("mod.safetensors");
  args.push_back("--mod=capacity=0.5,schedule=list:0,1,gate=sigmoid");
  r = run(args);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  out = modrt::readSafetensors(file("mod.safetensors"));
  ForwardResult expected = forwardMoD(Transformer(config, params), tokens, positions,
                                      ModSpec::parse("capacity=0.5,schedule=list:0,1,gate=sigmoid"));
  EXPECT_TRUE(out.tensors.at("logits").identical(expected.logits));
  for (int64_t layer : {0, 1}) {
    const Tensor &indices = out.tensors.at("routed_indices." + std::to_string(layer));
    EXPECT_EQ(indices.shape(), (std::vector<int64_t>{2, 2}));
    EXPECT_TRUE(indices.identical(expected.routedIndices.at(layer)));
  }
}

TEST_F(ToolTest, CompareUsesScaledRelativeError) {
  Tensor e = Tensor::fromValues<float>(DType::F32, {2, 3}, {100, -50, 0, 1, 2, 3});
  modrt::writeSafetensors(file("e.safetensors"),
                          {{"logits", e}, {"idx", i32Tensor({2}, {4, 7})}});
  auto writeActual = [&](std::vector<float> values, std::vector<int32_t> idx) {
    modrt::writeSafetensors(
        file("a.safetensors"),
        {{"logits", Tensor::fromValues<float>(DType::F32, {2, 3}, values)},
         {"idx", i32Tensor({2}, idx)},
         {"extra", Tensor(DType::F32, {1})}});
  };
  const std::vector<std::string> args = {"compare", "--expected=" + file("e.safetensors"),
                                         "--actual=" + file("a.safetensors")};

  // 0 vs 1e-3: measured against 1e-3 * 100 = 0.1, so rel err 1e-2.
  writeActual({100, -50, 1e-6f, 1, 2, 3}, {4, 7});
  RunResult r = run(args);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("logits: max rel err 1e-05 (6 elements)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("idx: max rel err 0 (2 elements)"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("'extra' is only in"), std::string::npos) << r.err;

  writeActual({100, -50, 1e-3f, 1, 2, 3}, {4, 7});
  r = run(args);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.out.find("logits: mismatch at [0,2]: expected 0, actual 0.00100000005"),
            std::string::npos) << r.out;
  std::vector<std::string> loose = args;
  loose.push_back("--rtol=0.02");
  EXPECT_EQ(run(loose).exitCode, 0);
  loose.back() = "--atol=0.01";
  EXPECT_EQ(run(loose).exitCode, 0);

  writeActual({100, -50, 0, 1, 2.00001f, 3}, {4, 7});
  EXPECT_EQ(run(args).exitCode, 0);
  loose.back() = "--rtol=1e-6";
  r = run(loose);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.out.find("mismatch at [1,1]"), std::string::npos) << r.out;

  writeActual({100, -50, 0, 1, 2, 3}, {4, 8});
  r = run(args);
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.out.find("idx: mismatch at [1]: expected 7, actual 8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("integer tensors must match exactly"), std::string::npos) << r.out;
}

TEST_F(ToolTest, ReportsErrors) {
  modrt::writeSafetensors(file("notokens.safetensors"), {{"positions", positions}});
  struct Case {
    std::vector<std::string> args;
    std::string words;
  } cases[] = {
      {{}, "no command given"},
      {{"backward"}, "unknown command 'backward'"},
      {{"forward", "--weights=x"}, "forward requires --config=FILE"},
      {{"compare", "--expected=a", "--actual=b", "--rtol=-1"}, "invalid value '-1' for --rtol"},
      {{"compare", "--expected=a", "--actual=b", "--bogus=1"}, "unknown option '--bogus'"},
      {{"forward", "--config=" + file("config.json"), "--weights=" + file("w.safetensors"),
        "--inputs=" + file("notokens.safetensors"), "-o", file("o")},
       "no tensor named 'tokens'"},
      {{"forward", "--config=" + file("config.json"), "--weights=" + file("w.safetensors"),
        "--inputs=" + file("in.safetensors"), "-o", file("o"), "--mod=capacity=5"},
       "capacity 5 exceeds the sequence length 4"},
  };
  for (const Case &c : cases) {
    RunResult r = run(c.args);
    EXPECT_EQ(r.exitCode, 1) << c.words;
    EXPECT_EQ(r.err.rfind("mod-reference: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.words), std::string::npos) << r.err << " lacks " << c.words;
  }
  RunResult help = run({"--help"});
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_NE(help.out.find("max(|e|, scale)"), std::string::npos);
}

} // namespace
