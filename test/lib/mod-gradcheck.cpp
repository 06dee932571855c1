//===- mod-gradcheck.cpp - finite-difference checks of @loss_and_grad -----===//
//
// mod-gradcheck MODEL_DIR [options]
//
// Loads a compiled model (f64; see --mod-convert-float-type) with a
// @loss_and_grad entry point and checks its gradients against central finite
// differences of the objective it differentiates,
//
//   J = loss + aux_weight * sum(aux_loss.*)   for the model's parameters,
//   J = sum(predictor_loss.*)                 for `*.mod.predictor.*` ones
//
// (the predictor reads the block input with its gradient stopped, so the
// model's gradients must not see the predictor loss: checked too).
//
// on random directions u: <grad, u> against (J(p + eps u) - J(p - eps u)) /
// (2 eps). One direction per parameter (u is zero on the others), so an error
// in one parameter's gradient cannot hide behind another's, then one over all
// parameters at once. A check passes when
// |fd - ad| <= tol * max(|fd|, |ad|) + atol. The gradients are computed by
// the compiled code only; the finite differences use only its loss.
//
// --sgd-steps N runs plain gradient descent on one fixed batch instead and
// requires the loss to fall below --expect-below (a model that can memorize
// its batch must be able to): a check that training actually learns.
//
// --compare REF_DIR runs the same train step in two compiled models (e.g. the
// CUDA build against the CPU build of one module) from the same parameters
// and batch, and compares every output of @loss_and_grad and, when both have
// one, of @adamw_step (fed the reference's gradients and seeded optimizer
// state): each tensor's max |a - b| must be within --rtol of its reference's
// max |b| (a relative error per tensor, so that near-zero elements of a
// gradient do not dominate), and nothing may be NaN. The two models may
// differ in float width (an f32 build against the f64 build of the same
// module, whose gradients the finite-difference check validates): the
// reference is then called with the same values converted to its types.
//
// --print-scalars prints the scalar outputs of one call (loss, aux losses,
// agreement) for tests that compare them with hand-computed values;
// --target T sets every target to T (-1: all ignored).
//
// Exit status 0 when every check passes, 1 otherwise (with the reason).
//
//===----------------------------------------------------------------------===//

#include "modrt/Model.h"
#include "modrt/Weights.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace modrt;

namespace {
struct Options {
  std::string modelDir;
  uint64_t seed = 1;
  double eps = 1e-6, tol = 1e-6, atol = 1e-12;
  double auxWeight = 0.01;
  double paramScale = 1.0;
  double ignoreFraction = 0.1;
  int64_t sgdSteps = 0;
  double lr = 0.1, expectBelow = 0.05;
  bool verbose = false;
  bool printScalars = false;
  std::optional<int32_t> fixedTarget;
  std::string compareDir;
  double rtol = 1e-4;
};

[[noreturn]] void usage(const char *msg) {
  std::fprintf(stderr,
               "mod-gradcheck: error: %s\n"
               "usage: mod-gradcheck MODEL_DIR [--seed N] [--eps E] [--tol T] "
               "[--atol A]\n"
               "         [--aux-weight W] [--param-scale S] "
               "[--ignore-fraction F] [-v]\n"
               "       mod-gradcheck MODEL_DIR --print-scalars [--target T]\n"
               "       mod-gradcheck MODEL_DIR --sgd-steps N [--lr X] "
               "[--expect-below L]\n"
               "       mod-gradcheck MODEL_DIR --compare REF_DIR [--rtol R] "
               "[--seed N]\n",
               msg);
  std::exit(2);
}

Options parseArgs(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    auto number = [&]() {
      std::string v = value();
      char *end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end)
        usage(("bad number '" + v + "' for " + a).c_str());
      return d;
    };
    if (a == "--seed")
      o.seed = uint64_t(number());
    else if (a == "--eps")
      o.eps = number();
    else if (a == "--tol")
      o.tol = number();
    else if (a == "--atol")
      o.atol = number();
    else if (a == "--aux-weight")
      o.auxWeight = number();
    else if (a == "--param-scale")
      o.paramScale = number();
    else if (a == "--ignore-fraction")
      o.ignoreFraction = number();
    else if (a == "--sgd-steps")
      o.sgdSteps = int64_t(number());
    else if (a == "--lr")
      o.lr = number();
    else if (a == "--expect-below")
      o.expectBelow = number();
    else if (a == "-v")
      o.verbose = true;
    else if (a == "--print-scalars")
      o.printScalars = true;
    else if (a == "--target")
      o.fixedTarget = int32_t(number());
    else if (a == "--compare")
      o.compareDir = value();
    else if (a == "--rtol")
      o.rtol = number();
    else if (!a.empty() && a[0] == '-')
      usage(("unknown option " + a).c_str());
    else if (o.modelDir.empty())
      o.modelDir = a;
    else
      usage("more than one model directory");
  }
  if (o.modelDir.empty())
    usage("no model directory");
  return o;
}

bool startsWith(const std::string &s, const char *prefix) {
  return s.rfind(prefix, 0) == 0;
}

class Checker {
public:
  Checker(const Options &o) : o_(o), model_(Model::load(o.modelDir)) {
    entry_ = &model_.entry("loss_and_grad");
    for (const TensorSpec &in : entry_->inputs)
      if (in.isParameter() && in.dtype != DType::F64 && o_.sgdSteps == 0 &&
          !o_.printScalars && o_.compareDir.empty())
        throw Error("parameter '" + in.name + "' is " + in.str() +
                    ": finite differences need an f64 model "
                    "(mod-opt --mod-convert-float-type=\"from=f32 to=f64\")");
    setUpInputs();
  }

  int checkGradients();
  int train();
  /// Runs the train step here and in the model at --compare; compares.
  int compare();
  /// Prints every scalar output of one call (loss, aux losses, agreement).
  int printScalars();

private:
  void setUpInputs();
  /// The objective J of the model (or of the predictors) and, when `grads`
  /// is given, the gradients by name.
  double objective(std::map<std::string, Tensor> *grads, double *lossOut,
                   bool predictor = false);
  std::vector<const Tensor *> inputs();

  const Options &o_;
  Model model_;
  const EntryPoint *entry_ = nullptr;
  std::map<std::string, Tensor> params_, data_;
  std::vector<std::string> paramOrder_;
};

void Checker::setUpInputs() {
  std::mt19937_64 rng(o_.seed);
  int64_t vocab = -1;
  if (const EntryPoint *fwd = model_.manifest().findEntry("forward"))
    for (const TensorSpec &out : fwd->outputs)
      if (out.shape.size() == 3)
        vocab = out.shape[2];
  for (const TensorSpec &in : entry_->inputs) {
    if (in.isParameter()) {
      Tensor t = initParameter(in, o_.seed);
      // Scaled (and shifted for constant inits) so that no gradient is
      // trivially zero or linear.
      std::normal_distribution<double> n(0.0, 1.0);
      for (int64_t i = 0; i < t.numElements(); ++i) {
        double v = t.elementAsDouble(i) * o_.paramScale;
        if (o_.paramScale != 1.0)
          v += 0.05 * n(rng);
        if (t.dtype() == DType::F64)
          t.data<double>()[i] = v;
        else
          t.data<float>()[i] = float(v);
      }
      params_.emplace(in.name, std::move(t));
      paramOrder_.push_back(in.name);
      continue;
    }
    if (in.dtype != DType::I32 || in.shape.size() != 2)
      throw Error("input '" + in.name + "' is " + in.str() +
                  "; expected i32 [B,S] tokens, positions or targets");
    if (vocab < 0)
      throw Error("no @forward with [B,S,V] logits to take V from");
    Tensor t(DType::I32, in.shape);
    int32_t *p = t.data<int32_t>();
    std::uniform_int_distribution<int32_t> tok(0, int32_t(vocab - 1));
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int64_t i = 0; i < t.numElements(); ++i) {
      if (in.name == "positions")
        p[i] = int32_t(i % in.shape[1]);
      else if (in.name == "targets" && o_.fixedTarget)
        p[i] = *o_.fixedTarget;
      else if (in.name == "targets")
        p[i] = u(rng) < o_.ignoreFraction ? -1 : tok(rng);
      else
        p[i] = tok(rng);
    }
    data_.emplace(in.name, std::move(t));
  }
}

std::vector<const Tensor *> Checker::inputs() {
  std::vector<const Tensor *> v;
  for (const TensorSpec &in : entry_->inputs)
    v.push_back(in.isParameter() ? &params_.at(in.name) : &data_.at(in.name));
  return v;
}

bool isPredictorParameter(const std::string &name) {
  return name.find(".mod.predictor.") != std::string::npos;
}

double Checker::objective(std::map<std::string, Tensor> *grads,
                          double *lossOut, bool predictor) {
  std::vector<Tensor> outs = model_.call("loss_and_grad", inputs());
  double j = 0;
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string &name = entry_->outputs[i].name;
    if (name == "loss") {
      if (!predictor)
        j += outs[i].elementAsDouble(0);
      if (lossOut)
        *lossOut = outs[i].elementAsDouble(0);
    } else if (startsWith(name, "aux_loss.")) {
      if (!predictor)
        j += o_.auxWeight * outs[i].elementAsDouble(0);
    } else if (startsWith(name, "predictor_loss.")) {
      if (predictor)
        j += outs[i].elementAsDouble(0);
    } else if (grads && startsWith(name, "grad.")) {
      grads->emplace(name.substr(5), std::move(outs[i]));
    }
  }
  return j;
}

int Checker::checkGradients() {
  std::map<std::string, Tensor> grads;
  double loss = 0;
  double j0 = objective(&grads, &loss);
  // The finite differences assume a pure function of the parameters.
  double again = objective(nullptr, nullptr);
  if (again != j0)
    throw Error("two calls with the same inputs gave objectives " +
                std::to_string(j0) + " and " + std::to_string(again) +
                ": the entry point writes into its inputs or is not "
                "deterministic");
  std::printf("mod-gradcheck: %zu parameters, loss %.10g, objective %.10g\n",
              paramOrder_.size(), loss, j0);
  for (const std::string &name : paramOrder_)
    if (!grads.count(name))
      throw Error("loss_and_grad has no output 'grad." + name + "'");

  std::mt19937_64 rng(o_.seed * 7919 + 17);
  std::normal_distribution<double> normal(0.0, 1.0);
  double worst = 0, worstAbs = 0;
  int failures = 0, nonzero = 0;
  auto check = [&](const std::string &label,
                   const std::vector<std::string> &names, bool predictor) {
    std::map<std::string, std::vector<double>> dir;
    double ad = 0;
    for (const std::string &n : names) {
      const Tensor &g = grads.at(n);
      std::vector<double> u(size_t(g.numElements()));
      for (size_t i = 0; i < u.size(); ++i) {
        u[i] = normal(rng);
        ad += u[i] * g.data<double>()[i];
      }
      dir.emplace(n, std::move(u));
    }
    auto shift = [&](double s) {
      for (auto &[n, u] : dir) {
        double *p = params_.at(n).data<double>();
        for (size_t i = 0; i < u.size(); ++i)
          p[i] += s * u[i];
      }
    };
    shift(o_.eps);
    double jp = objective(nullptr, nullptr, predictor);
    shift(-2 * o_.eps);
    double jm = objective(nullptr, nullptr, predictor);
    shift(o_.eps);
    double fd = (jp - jm) / (2 * o_.eps);
    double scale = std::max(std::fabs(fd), std::fabs(ad));
    double err = std::fabs(fd - ad);
    double rel = scale > 0 ? err / scale : 0;
    bool ok = err <= o_.tol * scale + o_.atol;
    worstAbs = std::max(worstAbs, err);
    if (scale > 1e3 * o_.atol)
      ++nonzero, worst = std::max(worst, rel);
    if (!ok)
      ++failures;
    if (!ok || o_.verbose)
      std::printf("  %-48s ad %+.12e fd %+.12e rel %.2e%s\n", label.c_str(),
                  ad, fd, rel, ok ? "" : "  FAIL");
  };
  std::vector<std::string> model, predictors;
  for (const std::string &n : paramOrder_)
    (isPredictorParameter(n) ? predictors : model).push_back(n);
  size_t directions = 0;
  for (const std::string &n : paramOrder_) {
    check(n, {n}, isPredictorParameter(n));
    ++directions;
  }
  check("(all model parameters)", model, false), ++directions;
  if (!predictors.empty())
    check("(all predictor parameters)", predictors, true), ++directions;
  std::printf("mod-gradcheck: %zu directions, %d with a nonzero derivative, "
              "max relative error %.2e (tol %.1e), max absolute error %.2e "
              "(atol %.1e), %d failed\n",
              directions, nonzero, worst, o_.tol, worstAbs, o_.atol, failures);
  if (nonzero == 0) {
    std::printf("mod-gradcheck: FAIL: every directional derivative is zero; "
                "the check proves nothing\n");
    return 1;
  }
  return failures ? 1 : 0;
}

int Checker::printScalars() {
  std::vector<Tensor> outs = model_.call("loss_and_grad", inputs());
  for (size_t i = 0; i < outs.size(); ++i)
    if (entry_->outputs[i].shape.empty())
      std::printf("%s = %.9g\n", entry_->outputs[i].name.c_str(),
                  outs[i].elementAsDouble(0));
  return 0;
}

int Checker::train() {
  double first = 0, last = 0;
  for (int64_t step = 0; step <= o_.sgdSteps; ++step) {
    std::map<std::string, Tensor> grads;
    double loss = 0;
    objective(&grads, &loss);
    if (!std::isfinite(loss))
      throw Error("the loss is not finite at step " + std::to_string(step));
    if (step == 0)
      first = loss;
    last = loss;
    if (o_.verbose || step % 50 == 0 || step == o_.sgdSteps)
      std::printf("step %4lld loss %.6f\n", (long long)step, loss);
    if (step == o_.sgdSteps)
      break;
    for (auto &[name, p] : params_) {
      const Tensor &g = grads.at(name);
      for (int64_t i = 0; i < p.numElements(); ++i) {
        if (p.dtype() == DType::F64)
          p.data<double>()[i] -= o_.lr * g.elementAsDouble(i);
        else
          p.data<float>()[i] -= float(o_.lr * g.elementAsDouble(i));
      }
    }
  }
  std::printf("mod-gradcheck: SGD %lld steps: loss %.6f -> %.6f (expected "
              "below %g)\n",
              (long long)o_.sgdSteps, first, last, o_.expectBelow);
  return last < o_.expectBelow ? 0 : 1;
}

/// max |a - b| / max |b| over a tensor (0 when both are all zeros); NaN if
/// either holds a NaN.
double relativeError(const Tensor &a, const Tensor &b) {
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < b.numElements(); ++i) {
    double x = a.elementAsDouble(i), y = b.elementAsDouble(i);
    if (std::isnan(x) || std::isnan(y))
      return std::nan("");
    diff = std::max(diff, std::fabs(x - y));
    scale = std::max(scale, std::fabs(y));
  }
  return diff == 0 ? 0 : diff / (scale > 0 ? scale : 1e-300);
}

bool isFloat(DType d) { return d == DType::F32 || d == DType::F64; }

/// `t` with its values in `dtype` (f32 <-> f64; a copy when already so).
Tensor convertTo(const Tensor &t, DType dtype) {
  if (t.dtype() == dtype)
    return t;
  Tensor out(dtype, t.shape());
  for (int64_t i = 0; i < t.numElements(); ++i) {
    double v = t.elementAsDouble(i);
    if (dtype == DType::F64)
      out.data<double>()[i] = v;
    else
      out.data<float>()[i] = float(v);
  }
  return out;
}

int Checker::compare() {
  Model ref = Model::load(o_.compareDir);
  int failures = 0;
  size_t tensors = 0;
  double worst = 0;
  std::string worstName = "-";
  // Compares the outputs of one entry point, matched by name.
  auto compareOutputs = [&](const std::string &entryName,
                            const std::vector<const Tensor *> &ins,
                            std::map<std::string, Tensor> *refOutsByName) {
    const EntryPoint &mine = model_.entry(entryName);
    const EntryPoint &theirs = ref.entry(entryName);
    if (mine.inputs.size() != theirs.inputs.size())
      throw Error("@" + entryName + " takes " +
                  std::to_string(mine.inputs.size()) + " inputs here and " +
                  std::to_string(theirs.inputs.size()) + " in " +
                  o_.compareDir);
    // Inputs match by name and shape; their element types too, except that
    // f32 and f64 may differ (the reference gets converted values).
    std::vector<Tensor> converted;
    converted.reserve(ins.size());
    std::vector<const Tensor *> refIns;
    for (size_t i = 0; i < mine.inputs.size(); ++i) {
      const TensorSpec &x = mine.inputs[i], &y = theirs.inputs[i];
      bool widthOnly = x.dtype != y.dtype && isFloat(x.dtype) &&
                       isFloat(y.dtype) && x.shape == y.shape;
      if (x.name != y.name || (x.str() != y.str() && !widthOnly))
        throw Error("@" + entryName + " input " + std::to_string(i) + " is '" +
                    x.name + "' " + x.str() + " here and '" + y.name + "' " +
                    y.str() + " in " + o_.compareDir);
      if (x.dtype == y.dtype) {
        refIns.push_back(ins[i]);
        continue;
      }
      converted.push_back(convertTo(*ins[i], y.dtype));
      refIns.push_back(&converted.back());
    }
    std::vector<Tensor> a = model_.call(entryName, ins);
    std::vector<Tensor> b = ref.call(entryName, refIns);
    std::map<std::string, size_t> refIndex;
    for (size_t i = 0; i < theirs.outputs.size(); ++i)
      refIndex[theirs.outputs[i].name] = i;
    for (size_t i = 0; i < mine.outputs.size(); ++i) {
      const std::string &name = mine.outputs[i].name;
      auto it = refIndex.find(name);
      if (it == refIndex.end())
        throw Error("@" + entryName + " output '" + name + "' is missing in " +
                    o_.compareDir);
      const Tensor &y = b[it->second];
      if (a[i].shape() != y.shape())
        throw Error("@" + entryName + " output '" + name +
                    "' has different shapes in the two models");
      double rel = relativeError(a[i], y);
      bool ok = rel <= o_.rtol; // false for NaN
      ++tensors;
      if (!ok)
        ++failures;
      if (std::isnan(rel) || rel > worst)
        worst = std::isnan(rel) ? rel : std::max(worst, rel),
        worstName = entryName + ":" + name;
      if (!ok || o_.verbose || mine.outputs[i].shape.empty())
        std::printf("  %-12s %-48s %s rel %.2e%s\n", entryName.c_str(),
                    name.c_str(),
                    mine.outputs[i].shape.empty()
                        ? ("value " + std::to_string(a[i].elementAsDouble(0)) +
                           " ref " + std::to_string(y.elementAsDouble(0)))
                              .c_str()
                        : "",
                    rel, ok ? "" : "  FAIL");
    }
    if (refOutsByName)
      for (size_t i = 0; i < theirs.outputs.size(); ++i)
        refOutsByName->emplace(theirs.outputs[i].name, std::move(b[i]));
  };

  std::map<std::string, Tensor> refOuts;
  compareOutputs("loss_and_grad", inputs(), &refOuts);

  if (model_.manifest().findEntry("adamw_step") &&
      ref.manifest().findEntry("adamw_step")) {
    // Both models step from the reference's gradients and the same state.
    const EntryPoint &step = model_.entry("adamw_step");
    std::mt19937_64 rng(o_.seed * 104729 + 3);
    std::normal_distribution<double> normal(0.0, 1e-3);
    std::uniform_real_distribution<double> uniform(0.0, 1e-4);
    const std::map<std::string, double> hyper = {
        {"lr", 1e-2},    {"beta1", 0.9},        {"beta2", 0.999},
        {"eps", 1e-8},   {"weight_decay", 0.1}, {"max_norm", 0.5},
        {"step", 3}};
    std::vector<Tensor> owned;
    owned.reserve(step.inputs.size());
    std::vector<const Tensor *> ins;
    for (const TensorSpec &in : step.inputs) {
      if (in.isParameter()) {
        ins.push_back(&params_.at(in.name));
        continue;
      }
      Tensor t(in.dtype, in.shape);
      if (startsWith(in.name, "grad.")) {
        auto g = refOuts.find(in.name);
        if (g == refOuts.end())
          throw Error("@adamw_step input '" + in.name +
                      "' is not an output of @loss_and_grad");
        t = convertTo(g->second, in.dtype);
      } else if (startsWith(in.name, "m.") || startsWith(in.name, "v.")) {
        bool second = in.name[0] == 'v';
        for (int64_t i = 0; i < t.numElements(); ++i) {
          double v = second ? uniform(rng) : normal(rng);
          if (t.dtype() == DType::F64)
            t.data<double>()[i] = v;
          else
            t.data<float>()[i] = float(v);
        }
      } else if (auto h = hyper.find(in.name); h != hyper.end()) {
        if (in.dtype == DType::I32)
          t.data<int32_t>()[0] = int32_t(h->second);
        else if (in.dtype == DType::F64)
          t.data<double>()[0] = h->second;
        else
          t.data<float>()[0] = float(h->second);
      } else {
        throw Error("@adamw_step input '" + in.name + "' is not a parameter, "
                    "gradient, optimizer state or known hyperparameter");
      }
      owned.push_back(std::move(t));
      ins.push_back(&owned.back());
    }
    compareOutputs("adamw_step", ins, nullptr);
  }
  std::printf("mod-gradcheck: compared %zu tensors with %s: max relative "
              "error %.2e (rtol %.1e) in %s, %d failed\n",
              tensors, o_.compareDir.c_str(), worst, o_.rtol,
              worstName.c_str(), failures);
  return failures ? 1 : 0;
}
} // namespace

int main(int argc, char **argv) {
  Options o = parseArgs(argc, argv);
  try {
    Checker checker(o);
    if (o.printScalars)
      return checker.printScalars();
    if (!o.compareDir.empty())
      return checker.compare();
    return o.sgdSteps > 0 ? checker.train() : checker.checkGradients();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "mod-gradcheck: error: %s\n", e.what());
    return 1;
  }
}
