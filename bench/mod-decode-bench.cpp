//===- mod-decode-bench.cpp - time decode steps of compiled models --------===//
//
// mod-decode-bench NAME=DIR[:router-scale=X] ... [--prompt-len=N] [--steps=N]
//                  [--warmup=N] [--seed=N] [--router-scale=X] [--ratio=A/B ...]
//
// For each model compiled after `mod-opt --mod-generate-decode`: initializes
// its parameters from --seed (the same names get the same values, so a dense
// model and its MoD conversion share every dense weight), runs @prefill on
// random prompts of --prompt-len tokens for every row of the batch, then
// --warmup and --steps decode steps (random tokens), and prints the median,
// min and max wall time of a step, tokens/s (B / median), the fraction of
// the timed steps' tokens each routed block processed, and an estimate of a
// step's GEMM FLOPs: 2 * elements of every rank-2 parameter (the matmul
// weights and a tied LM head; position tables `*wpe*` excluded) per token,
// those of a routed block's parameters (names under its prefix) times the
// block's measured routed fraction. Attention over the cache (about 4 * D *
// length per layer and token) is not counted. --router-scale multiplies
// every `*.mod.router.weight` (0: no token is routed) of the cases named
// after it, `:router-scale=X` after a case's directory of that case alone.
// Each --ratio=A/B
// prints median(A) / median(B) next to the FLOP ratio. The cases' timed steps
// are interleaved (one step of each case in turn), so that a shared
// machine's changing load falls on every case alike.
//
//===----------------------------------------------------------------------===//

#include "modrt/Decode.h"
#include "modrt/Error.h"
#include "modrt/Model.h"
#include "modrt/Weights.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {
struct Case {
  std::string name, dir;
  double routerScale = 1.0;
  int64_t batch = 0;
  double median = 0, min = 0, max = 0, flops = 0;
  std::vector<std::pair<std::string, double>> fractions;
};

[[noreturn]] void usage(const std::string &why) {
  std::fprintf(stderr,
               "mod-decode-bench: %s\nusage: mod-decode-bench NAME=DIR ... "
               "[--prompt-len=N] [--steps=N] [--warmup=N] [--seed=N] "
               "[--router-scale=X] [--ratio=A/B ...]\n",
               why.c_str());
  std::exit(2);
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// One case, loaded and prefilled, stepped by the caller: the cases' steps
/// are interleaved (one step of each in turn), so that the load of a shared
/// machine falls on all of them alike.
struct Runner {
  Case &c;
  modrt::Model model;
  std::map<std::string, modrt::Tensor> params;
  std::unique_ptr<modrt::Decoder> decoder;
  std::mt19937 rng;
  std::uniform_int_distribution<int32_t> token;
  std::vector<std::string> blocks;
  std::map<std::string, int64_t> before;
  int64_t tokensBefore = 0;
  std::vector<double> ms;

  Runner(Case &c, int64_t promptLen, int warmup, int steps, uint64_t seed)
      : c(c), model(modrt::Model::load(c.dir)),
        rng(static_cast<uint32_t>(seed)) {
    params = modrt::loadParameters(model.entry("prefill"), "",
                                   /*initMissing=*/true, seed);
    for (auto &[name, t] : params)
      if (endsWith(name, ".mod.router.weight"))
        for (int64_t i = 0, n = t.numElements(); i < n; ++i)
          t.data<float>()[i] *= float(c.routerScale);
    decoder = std::make_unique<modrt::Decoder>(model, params);
    c.batch = decoder->batch();
    if (promptLen < 1 || promptLen > decoder->prefillLen() ||
        promptLen + warmup + steps > decoder->maxSeqLen())
      usage(c.name + ": --prompt-len must be in [1, " +
            std::to_string(decoder->prefillLen()) +
            "] and prompt + steps at most " +
            std::to_string(decoder->maxSeqLen()));
    token = std::uniform_int_distribution<int32_t>(
        0, int32_t(decoder->vocabSize() - 1));
    std::vector<std::vector<int32_t>> prompts(size_t(c.batch));
    for (auto &p : prompts)
      for (int64_t i = 0; i < promptLen; ++i) p.push_back(token(rng));
    decoder->prefill(prompts);
    for (int i = 0; i < warmup; ++i) decoder->step(next());
    blocks = decoder->routedBlocks();
    for (const std::string &b : blocks)
      before[b] = decoder->routedDecodedTokens(b);
    tokensBefore = decoder->decodedTokens();
  }

  std::vector<int32_t> next() {
    std::vector<int32_t> t(size_t(c.batch));
    for (auto &v : t) v = token(rng);
    return t;
  }

  void timedStep() {
    std::vector<int32_t> t = next();
    auto start = std::chrono::steady_clock::now();
    decoder->step(t);
    auto stop = std::chrono::steady_clock::now();
    ms.push_back(
        std::chrono::duration<double, std::milli>(stop - start).count());
  }

  void finish() {
    std::sort(ms.begin(), ms.end());
    c.median = ms[ms.size() / 2];
    c.min = ms.front();
    c.max = ms.back();
    int64_t tokens = decoder->decodedTokens() - tokensBefore;
    std::map<std::string, double> fraction;
    for (const std::string &b : blocks) {
      fraction[b] = double(decoder->routedDecodedTokens(b) - before[b]) /
                    double(tokens);
      c.fractions.push_back({b, fraction[b]});
    }
    // GEMM FLOPs per step.
    for (const modrt::TensorSpec &spec : model.entry("decode_step").inputs) {
      if (!spec.isParameter() || spec.shape.size() != 2 ||
          spec.name.find("wpe") != std::string::npos)
        continue;
      double f = 1.0;
      for (const std::string &b : blocks)
        if (spec.name.rfind(b + ".", 0) == 0) f = fraction[b];
      c.flops +=
          2.0 * double(spec.shape[0] * spec.shape[1]) * f * double(c.batch);
    }
  }
};
} // namespace

int main(int argc, char **argv) {
  try {
    std::vector<Case> cases;
    std::vector<std::pair<std::string, std::string>> ratios;
    int64_t promptLen = 64;
    int warmup = 2, steps = 16;
    uint64_t seed = 1;
    double routerScale = 1.0;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&](const char *flag) -> const char * {
        size_t n = std::string(flag).size();
        return a.compare(0, n, flag) == 0 ? a.c_str() + n : nullptr;
      };
      if (const char *v = value("--prompt-len=")) promptLen = std::atoll(v);
      else if (const char *v = value("--steps=")) steps = std::atoi(v);
      else if (const char *v = value("--warmup=")) warmup = std::atoi(v);
      else if (const char *v = value("--seed=")) seed = std::strtoull(v, nullptr, 10);
      else if (const char *v = value("--router-scale=")) routerScale = std::atof(v);
      else if (const char *v = value("--ratio=")) {
        std::string r = v;
        size_t slash = r.find('/');
        if (slash == std::string::npos) usage("--ratio needs A/B");
        ratios.push_back({r.substr(0, slash), r.substr(slash + 1)});
      } else if (a.find('=') != std::string::npos && a[0] != '-') {
        size_t eq = a.find('=');
        Case c{a.substr(0, eq), a.substr(eq + 1)};
        c.routerScale = routerScale;
        size_t at = c.dir.rfind(":router-scale=");
        if (at != std::string::npos) {
          c.routerScale = std::atof(c.dir.c_str() + at + 14);
          c.dir.resize(at);
        }
        cases.push_back(c);
      } else
        usage("unexpected argument '" + a + "'");
    }
    if (cases.empty()) usage("no model given");
    if (steps < 1) usage("--steps must be positive");
    std::vector<std::unique_ptr<Runner>> runners;
    for (Case &c : cases)
      runners.push_back(
          std::make_unique<Runner>(c, promptLen, warmup, steps, seed));
    for (int i = 0; i < steps; ++i)
      for (auto &r : runners) r->timedStep();
    for (auto &r : runners) r->finish();
    std::printf("%-10s %3s %10s %10s %10s %10s %12s  %s\n", "case", "B",
                "median ms", "min ms", "max ms", "tokens/s", "GEMM GFLOP",
                "routed fraction per block");
    for (const Case &c : cases) {
      std::string routed;
      for (const auto &[b, f] : c.fractions) {
        char buf[128];
        std::snprintf(buf, sizeof buf, "%s%s %.1f%%", routed.empty() ? "" : ", ",
                      b.c_str(), 100.0 * f);
        routed += buf;
      }
      std::printf("%-10s %3lld %10.3f %10.3f %10.3f %10.1f %12.4f  %s\n",
                  c.name.c_str(), static_cast<long long>(c.batch), c.median, c.min,
                  c.max, 1e3 * double(c.batch) / c.median, c.flops * 1e-9,
                  routed.empty() ? "-" : routed.c_str());
    }
    auto find = [&](const std::string &n) -> const Case & {
      for (const Case &c : cases)
        if (c.name == n) return c;
      usage("--ratio names an unknown case: " + n);
    };
    for (const auto &[a, b] : ratios) {
      const Case &ca = find(a), &cb = find(b);
      std::printf("%s/%s: step time %.3f, GEMM FLOPs %.3f\n", a.c_str(), b.c_str(),
                  ca.median / cb.median, ca.flops / cb.flops);
    }
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "mod-decode-bench: error: %s\n", e.what());
    return 1;
  }
}
