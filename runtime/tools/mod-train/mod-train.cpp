//===- mod-train.cpp - Train a compiled modc model on a token file --------===//
//
// mod-train MODEL_DIR --data=TOKENS --out=RUN_DIR [options]
// mod-train --resume RUN_DIR [--steps=N]
//
// See modrt/Train.h for what the loop does and the checkpoint layout.
//
//===----------------------------------------------------------------------===//

#include "modrt/Error.h"
#include "modrt/Train.h"

#include <charconv>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

using namespace modrt;

namespace {

const char kUsage[] =
    R"(usage: mod-train MODEL_DIR --data=TOKENS --out=RUN_DIR [options]
       mod-train --resume RUN_DIR [--steps=N]
       mod-train MODEL_DIR --data=TOKENS --eval-only [--weights=FILE]

Trains a model compiled by mod-compile from a module with the generated
training entry points (mod-opt --mod-generate-grad --mod-generate-adamw):
each step runs @loss_and_grad on --accum micro-batches of random windows of
S+1 tokens from TOKENS (a mod-tokenize file), averages the gradients, and
runs @adamw_step. Progress goes to the terminal (one live line) or to the log
(a line every --log-every steps); every step's numbers go to
RUN_DIR/metrics.jsonl (plot them with scripts/plot-metrics). SIGINT/SIGTERM
finish the current step, write a checkpoint and exit non-zero.

A model converted with --mod-dense-to-mod=routing=stochastic has an i64
input 'routing_seed': mod-train passes a new value for every micro-batch of
every step (a hash of --seed, the step and the micro-batch), so each step
routes a new random set of tokens, and the same fixed values for the
validation batches of every evaluation.

A model compiled with --target=cuda keeps its parameters and the AdamW
moments on the GPU (uploaded once, updated in place by @adamw_step,
downloaded for checkpoints) and, with --accum=1, the gradients too: only
the loss, the other scalars and the gradient norm come back each step (the
NaN/inf check uses the gradient norm). With --accum > 1 each micro-batch's
gradients are copied to the host and summed there.

Options:
  --data=FILE          Token file written by mod-tokenize.
  --out=DIR            Run directory: metrics.jsonl and checkpoints/.
  --weights=PATH       Initial parameters (safetensors, e.g. a Hugging Face
                       checkpoint of the same config: a file, a shard index
                       model.safetensors.index.json, or a directory holding
                       model.safetensors or the index; names matched as
                       mod-run --weights does); every parameter must be
                       there. Default: initialized from --seed with the
                       manifest's init rules.
  --seed=N             Parameter init and data order (default 0).
  --steps=N            Optimizer steps (default 1000).
  --accum=N            Micro-batches per step (gradient accumulation, default 1).
  --lr=X               Peak learning rate (default 1e-3).
  --min-lr=X           Final learning rate of the cosine decay (default 1e-4).
  --warmup=N           Linear warmup steps (default 100).
  --wd=X               AdamW weight decay (default 0.1; the compiler decides
                       which parameters decay).
  --clip=X             Global gradient-norm clipping, 0 for none (default 1.0).
  --beta1=X --beta2=X  AdamW betas (default 0.9, 0.95).
  --eps=X              AdamW epsilon (default 1e-8).
  --eval-every=N       Validation loss every N steps and at the end, 0 for
                       never (default 100).
  --eval-batches=N     Validation batches (fixed windows; default 4).
  --ckpt-every=N       Checkpoint every N steps (default 200) and at the end.
  --keep-checkpoints=N Checkpoints kept (default 3).
  --log-every=N        Log line every N steps when not on a terminal
                       (default 10).
  --resume DIR         Continue the run in DIR from its newest checkpoint,
                       with the options it was started with; --steps may
                       extend it.
  --eval-only          Only compute the validation loss of --weights (or of
                       the --seed initialization) on the --eval-batches
                       fixed validation windows and print one JSON line on
                       stdout: val_loss and every other scalar output of
                       @loss_and_grad (e.g. agreement.<block>) averaged over
                       the batches. Needs only @loss_and_grad; no --out.
  --help               Show this help.
)";

[[noreturn]] void usageError(const std::string &message) {
  throw Error(message + " (see mod-train --help)");
}

int64_t parseInt(const std::string &option, const std::string &text, int64_t min,
                 int64_t max) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() ||
      value < min || value > max)
    usageError("invalid value '" + text + "' for " + option +
               ": expected an integer from " + std::to_string(min) + " to " +
               std::to_string(max));
  return value;
}

double parseReal(const std::string &option, const std::string &text, double min,
                 double max) {
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end || !(value >= min && value <= max))
    usageError("invalid value '" + text + "' for " + option +
               ": expected a number from " + std::to_string(min) + " to " +
               std::to_string(max));
  return value;
}

std::optional<TrainOptions> parseOptions(int argc, char **argv) {
  TrainOptions o;
  bool stepsGiven = false;
  constexpr int64_t kMax = int64_t(1) << 40;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h")
      return std::nullopt;
    if (arg == "--resume") {
      if (i + 1 >= argc)
        usageError("--resume needs a run directory");
      o.resume = true;
      o.runDir = argv[++i];
      continue;
    }
    if (arg == "--eval-only") {
      o.evalOnly = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      if (!o.modelDir.empty())
        usageError("unexpected argument '" + arg +
                   "': only one model directory may be given");
      o.modelDir = arg;
      continue;
    }
    size_t eq = arg.find('=');
    if (eq == std::string::npos)
      usageError("option '" + arg + "' needs a value (" + arg + "=...)");
    std::string key = arg.substr(0, eq), v = arg.substr(eq + 1);
    if (key == "--data") o.dataPath = v;
    else if (key == "--out") o.runDir = v;
    else if (key == "--weights") o.weightsPath = v;
    else if (key == "--seed") o.seed = uint64_t(parseInt(key, v, 0, INT64_MAX));
    else if (key == "--steps") { o.steps = parseInt(key, v, 1, kMax); stepsGiven = true; }
    else if (key == "--accum") o.accum = parseInt(key, v, 1, 1 << 20);
    else if (key == "--lr") o.lr = parseReal(key, v, 0, 10);
    else if (key == "--min-lr") o.minLr = parseReal(key, v, 0, 10);
    else if (key == "--warmup") o.warmup = parseInt(key, v, 0, kMax);
    else if (key == "--wd") o.weightDecay = parseReal(key, v, 0, 10);
    else if (key == "--clip") o.clip = parseReal(key, v, 0, 1e30);
    else if (key == "--beta1") o.beta1 = parseReal(key, v, 0, 0.999999);
    else if (key == "--beta2") o.beta2 = parseReal(key, v, 0, 0.999999999);
    else if (key == "--eps") o.eps = parseReal(key, v, 0, 1);
    else if (key == "--eval-every") o.evalEvery = parseInt(key, v, 0, kMax);
    else if (key == "--eval-batches") o.evalBatches = parseInt(key, v, 1, 1 << 20);
    else if (key == "--ckpt-every") o.ckptEvery = parseInt(key, v, 0, kMax);
    else if (key == "--keep-checkpoints") o.keepCheckpoints = parseInt(key, v, 1, 1 << 20);
    else if (key == "--log-every") o.logEvery = parseInt(key, v, 1, kMax);
    else usageError("unknown option '" + key + "'");
  }
  if (o.resume && o.evalOnly)
    usageError("--eval-only and --resume cannot be combined");
  if (o.resume) {
    if (!stepsGiven)
      o.steps = 0; // keep the run's own
    return o;
  }
  if (o.modelDir.empty())
    usageError("no model directory given");
  if (o.dataPath.empty())
    usageError("no token file given: --data=TOKENS (make one with mod-tokenize)");
  if (o.runDir.empty() && !o.evalOnly)
    usageError("no run directory given: --out=DIR");
  if (o.minLr > o.lr)
    usageError("--min-lr must not exceed --lr");
  return o;
}

void onSignal(int sig) { gStopSignal.store(sig); }

} // namespace

int main(int argc, char **argv) {
  try {
    std::optional<TrainOptions> options = parseOptions(argc, argv);
    if (!options) {
      std::cout << kUsage;
      return 0;
    }
    struct sigaction action = {};
    action.sa_handler = onSignal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    return train(*options);
  } catch (const std::bad_alloc &) {
    std::cerr << "\nmod-train: error: out of memory\n";
  } catch (const std::exception &e) {
    std::cerr << "\nmod-train: error: " << e.what() << '\n';
  }
  return 1;
}
