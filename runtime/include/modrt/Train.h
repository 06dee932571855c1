//===- Train.h - Training loop over a compiled model's train entry points -*- C++ -*-===//
//
// mod-train drives two entry points that the compiler generates
// (`--mod-generate-grad`, `--mod-generate-adamw`):
//
//   loss_and_grad(params..., tokens [B,S] i32, positions [B,S] i32,
//                 targets [B,S] i32) -> (loss, <scalar metrics>..., grad.<p>...)
//   adamw_step(params..., grad.<p>..., m.<p>..., v.<p>..., lr, beta1, beta2,
//              eps, weight_decay, max_norm, step) -> (<p>..., m.<p>...,
//              v.<p>..., grad_norm)
//
// Tensors are matched by their manifest names, not by position. adamw_step's
// <p>, m.<p> and v.<p> outputs alias ("alias_of") the inputs of the same
// name: Model::callInPlace updates the parameters and optimizer state in
// their own buffers. A non-finite grad_norm stops the run. Every scalar
// output of loss_and_grad other than the gradients (aux losses, causal-routing
// agreement per block, ...) is recorded in metrics.jsonl under its name,
// next to step_seconds (wall), step_cpu_seconds (the process's CPU time
// for the step, all threads: a cost measure that other load on the machine
// hardly changes), and loss_and_grad_seconds / adamw_seconds (the wall time
// of the two entry-point calls in the step; loss_and_grad summed over the
// micro-batches).
//
// Data: windows of S+1 tokens from a token file (modrt/TokenFile.h). Window
// (step, micro-batch, row) starts at a position drawn from a counter-based
// hash of (seed, step, micro, row), so the data a step sees depends only on
// the seed and the step: a resumed run needs no generator state beyond the
// step. Validation uses fixed, evenly spaced windows of the validation split.
//
// Stochastic routing (--mod-dense-to-mod=routing=stochastic): a model whose
// loss_and_grad has an i64 scalar input `routing_seed` gets a new value for
// every micro-batch of every step, routingSeed(seed, step, micro), so each
// step routes a new random set of tokens; validation batch e always gets
// routingSeed(seed, -1-e, 0), so validation losses are comparable over time.
//
// Learning rate: linear warmup from 0 over `warmup` steps, then cosine decay
// to `minLr` at `steps`.
//
// Checkpoints: RUN/checkpoints/step-NNNNNNNN/{params.safetensors,
// optimizer.safetensors, state.json}, written into a temporary directory and
// renamed into place; the last `keepCheckpoints` are kept.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_TRAIN_H
#define MODRT_TRAIN_H

#include "modrt/Json.h"
#include "modrt/Tensor.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace modrt {

struct TrainOptions {
  std::string modelDir;
  std::string dataPath;
  std::string runDir;
  std::string weightsPath; // initial parameters (safetensors); empty: seeded init
  uint64_t seed = 0;
  int64_t steps = 1000;
  int64_t accum = 1;
  double lr = 1e-3, minLr = 1e-4;
  int64_t warmup = 100;
  double weightDecay = 0.1, clip = 1.0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  int64_t evalEvery = 100, evalBatches = 4;
  int64_t ckptEvery = 200, keepCheckpoints = 3;
  int64_t logEvery = 10;
  bool resume = false;
  /// Only evaluate the validation loss of the initial parameters (no
  /// training, no run directory; needs only @loss_and_grad).
  bool evalOnly = false;

  Json toJson() const;
  /// Restores the options a checkpoint was written with.
  static TrainOptions fromJson(const Json &json, const std::string &source);
};

/// Linear warmup then cosine decay (see the file comment). `step` counts from 0.
double learningRate(const TrainOptions &options, int64_t step);

/// The start of window (step, micro, row) in a split of `splitTokens` tokens,
/// for windows of `windowTokens`; uniform in [0, splitTokens - windowTokens].
uint64_t windowStart(uint64_t seed, int64_t step, int64_t micro, int64_t row,
                     uint64_t splitTokens, uint64_t windowTokens);

/// The `routing_seed` input (models with stochastic routing) of micro-batch
/// `micro` of training step `step` (from 0); validation batch e uses
/// step -1-e, micro 0, the same in every evaluation.
uint64_t routingSeed(uint64_t seed, int64_t step, int64_t micro);

/// The newest complete checkpoint directory under `runDir`, or "" if none.
std::string latestCheckpoint(const std::string &runDir);

/// Set by SIGINT/SIGTERM handlers: the loop finishes the current step,
/// checkpoints and returns.
extern std::atomic<int> gStopSignal;

/// Runs (or resumes) training. Returns the process exit status: 0 when all
/// steps ran, 128+signal after a signal-triggered stop. Throws Error on any
/// failure (non-finite loss, bad checkpoint, I/O), leaving the last good
/// checkpoint in place.
int train(TrainOptions options);

} // namespace modrt

#endif // MODRT_TRAIN_H
