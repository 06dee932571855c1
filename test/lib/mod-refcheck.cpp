//===- mod-refcheck.cpp - independent reference for the routing tests -----===//
//
// A plain C++ implementation of the MoD routing semantics (ARCHITECTURE.md
// section 2) that shares no code with the compiler. The integration tests
// use it to make inputs for a compiled entry point and to check its outputs.
//
//   mod-refcheck gen --manifest=M --entry=E --seed=N [--ties] -o in.safetensors
//       Random inputs for every argument of E, by name: `scores` [B,S] (with
//       --ties drawn from a small set, so equal scores, and -0.0 vs +0.0,
//       are common; with --nans also +NaN and -NaN, which the total order
//       of mod.topk puts above +inf and below -inf), `positions` [B,S] (--positions: arange 0..S-1, offset
//       i + 1000·b, or shuffled rows after the first), `tokens` uniform in
//       [0, --vocab), `routing_seed` (i64 scalar, stochastic routing) from
//       --routing-seed or random, float tensors N(0, 0.5²).
//   mod-refcheck check --inputs=in.safetensors --outputs=out.safetensors
//       Recomputes every output that the test function names, from the
//       inputs, and compares. Output names say what they are:
//         router      = router(x, w)             topk_indices/topk_values = topk(scores, K)
//         gathered    = gather(x, topk_indices)  scattered = scatter_add(x, idx, update, scale)
//         block_out   = routed block with MLP body relu(xk·w1)·w2, gate from --gate
//       Indices must match exactly; floats within |a-b| <= atol + rtol·|b|.
//
//===----------------------------------------------------------------------===//

#include "modrt/Manifest.h"
#include "modrt/Safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

using modrt::DType;
using modrt::Tensor;

namespace {

struct Options {
  std::string mode, manifest, entry, inputs, outputs, output;
  std::string gate = "identity";
  std::string positions = "arange";
  int64_t vocab = 256;
  uint64_t seed = 1;
  std::optional<uint64_t> routingSeed;
  bool ties = false;
  bool nans = false;
  double rtol = 1e-5, atol = 1e-6;
};

[[noreturn]] void fail(const std::string &msg) {
  std::cerr << "mod-refcheck: error: " << msg << "\n";
  std::exit(1);
}

// ---- reference semantics --------------------------------------------------

/// The total order of mod.topk as a number: -NaN < -inf < ... < -0.0 ==
/// +0.0 < ... < +inf < +NaN (every NaN of a sign is equal).
double orderKey(float v) {
  if (std::isnan(v))
    return std::signbit(v) ? -HUGE_VAL * 2 - 1 : HUGE_VAL * 2 + 1;
  return v == 0 ? 0.0 : double(v);
}

/// Indices of the K largest scores of one row; ties to the lower index;
/// returned ascending. Selection by sorting on (score desc, index asc).
std::vector<int32_t> referenceTopK(const float *row, int64_t s, int64_t k) {
  std::vector<int32_t> order(s);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    double ka = orderKey(row[a]), kb = orderKey(row[b]);
    return ka > kb || (ka == kb && a < b);
  });
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

struct Dims {
  int64_t b, s, rest; // rest = product of trailing dims
};

Dims tokenDims(const Tensor &t) {
  if (t.rank() < 2)
    fail("expected a [B,S,...] tensor");
  int64_t rest = 1;
  for (int64_t i = 2; i < t.rank(); ++i)
    rest *= t.shape()[i];
  return {t.shape()[0], t.shape()[1], rest};
}

Tensor router(const Tensor &x, const Tensor &w) {
  Dims d = tokenDims(x);
  Tensor r(DType::F32, {d.b, d.s});
  const float *xp = x.data<float>(), *wp = w.data<float>();
  float *rp = r.data<float>();
  for (int64_t i = 0; i < d.b * d.s; ++i) {
    double acc = 0;
    for (int64_t j = 0; j < d.rest; ++j)
      acc += double(xp[i * d.rest + j]) * wp[j];
    rp[i] = float(acc);
  }
  return r;
}

void topk(const Tensor &scores, int64_t k, Tensor &idx, Tensor &vals) {
  int64_t b = scores.shape()[0], s = scores.shape()[1];
  idx = Tensor(DType::I32, {b, k});
  vals = Tensor(DType::F32, {b, k});
  for (int64_t r = 0; r < b; ++r) {
    const float *row = scores.data<float>() + r * s;
    std::vector<int32_t> sel = referenceTopK(row, s, k);
    for (int64_t j = 0; j < k; ++j) {
      idx.data<int32_t>()[r * k + j] = sel[j];
      vals.data<float>()[r * k + j] = row[sel[j]];
    }
  }
}

Tensor gather(const Tensor &x, const Tensor &idx) {
  Dims d = tokenDims(x);
  int64_t k = idx.shape()[1];
  std::vector<int64_t> shape = x.shape();
  shape[1] = k;
  Tensor out(x.dtype(), shape);
  size_t rowBytes = size_t(d.rest) * modrt::dtypeSize(x.dtype());
  const auto *src = static_cast<const std::byte *>(x.rawData());
  auto *dst = static_cast<std::byte *>(out.rawData());
  for (int64_t b = 0; b < d.b; ++b)
    for (int64_t j = 0; j < k; ++j) {
      int32_t t = idx.data<int32_t>()[b * k + j];
      std::memcpy(dst + (b * k + j) * rowBytes, src + (b * d.s + t) * rowBytes,
                  rowBytes);
    }
  return out;
}

Tensor scatterAdd(const Tensor &x, const Tensor &idx, const Tensor &update,
                  const Tensor &scale) {
  Dims d = tokenDims(x);
  int64_t k = idx.shape()[1];
  Tensor out = x;
  for (int64_t b = 0; b < d.b; ++b)
    for (int64_t j = 0; j < k; ++j) {
      int32_t t = idx.data<int32_t>()[b * k + j];
      float g = scale.data<float>()[b * k + j];
      for (int64_t e = 0; e < d.rest; ++e)
        out.data<float>()[(b * d.s + t) * d.rest + e] +=
            g * update.data<float>()[(b * k + j) * d.rest + e];
    }
  return out;
}

/// d = relu(xk · w1) · w2 for xk [B,K,D], w1 [D,H], w2 [H,D].
Tensor mlp(const Tensor &xk, const Tensor &w1, const Tensor &w2) {
  int64_t rows = xk.shape()[0] * xk.shape()[1], dm = xk.shape()[2],
          h = w1.shape()[1];
  Tensor out(DType::F32, xk.shape());
  std::vector<double> hidden(h);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t u = 0; u < h; ++u) {
      double acc = 0;
      for (int64_t e = 0; e < dm; ++e)
        acc += double(xk.data<float>()[r * dm + e]) * w1.data<float>()[e * h + u];
      hidden[u] = std::max(acc, 0.0);
    }
    for (int64_t e = 0; e < dm; ++e) {
      double acc = 0;
      for (int64_t u = 0; u < h; ++u)
        acc += hidden[u] * w2.data<float>()[u * dm + e];
      out.data<float>()[r * dm + e] = float(acc);
    }
  }
  return out;
}

// ---- comparison -----------------------------------------------------------

const Tensor &need(const std::map<std::string, Tensor> &m,
                   const std::string &name, const char *file) {
  auto it = m.find(name);
  if (it == m.end())
    fail(std::string(file) + " has no tensor '" + name + "'");
  return it->second;
}

int compare(const std::string &name, const Tensor &got, const Tensor &want,
            const Options &opt) {
  if (got.shape() != want.shape() || got.dtype() != want.dtype()) {
    std::cerr << name << ": expected " << modrt::manifestDTypeName(want.dtype())
              << "[" << modrt::formatShape(want.shape()) << "], got "
              << modrt::manifestDTypeName(got.dtype()) << "["
              << modrt::formatShape(got.shape()) << "]\n";
    return 1;
  }
  double worst = 0;
  int64_t bad = 0, firstBad = -1;
  for (int64_t i = 0; i < got.numElements(); ++i) {
    double a = got.elementAsDouble(i), b = want.elementAsDouble(i);
    bool exact = got.dtype() == DType::I32 || got.dtype() == DType::I64;
    double err = std::fabs(a - b);
    bool ok = exact ? a == b
                    : std::isnan(b) ? std::isnan(a) // NaN in, NaN out
                                    : err <= opt.atol + opt.rtol * std::fabs(b);
    if (!exact && std::fabs(b) > 0)
      worst = std::max(worst, err / std::fabs(b));
    if (!ok && bad++ == 0)
      firstBad = i;
  }
  if (bad) {
    std::cerr << name << ": " << bad << " of " << got.numElements()
              << " elements differ; first at flat index " << firstBad
              << ": got " << got.elementAsDouble(firstBad) << ", expected "
              << want.elementAsDouble(firstBad) << "\n";
    return 1;
  }
  std::printf("%s: ok (%lld elements, max rel err %.3g)\n", name.c_str(),
              (long long)got.numElements(), worst);
  return 0;
}

// ---- modes ----------------------------------------------------------------

int generate(const Options &opt) {
  modrt::Manifest manifest = modrt::Manifest::load(opt.manifest);
  const modrt::EntryPoint *entry = manifest.findEntry(opt.entry);
  if (!entry)
    fail("no entry point '" + opt.entry + "' in " + opt.manifest +
         " (available: " + manifest.entryNames() + ")");
  std::mt19937_64 rng(opt.seed);
  std::normal_distribution<float> normal(0.f, 0.5f);
  const float tieSet[] = {-1.f, -0.5f, -0.0f, 0.0f, 0.5f, 1.f};
  std::map<std::string, Tensor> out;
  for (const modrt::TensorSpec &spec : entry->inputs) {
    Tensor t(spec.dtype, spec.shape);
    int64_t n = t.numElements();
    if (spec.name == "positions") {
      int64_t s = spec.shape.at(1);
      for (int64_t i = 0; i < n; ++i) {
        // offset: distinct per sequence, so a gather from the wrong row
        // shows; shuffled: rows after the first get a permutation of 0..S-1,
        // so masks and RoPE must follow the positions, not the token order.
        int64_t row = i / s;
        t.data<int32_t>()[i] =
            int32_t(i % s + (opt.positions == "offset" ? 1000 * row : 0));
      }
      if (opt.positions == "shuffled")
        for (int64_t row = 1; row < n / s; ++row)
          std::shuffle(t.data<int32_t>() + row * s,
                       t.data<int32_t>() + (row + 1) * s, rng);
      else if (opt.positions != "arange" && opt.positions != "offset")
        fail("unknown --positions '" + opt.positions +
             "' (expected arange, offset or shuffled)");
    } else if (spec.name == "tokens") {
      for (int64_t i = 0; i < n; ++i)
        t.data<int32_t>()[i] = int32_t(rng() % uint64_t(opt.vocab));
    } else if (spec.name == "routing_seed" && spec.dtype == DType::I64) {
      for (int64_t i = 0; i < n; ++i)
        t.data<int64_t>()[i] = int64_t(opt.routingSeed ? *opt.routingSeed : rng());
    } else if (spec.dtype == DType::F32) {
      for (int64_t i = 0; i < n; ++i)
        t.data<float>()[i] = (opt.ties && spec.name == "scores")
                                 ? tieSet[rng() % 6]
                                 : normal(rng);
      // About one score in eight a NaN of either sign.
      if (opt.nans && spec.name == "scores")
        for (int64_t i = 0; i < n; ++i)
          if (rng() % 8 == 0)
            t.data<float>()[i] = std::copysign(std::nanf(""),
                                               rng() % 2 ? 1.0f : -1.0f);
    } else {
      fail("cannot generate input '" + spec.name + "' of dtype " +
           modrt::manifestDTypeName(spec.dtype));
    }
    out.emplace(spec.name, std::move(t));
  }
  modrt::writeSafetensors(opt.output, out);
  return 0;
}

int check(const Options &opt) {
  auto in = modrt::readSafetensors(opt.inputs).tensors;
  auto got = modrt::readSafetensors(opt.outputs).tensors;
  const char *inF = "inputs", *outF = "outputs";
  int failures = 0, checked = 0;
  auto has = [&](const char *n) { return got.count(n) != 0; };

  if (has("router")) {
    failures += compare("router", got["router"],
                        router(need(in, "x", inF), need(in, "w", inF)), opt);
    ++checked;
  }
  if (has("topk_indices")) {
    const Tensor &gotIdx = got["topk_indices"];
    Tensor idx, vals;
    topk(need(in, "scores", inF), gotIdx.shape().at(1), idx, vals);
    failures += compare("topk_indices", gotIdx, idx, opt);
    failures += compare("topk_values", need(got, "topk_values", outF), vals, opt);
    if (has("gathered"))
      failures += compare("gathered", got["gathered"],
                          gather(need(in, "x", inF), idx), opt);
    if (has("gathered_positions"))
      failures += compare("gathered_positions", got["gathered_positions"],
                          gather(need(in, "positions", inF), idx), opt);
    if (has("scattered"))
      failures += compare("scattered", got["scattered"],
                          scatterAdd(need(in, "x", inF), idx,
                                     need(in, "update", inF),
                                     need(in, "scale", inF)),
                          opt);
    ++checked;
  }
  if (has("block_out")) {
    const Tensor &x = need(in, "x", inF);
    int64_t k = need(got, "block_indices", outF).shape().at(1);
    Tensor scores = router(x, need(in, "w", inF)), idx, vals;
    topk(scores, k, idx, vals);
    failures += compare("block_indices", got["block_indices"], idx, opt);
    Tensor d = mlp(gather(x, idx), need(in, "w1", inF), need(in, "w2", inF));
    if (opt.gate == "sigmoid")
      for (int64_t i = 0; i < vals.numElements(); ++i)
        vals.data<float>()[i] = 1.f / (1.f + std::exp(-vals.data<float>()[i]));
    else if (opt.gate != "identity")
      fail("unknown --gate '" + opt.gate + "'");
    failures += compare("block_out", got["block_out"],
                        scatterAdd(x, idx, d, vals), opt);
    ++checked;
  }
  if (!checked)
    fail(opt.outputs + " holds no output this tool knows how to check");
  return failures ? 1 : 0;
}

bool takeValue(const std::string &arg, const char *flag, std::string &out) {
  std::string prefix = std::string(flag) + "=";
  if (arg.rfind(prefix, 0) != 0)
    return false;
  out = arg.substr(prefix.size());
  return true;
}

void usage() {
  std::cout << "usage: mod-refcheck gen --manifest=FILE --entry=NAME [--seed=N] "
               "[--ties] [--nans] [--positions=arange|offset|shuffled] [--vocab=V] "
               "[--routing-seed=N] -o FILE\n"
               "       mod-refcheck check --inputs=FILE --outputs=FILE "
               "[--gate=identity|sigmoid] [--rtol=X] [--atol=X]\n";
}
} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    usage();
    return 1;
  }
  Options opt;
  opt.mode = argv[1];
  if (opt.mode == "--help" || opt.mode == "-h") {
    usage();
    return 0;
  }
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i], v;
    if (a == "-o" && i + 1 < argc)
      opt.output = argv[++i];
    else if (a == "--ties")
      opt.ties = true;
    else if (a == "--nans")
      opt.nans = true;
    else if (takeValue(a, "--manifest", opt.manifest) ||
             takeValue(a, "--entry", opt.entry) ||
             takeValue(a, "--inputs", opt.inputs) ||
             takeValue(a, "--outputs", opt.outputs) ||
             takeValue(a, "--gate", opt.gate) ||
             takeValue(a, "--positions", opt.positions))
      continue;
    else if (takeValue(a, "--seed", v))
      opt.seed = std::stoull(v);
    else if (takeValue(a, "--routing-seed", v))
      opt.routingSeed = std::stoull(v);
    else if (takeValue(a, "--vocab", v))
      opt.vocab = std::stoll(v);
    else if (takeValue(a, "--rtol", v))
      opt.rtol = std::stod(v);
    else if (takeValue(a, "--atol", v))
      opt.atol = std::stod(v);
    else
      fail("unknown argument '" + a + "'");
  }
  try {
    if (opt.mode == "gen")
      return generate(opt);
    if (opt.mode == "check")
      return check(opt);
  } catch (const std::exception &e) {
    fail(e.what());
  }
  usage();
  return 1;
}
