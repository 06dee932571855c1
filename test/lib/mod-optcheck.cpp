//===- mod-optcheck.cpp - check a compiled @adamw_step against plain C++ --===//
//
// The oracle of the optimizer tests. It shares no code with the compiler:
// libmodrt only loads the artifact and calls it.
//
//   mod-optcheck adamw MODEL_DIR [--steps=N] [--seed=N] [--lr=X] [--wd=X]
//                [--beta1=X] [--beta2=X] [--eps=X] [--max-norm=X]
//                [--grad-std=X] [--nan-grad]
//       Draws parameters, m, v (seeded) and, every step, fresh gradients;
//       runs adamw_step in place (Model::callInPlace) and compares every
//       updated parameter, m, v and grad_norm with the AdamW loop below,
//       evaluated in double precision from the same inputs. Step 1 also runs
//       Model::call (functional) and checks that it leaves its inputs alone
//       and agrees bitwise with the in-place call.
//       Tolerance: |got - ref| <= 1e-6 * (sum of the magnitudes of the terms
//       of the element: |b1 m| + |(1-b1) g'| for m', ...), about 17 f32 ulps,
//       far below what a wrong rule costs (weight decay alone moves a
//       parameter by lr*wd, 1e-3 relative in the tests). --nan-grad puts a NaN in one gradient at step 1: grad_norm
//       must be NaN and the state must come back bitwise unchanged.
//
//   mod-optcheck inputs-unchanged MODEL_DIR [--seed=N]
//       Calls every entry point once on random inputs (floats N(0, 0.1^2),
//       integers in {0, 1}, valid token ids and positions) through
//       Model::callInPlace and checks that every input no output aliases
//       ("alias_of") still holds its bytes afterwards.
//
// The AdamW reference (decoupled weight decay, PyTorch's formulation):
//   n = sqrt(sum g^2);  c = max_norm > 0 ? min(1, max_norm / (n + 1e-6)) : 1
//   g' = c g;  m' = b1 m + (1 - b1) g';  v' = b2 v + (1 - b2) g'^2
//   p' = p (1 - lr wd if decayed) - lr / (1 - b1^t) * m' / (sqrt(v') / sqrt(1 - b2^t) + eps)
// decayed: rank >= 2 and the name does not end in ".mod.router.weight".
//
//===----------------------------------------------------------------------===//

#include "modrt/Error.h"
#include "modrt/Model.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace modrt;

namespace {

struct Options {
  std::string mode, modelDir;
  int64_t steps = 3;
  uint64_t seed = 1;
  double lr = 0.01, wd = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8,
         maxNorm = 0.0, gradStd = 1.0;
  bool nanGrad = false;
};

[[noreturn]] void fail(const std::string &msg) {
  std::cerr << "mod-optcheck: error: " << msg << "\n";
  std::exit(1);
}

constexpr double kRtol = 1e-6;

bool decayed(const std::string &name, const std::vector<int64_t> &shape) {
  const std::string router = ".mod.router.weight";
  bool isRouter = name.size() >= router.size() &&
                  name.compare(name.size() - router.size(), router.size(),
                               router) == 0;
  return shape.size() >= 2 && !isRouter;
}

std::vector<double> toDouble(const Tensor &t) {
  std::vector<double> out(size_t(t.numElements()));
  for (int64_t i = 0; i < t.numElements(); ++i)
    out[size_t(i)] = t.elementAsDouble(i);
  return out;
}

void fillNormal(Tensor &t, std::mt19937_64 &rng, double std, bool absolute) {
  std::normal_distribution<double> normal(0.0, std);
  for (int64_t i = 0; i < t.numElements(); ++i) {
    double x = normal(rng);
    if (absolute)
      x = std::fabs(x);
    if (t.dtype() == DType::F32)
      t.data<float>()[i] = float(x);
    else if (t.dtype() == DType::F64)
      t.data<double>()[i] = x;
    else
      fail("optimizer tensors must be f32 or f64");
  }
}

Tensor scalar(const TensorSpec &spec, double value) {
  Tensor t(spec.dtype, {});
  switch (spec.dtype) {
  case DType::F32: *t.data<float>() = float(value); break;
  case DType::F64: *t.data<double>() = value; break;
  case DType::I32: *t.data<int32_t>() = int32_t(value); break;
  case DType::I64: *t.data<int64_t>() = int64_t(value); break;
  default: fail("scalar '" + spec.name + "' has an unsupported dtype");
  }
  return t;
}

/// Largest error of `got` against `ref`, as a multiple of the bound
/// kRtol * scale[i] (<= 1 passes). `scale` is the sum of the magnitudes of
/// the terms that make up each element, so cancellation between terms (m'
/// near 0) does not demand more than f32 can give.
double errorRatio(const Tensor &got, const std::vector<double> &ref,
                  const std::vector<double> &scale) {
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double x = got.elementAsDouble(int64_t(i));
    double err = std::fabs(x - ref[i]), bound = kRtol * scale[i];
    if (std::isnan(x))
      return INFINITY;
    worst = std::max(worst, err == 0 ? 0 : bound > 0 ? err / bound : INFINITY);
  }
  return worst;
}

int checkAdamW(const Options &o) {
  Model model = Model::load(o.modelDir);
  const EntryPoint &entry = model.entry("adamw_step");
  auto inputIndex = [&](const std::string &name) -> size_t {
    for (size_t i = 0; i < entry.inputs.size(); ++i)
      if (entry.inputs[i].name == name)
        return i;
    fail("adamw_step has no input '" + name + "'");
  };
  std::vector<std::string> params;
  for (const TensorSpec &in : entry.inputs)
    if (in.isParameter())
      params.push_back(in.name);
  if (params.empty())
    fail("adamw_step has no parameter inputs");
  // Every parameter, m and v must be updated in place of itself.
  for (const std::string &p : params)
    for (const std::string &name : {p, "m." + p, "v." + p}) {
      bool found = false;
      for (const TensorSpec &out : entry.outputs)
        if (out.name == name) {
          found = true;
          if (!out.aliasOf || entry.inputs[*out.aliasOf].name != name)
            fail("adamw_step output '" + name +
                 "' does not alias the input of the same name");
        }
      if (!found)
        fail("adamw_step has no output '" + name + "'");
    }
  size_t normOut = entry.outputs.size();
  for (size_t i = 0; i < entry.outputs.size(); ++i)
    if (entry.outputs[i].name == "grad_norm")
      normOut = i;
  if (normOut == entry.outputs.size() || entry.outputs[normOut].aliasOf)
    fail("adamw_step has no non-aliased output 'grad_norm'");

  std::mt19937_64 rng(o.seed);
  std::vector<Tensor> inputs;
  inputs.reserve(entry.inputs.size());
  for (const TensorSpec &in : entry.inputs)
    inputs.emplace_back(in.dtype, in.shape);
  size_t decayCount = 0;
  for (const std::string &p : params) {
    fillNormal(inputs[inputIndex(p)], rng, 0.5, false);
    fillNormal(inputs[inputIndex("m." + p)], rng, 0.05, false);
    fillNormal(inputs[inputIndex("v." + p)], rng, 0.01, true);
    decayCount += decayed(p, entry.inputs[inputIndex(p)].shape);
  }
  std::printf("adamw_step: %zu parameters, %zu decayed (rank >= 2, not a "
              "router weight)\n",
              params.size(), decayCount);
  int failures = 0;
  for (int64_t t = 1; t <= o.steps; ++t) {
    for (const std::string &p : params)
      fillNormal(inputs[inputIndex("grad." + p)], rng, o.gradStd, false);
    if (o.nanGrad && t == 1) {
      Tensor &g = inputs[inputIndex("grad." + params.back())];
      if (g.dtype() == DType::F32)
        g.data<float>()[g.numElements() / 2] = NAN;
      else
        g.data<double>()[g.numElements() / 2] = NAN;
    }
    const std::map<std::string, double> hyper{
        {"lr", o.lr},         {"beta1", o.beta1},
        {"beta2", o.beta2},   {"eps", o.eps},
        {"weight_decay", o.wd}, {"max_norm", o.maxNorm},
        {"step", double(t)}};
    for (size_t i = 0; i < entry.inputs.size(); ++i) {
      auto it = hyper.find(entry.inputs[i].name);
      if (it != hyper.end())
        inputs[i] = scalar(entry.inputs[i], it->second);
    }

    // The reference, in double, from the inputs of this step (the
    // hyper-parameters as the entry point receives them, e.g. f32-rounded).
    auto given = [&](const char *name) {
      return inputs[inputIndex(name)].elementAsDouble(0);
    };
    const double lr = given("lr"), beta1 = given("beta1"),
                 beta2 = given("beta2"), eps = given("eps"),
                 wd = given("weight_decay"), maxNorm = given("max_norm");
    double sumSq = 0;
    for (const std::string &p : params)
      for (double g : toDouble(inputs[inputIndex("grad." + p)]))
        sumSq += g * g;
    double norm = std::sqrt(sumSq);
    double coef = maxNorm > 0 ? std::min(1.0, maxNorm / (norm + 1e-6)) : 1.0;
    double bias1 = 1 - std::pow(beta1, double(t)),
           bias2 = 1 - std::pow(beta2, double(t));
    std::map<std::string, std::vector<double>> expected, scales;
    for (const std::string &p : params) {
      std::vector<double> pv = toDouble(inputs[inputIndex(p)]),
                          g = toDouble(inputs[inputIndex("grad." + p)]),
                          m = toDouble(inputs[inputIndex("m." + p)]),
                          v = toDouble(inputs[inputIndex("v." + p)]);
      bool decay = decayed(p, entry.inputs[inputIndex(p)].shape);
      std::vector<double> sp(pv.size()), sm(pv.size()), sv(pv.size());
      if (std::isfinite(norm)) {
        for (size_t i = 0; i < pv.size(); ++i) {
          double gc = coef * g[i];
          sm[i] = std::fabs(beta1 * m[i]) + std::fabs((1 - beta1) * gc);
          sv[i] = beta2 * v[i] + (1 - beta2) * gc * gc;
          m[i] = beta1 * m[i] + (1 - beta1) * gc;
          v[i] = beta2 * v[i] + (1 - beta2) * gc * gc;
          double kept = decay ? pv[i] * (1 - lr * wd) : pv[i];
          double delta =
              (lr / bias1) * m[i] / (std::sqrt(v[i]) / std::sqrt(bias2) + eps);
          // m' enters delta: its own error (relative to sm) carries over.
          sp[i] = std::fabs(kept) + std::fabs(delta) *
                                        (1 + sm[i] / std::max(std::fabs(m[i]), 1e-300));
          pv[i] = kept - delta;
        }
      }
      scales[p] = std::move(sp);
      scales["m." + p] = std::move(sm);
      scales["v." + p] = std::move(sv);
      expected[p] = std::move(pv);
      expected["m." + p] = std::move(m);
      expected["v." + p] = std::move(v);
    }

    std::vector<Tensor> before = inputs;
    std::vector<const Tensor *> constArgs;
    std::vector<Tensor *> args;
    for (Tensor &in : inputs) {
      constArgs.push_back(&in);
      args.push_back(&in);
    }
    std::vector<Tensor> functional;
    if (t == 1) {
      functional = model.call("adamw_step", constArgs);
      for (size_t i = 0; i < inputs.size(); ++i)
        if (!inputs[i].identical(before[i])) {
          std::printf("FAIL: Model::call wrote into input '%s'\n",
                      entry.inputs[i].name.c_str());
          ++failures;
        }
    }
    std::vector<Tensor> rest = model.callInPlace("adamw_step", args);
    // The non-aliased outputs come back in manifest order.
    Tensor gradNorm;
    size_t next = 0;
    for (size_t i = 0; i < entry.outputs.size(); ++i) {
      if (entry.outputs[i].aliasOf)
        continue;
      if (i == normOut)
        gradNorm = rest[next];
      ++next;
    }
    if (t == 1) {
      for (size_t i = 0; i < entry.outputs.size(); ++i) {
        const Tensor &inPlace = entry.outputs[i].aliasOf
                                    ? inputs[*entry.outputs[i].aliasOf]
                                    : gradNorm;
        if (entry.outputs[i].aliasOf || i == normOut)
          if (!functional[i].identical(inPlace) &&
              !(i == normOut && std::isnan(functional[i].elementAsDouble(0)) &&
                std::isnan(inPlace.elementAsDouble(0)))) {
            std::printf("FAIL: output '%s' differs between call and "
                        "callInPlace\n",
                        entry.outputs[i].name.c_str());
            ++failures;
          }
      }
    }
    double gotNorm = gradNorm.elementAsDouble(0);
    if (!std::isfinite(norm)) {
      bool unchanged = true;
      for (size_t i = 0; i < inputs.size(); ++i)
        unchanged &= inputs[i].identical(before[i]);
      std::printf("step %lld: grad_norm %g (reference %g); state %s\n",
                  static_cast<long long>(t), gotNorm, norm,
                  unchanged ? "unchanged" : "CHANGED");
      if (!std::isnan(gotNorm) || !unchanged)
        ++failures;
      continue;
    }
    double normErr = std::fabs(gotNorm - norm) / norm;
    double worst[3] = {0, 0, 0};
    std::string worstName[3];
    for (const std::string &p : params) {
      const std::string names[3] = {p, "m." + p, "v." + p};
      for (int k = 0; k < 3; ++k) {
        double r = errorRatio(inputs[inputIndex(names[k])], expected[names[k]],
                              scales[names[k]]);
        if (r >= worst[k]) {
          worst[k] = r;
          worstName[k] = names[k];
        }
      }
    }
    std::printf("step %lld: grad_norm %.6g (reference %.6g, rel err %.1e), "
                "clip coefficient %.4g; worst error / bound: params %.3f (%s) "
                "m %.3f v %.3f\n",
                static_cast<long long>(t), gotNorm, norm, normErr, coef,
                worst[0], worstName[0].c_str(), worst[1], worst[2]);
    if (!(normErr <= kRtol) || !(worst[0] <= 1) || !(worst[1] <= 1) ||
        !(worst[2] <= 1))
      ++failures;
  }
  std::printf(failures ? "FAIL\n" : "PASS\n");
  return failures ? 1 : 0;
}

int checkInputsUnchanged(const Options &o) {
  Model model = Model::load(o.modelDir);
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> normal(0.0, 0.1);
  int failures = 0;
  for (const EntryPoint &entry : model.manifest().entryPoints) {
    std::vector<Tensor> inputs;
    inputs.reserve(entry.inputs.size());
    for (const TensorSpec &spec : entry.inputs) {
      Tensor t(spec.dtype, spec.shape);
      for (int64_t i = 0; i < t.numElements(); ++i) {
        switch (spec.dtype) {
        case DType::F32: t.data<float>()[i] = float(normal(rng)); break;
        case DType::F64: t.data<double>()[i] = normal(rng); break;
        case DType::I32: t.data<int32_t>()[i] = int32_t(rng() & 1); break;
        case DType::I64: t.data<int64_t>()[i] = int64_t(rng() & 1); break;
        default: fail("input '" + spec.name + "' has an unsupported dtype");
        }
      }
      inputs.push_back(std::move(t));
    }
    // adamw_step's step counts from 1.
    for (size_t i = 0; i < entry.inputs.size(); ++i)
      if (entry.inputs[i].name == "step" && entry.inputs[i].shape.empty())
        inputs[i] = scalar(entry.inputs[i], 1);
    std::vector<bool> aliased(entry.inputs.size(), false);
    for (const TensorSpec &out : entry.outputs)
      if (out.aliasOf)
        aliased[*out.aliasOf] = true;
    std::vector<Tensor> before = inputs;
    std::vector<Tensor *> args;
    for (Tensor &t : inputs)
      args.push_back(&t);
    model.callInPlace(entry.name, args);
    size_t checked = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (aliased[i])
        continue;
      ++checked;
      if (!inputs[i].identical(before[i])) {
        std::printf("FAIL: @%s wrote into its input '%s'\n", entry.name.c_str(),
                    entry.inputs[i].name.c_str());
        ++failures;
      }
    }
    std::printf("@%s: %zu inputs not aliased by an output, %s\n",
                entry.name.c_str(), checked,
                failures ? "some written" : "all unchanged");
  }
  std::printf(failures ? "FAIL\n" : "PASS\n");
  return failures ? 1 : 0;
}

double parseDouble(const std::string &flag, const std::string &text) {
  char *end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end)
    fail("invalid value '" + text + "' for " + flag);
  return v;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    size_t eq = arg.find('=');
    std::string flag = arg.substr(0, eq),
                value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    if (arg.rfind("--", 0) != 0)
      positional.push_back(arg);
    else if (flag == "--steps")
      o.steps = int64_t(parseDouble(flag, value));
    else if (flag == "--seed")
      o.seed = uint64_t(parseDouble(flag, value));
    else if (flag == "--lr")
      o.lr = parseDouble(flag, value);
    else if (flag == "--wd")
      o.wd = parseDouble(flag, value);
    else if (flag == "--beta1")
      o.beta1 = parseDouble(flag, value);
    else if (flag == "--beta2")
      o.beta2 = parseDouble(flag, value);
    else if (flag == "--eps")
      o.eps = parseDouble(flag, value);
    else if (flag == "--max-norm")
      o.maxNorm = parseDouble(flag, value);
    else if (flag == "--grad-std")
      o.gradStd = parseDouble(flag, value);
    else if (flag == "--nan-grad")
      o.nanGrad = true;
    else
      fail("unknown option " + arg);
  }
  if (positional.size() != 2 ||
      (positional[0] != "adamw" && positional[0] != "inputs-unchanged"))
    fail("usage: mod-optcheck adamw|inputs-unchanged MODEL_DIR [options]");
  o.mode = positional[0];
  o.modelDir = positional[1];
  try {
    return o.mode == "adamw" ? checkAdamW(o) : checkInputsUnchanged(o);
  } catch (const Error &e) {
    fail(e.what());
  }
}
