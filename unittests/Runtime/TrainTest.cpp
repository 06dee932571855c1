//===- TrainTest.cpp - mod-train: loop, checkpoints, resume, faults -------===//
//
// Runs the mod-train binary on a hand-written bigram model with the training
// entry points (TrainTestModel.c), so the loop is tested without the
// compiler; the compiled-transformer runs are lit tests.
//
//===----------------------------------------------------------------------===//

#include "modrt/FileUtil.h"
#include "modrt/Model.h"
#include "modrt/Safetensors.h"
#include "modrt/TokenFile.h"
#include "modrt/Train.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace modrt;
using modrt::test::TempDir;

namespace {

const char kTrainManifest[] = R"({
  "format": "modc-manifest", "version": 1, "target": "cpu", "library": "model.so",
  "entry_points": [
    {"name": "loss_and_grad", "symbol": "_modrt_loss_and_grad",
     "inputs": [
       {"name": "W", "dtype": "f32", "shape": [256, 256], "kind": "parameter", "init": "normal:0.02"},
       {"name": "tokens", "dtype": "i32", "shape": [4, 32]},
       {"name": "positions", "dtype": "i32", "shape": [4, 32]},
       {"name": "targets", "dtype": "i32", "shape": [4, 32]}],
     "outputs": [
       {"name": "loss", "dtype": "f32", "shape": []},
       {"name": "aux_loss.test", "dtype": "f32", "shape": []},
       {"name": "grad.W", "dtype": "f32", "shape": [256, 256]}]},
    {"name": "adamw_step", "symbol": "_modrt_adamw_step",
     "inputs": [
       {"name": "W", "dtype": "f32", "shape": [256, 256], "kind": "parameter", "init": "normal:0.02"},
       {"name": "grad.W", "dtype": "f32", "shape": [256, 256]},
       {"name": "m.W", "dtype": "f32", "shape": [256, 256]},
       {"name": "v.W", "dtype": "f32", "shape": [256, 256]},
       {"name": "lr", "dtype": "f32", "shape": []},
       {"name": "beta1", "dtype": "f32", "shape": []},
       {"name": "beta2", "dtype": "f32", "shape": []},
       {"name": "eps", "dtype": "f32", "shape": []},
       {"name": "weight_decay", "dtype": "f32", "shape": []},
       {"name": "max_norm", "dtype": "f32", "shape": []},
       {"name": "step", "dtype": "i32", "shape": []}],
     "outputs": [
       {"name": "W", "dtype": "f32", "shape": [256, 256], "alias_of": "W"},
       {"name": "m.W", "dtype": "f32", "shape": [256, 256], "alias_of": "m.W"},
       {"name": "v.W", "dtype": "f32", "shape": [256, 256], "alias_of": "v.W"},
       {"name": "grad_norm", "dtype": "f32", "shape": []}]}]
})";

struct Result {
  int status = -1; // exit code, or 128 + signal
  std::string output;
};

/// Runs a shell command, capturing stdout and stderr.
Result run(const std::string &command) {
  Result r;
  FILE *pipe = ::popen((command + " 2>&1").c_str(), "r");
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0)
    r.output.append(buffer, n);
  int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

class TrainTest : public ::testing::Test {
protected:
  void SetUp() override {
    model_ = dir_.file("model");
    std::filesystem::create_directories(model_);
    test::writeModelDirectory(model_, kTrainManifest, MODRT_TRAIN_TEST_MODEL_LIBRARY);
    // A corpus of English-like text, so the bigram statistics are learnable.
    std::string text;
    const char *sentences[] = {
        "the quick brown fox jumps over the lazy dog.\n",
        "mixture of depths routes the tokens that matter.\n",
        "a router scores every token and the top ones go through.\n",
        "the rest skip the block on the residual path.\n"};
    // Numbered, so that the hash split puts every kind of sentence in both
    // splits.
    for (int i = 0; i < 400; ++i)
      text += std::to_string(i) + " " + sentences[i % 4] + "%\n";
    test::writeFile(dir_.file("corpus.txt"), text);
    tokens_ = dir_.file("tokens.bin");
    writeTokenFile(tokens_, readCorpus({dir_.file("corpus.txt")}),
                   ByteTokenizer(), 0.1);
  }

  std::string train(const std::string &args) const {
    return std::string(MODRT_MOD_TRAIN) + " " + model_ + " --data=" + tokens_ +
           " " + args;
  }

  static std::vector<std::string> metricsLines(const std::string &run) {
    std::vector<std::string> lines;
    std::string text = readFile(run + "/metrics.jsonl"), line;
    for (char c : text) {
      if (c == '\n') {
        lines.push_back(line);
        line.clear();
      } else {
        line += c;
      }
    }
    return lines;
  }

  static double lastLoss(const std::string &run) {
    return Json::parse(metricsLines(run).back()).find("loss")->asDouble();
  }

  TempDir dir_;
  std::string model_, tokens_;
};

TEST_F(TrainTest, LossFallsAndMetricsAreRecorded) {
  std::string runDir = dir_.file("run");
  Result r = run(train("--out=" + runDir +
                       " --steps=150 --lr=0.05 --min-lr=0.005 --warmup=10 "
                       "--wd=0 --eval-every=50 --log-every=50"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("step 50/150 | loss"), std::string::npos) << r.output;
  std::vector<std::string> lines = metricsLines(runDir);
  ASSERT_EQ(lines.size(), 150u);
  Json first = Json::parse(lines.front()), last = Json::parse(lines.back());
  // ln(256) = 5.55 at a uniform start; the byte-bigram entropy of four
  // sentences is about 1.3 nats, so 2.0 is reached with a wide margin.
  EXPECT_NEAR(first.find("loss")->asDouble(), std::log(256.0), 0.1);
  EXPECT_LT(last.find("loss")->asDouble(), 2.0);
  EXPECT_LT(last.find("val_loss")->asDouble(), 2.0);
  EXPECT_TRUE(last.find("aux_loss.test"));
  EXPECT_TRUE(last.find("grad_norm"));
  EXPECT_NEAR(last.find("lr")->asDouble(), 0.005, 1e-4);
  EXPECT_TRUE(std::filesystem::exists(runDir + "/checkpoints/step-00000150/params.safetensors"));
}

TEST_F(TrainTest, ResumeAfterSigkillIsBitwiseExact) {
  std::string straight = dir_.file("straight"), killed = dir_.file("killed");
  const std::string opts =
      " --steps=40 --ckpt-every=20 --lr=0.01 --warmup=5 --eval-every=0 --seed=3";
  Result a = run(train("--out=" + straight + opts));
  ASSERT_EQ(a.status, 0) << a.output;

  // Start the same run, SIGKILL it once its step-20 checkpoint exists.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string cmd = train("--out=" + killed + opts) + " >/dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), (char *)nullptr);
    ::_exit(127);
  }
  std::string ckpt = killed + "/checkpoints/step-00000020/state.json";
  for (int i = 0; i < 6000 && !std::filesystem::exists(ckpt); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(std::filesystem::exists(ckpt));

  Result b = run(std::string(MODRT_MOD_TRAIN) + " --resume " + killed);
  ASSERT_EQ(b.status, 0) << b.output;
  SafetensorsFile x = readSafetensors(straight + "/checkpoints/step-00000040/params.safetensors");
  SafetensorsFile y = readSafetensors(killed + "/checkpoints/step-00000040/params.safetensors");
  EXPECT_TRUE(x.tensors.at("W").identical(y.tensors.at("W")));
  SafetensorsFile xo = readSafetensors(straight + "/checkpoints/step-00000040/optimizer.safetensors");
  SafetensorsFile yo = readSafetensors(killed + "/checkpoints/step-00000040/optimizer.safetensors");
  EXPECT_TRUE(xo.tensors.at("v.W").identical(yo.tensors.at("v.W")));
  // The metrics of the resumed run have each step once.
  EXPECT_EQ(metricsLines(killed).size(), 40u);
  EXPECT_EQ(readFile(straight + "/metrics.jsonl").size() > 0, true);
}

TEST_F(TrainTest, SigtermCheckpointsAndExitsNonZero) {
  std::string runDir = dir_.file("run");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string cmd = train("--out=" + runDir +
                            " --steps=100000 --ckpt-every=0 --eval-every=0") +
                      " >/dev/null 2>&1";
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), (char *)nullptr);
    ::_exit(127);
  }
  std::string metrics = runDir + "/metrics.jsonl";
  for (int i = 0; i < 6000; ++i) {
    std::error_code ec;
    if (std::filesystem::exists(metrics, ec) &&
        std::filesystem::file_size(metrics, ec) > 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  std::string latest = latestCheckpoint(runDir);
  ASSERT_FALSE(latest.empty());
  // Resuming continues from there; --steps extends the run.
  int64_t saved = Json::parse(readFile(latest + "/state.json")).find("step")->asInt();
  Result r = run(std::string(MODRT_MOD_TRAIN) + " --resume " + runDir +
                 " --steps=" + std::to_string(saved + 3));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("resuming"), std::string::npos);
  EXPECT_EQ(metricsLines(runDir).size(), size_t(saved + 3));
}

TEST_F(TrainTest, NonFiniteLossStopsWithoutCheckpoint) {
  Tensor w(DType::F32, {256, 256});
  for (int64_t i = 0; i < w.numElements(); ++i)
    w.data<float>()[i] = 0.0f;
  w.data<float>()[int('e') * 256 + 3] = NAN;
  writeSafetensors(dir_.file("nan.safetensors"), {{"W", w}});
  std::string runDir = dir_.file("run");
  // Every byte row is reached quickly; the NaN row poisons the loss.
  Result r = run(train("--out=" + runDir + " --steps=20 --weights=" +
                       dir_.file("nan.safetensors")));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("mod-train: error: step 1: the loss is NaN; stopping"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(latestCheckpoint(runDir), "");
}

TEST_F(TrainTest, MismatchedOrCorruptCheckpointsAreRefused) {
  std::string runDir = dir_.file("run");
  Result r = run(train("--out=" + runDir + " --steps=4 --eval-every=0"));
  ASSERT_EQ(r.status, 0) << r.output;
  std::string ckpt = runDir + "/checkpoints/step-00000004";

  // Starting over in a run directory with checkpoints is refused.
  r = run(train("--out=" + runDir + " --steps=4"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("already holds checkpoints; use --resume"),
            std::string::npos) << r.output;

  // Another artifact.
  std::string state = readFile(ckpt + "/state.json");
  std::string other = state;
  size_t at = other.find("\"artifact_hash\": \"") + 18;
  other[at] = other[at] == '0' ? '1' : '0';
  test::writeFile(ckpt + "/state.json", other);
  r = run(std::string(MODRT_MOD_TRAIN) + " --resume " + runDir + " --steps=8");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("was written for another model.so"), std::string::npos)
      << r.output;
  test::writeFile(ckpt + "/state.json", state);

  // A truncated parameter file.
  std::string params = readFile(ckpt + "/params.safetensors");
  test::writeFile(ckpt + "/params.safetensors", params.substr(0, params.size() / 2));
  r = run(std::string(MODRT_MOD_TRAIN) + " --resume " + runDir + " --steps=8");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("params.safetensors"), std::string::npos) << r.output;
  // Nothing was overwritten by the failed resumes.
  EXPECT_EQ(readFile(ckpt + "/params.safetensors").size(), params.size() / 2);
  EXPECT_EQ(metricsLines(runDir).size(), 4u);
}

TEST_F(TrainTest, DataErrorsAreClear) {
  test::writeFile(dir_.file("short.txt"), "tiny\n");
  writeTokenFile(dir_.file("short.bin"), readCorpus({dir_.file("short.txt")}),
                 ByteTokenizer(), 0.0);
  Result r = run(std::string(MODRT_MOD_TRAIN) + " " + model_ + " --data=" +
                 dir_.file("short.bin") + " --out=" + dir_.file("run"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("the training split holds 6 tokens, fewer than the 33 "
                          "one window needs"),
            std::string::npos)
      << r.output;
  r = run(std::string(MODRT_MOD_TRAIN) + " " + model_ + " --out=x");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("no token file given"), std::string::npos);
  r = run(std::string(MODRT_MOD_TRAIN) + " " + model_ + " --data=" + tokens_ +
          " --out=" + dir_.file("run") + " --lr=abc");
  EXPECT_NE(r.output.find("invalid value 'abc' for --lr"), std::string::npos);
}

// adamw_step's W, m.W, v.W alias their inputs: callInPlace writes the update
// into the caller's tensors and returns only grad_norm; call computes the
// same update in copies and leaves its inputs alone.
TEST_F(TrainTest, AliasedOutputsAreUpdatedInPlaceOnlyByCallInPlace) {
  Model model = Model::load(model_);
  auto filled = [](float base) {
    Tensor t(DType::F32, {256, 256});
    for (int64_t i = 0; i < t.numElements(); ++i)
      t.data<float>()[i] = base + 0.001f * float(i % 97);
    return t;
  };
  auto scalar = [](float x) { return Tensor::fromValues<float>(DType::F32, {}, {x}); };
  Tensor w = filled(0.5f), g = filled(-0.2f), m = filled(0.01f), v = filled(0.02f);
  Tensor lr = scalar(0.1f), b1 = scalar(0.9f), b2 = scalar(0.95f),
         eps = scalar(1e-8f), wd = scalar(0.1f), maxNorm = scalar(0.0f);
  Tensor step = Tensor::fromValues<int32_t>(DType::I32, {}, {3});
  const Tensor w0 = w, m0 = m, v0 = v;
  std::vector<Tensor> functional =
      model.call("adamw_step", {&w, &g, &m, &v, &lr, &b1, &b2, &eps, &wd, &maxNorm, &step});
  ASSERT_EQ(functional.size(), 4u);
  EXPECT_TRUE(w.identical(w0));
  EXPECT_TRUE(m.identical(m0));
  EXPECT_TRUE(v.identical(v0));
  EXPECT_FALSE(functional[0].identical(w0));

  std::vector<Tensor> rest = model.callInPlace(
      "adamw_step", {&w, &g, &m, &v, &lr, &b1, &b2, &eps, &wd, &maxNorm, &step});
  ASSERT_EQ(rest.size(), 1u); // grad_norm
  EXPECT_EQ(rest[0].elementAsDouble(0), functional[3].elementAsDouble(0));
  EXPECT_TRUE(w.identical(functional[0]));
  EXPECT_TRUE(m.identical(functional[1]));
  EXPECT_TRUE(v.identical(functional[2]));
}

TEST(TrainSchedule, WarmupThenCosine) {
  TrainOptions o;
  o.lr = 1.0;
  o.minLr = 0.1;
  o.warmup = 10;
  o.steps = 110;
  EXPECT_DOUBLE_EQ(learningRate(o, 0), 0.1);
  EXPECT_DOUBLE_EQ(learningRate(o, 9), 1.0);
  EXPECT_DOUBLE_EQ(learningRate(o, 10), 1.0);
  EXPECT_NEAR(learningRate(o, 60), 0.55, 1e-12);
  EXPECT_NEAR(learningRate(o, 110), 0.1, 1e-12);
}

TEST(TrainSchedule, WindowsAreUniformAndInRange) {
  std::vector<int> histogram(10, 0);
  for (int64_t step = 0; step < 2000; ++step)
    for (int64_t row = 0; row < 5; ++row) {
      uint64_t s = windowStart(7, step, 0, row, 1033, 33);
      ASSERT_LE(s, 1000u);
      ++histogram[std::min<uint64_t>(9, s / 100)];
    }
  for (int count : histogram)
    EXPECT_NEAR(count, 1000, 150);
  EXPECT_EQ(windowStart(7, 5, 1, 2, 1033, 33), windowStart(7, 5, 1, 2, 1033, 33));
  EXPECT_NE(windowStart(7, 5, 1, 2, 1033, 33), windowStart(8, 5, 1, 2, 1033, 33));
}

// Stochastic routing's routing_seed: a new value for every (seed, step,
// micro-batch), including the validation batches (negative steps), and the
// same value for the same triple.
TEST(TrainSchedule, RoutingSeedsAreDistinctAndReproducible) {
  std::set<uint64_t> seen;
  for (uint64_t seed : {0ull, 1ull, 7ull})
    for (int64_t step = -8; step < 200; ++step)
      for (int64_t micro = 0; micro < 3; ++micro)
        seen.insert(routingSeed(seed, step, micro));
  EXPECT_EQ(seen.size(), 3u * 208u * 3u);
  EXPECT_EQ(routingSeed(7, 5, 1), routingSeed(7, 5, 1));
  EXPECT_EQ(routingSeed(7, -1, 0), routingSeed(7, -1, 0));
  // Not a window start: the two hashes are independent.
  EXPECT_NE(routingSeed(7, 5, 1), windowStart(7, 5, 1, 0, ~0ull, 1));
}

} // namespace
