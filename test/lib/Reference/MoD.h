//===- MoD.h - Reference Mixture-of-Depths routing --------------*- C++ -*-===//
//
// The routed block of ARCHITECTURE.md section 2, written out step by step
// for one sequence: router logits, top-K with ties to the lower index and
// ascending indices, gather, the block's contribution on the gathered tokens
// alone (causal by their positions), gate and scatter-add.
//
//===----------------------------------------------------------------------===//

#ifndef MODREF_MOD_H
#define MODREF_MOD_H

#include "Transformer.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace modref {

enum class Gate { Linear, Sigmoid };

/// Which blocks are routed and how: parsed from `--mod=SPEC`, a comma list of
/// key=value pairs with the meaning of --mod-dense-to-mod's options:
///   capacity=0.125          fraction of S (has a '.'): K = round(C·S), half
///                           away from zero, clamped to [1,S]
///   capacity=3              absolute K, which must lie in [1,S]
///   schedule=every-other    blocks 1, 3, 5, ... (the default)
///   schedule=every:N        blocks 1, 1+N, 1+2N, ...
///   schedule=every:N:offset:M  blocks M, M+N, M+2N, ...
///   schedule=list:1,3       exactly these blocks
///   gate=linear|sigmoid     g(r) = r (the paper, the default) or sigmoid(r)
///   routing=topk|threshold|predictor|stochastic  the K largest logits of
///                           the sequence (the default), every token whose
///                           logit is > 0, the causal rule of sampling
///                           (capacity unused), every token whose predictor
///                           MLP logit is > 0 (the causal rule of a
///                           predictor-trained model, capacity unused, the
///                           router logit still gates), or K tokens chosen at
///                           random from the routing_seed input with no
///                           router and scale 1 (stochasticScores below)
struct ModSpec {
  enum class Schedule { EveryOther, Every, List };
  enum class Routing { TopK, Threshold, Predictor, Stochastic };
  /// Threshold or Predictor: a causal decision per token.
  bool isCausal() const {
    return routing == Routing::Threshold || routing == Routing::Predictor;
  }

  bool capacityIsFraction = true;
  double fraction = 0.125;
  int64_t absolute = 0;
  Schedule schedule = Schedule::EveryOther;
  int64_t every = 2;
  int64_t offset = 1;
  std::vector<int64_t> blocks;
  Gate gate = Gate::Linear;
  Routing routing = Routing::TopK;

  /// Errors quote the offending part of `text`.
  static ModSpec parse(const std::string &text);
  /// K for sequences of `seqLen` tokens.
  int64_t capacity(int64_t seqLen) const;
  bool isRouted(int64_t layer) const;
  /// Rejects list entries that are not blocks of a `numLayers`-block model.
  void checkBlocks(int64_t numLayers) const;
};

/// `<block prefix>.mod.router.weight`, shape [D].
std::string routerWeightName(const ModelConfig &config, int64_t layer);

/// r[i] = w · x[i] for every row of `x`.
std::vector<double> routerLogits(const Activations &x, const float *routerWeight);
/// The indices of the `k` largest scores, ties to the lower index, sorted
/// ascending.
std::vector<int32_t> topKAscending(const std::vector<double> &scores, int64_t k);
/// The causal-routing predictor of a routed block (ARCHITECTURE.md section
/// 2), parameters `<block prefix>.mod.predictor.*` as training names them:
/// q(x) = tanh(x W1 + b1) . w2 + b2, W1 [D,H], b1 [H], w2 [H], b2 a scalar.
struct Predictor {
  int64_t width = 0, hidden = 0;
  const float *w1 = nullptr, *b1 = nullptr, *w2 = nullptr, *b2 = nullptr;

  /// Reads the parameters of block `layer` (H from fc1.weight's shape);
  /// errors name the missing or misshapen tensor.
  static Predictor load(const Parameters &params, const ModelConfig &config,
                        int64_t layer);
  /// q for every row of `x`.
  std::vector<double> logits(const Activations &x) const;
};

/// The indices of the scores > 0, ascending: threshold routing's set.
std::vector<int32_t> positiveAscending(const std::vector<double> &scores);
double applyGate(Gate gate, double r);
/// Stochastic routing's scores of block `block` for row `row` of S tokens:
/// score[s] = (h >> 40) * 2^-24 with h = splitmix64(splitmix64(seed) ^
/// (block * 2^32 + row * S + s)), as --mod-dense-to-mod=routing=stochastic
/// documents; its routed set is topKAscending of these.
std::vector<double> stochasticScores(uint64_t seed, int64_t block, int64_t row,
                                     int64_t seqLen);

/// f(xk, pk): the block's residual contribution on the gathered tokens.
using BlockFunction = std::function<Activations(
    const Activations &gathered, const std::vector<int32_t> &gatheredPositions)>;

struct RoutedOutput {
  Activations out;
  std::vector<int32_t> indices; // I, ascending
};

/// One routed block on one sequence: out = x; out[I[j]] += g(r[I[j]])·f[j].
RoutedOutput routeBlock(const Activations &x, const std::vector<int32_t> &positions,
                        const float *routerWeight, int64_t k, Gate gate,
                        const BlockFunction &block);
/// The same with threshold routing: I = {i : r[i] > 0}, which may be empty
/// (then out = x) or every token.
RoutedOutput routeBlockThreshold(const Activations &x,
                                 const std::vector<int32_t> &positions,
                                 const float *routerWeight, Gate gate,
                                 const BlockFunction &block);

/// The same with the routed set decided by `decisions` (I = {i :
/// decisions[i] > 0}) while the router logit gates: predictor routing.
RoutedOutput routeBlockDecided(const Activations &x,
                               const std::vector<int32_t> &positions,
                               const float *routerWeight,
                               const std::vector<double> &decisions, Gate gate,
                               const BlockFunction &block);

struct ForwardResult {
  modrt::Tensor logits;                             // f32 [B,S,V]
  std::map<int64_t, modrt::Tensor> routedIndices;   // layer -> i32 [B,K] (top-k)
  std::map<int64_t, modrt::Tensor> routedMask;      // layer -> i32 [B,S] 0/1 (causal)
};

/// The forward pass with the blocks `spec` schedules routed (router weights
/// read from the model's parameters) and the others dense.
/// Stochastic routing reads `routingSeed` (the routing_seed input) and no
/// router weights.
ForwardResult forwardMoD(const Transformer &model, const modrt::Tensor &tokens,
                         const modrt::Tensor &positions, const ModSpec &spec,
                         uint64_t routingSeed = 0);

} // namespace modref

#endif // MODREF_MOD_H
