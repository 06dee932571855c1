//===- mod-reference.cpp - Independent reference for dense and MoD models -===//
//
// The oracle of the numerical tests: a plain C++ GPT-2 / LLaMA forward pass
// with Hugging Face semantics and the Mixture-of-Depths routing of
// ARCHITECTURE.md section 2. It shares no code with the compiler.
//
//   mod-reference forward --config=config.json --weights=w.safetensors
//                         --inputs=in.safetensors -o out.safetensors
//                         [--mod=SPEC]
//   mod-reference compare --expected=a.safetensors --actual=b.safetensors
//                         [--rtol=1e-4] [--atol=0]
//   mod-reference rope --config=config.json [--max-position=P]
//
//===----------------------------------------------------------------------===//

#include "MoD.h"

#include "modrt/Safetensors.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>

using modrt::DType;
using modrt::Tensor;
using namespace modref;

namespace {

const char kUsage[] = R"(usage:
  mod-reference forward --config=FILE --weights=FILE --inputs=FILE -o FILE
                        [--mod=SPEC [--routed-masks]]
  mod-reference compare --expected=FILE --actual=FILE [--rtol=R] [--atol=A]
                        [--floor=F]
  mod-reference rope --config=FILE [--max-position=P]

forward: runs the reference model. --config is a Hugging Face config.json
  (model_type gpt2 or llama); --weights a safetensors file with the
  parameters under their Hugging Face names (f32, f16 or bf16); --inputs a
  safetensors file with `tokens` and `positions`, both i32 [B,S]. Writes
  `logits` f32 [B,S,V] to the -o (or --output=) file. Attention is causal
  by position: query i sees key j iff positions[j] <= positions[i].
  --mod=SPEC routes blocks as in ARCHITECTURE.md section 2; SPEC is a comma
  list of capacity=0.125 (fraction of S, K = round(C*S) clamped to [1,S]) or
  capacity=3 (absolute K), schedule=every-other (default: blocks 1,3,5,...),
  every:N, every:N:offset:M or list:1,3, gate=linear (default) or sigmoid,
  and routing=topk (default) or threshold (every token whose router logit is
  > 0 goes through the block, causal; capacity is unused) or predictor (every
  token whose predictor-MLP logit tanh(x W1 + b1) . w2 + b2 is > 0, with
  `<block prefix>.mod.predictor.{fc1.weight [D,H], fc1.bias [H], fc2.weight
  [H], fc2.bias []}` from the weights file; causal, the router logit still
  gates) or stochastic
  (K tokens per row drawn from the i64 scalar input `routing_seed` with the
  hash --mod-dense-to-mod=routing=stochastic documents; no router weights,
  the block output is added with scale 1).
  The router weight of block i is `<block prefix>.mod.router.weight` [D] in
  the weights file. With --mod (top-k) the output also holds
  `routed_indices.<i>` i32 [B,K], the ascending token indices each routed
  block selected; with routing=threshold or predictor the tool prints
  `routed.<i>: n/S ...`, the routed count of every sequence, instead, and
  with --routed-masks also writes `routed_mask.<block prefix>` i32 [B,S]
  (1 where the token went through the block).

compare: compares every tensor of --expected with the tensor of the same
  name in --actual and prints `name: max rel err X (N elements)`. The
  relative error of an element is |a - e| / max(|e|, scale) where scale is
  --floor (default 1e-3) times the largest |e| in the expected tensor, so
  near-zero values are measured against the tensor's magnitude instead of
  blowing up; --floor=1 measures every error against the largest |e|. An element
  fails when its relative error exceeds --rtol (default 1e-4) and |a - e|
  exceeds --atol (default 0); integer tensors must match exactly. Exits 1
  on any failure, printing the first bad index and both values.

rope: prints the RoPE table of a LLaMA config as JSON, {"inv_freq": [...],
  "attention_scaling": X}, for a batch whose largest position is
  --max-position (default 0; only rope_type dynamic depends on it).
)";

[[noreturn]] void usageError(const std::string &message) {
  throw std::runtime_error(message + " (see mod-reference --help)");
}

double parseTolerance(const std::string &option, const std::string &text) {
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(value) || value < 0)
    usageError("invalid value '" + text + "' for " + option +
               ": expected a non-negative number");
  return value;
}

struct Options {
  std::string command;
  std::map<std::string, std::string> values;
};

/// Accepts --name=value for every option and also `-o FILE`.
Options parseArgs(int argc, char **argv, bool &help) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help = true;
      return options;
    }
    if (arg == "-o") {
      if (i + 1 >= argc) usageError("-o requires a file name");
      options.values["--output"] = argv[++i];
      continue;
    }
    if (arg.rfind("-", 0) != 0) {
      if (!options.command.empty()) usageError("unexpected argument '" + arg + "'");
      options.command = arg;
      continue;
    }
    if (arg == "--routed-masks") { // the one flag without a value
      options.values[arg] = "";
      continue;
    }
    size_t eq = arg.find('=');
    if (eq == std::string::npos || eq + 1 == arg.size())
      usageError("option " + arg.substr(0, eq) + " requires a value");
    std::string name = arg.substr(0, eq);
    if (!options.values.emplace(name, arg.substr(eq + 1)).second)
      usageError("option " + name + " given twice");
  }
  return options;
}

/// Removes and returns option `name`; empty when absent and optional.
std::string take(Options &options, const std::string &name, bool required) {
  auto it = options.values.find(name);
  if (it == options.values.end()) {
    if (required) usageError(options.command + " requires " + name + "=FILE");
    return {};
  }
  std::string value = it->second;
  options.values.erase(it);
  return value;
}

void rejectLeftovers(const Options &options) {
  if (!options.values.empty())
    usageError("unknown option '" + options.values.begin()->first + "' for " +
               options.command);
}

int runForward(Options &options) {
  std::string configPath = take(options, "--config", true);
  std::string weightsPath = take(options, "--weights", true);
  std::string inputsPath = take(options, "--inputs", true);
  std::string outputPath = take(options, "--output", true);
  std::string modText = take(options, "--mod", false);
  const bool routedMasks = options.values.erase("--routed-masks") != 0;
  rejectLeftovers(options);

  ModelConfig config = loadConfig(configPath);
  Parameters params = Parameters::load(weightsPath);
  Transformer model(config, params);
  modrt::SafetensorsFile inputs = modrt::readSafetensors(inputsPath);
  auto input = [&](const char *name) -> const Tensor & {
    auto it = inputs.tensors.find(name);
    if (it == inputs.tensors.end())
      throw std::runtime_error(inputsPath + ": no tensor named '" + name +
                               "' (expected i32 [B,S])");
    return it->second;
  };
  const Tensor &tokens = input("tokens");
  const Tensor &positions = input("positions");

  std::map<std::string, Tensor> outputs;
  std::map<std::string, std::string> metadata = {{"modc.reference", "forward"}};
  if (modText.empty()) {
    outputs.emplace("logits", model.forward(tokens, positions));
  } else {
    ModSpec spec = ModSpec::parse(modText);
    uint64_t routingSeed = 0;
    if (spec.routing == ModSpec::Routing::Stochastic) {
      auto it = inputs.tensors.find("routing_seed");
      if (it == inputs.tensors.end() || it->second.dtype() != DType::I64 ||
          it->second.numElements() != 1)
        throw std::runtime_error(inputsPath + ": routing=stochastic needs an "
                                 "i64 scalar tensor named 'routing_seed'");
      routingSeed = uint64_t(it->second.data<int64_t>()[0]);
    }
    ForwardResult result = forwardMoD(model, tokens, positions, spec, routingSeed);
    outputs.emplace("logits", std::move(result.logits));
    for (auto &[layer, indices] : result.routedIndices)
      outputs.emplace("routed_indices." + std::to_string(layer), std::move(indices));
    // Threshold routing selects a different number of tokens per sequence,
    // which no static-shape output can hold: report the counts instead.
    for (auto &[layer, mask] : result.routedMask) {
      const int64_t s = mask.shape()[1];
      std::printf("routed.%lld:", static_cast<long long>(layer));
      for (int64_t b = 0; b < mask.shape()[0]; ++b) {
        int64_t n = 0;
        for (int64_t i = 0; i < s; ++i) n += mask.data<int32_t>()[b * s + i];
        std::printf(" %lld/%lld", static_cast<long long>(n), static_cast<long long>(s));
      }
      std::printf("\n");
    }
    if (routedMasks) {
      if (!spec.isCausal())
        throw std::runtime_error(
            "--routed-masks needs --mod with routing=threshold or predictor");
      for (auto &[layer, mask] : result.routedMask)
        outputs.emplace("routed_mask." + config.blockPrefix(layer), mask);
    }
    metadata.emplace("modc.mod", modText);
  }
  modrt::writeSafetensors(outputPath, outputs, metadata);
  return 0;
}

std::string formatIndex(const std::vector<int64_t> &shape, int64_t flat) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string out = "[";
  for (size_t d = 0; d < index.size(); ++d)
    out += (d ? "," : "") + std::to_string(index[d]);
  return out + "]";
}

bool isFloat(DType d) {
  return d == DType::F32 || d == DType::F64 || d == DType::F16 || d == DType::BF16;
}

/// Prints the summary line (and the first failure) of one tensor; returns
/// whether it matched.
bool compareTensor(const std::string &name, const Tensor &e, const Tensor &a,
                   double rtol, double atol, double floor) {
  if (e.shape() != a.shape()) {
    std::printf("%s: shape mismatch: expected [%s], actual [%s]\n", name.c_str(),
                modrt::formatShape(e.shape()).c_str(),
                modrt::formatShape(a.shape()).c_str());
    return false;
  }
  const bool exact = !isFloat(e.dtype()) || !isFloat(a.dtype());
  double scale = 0.0;
  for (int64_t i = 0; i < e.numElements(); ++i)
    scale = std::max(scale, std::fabs(e.elementAsDouble(i)));
  scale *= floor;

  double maxRel = 0.0;
  int64_t firstBad = -1;
  double firstBadRel = 0.0;
  for (int64_t i = 0; i < e.numElements(); ++i) {
    double ev = e.elementAsDouble(i), av = a.elementAsDouble(i);
    double diff = std::fabs(av - ev);
    double rel;
    if (ev == av || (std::isnan(ev) && std::isnan(av)))
      rel = 0.0;
    else if (std::isnan(diff) || std::isinf(diff))
      rel = INFINITY;
    else
      rel = diff / std::max(std::fabs(ev), scale);
    if (std::isnan(rel)) rel = INFINITY; // 0/0: e and scale are 0, a is not
    maxRel = std::max(maxRel, rel);
    bool bad = exact ? rel != 0.0 : (rel > rtol && !(diff <= atol));
    if (bad && firstBad < 0) {
      firstBad = i;
      firstBadRel = rel;
    }
  }
  std::printf("%s: max rel err %.3g (%lld elements)\n", name.c_str(), maxRel,
              static_cast<long long>(e.numElements()));
  if (firstBad < 0) return true;
  std::printf("%s: mismatch at %s: expected %.9g, actual %.9g (rel err %.3g%s)\n",
              name.c_str(), formatIndex(e.shape(), firstBad).c_str(),
              e.elementAsDouble(firstBad), a.elementAsDouble(firstBad), firstBadRel,
              exact ? ", integer tensors must match exactly" : "");
  return false;
}

int runCompare(Options &options) {
  std::string expectedPath = take(options, "--expected", true);
  std::string actualPath = take(options, "--actual", true);
  std::string rtolText = take(options, "--rtol", false);
  std::string atolText = take(options, "--atol", false);
  std::string floorText = take(options, "--floor", false);
  double floor = floorText.empty() ? 1e-3 : parseTolerance("--floor", floorText);
  rejectLeftovers(options);
  double rtol = rtolText.empty() ? 1e-4 : parseTolerance("--rtol", rtolText);
  double atol = atolText.empty() ? 0.0 : parseTolerance("--atol", atolText);

  modrt::SafetensorsFile expected = modrt::readSafetensors(expectedPath);
  modrt::SafetensorsFile actual = modrt::readSafetensors(actualPath);
  if (expected.tensors.empty())
    throw std::runtime_error(expectedPath + ": holds no tensors to compare");
  bool ok = true;
  for (const auto &[name, e] : expected.tensors) {
    auto it = actual.tensors.find(name);
    if (it == actual.tensors.end()) {
      std::printf("%s: missing from %s\n", name.c_str(), actualPath.c_str());
      ok = false;
      continue;
    }
    ok &= compareTensor(name, e, it->second, rtol, atol, floor);
  }
  // Extra tensors in the actual file are not an error (a compiled model may
  // return more than the reference computes), but say they were skipped.
  for (const auto &entry : actual.tensors)
    if (!expected.tensors.count(entry.first))
      std::fprintf(stderr, "mod-reference: note: '%s' is only in %s; not compared\n",
                   entry.first.c_str(), actualPath.c_str());
  std::fflush(stdout);
  return ok ? 0 : 1;
}

int runRope(Options &options) {
  ModelConfig config = loadConfig(take(options, "--config", true));
  std::string maxPosition = take(options, "--max-position", false);
  rejectLeftovers(options);
  if (config.family != Family::Llama)
    throw std::runtime_error("rope: the config is not a LLaMA (RoPE) model");
  RopeTable table = ropeTable(config, maxPosition.empty() ? 0 : std::stoll(maxPosition));
  std::printf("{\"inv_freq\": [");
  for (size_t i = 0; i < table.invFreq.size(); ++i)
    std::printf("%s%.17g", i ? ", " : "", table.invFreq[i]);
  std::printf("], \"attention_scaling\": %.17g}\n", table.magnitude);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  try {
    bool help = false;
    Options options = parseArgs(argc, argv, help);
    if (help) {
      std::cout << kUsage;
      return 0;
    }
    if (options.command == "forward") return runForward(options);
    if (options.command == "compare") return runCompare(options);
    if (options.command == "rope") return runRope(options);
    usageError(options.command.empty()
                   ? std::string("no command given (forward, compare or rope)")
                   : "unknown command '" + options.command +
                         "' (expected forward, compare or rope)");
  } catch (const std::bad_alloc &) {
    std::cerr << "mod-reference: error: out of memory\n";
  } catch (const std::exception &e) {
    std::cerr << "mod-reference: error: " << e.what() << '\n';
  }
  return 1;
}
