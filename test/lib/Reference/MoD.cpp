//===- MoD.cpp - Reference Mixture-of-Depths routing ----------------------===//

#include "MoD.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <set>
#include <stdexcept>

using modrt::DType;
using modrt::Tensor;
using namespace modref;

//===----------------------------------------------------------------------===//
// ModSpec
//===----------------------------------------------------------------------===//

namespace {

[[noreturn]] void specError(const std::string &what) {
  throw std::runtime_error("invalid --mod spec: " + what);
}

int64_t parseCount(const std::string &text, const std::string &what, int64_t min) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() ||
      value < min)
    specError(what + " must be an integer >= " + std::to_string(min) + ", got '" +
              text + "'");
  return value;
}

std::vector<std::string> split(const std::string &text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

} // namespace

ModSpec ModSpec::parse(const std::string &text) {
  if (text.empty()) return ModSpec(); // all defaults
  // Pairs are comma-separated, but `schedule=list:1,3` has commas of its
  // own: a piece without '=' continues the previous value.
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const std::string &piece : split(text, ',')) {
    size_t eq = piece.find('=');
    if (eq == std::string::npos) {
      if (pairs.empty() || pairs.back().first != "schedule")
        specError("expected key=value, got '" + piece + "'");
      pairs.back().second += "," + piece;
      continue;
    }
    pairs.emplace_back(piece.substr(0, eq), piece.substr(eq + 1));
  }

  ModSpec spec;
  std::set<std::string> seen;
  for (const auto &[key, value] : pairs) {
    if (!seen.insert(key).second) specError("'" + key + "' given twice");
    if (key == "capacity") {
      if (value.find('.') != std::string::npos) {
        char *end = nullptr;
        spec.fraction = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || !std::isfinite(spec.fraction) ||
            spec.fraction <= 0)
          specError("capacity fraction must be a positive number, got '" + value + "'");
        spec.capacityIsFraction = true;
      } else {
        spec.absolute = parseCount(value, "capacity", 1);
        spec.capacityIsFraction = false;
      }
    } else if (key == "schedule") {
      std::vector<std::string> parts = split(value, ':');
      if (value == "every-other") {
        spec.schedule = Schedule::EveryOther;
      } else if (parts[0] == "every" && (parts.size() == 2 ||
                                         (parts.size() == 4 && parts[2] == "offset"))) {
        spec.schedule = Schedule::Every;
        spec.every = parseCount(parts[1], "the period of schedule=every", 1);
        spec.offset = parts.size() == 4
                          ? parseCount(parts[3], "the offset of schedule=every", 0)
                          : 1;
      } else if (parts[0] == "list" && parts.size() == 2) {
        spec.schedule = Schedule::List;
        for (const std::string &block : split(parts[1], ','))
          spec.blocks.push_back(parseCount(block, "a block of schedule=list", 0));
        std::set<int64_t> unique(spec.blocks.begin(), spec.blocks.end());
        if (unique.size() != spec.blocks.size())
          specError("schedule=list names a block twice: '" + parts[1] + "'");
      } else {
        specError("unknown schedule '" + value + "' (expected every-other, "
                  "every:N, every:N:offset:M or list:I,J,...)");
      }
    } else if (key == "gate") {
      if (value == "linear")
        spec.gate = Gate::Linear;
      else if (value == "sigmoid")
        spec.gate = Gate::Sigmoid;
      else
        specError("unknown gate '" + value + "' (expected linear or sigmoid)");
    } else if (key == "routing") {
      if (value == "topk")
        spec.routing = Routing::TopK;
      else if (value == "threshold")
        spec.routing = Routing::Threshold;
      else if (value == "predictor")
        spec.routing = Routing::Predictor;
      else if (value == "stochastic")
        spec.routing = Routing::Stochastic;
      else
        specError("unknown routing '" + value +
                  "' (expected topk, threshold, predictor or stochastic)");
    } else {
      specError("unknown key '" + key +
                "' (expected capacity, schedule, gate, routing)");
    }
  }
  return spec;
}

int64_t ModSpec::capacity(int64_t seqLen) const {
  if (capacityIsFraction)
    return std::clamp<int64_t>(std::lround(fraction * double(seqLen)), 1, seqLen);
  if (absolute > seqLen)
    throw std::runtime_error("capacity " + std::to_string(absolute) +
                             " exceeds the sequence length " +
                             std::to_string(seqLen));
  return absolute;
}

bool ModSpec::isRouted(int64_t layer) const {
  switch (schedule) {
  case Schedule::EveryOther: return layer % 2 == 1;
  case Schedule::Every: return layer >= offset && (layer - offset) % every == 0;
  case Schedule::List:
    return std::find(blocks.begin(), blocks.end(), layer) != blocks.end();
  }
  return false;
}

void ModSpec::checkBlocks(int64_t numLayers) const {
  for (int64_t block : blocks)
    if (block >= numLayers)
      throw std::runtime_error("schedule=list names block " + std::to_string(block) +
                               ", but the model has " + std::to_string(numLayers) +
                               " blocks (0.." + std::to_string(numLayers - 1) + ")");
}

//===----------------------------------------------------------------------===//
// Routing
//===----------------------------------------------------------------------===//

std::string modref::routerWeightName(const ModelConfig &config, int64_t layer) {
  return config.blockPrefix(layer) + ".mod.router.weight";
}

std::vector<double> modref::routerLogits(const Activations &x, const float *w) {
  std::vector<double> r(static_cast<size_t>(x.rows));
  for (int64_t i = 0; i < x.rows; ++i) {
    double acc = 0.0;
    for (int64_t d = 0; d < x.width; ++d) acc += x.row(i)[d] * w[d];
    r[size_t(i)] = acc;
  }
  return r;
}

std::vector<int32_t> modref::topKAscending(const std::vector<double> &scores, int64_t k) {
  std::vector<int32_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  // Descending score, equal scores by ascending index: the first k are the
  // winners with ties going to the lower index. (-0.0 and +0.0 compare
  // equal, so they tie too.)
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    double sa = scores[size_t(a)], sb = scores[size_t(b)];
    return sa > sb || (sa == sb && a < b);
  });
  order.resize(size_t(k));
  std::sort(order.begin(), order.end());
  return order;
}

std::vector<int32_t> modref::positiveAscending(const std::vector<double> &scores) {
  std::vector<int32_t> routed;
  for (size_t i = 0; i < scores.size(); ++i)
    if (scores[i] > 0.0) routed.push_back(int32_t(i));
  return routed;
}

Predictor Predictor::load(const Parameters &params, const ModelConfig &config,
                          int64_t layer) {
  const std::string p = config.blockPrefix(layer) + ".mod.predictor.";
  Predictor q;
  q.width = config.hidden;
  const std::vector<int64_t> &shape =
      params.shapeOf(p + "fc1.weight", "the predictor's first layer [D,H]");
  if (shape.size() != 2 || shape[0] != config.hidden || shape[1] < 1)
    throw std::runtime_error(params.source() + ": parameter '" + p +
                             "fc1.weight' has shape [" + modrt::formatShape(shape) +
                             "], expected [" + std::to_string(config.hidden) +
                             ",H]");
  q.hidden = shape[1];
  q.w1 = params.get(p + "fc1.weight", {q.width, q.hidden});
  q.b1 = params.get(p + "fc1.bias", {q.hidden});
  q.w2 = params.get(p + "fc2.weight", {q.hidden});
  q.b2 = params.get(p + "fc2.bias", {});
  return q;
}

std::vector<double> Predictor::logits(const Activations &x) const {
  std::vector<double> q(static_cast<size_t>(x.rows));
  std::vector<double> h(static_cast<size_t>(hidden));
  for (int64_t i = 0; i < x.rows; ++i) {
    std::fill(h.begin(), h.end(), 0.0);
    for (int64_t d = 0; d < width; ++d) {
      const double xd = x.row(i)[d];
      for (int64_t j = 0; j < hidden; ++j) h[size_t(j)] += xd * w1[d * hidden + j];
    }
    double acc = b2[0];
    for (int64_t j = 0; j < hidden; ++j)
      acc += std::tanh(h[size_t(j)] + b1[j]) * w2[j];
    q[size_t(i)] = acc;
  }
  return q;
}

double modref::applyGate(Gate gate, double r) {
  return gate == Gate::Linear ? r : 1.0 / (1.0 + std::exp(-r));
}

namespace {
uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
} // namespace

std::vector<double> modref::stochasticScores(uint64_t seed, int64_t block,
                                             int64_t row, int64_t seqLen) {
  std::vector<double> scores(static_cast<size_t>(seqLen));
  const uint64_t mixedSeed = splitmix64(seed);
  for (int64_t s = 0; s < seqLen; ++s) {
    uint64_t key = (uint64_t(block) << 32) + uint64_t(row * seqLen + s);
    uint64_t h = splitmix64(mixedSeed ^ key);
    scores[size_t(s)] = std::ldexp(double(h >> 40), -24);
  }
  return scores;
}

namespace {
/// out = x; out[I[j]] += g(r[I[j]])·f(x[I], p[I])[j].
RoutedOutput routeOn(const Activations &x, const std::vector<int32_t> &positions,
                     const std::vector<double> &r, std::vector<int32_t> indices,
                     bool unitScale, Gate gate, const BlockFunction &block) {
  RoutedOutput result;
  result.indices = std::move(indices);
  result.out = x;
  const int64_t k = int64_t(result.indices.size());
  if (k == 0) return result;
  Activations gathered(k, x.width);
  std::vector<int32_t> gatheredPositions;
  for (int64_t j = 0; j < k; ++j) {
    int32_t i = result.indices[size_t(j)];
    std::copy(x.row(i), x.row(i) + x.width, gathered.row(j));
    gatheredPositions.push_back(positions[size_t(i)]);
  }
  Activations d = block(gathered, gatheredPositions);
  if (d.rows != k || d.width != x.width)
    throw std::logic_error("block contribution has the wrong shape");
  for (int64_t j = 0; j < k; ++j) {
    int32_t i = result.indices[size_t(j)];
    double g = unitScale ? 1.0 : applyGate(gate, r[size_t(i)]);
    for (int64_t c = 0; c < x.width; ++c)
      result.out.row(i)[c] += g * d.row(j)[c];
  }
  return result;
}
} // namespace

RoutedOutput modref::routeBlock(const Activations &x,
                                const std::vector<int32_t> &positions,
                                const float *routerWeight, int64_t k, Gate gate,
                                const BlockFunction &block) {
  std::vector<double> r = routerLogits(x, routerWeight);
  return routeOn(x, positions, r, topKAscending(r, k), /*unitScale=*/false, gate, block);
}

RoutedOutput modref::routeBlockThreshold(const Activations &x,
                                         const std::vector<int32_t> &positions,
                                         const float *routerWeight, Gate gate,
                                         const BlockFunction &block) {
  std::vector<double> r = routerLogits(x, routerWeight);
  return routeOn(x, positions, r, positiveAscending(r), /*unitScale=*/false, gate, block);
}

RoutedOutput modref::routeBlockDecided(const Activations &x,
                                       const std::vector<int32_t> &positions,
                                       const float *routerWeight,
                                       const std::vector<double> &decisions,
                                       Gate gate, const BlockFunction &block) {
  std::vector<double> r = routerLogits(x, routerWeight);
  return routeOn(x, positions, r, positiveAscending(decisions),
                 /*unitScale=*/false, gate, block);
}

ForwardResult modref::forwardMoD(const Transformer &model, const Tensor &tokens,
                                 const Tensor &positions, const ModSpec &spec,
                                 uint64_t routingSeed) {
  const ModelConfig &config = model.config();
  spec.checkBlocks(config.numLayers);
  TokenBatch batch = model.checkInputs(tokens, positions);
  const bool threshold = spec.isCausal();
  const bool predictor = spec.routing == ModSpec::Routing::Predictor;
  const int64_t K = threshold ? 0 : spec.capacity(batch.seqLen);
  const int64_t S = batch.seqLen, V = config.vocabSize;

  // Resolve the router weights first so a missing one is reported before
  // any work is done.
  const bool stochastic = spec.routing == ModSpec::Routing::Stochastic;
  std::map<int64_t, const float *> routers;
  for (int64_t layer = 0; layer < config.numLayers; ++layer)
    if (spec.isRouted(layer))
      routers[layer] = stochastic ? nullptr
                                  : model.parameters().get(
                                        routerWeightName(config, layer),
                                        {config.hidden});

  std::map<int64_t, Predictor> predictors;
  if (predictor)
    for (const auto &entry : routers)
      predictors.emplace(entry.first,
                         Predictor::load(model.parameters(), config, entry.first));

  ForwardResult result;
  result.logits = Tensor(DType::F32, {batch.batch, batch.seqLen, V});
  for (const auto &entry : routers) {
    if (threshold)
      result.routedMask.emplace(entry.first, Tensor(DType::I32, {batch.batch, S}));
    else
      result.routedIndices.emplace(entry.first, Tensor(DType::I32, {batch.batch, K}));
  }

  auto block = [&](int64_t layer) {
    return [&model, layer](const Activations &xk, const std::vector<int32_t> &pk) {
      return model.blockContribution(layer, xk, pk);
    };
  };
  for (int64_t b = 0; b < batch.batch; ++b) {
    const std::vector<int32_t> &pos = batch.positions[size_t(b)];
    Activations h = model.embed(batch.tokens[size_t(b)], pos);
    for (int64_t layer = 0; layer < config.numLayers; ++layer) {
      auto router = routers.find(layer);
      if (router == routers.end()) {
        model.applyBlock(layer, h, pos);
        continue;
      }
      if (threshold) {
        RoutedOutput routed =
            predictor ? routeBlockDecided(h, pos, router->second,
                                          predictors.at(layer).logits(h),
                                          spec.gate, block(layer))
                      : routeBlockThreshold(h, pos, router->second, spec.gate,
                                            block(layer));
        h = std::move(routed.out);
        int32_t *mask = result.routedMask.at(layer).data<int32_t>() + b * S;
        std::fill(mask, mask + S, 0);
        for (int32_t i : routed.indices) mask[i] = 1;
        continue;
      }
      if (stochastic) {
        // No router: K random tokens, their block output added with scale 1.
        std::vector<double> scores = stochasticScores(routingSeed, layer, b, S);
        RoutedOutput routed =
            routeOn(h, pos, std::vector<double>(size_t(S), 1.0),
                    topKAscending(scores, K), /*unitScale=*/true, spec.gate,
                    block(layer));
        h = std::move(routed.out);
        std::copy(routed.indices.begin(), routed.indices.end(),
                  result.routedIndices.at(layer).data<int32_t>() + b * K);
        continue;
      }
      RoutedOutput routed = routeBlock(h, pos, router->second, K, spec.gate, block(layer));
      h = std::move(routed.out);
      std::copy(routed.indices.begin(), routed.indices.end(),
                result.routedIndices.at(layer).data<int32_t>() + b * K);
    }
    Activations rowLogits = model.logits(h);
    float *dst = result.logits.data<float>() + b * batch.seqLen * V;
    for (size_t i = 0; i < rowLogits.values.size(); ++i) dst[i] = float(rowLogits.values[i]);
  }
  return result;
}
