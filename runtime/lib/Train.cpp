//===- Train.cpp - mod-train's loop: data, steps, eval, checkpoints -------===//

#include "modrt/Train.h"

#include "modrt/Error.h"
#include "modrt/FileUtil.h"
#include "modrt/Model.h"
#include "modrt/Safetensors.h"
#include "modrt/TokenFile.h"
#include "modrt/Weights.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <time.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace modrt {

std::atomic<int> gStopSignal{0};

namespace {
constexpr const char *kLossAndGrad = "loss_and_grad";
constexpr const char *kAdamW = "adamw_step";
constexpr const char *kStateFormat = "modc-train-checkpoint";
constexpr const char *kRoutingSeed = "routing_seed";
constexpr double kPi = 3.14159265358979323846;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

std::string checkpointName(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

Tensor scalarTensor(const TensorSpec &spec, double value) {
  if (!spec.shape.empty())
    throw Error("input '" + spec.name + "' must be a scalar, the manifest says " +
                spec.str());
  Tensor t(spec.dtype, {});
  switch (spec.dtype) {
  case DType::F32: *t.data<float>() = float(value); break;
  case DType::F64: *t.data<double>() = value; break;
  case DType::I32: *t.data<int32_t>() = int32_t(value); break;
  case DType::I64: *t.data<int64_t>() = int64_t(value); break;
  default:
    throw Error("input '" + spec.name + "' has unsupported dtype " + spec.str());
  }
  return t;
}

/// acc += scale * g, or acc = scale * g when `first` (acc's old contents
/// are ignored: no zero fill before the first micro-batch).
void accumulate(Tensor &acc, const Tensor &g, double scale, bool first) {
  int64_t n = acc.numElements();
  if (acc.dtype() == DType::F32) {
    float *a = acc.data<float>();
    const float *b = g.data<float>();
    for (int64_t i = 0; i < n; ++i)
      a[i] = (first ? 0.0f : a[i]) + float(scale) * b[i];
  } else if (acc.dtype() == DType::F64) {
    double *a = acc.data<double>();
    const double *b = g.data<double>();
    for (int64_t i = 0; i < n; ++i)
      a[i] = (first ? 0.0 : a[i]) + scale * b[i];
  } else {
    throw Error("gradients must be f32 or f64");
  }
}

/// CPU time of the whole process (every thread), in seconds: unlike wall
/// time, hardly affected by other processes competing for the cores.
double processCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

std::string formatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0)
    return "?";
  long s = long(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

/// The state of one training run.
class Trainer {
public:
  explicit Trainer(TrainOptions options)
      : o_(std::move(options)), model_(Model::load(o_.modelDir)),
        data_(TokenFile::open(o_.dataPath)) {}

  int run();

private:
  void checkEntryPoints();
  void initialize();
  void resumeFrom(const std::string &checkpoint);
  void fillWindow(Split split, const std::vector<uint64_t> &starts);
  /// Runs @loss_and_grad on the current windows; the outputs stay in
  /// lgOuts_ (overwritten by the next call). With `gradsOnDevice`,
  /// device-resident gradient outputs stay in the model's device buffers
  /// (for @adamw_step, or to be discarded by an evaluation): their slots are
  /// empty tensors.
  const std::vector<Tensor> &callLossAndGrad(bool gradsOnDevice);
  double evaluate(std::map<std::string, double> *scalars = nullptr);
  int evalOnly();
  void step(int64_t step);
  void saveCheckpoint(int64_t step);
  /// CUDA models: uploads the parameters and optimizer state the model
  /// keeps on the device (once per load; training updates them there).
  void uploadResident();
  /// Refreshes the host copies of the device-resident tensors.
  void downloadResident();
  /// The input to pass for `name`: null (its device buffer) when the model
  /// keeps it on the device, else the host tensor.
  template <typename T> T *hostOrDevice(const std::string &name, T &host) {
    return model_.isDeviceResident(name) ? nullptr : &host;
  }
  void pruneCheckpoints();
  void log(int64_t step, double stepSeconds, bool force);
  void rewriteMetricsUpTo(int64_t step);

  TrainOptions o_;
  Model model_;
  TokenFile data_;
  const EntryPoint *lg_ = nullptr, *adam_ = nullptr;
  int64_t batch_ = 0, seq_ = 0;
  std::string artifactHash_;
  std::set<std::string> paramNames_; // the parameters of loss_and_grad
  /// CUDA models: @loss_and_grad's gradients are device-resident outputs
  /// that @adamw_step reads as device-resident inputs, so with --accum 1 they
  /// never leave the device (the gradient norm and its NaN/inf check come
  /// from @adamw_step's grad_norm). Accumulated micro-batches are summed on
  /// the host.
  bool gradsResident_ = false;
  std::map<std::string, Tensor> params_, m_, v_;
  Tensor tokens_, positions_, targets_;
  Tensor routingSeed_{DType::I64, {}}; // stochastic routing's draw
  bool hasRoutingSeed_ = false;
  int64_t startStep_ = 0;
  // Last step's numbers, for the progress line and metrics.
  double loss_ = NAN, gradNorm_ = NAN, lr_ = 0, tokensPerSecond_ = 0;
  double stepCpuSeconds_ = 0; // CPU time of the process (all threads)
  // Wall time of the step's entry-point calls (loss_and_grad: all its
  // micro-batches).
  double lossAndGradSeconds_ = 0, adamwSeconds_ = 0;
  std::optional<double> valLoss_;
  std::map<std::string, double> extra_;
  // Kept across steps, so that the gradients (as many bytes as the
  // parameters) are not allocated, zeroed and faulted in at every step:
  // loss_and_grad's outputs, and the mean over micro-batches (--accum > 1).
  std::vector<Tensor> lgOuts_;
  std::map<std::string, Tensor> gradMean_;
  std::chrono::steady_clock::time_point started_;
  int64_t stepsThisRun_ = 0;
  double secondsThisRun_ = 0;
  bool tty_ = ::isatty(STDERR_FILENO);
};

void Trainer::checkEntryPoints() {
  const Manifest &manifest = model_.manifest();
  lg_ = manifest.findEntry(kLossAndGrad);
  adam_ = manifest.findEntry(kAdamW);
  if (!lg_ || (!adam_ && !o_.evalOnly))
    throw Error(o_.modelDir + ": the model has no '" +
                std::string(!lg_ ? kLossAndGrad : kAdamW) +
                "' entry point (it has: " + manifest.entryNames() +
                "); compile a module that went through --mod-generate-grad "
                "and --mod-generate-adamw");
  auto findInput = [&](const EntryPoint &e, const std::string &name)
      -> const TensorSpec * {
    for (const TensorSpec &s : e.inputs)
      if (s.name == name)
        return &s;
    return nullptr;
  };
  const TensorSpec *tokens = findInput(*lg_, "tokens");
  if (!tokens || tokens->shape.size() != 2 || tokens->dtype != DType::I32)
    throw Error(o_.modelDir + ": '" + kLossAndGrad +
                "' needs an i32 [B,S] input named 'tokens'");
  batch_ = tokens->shape[0];
  seq_ = tokens->shape[1];
  for (const char *name : {"targets", "positions"}) {
    const TensorSpec *s = findInput(*lg_, name);
    if (!s || s->shape != tokens->shape || s->dtype != DType::I32) {
      if (std::string(name) == "positions" && !s)
        continue; // a model without positions (e.g. no position embedding)
      throw Error(o_.modelDir + ": '" + kLossAndGrad + "' needs an i32 [" +
                  std::to_string(batch_) + "," + std::to_string(seq_) +
                  "] input named '" + name + "'");
    }
  }
  bool hasLoss = false;
  for (const TensorSpec &out : lg_->outputs)
    hasLoss |= out.name == "loss" && out.shape.empty();
  if (!hasLoss)
    throw Error(o_.modelDir + ": '" + kLossAndGrad +
                "' has no scalar output named 'loss'");
  for (const TensorSpec &in : lg_->inputs) {
    if (!in.isParameter())
      continue;
    bool hasGrad = false;
    for (const TensorSpec &out : lg_->outputs)
      hasGrad |= out.name == "grad." + in.name && out.shape == in.shape;
    if (!hasGrad)
      throw Error(o_.modelDir + ": '" + kLossAndGrad +
                  "' has no output 'grad." + in.name + "' of shape " + in.str());
  }
  if (const TensorSpec *seed = findInput(*lg_, kRoutingSeed)) {
    if (!seed->shape.empty() || seed->dtype != DType::I64)
      throw Error(o_.modelDir + ": '" + kLossAndGrad + "' input '" +
                  kRoutingSeed + "' must be an i64 scalar, the manifest says " +
                  seed->str());
    hasRoutingSeed_ = true;
  }
  for (const TensorSpec &in : lg_->inputs)
    if (in.isParameter())
      paramNames_.insert(in.name);
  if (o_.evalOnly) {
    data_.requireTokens(Split::Validation, uint64_t(seq_) + 1);
    tokens_ = Tensor(DType::I32, {batch_, seq_});
    targets_ = Tensor(DType::I32, {batch_, seq_});
    positions_ = Tensor(DType::I32, {batch_, seq_});
    for (int64_t b = 0; b < batch_; ++b)
      for (int64_t s = 0; s < seq_; ++s)
        positions_.data<int32_t>()[b * seq_ + s] = int32_t(s);
    return;
  }
  for (const TensorSpec &in : adam_->inputs) {
    const std::string &n = in.name;
    bool known = paramNames_.count(n) || n.rfind("grad.", 0) == 0 ||
                 n.rfind("m.", 0) == 0 || n.rfind("v.", 0) == 0 || n == "lr" ||
                 n == "beta1" || n == "beta2" || n == "eps" ||
                 n == "weight_decay" || n == "step" || n == "max_norm";
    if (!known)
      throw Error(o_.modelDir + ": '" + kAdamW + "' input '" + n +
                  "' is not one mod-train knows how to supply");
  }
  for (const TensorSpec &out : adam_->outputs)
    if (out.aliasOf && adam_->inputs[*out.aliasOf].name != out.name)
      throw Error(o_.modelDir + ": '" + kAdamW + "' output '" + out.name +
                  "' aliases input '" + adam_->inputs[*out.aliasOf].name +
                  "'; mod-train expects an update to replace the input of "
                  "its own name");
  // Every gradient @adamw_step takes comes device-resident from
  // @loss_and_grad into a device-resident input, or none does.
  gradsResident_ = true;
  for (const TensorSpec &in : adam_->inputs)
    if (in.name.rfind("grad.", 0) == 0) {
      bool fromDevice = in.deviceResident;
      for (const TensorSpec &out : lg_->outputs)
        if (out.name == in.name)
          fromDevice &= out.deviceResident;
      gradsResident_ &= fromDevice;
    }
  data_.requireTokens(Split::Train, uint64_t(seq_) + 1);
  if (o_.evalEvery > 0)
    data_.requireTokens(Split::Validation, uint64_t(seq_) + 1);
  tokens_ = Tensor(DType::I32, {batch_, seq_});
  targets_ = Tensor(DType::I32, {batch_, seq_});
  positions_ = Tensor(DType::I32, {batch_, seq_});
  for (int64_t b = 0; b < batch_; ++b)
    for (int64_t s = 0; s < seq_; ++s)
      positions_.data<int32_t>()[b * seq_ + s] = int32_t(s);
  const std::string &lib = model_.manifest().library;
  artifactHash_ = hex64(fnv1a64(readFile(o_.modelDir + "/" + lib)));
}

void Trainer::initialize() {
  ParameterLoadReport report;
  params_ = loadParameters(*lg_, o_.weightsPath, o_.weightsPath.empty(),
                           o_.seed, &report);
  if (!o_.weightsPath.empty())
    printLoadReport("mod-train", lg_->name, o_.weightsPath, report, o_.seed, /*warnUnexpected=*/true);
  for (const auto &[name, p] : params_) {
    Tensor zeros(p.dtype(), p.shape());
    m_.emplace("m." + name, zeros);
    v_.emplace("v." + name, std::move(zeros));
  }
  startStep_ = 0;
}

void Trainer::resumeFrom(const std::string &checkpoint) {
  Json state = Json::parse(readFile(checkpoint + "/state.json"));
  const std::string where = checkpoint + "/state.json";
  const Json *format = state.find("format");
  if (!format || !format->isString() || format->asString() != kStateFormat)
    throw Error(where + ": not a mod-train checkpoint state");
  const Json *hash = state.find("artifact_hash");
  if (!hash || !hash->isString() || hash->asString() != artifactHash_)
    throw Error(checkpoint + ": was written for another model.so (hash " +
                (hash && hash->isString() ? hash->asString() : "missing") +
                ", this artifact " + artifactHash_ +
                "); resume with the artifact the run was started with");
  const Json *fp = state.find("data_fingerprint");
  std::string dataFp = hex64(data_.tokenizerFingerprint() ^
                             data_.size(Split::Train) ^
                             (data_.size(Split::Validation) << 1));
  if (!fp || !fp->isString() || fp->asString() != dataFp)
    throw Error(checkpoint + ": was written with other training data than " +
                o_.dataPath);
  const Json *step = state.find("step");
  if (!step || !step->isInteger() || step->asInt() < 0)
    throw Error(where + ": field 'step' must be a non-negative integer");
  startStep_ = step->asInt();
  params_ = loadParameters(*lg_, checkpoint + "/params.safetensors",
                           /*initMissing=*/false, 0);
  SafetensorsFile opt = readSafetensors(checkpoint + "/optimizer.safetensors");
  for (const auto &[name, p] : params_) {
    for (const char *prefix : {"m.", "v."}) {
      std::string key = prefix + name;
      auto it = opt.tensors.find(key);
      if (it == opt.tensors.end() || it->second.shape() != p.shape() ||
          it->second.dtype() != p.dtype())
        throw Error(checkpoint + "/optimizer.safetensors: tensor '" + key +
                    "' is missing or does not match parameter '" + name + "'");
      (prefix[0] == 'm' ? m_ : v_).emplace(key, it->second);
    }
  }
  rewriteMetricsUpTo(startStep_);
}

void Trainer::fillWindow(Split split, const std::vector<uint64_t> &starts) {
  std::vector<int32_t> window(size_t(seq_) + 1);
  for (int64_t b = 0; b < batch_; ++b) {
    data_.copy(split, starts[size_t(b)], uint64_t(seq_) + 1, window.data());
    std::copy(window.begin(), window.end() - 1,
              tokens_.data<int32_t>() + b * seq_);
    std::copy(window.begin() + 1, window.end(),
              targets_.data<int32_t>() + b * seq_);
  }
}

const std::vector<Tensor> &Trainer::callLossAndGrad(bool gradsOnDevice) {
  // callInPlace writes only inputs an output aliases: @loss_and_grad has
  // none, so the parameters, tokens, ... are only read.
  std::vector<Tensor *> inputs;
  for (const TensorSpec &in : lg_->inputs) {
    if (in.isParameter())
      inputs.push_back(hostOrDevice(in.name, params_.at(in.name)));
    else if (in.name == "tokens")
      inputs.push_back(&tokens_);
    else if (in.name == "targets")
      inputs.push_back(&targets_);
    else if (in.name == "positions")
      inputs.push_back(&positions_);
    else if (in.name == kRoutingSeed)
      inputs.push_back(&routingSeed_);
    else
      throw Error(o_.modelDir + ": '" + kLossAndGrad + "' input '" + in.name +
                  "' is not one mod-train knows how to supply");
  }
  if (gradsOnDevice)
    lgOuts_ = model_.callInPlace(kLossAndGrad, inputs, /*keepOnDevice=*/true);
  else
    model_.callInto(kLossAndGrad,
                    std::vector<const Tensor *>(inputs.begin(), inputs.end()),
                    lgOuts_);
  return lgOuts_;
}

double Trainer::evaluate(std::map<std::string, double> *scalars) {
  uint64_t n = data_.size(Split::Validation), w = uint64_t(seq_) + 1;
  int64_t windows = o_.evalBatches * batch_;
  uint64_t stride = windows > 1 ? (n - w) / uint64_t(windows - 1) : 0;
  double total = 0;
  size_t lossIndex = 0;
  for (size_t i = 0; i < lg_->outputs.size(); ++i)
    if (lg_->outputs[i].name == "loss")
      lossIndex = i;
  for (int64_t e = 0; e < o_.evalBatches; ++e) {
    std::vector<uint64_t> starts;
    for (int64_t b = 0; b < batch_; ++b)
      starts.push_back(uint64_t(e * batch_ + b) * stride);
    fillWindow(Split::Validation, starts);
    *routingSeed_.data<int64_t>() =
        int64_t(routingSeed(o_.seed, -1 - e, 0)); // fixed draws
    const std::vector<Tensor> &outs = callLossAndGrad(/*gradsOnDevice=*/true);
    total += outs[lossIndex].elementAsDouble(0);
    if (scalars)
      for (size_t i = 0; i < outs.size(); ++i)
        if (lg_->outputs[i].shape.empty() &&
            lg_->outputs[i].name.rfind("grad.", 0) != 0)
          (*scalars)[lg_->outputs[i].name] +=
              outs[i].elementAsDouble(0) / double(o_.evalBatches);
  }
  return total / double(o_.evalBatches);
}

void Trainer::step(int64_t step) {
  // The step's gradient of each parameter: loss_and_grad's output itself
  // for one micro-batch, else the mean in gradMean_.
  std::map<std::string, Tensor *> grads;
  extra_.clear();
  double lossSum = 0;
  const bool gradsOnDevice = gradsResident_ && o_.accum == 1;
  lossAndGradSeconds_ = 0;
  for (int64_t micro = 0; micro < o_.accum; ++micro) {
    std::vector<uint64_t> starts;
    for (int64_t b = 0; b < batch_; ++b)
      starts.push_back(windowStart(o_.seed, step, micro, b,
                                   data_.size(Split::Train),
                                   uint64_t(seq_) + 1));
    fillWindow(Split::Train, starts);
    *routingSeed_.data<int64_t>() = int64_t(routingSeed(o_.seed, step, micro));
    auto lgStart = std::chrono::steady_clock::now();
    const std::vector<Tensor> &outs = callLossAndGrad(gradsOnDevice);
    lossAndGradSeconds_ += std::chrono::duration<double>(
                               std::chrono::steady_clock::now() - lgStart)
                               .count();
    for (size_t i = 0; i < outs.size(); ++i) {
      const TensorSpec &spec = lg_->outputs[i];
      if (spec.name == "loss") {
        double l = outs[i].elementAsDouble(0);
        if (!std::isfinite(l))
          throw Error("step " + std::to_string(step + 1) + ": the loss is " +
                      (std::isnan(l) ? "NaN" : "infinite") +
                      "; stopping (the last checkpoint is kept)");
        lossSum += l;
      } else if (spec.name.rfind("grad.", 0) == 0) {
        if (gradsOnDevice)
          continue; // in the device buffer @adamw_step reads
        if (o_.accum == 1) {
          grads[spec.name] = &lgOuts_[i];
          continue;
        }
        auto it = gradMean_.find(spec.name);
        if (it == gradMean_.end())
          it = gradMean_
                   .emplace(spec.name, Tensor(outs[i].dtype(), outs[i].shape()))
                   .first;
        accumulate(it->second, outs[i], 1.0 / double(o_.accum), micro == 0);
        grads[spec.name] = &it->second;
      } else if (spec.shape.empty()) {
        extra_[spec.name] += outs[i].elementAsDouble(0) / double(o_.accum);
      }
    }
  }
  loss_ = lossSum / double(o_.accum);
  lr_ = learningRate(o_, step);

  // Reserved up front: `inputs` points into `scalars`.
  std::vector<Tensor> scalars;
  scalars.reserve(adam_->inputs.size());
  std::vector<Tensor *> inputs;
  for (const TensorSpec &in : adam_->inputs) {
    const std::string &n = in.name;
    if (paramNames_.count(n))
      inputs.push_back(hostOrDevice(n, params_.at(n)));
    else if (n.rfind("grad.", 0) == 0)
      // A host sum goes to a device-resident input through a temporary
      // device buffer (Model::callInPlace).
      inputs.push_back(gradsOnDevice ? nullptr : grads.at(n));
    else if (n.rfind("m.", 0) == 0)
      inputs.push_back(hostOrDevice(n, m_.at(n)));
    else if (n.rfind("v.", 0) == 0)
      inputs.push_back(hostOrDevice(n, v_.at(n)));
    else {
      double value = n == "lr"             ? lr_
                     : n == "beta1"        ? o_.beta1
                     : n == "beta2"        ? o_.beta2
                     : n == "eps"          ? o_.eps
                     : n == "weight_decay" ? o_.weightDecay
                     : n == "step"         ? double(step + 1)
                                           : o_.clip; // max_norm
      scalars.push_back(scalarTensor(in, value));
      inputs.push_back(&scalars.back());
    }
  }
  // Parameters, m and v are updated in place (the outputs that alias them);
  // the rest (grad_norm) comes back.
  auto adamwStart = std::chrono::steady_clock::now();
  std::vector<Tensor> outs = model_.callInPlace(kAdamW, inputs);
  adamwSeconds_ = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - adamwStart)
                      .count();
  gradNorm_ = NAN;
  size_t next = 0;
  for (const TensorSpec &spec : adam_->outputs) {
    if (spec.aliasOf)
      continue;
    Tensor &out = outs[next++];
    const std::string &n = spec.name;
    if (n == "grad_norm") {
      gradNorm_ = out.elementAsDouble(0);
      if (!std::isfinite(gradNorm_))
        throw Error("step " + std::to_string(step + 1) +
                    ": the gradient norm is " +
                    (std::isnan(gradNorm_) ? "NaN" : "infinite") +
                    "; stopping (the last checkpoint is kept)");
    } else if (auto it = params_.find(n); it != params_.end()) {
      // An artifact that returns the update instead of aliasing.
      it->second = std::move(out);
    } else if (auto it = m_.find(n); it != m_.end()) {
      it->second = std::move(out);
    } else if (auto it = v_.find(n); it != v_.end()) {
      it->second = std::move(out);
    }
  }
}

void Trainer::uploadResident() {
  for (auto *tensors : {&params_, &m_, &v_})
    for (const auto &[name, tensor] : *tensors)
      if (model_.isDeviceResident(name))
        model_.upload(name, tensor);
}

void Trainer::downloadResident() {
  for (auto *tensors : {&params_, &m_, &v_})
    for (auto &[name, tensor] : *tensors)
      if (model_.hasDeviceBuffer(name))
        tensor = model_.download(name);
}

void Trainer::saveCheckpoint(int64_t step) {
  downloadResident();
  fs::path dir = fs::path(o_.runDir) / "checkpoints";
  fs::create_directories(dir);
  fs::path final = dir / checkpointName(step);
  fs::path tmp = dir / (".tmp-" + checkpointName(step) + "-" +
                        std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    saveParameters((tmp / "params.safetensors").string(), params_);
    std::map<std::string, Tensor> opt(m_.begin(), m_.end());
    opt.insert(v_.begin(), v_.end());
    writeSafetensors((tmp / "optimizer.safetensors").string(), opt,
                     {{"modc.step", std::to_string(step)}});
    Json::Object state{
        {"format", kStateFormat},
        {"version", 1},
        {"step", step},
        {"artifact_hash", artifactHash_},
        {"data_fingerprint",
         hex64(data_.tokenizerFingerprint() ^ data_.size(Split::Train) ^
               (data_.size(Split::Validation) << 1))},
        {"data_position",
         Json::Object{{"next_step", step}, {"seed", Json(o_.seed)}}},
        {"options", o_.toJson()}};
    writeFileAtomically((tmp / "state.json").string(),
                        Json(std::move(state)).dump(2) + "\n");
    fs::remove_all(final);
    fs::rename(tmp, final);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  pruneCheckpoints();
}

void Trainer::pruneCheckpoints() {
  fs::path dir = fs::path(o_.runDir) / "checkpoints";
  std::vector<fs::path> found;
  for (const auto &entry : fs::directory_iterator(dir))
    if (entry.is_directory() &&
        entry.path().filename().string().rfind("step-", 0) == 0)
      found.push_back(entry.path());
  std::sort(found.begin(), found.end());
  while (int64_t(found.size()) > o_.keepCheckpoints) {
    fs::remove_all(found.front());
    found.erase(found.begin());
  }
}

void Trainer::rewriteMetricsUpTo(int64_t step) {
  std::string path = o_.runDir + "/metrics.jsonl";
  std::ifstream in(path);
  if (!in)
    return;
  std::string kept, line;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    Json row = Json::parse(line);
    const Json *s = row.find("step");
    if (s && s->isInteger() && s->asInt() <= step)
      kept += line + "\n";
  }
  writeFileAtomically(path, kept);
}

void Trainer::log(int64_t step, double stepSeconds, bool force) {
  Json::Object row{{"step", step}, {"loss", loss_}, {"lr", lr_},
                   {"tokens_per_s", tokensPerSecond_}};
  if (std::isfinite(gradNorm_))
    row.emplace("grad_norm", gradNorm_);
  if (valLoss_)
    row.emplace("val_loss", *valLoss_);
  for (const auto &[name, value] : extra_)
    if (std::isfinite(value))
      row.emplace(name, value);
  row.emplace("step_seconds", stepSeconds);
  row.emplace("step_cpu_seconds", stepCpuSeconds_);
  row.emplace("loss_and_grad_seconds", lossAndGradSeconds_);
  row.emplace("adamw_seconds", adamwSeconds_);
  {
    std::ofstream out(o_.runDir + "/metrics.jsonl", std::ios::app);
    out << Json(std::move(row)).dump() << "\n";
    if (!out)
      throw Error(o_.runDir + "/metrics.jsonl: write failed");
  }
  char line[256];
  double eta = double(o_.steps - step) * (secondsThisRun_ / double(stepsThisRun_));
  char val[32] = "";
  if (valLoss_)
    std::snprintf(val, sizeof val, " | val %.4f", *valLoss_);
  std::snprintf(line, sizeof line,
                "step %lld/%lld | loss %.4f%s | lr %.2e | gnorm %.3f | %.0f tok/s | ETA %s",
                static_cast<long long>(step), static_cast<long long>(o_.steps),
                loss_, val, lr_, gradNorm_, tokensPerSecond_,
                formatDuration(eta).c_str());
  if (tty_) {
    std::fprintf(stderr, "\r%-110s", line);
    if (force)
      std::fputc('\n', stderr);
  } else if (force || step % o_.logEvery == 0) {
    std::fprintf(stderr, "%s\n", line);
  }
  std::fflush(stderr);
}

int Trainer::evalOnly() {
  initialize();
  uploadResident();
  std::map<std::string, double> scalars;
  double loss = evaluate(&scalars);
  Json::Object row{{"val_loss", loss},
                   {"eval_batches", o_.evalBatches},
                   {"eval_tokens", o_.evalBatches * batch_ * seq_}};
  for (const auto &[name, value] : scalars)
    if (name != "loss" && std::isfinite(value))
      row.emplace(name, value);
  std::cout << Json(std::move(row)).dump() << std::endl;
  return 0;
}

int Trainer::run() {
  checkEntryPoints();
  if (o_.evalOnly)
    return evalOnly();
  fs::create_directories(o_.runDir);
  std::string checkpoint = latestCheckpoint(o_.runDir);
  if (o_.resume) {
    if (checkpoint.empty())
      throw Error(o_.runDir + ": no checkpoint to resume from");
    resumeFrom(checkpoint);
    std::fprintf(stderr, "mod-train: resuming %s at step %lld\n",
                 checkpoint.c_str(), static_cast<long long>(startStep_));
  } else {
    if (!checkpoint.empty())
      throw Error(o_.runDir + " already holds checkpoints; use --resume " +
                  o_.runDir + " to continue that run, or another --out");
    initialize();
    std::remove((o_.runDir + "/metrics.jsonl").c_str());
  }
  uploadResident();
  int64_t paramCount = 0;
  for (const auto &[name, p] : params_)
    paramCount += p.numElements();
  std::fprintf(stderr,
               "mod-train: %lld parameters, batch %lld x %lld tokens, %lld "
               "step(s) x %lld micro-batch(es); data %s (%llu training "
               "tokens)\n",
               static_cast<long long>(paramCount),
               static_cast<long long>(batch_), static_cast<long long>(seq_),
               static_cast<long long>(o_.steps),
               static_cast<long long>(o_.accum), o_.dataPath.c_str(),
               static_cast<unsigned long long>(data_.size(Split::Train)));
  if (model_.manifest().gemmPrecision != "f32")
    std::fprintf(stderr, "mod-train: GEMM precision %s\n",
                 model_.manifest().gemmPrecisionDescription().c_str());

  for (int64_t s = startStep_; s < o_.steps; ++s) {
    auto t0 = std::chrono::steady_clock::now();
    double cpu0 = processCpuSeconds();
    step(s);
    stepCpuSeconds_ = processCpuSeconds() - cpu0;
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    ++stepsThisRun_;
    secondsThisRun_ += seconds;
    tokensPerSecond_ = double(batch_ * seq_ * o_.accum) / seconds;
    int64_t done = s + 1;
    valLoss_.reset();
    bool last = done == o_.steps;
    if (o_.evalEvery > 0 && (done % o_.evalEvery == 0 || last))
      valLoss_ = evaluate();
    log(done, seconds, last);
    int sig = gStopSignal.load();
    if ((o_.ckptEvery > 0 && done % o_.ckptEvery == 0) || last || sig)
      saveCheckpoint(done);
    if (sig) {
      std::fprintf(stderr, "%smod-train: stopped by signal %d after step %lld; "
                           "checkpoint saved, resume with --resume %s\n",
                   tty_ ? "\n" : "", sig, static_cast<long long>(done),
                   o_.runDir.c_str());
      return 128 + sig;
    }
  }
  if (startStep_ >= o_.steps)
    std::fprintf(stderr, "mod-train: the run already completed %lld steps\n",
                 static_cast<long long>(startStep_));
  return 0;
}
} // namespace

Json TrainOptions::toJson() const {
  return Json::Object{{"model", modelDir},
                      {"data", dataPath},
                      {"weights", weightsPath},
                      {"seed", Json(seed)},
                      {"steps", steps},
                      {"accum", accum},
                      {"lr", lr},
                      {"min_lr", minLr},
                      {"warmup", warmup},
                      {"weight_decay", weightDecay},
                      {"clip", clip},
                      {"beta1", beta1},
                      {"beta2", beta2},
                      {"eps", eps},
                      {"eval_every", evalEvery},
                      {"eval_batches", evalBatches},
                      {"ckpt_every", ckptEvery},
                      {"keep_checkpoints", keepCheckpoints},
                      {"log_every", logEvery}};
}

TrainOptions TrainOptions::fromJson(const Json &json, const std::string &source) {
  TrainOptions o;
  auto number = [&](const char *key) -> const Json & {
    const Json *v = json.find(key);
    if (!v || !v->isNumber())
      throw Error(source + ": option '" + key + "' is missing or not a number");
    return *v;
  };
  auto text = [&](const char *key) -> std::string {
    const Json *v = json.find(key);
    if (!v || !v->isString())
      throw Error(source + ": option '" + key + "' is missing or not a string");
    return v->asString();
  };
  o.modelDir = text("model");
  o.dataPath = text("data");
  o.weightsPath = text("weights");
  o.seed = number("seed").asUint64(); // any uint64, exactly
  o.steps = number("steps").asInt();
  o.accum = number("accum").asInt();
  o.lr = number("lr").asDouble();
  o.minLr = number("min_lr").asDouble();
  o.warmup = number("warmup").asInt();
  o.weightDecay = number("weight_decay").asDouble();
  o.clip = number("clip").asDouble();
  o.beta1 = number("beta1").asDouble();
  o.beta2 = number("beta2").asDouble();
  o.eps = number("eps").asDouble();
  o.evalEvery = number("eval_every").asInt();
  o.evalBatches = number("eval_batches").asInt();
  o.ckptEvery = number("ckpt_every").asInt();
  o.keepCheckpoints = number("keep_checkpoints").asInt();
  o.logEvery = number("log_every").asInt();
  return o;
}

double learningRate(const TrainOptions &o, int64_t step) {
  if (o.warmup > 0 && step < o.warmup)
    return o.lr * double(step + 1) / double(o.warmup);
  int64_t decaySteps = std::max<int64_t>(1, o.steps - o.warmup);
  double progress =
      std::min(1.0, double(step - o.warmup) / double(decaySteps));
  return o.minLr + 0.5 * (o.lr - o.minLr) * (1.0 + std::cos(kPi * progress));
}

uint64_t windowStart(uint64_t seed, int64_t step, int64_t micro, int64_t row,
                     uint64_t splitTokens, uint64_t windowTokens) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ uint64_t(step));
  h = splitmix64(h ^ uint64_t(micro));
  h = splitmix64(h ^ uint64_t(row));
  uint64_t range = splitTokens - windowTokens + 1;
  // Lemire's multiply-shift: uniform enough for window starts, no modulo bias
  // worth worrying about at these ranges.
  return uint64_t((static_cast<unsigned __int128>(h) * range) >> 64);
}

uint64_t routingSeed(uint64_t seed, int64_t step, int64_t micro) {
  uint64_t h = splitmix64(seed ^ 0x726f7574696e67ull); // "routing"
  h = splitmix64(h ^ uint64_t(step));
  return splitmix64(h ^ uint64_t(micro));
}

std::string latestCheckpoint(const std::string &runDir) {
  fs::path dir = fs::path(runDir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return "";
  std::vector<fs::path> found;
  for (const auto &entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step-", 0) == 0 &&
        fs::exists(entry.path() / "state.json"))
      found.push_back(entry.path());
  }
  if (found.empty())
    return "";
  std::sort(found.begin(), found.end());
  return found.back().string();
}

int train(TrainOptions options) {
  if (options.resume) {
    // The run's options come from its newest checkpoint, except how long it
    // runs and how it reports.
    std::string checkpoint = latestCheckpoint(options.runDir);
    if (checkpoint.empty())
      throw Error(options.runDir + ": no checkpoint to resume from");
    Json state = Json::parse(readFile(checkpoint + "/state.json"));
    const Json *saved = state.find("options");
    if (!saved)
      throw Error(checkpoint + "/state.json: no 'options'");
    TrainOptions restored =
        TrainOptions::fromJson(*saved, checkpoint + "/state.json");
    restored.runDir = options.runDir;
    restored.resume = true;
    if (!options.modelDir.empty())
      restored.modelDir = options.modelDir;
    if (!options.dataPath.empty())
      restored.dataPath = options.dataPath;
    restored.steps = options.steps > 0 ? options.steps : restored.steps;
    options = restored;
  }
  Trainer trainer(std::move(options));
  return trainer.run();
}

} // namespace modrt
