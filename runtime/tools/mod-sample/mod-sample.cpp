//===- mod-sample.cpp - Sample text from a compiled model -----------------===//
//
// mod-sample <model-dir> [--prompt=TEXT]... [--prompt-file=FILE] [--batch=N]
//            [--max-new-tokens=N] [--temperature=T] [--top-k=K] [--top-p=P]
//            [--seed=N] [--weights=PATH | --init-missing] [--tokenizer=SPEC]
//            [--no-stop]
//
// Runs the @prefill and @decode_step entry points of a model compiled after
// `mod-opt --mod-generate-decode` (libmodrt's Decoder), drawing each new
// token with modrt::Sampler, and streams the text.
//
//===----------------------------------------------------------------------===//

#include "modrt/Decode.h"
#include "modrt/Error.h"
#include "modrt/Model.h"
#include "modrt/Sample.h"
#include "modrt/Tokenizer.h"
#include "modrt/Train.h"
#include "modrt/Weights.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace modrt;

namespace {

const char kUsage[] = R"(usage: mod-sample <model-dir> [options]

Samples text from a model compiled by mod-compile after
`mod-opt --mod-generate-decode` (entry points prefill and decode_step): each
prompt is run through prefill, then one decode step per new token, each
token drawn from the logits with the options below. The text streams to
stdout as it is generated (with --batch > 1, each sample is printed when it
ends, after a "--- sample N ---" line); timing goes to stderr, and for a
Mixture-of-Depths model (generated with routed blocks) the fraction of the
decode steps' tokens each routed block processed.

  --prompt=TEXT        A prompt (repeatable). At least 1 token and at most
                       the model's prefill length.
  --prompt-file=FILE   Prompts, one per non-empty line (a trailing CR is
                       dropped); with --prompt, both are used, in order.
  --batch=N            Sequences to sample (default: the number of prompts);
                       prompts are reused in turn when N is larger. At most
                       the batch size the model was compiled for; the rows
                       past N are run but not reported.
  --max-new-tokens=N   Tokens to generate per sequence (default 64). A
                       sequence also ends at end of text (see --no-stop) or
                       when its KV cache (max-seq-len slots) is full.
  --temperature=T      Softmax temperature (default 1); 0 is greedy: always
                       the most likely token.
  --top-k=K            Sample from the K most likely tokens (default 0: all).
  --top-p=P            Sample from the most likely tokens whose probabilities
                       sum to at least P (default 1: all).
  --seed=N             Seed of the sampling (default 0): sequence b draws
                       from its own generator, seeded with a hash of N and b
                       (so sequence 1 of seed N does not repeat sequence 0 of
                       seed N + 1); the same seed gives the same text. Also
                       seeds --init-missing.
  --weights=PATH       The parameters: a safetensors file, a mod-train
                       checkpoint directory (holding params.safetensors), a
                       mod-train run directory (its newest checkpoint), or a
                       Hugging Face checkpoint as published: a directory with
                       model.safetensors or model.safetensors.index.json
                       (shards), or the index itself. Names are matched as
                       mod-run --weights does (base-model prefix added or
                       removed; known buffers ignored).
  --init-missing       Initialize parameters that --weights lacks (or all,
                       without --weights) from --seed, as mod-run does, and
                       list them; a weights file that matches none of the
                       parameters is an error.
  --tokenizer=SPEC     byte (default) or a SentencePiece .model file. When
                       the model's vocabulary is larger than the
                       tokenizer's, tokens are drawn from the tokenizer's
                       ids only (a note says so).
  --no-stop            Do not end a sequence at end of text: a blank line
                       (two newlines, how byte-level training data separates
                       documents) or a SentencePiece model's end-of-sequence.
  --help               Show this help.
)";

[[noreturn]] void usageError(const std::string &message) {
  throw Error(message + " (see mod-sample --help)");
}

int64_t parseInt(const std::string &name, const std::string &text, int64_t min) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception &) {
    used = 0;
  }
  if (text.empty() || used != text.size() || value < min)
    usageError("invalid value '" + text + "' for " + name +
               ": expected an integer >= " + std::to_string(min));
  return value;
}

double parseDouble(const std::string &name, const std::string &text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception &) {
    used = 0;
  }
  if (text.empty() || used != text.size())
    usageError("invalid value '" + text + "' for " + name + ": expected a number");
  return value;
}

struct Options {
  std::string modelDir, weights, tokenizer = "byte";
  std::vector<std::string> prompts;
  int64_t batch = 0, maxNewTokens = 64;
  uint64_t seed = 0;
  bool initMissing = false, stop = true;
  SamplingOptions sampling;
};

std::optional<Options> parseArgs(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return std::nullopt;
    if (arg.rfind("--", 0) != 0) {
      if (!o.modelDir.empty()) usageError("unexpected argument '" + arg + "'");
      o.modelDir = arg;
      continue;
    }
    size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    bool hasValue = eq != std::string::npos;
    std::string value = hasValue ? arg.substr(eq + 1) : "";
    auto needValue = [&] {
      if (!hasValue) usageError("option " + name + " requires a value");
    };
    if (name == "--prompt") {
      needValue();
      o.prompts.push_back(value);
    } else if (name == "--prompt-file") {
      needValue();
      if (std::filesystem::is_directory(value))
        throw Error("--prompt-file " + value + " is a directory, not a file");
      std::ifstream in(value, std::ios::binary);
      if (!in) throw Error("cannot read --prompt-file " + value);
      std::string line;
      size_t before = o.prompts.size();
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back(); // CRLF files
        if (!line.empty()) o.prompts.push_back(line);
      }
      if (in.bad()) throw Error("error reading --prompt-file " + value);
      if (o.prompts.size() == before)
        throw Error("--prompt-file " + value +
                    " holds no prompt (one prompt per non-empty line)");
    } else if (name == "--batch") {
      needValue();
      o.batch = parseInt(name, value, 1);
    } else if (name == "--max-new-tokens") {
      needValue();
      o.maxNewTokens = parseInt(name, value, 0);
    } else if (name == "--temperature") {
      needValue();
      o.sampling.temperature = parseDouble(name, value);
    } else if (name == "--top-k") {
      needValue();
      o.sampling.topK = parseInt(name, value, 0);
    } else if (name == "--top-p") {
      needValue();
      o.sampling.topP = parseDouble(name, value);
    } else if (name == "--seed") {
      needValue();
      o.seed = uint64_t(parseInt(name, value, 0));
    } else if (name == "--weights") {
      needValue();
      o.weights = value;
    } else if (name == "--tokenizer") {
      needValue();
      o.tokenizer = value;
    } else if (name == "--init-missing" && !hasValue) {
      o.initMissing = true;
    } else if (name == "--no-stop" && !hasValue) {
      o.stop = false;
    } else {
      usageError("unknown option '" + arg + "'");
    }
  }
  if (o.modelDir.empty()) usageError("no model directory given");
  if (o.prompts.empty()) usageError("no prompt given (--prompt or --prompt-file)");
  o.sampling.validate();
  return o;
}

/// The safetensors file --weights names (file, checkpoint or run directory).
std::string resolveWeights(const std::string &path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path))
    throw Error("--weights: " + path + " does not exist");
  if (!fs::is_directory(path)) return path;
  if (fs::exists(fs::path(path) / "params.safetensors"))
    return (fs::path(path) / "params.safetensors").string();
  // A checkpoint as published (loadParameters reads the directory).
  if (fs::exists(fs::path(path) / "model.safetensors") ||
      fs::exists(fs::path(path) / "model.safetensors.index.json"))
    return path;
  std::string checkpoint = latestCheckpoint(path);
  if (checkpoint.empty())
    throw Error("--weights: directory " + path +
                " holds no params.safetensors and no mod-train checkpoint "
                "(nor model.safetensors or model.safetensors.index.json)");
  return (fs::path(checkpoint) / "params.safetensors").string();
}

bool endsWith(const std::vector<uint32_t> &ids, const std::vector<uint32_t> &tail) {
  return !tail.empty() && ids.size() >= tail.size() &&
         std::equal(tail.begin(), tail.end(), ids.end() - long(tail.size()));
}

int run(const Options &o) {
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::open(o.tokenizer);
  Model model = Model::load(o.modelDir);
  const EntryPoint &prefillEntry = model.entry("prefill");
  if (o.weights.empty() && !o.initMissing)
    usageError("no weights: pass --weights=FILE|CHECKPOINT|RUN-DIR, or "
               "--init-missing for seeded parameters");
  std::string weights = o.weights.empty() ? "" : resolveWeights(o.weights);
  std::map<std::string, Tensor> params;
  ParameterLoadReport report;
  try {
    params = loadParameters(prefillEntry, weights, o.initMissing, o.seed, &report);
  } catch (const MissingParameterError &e) {
    throw Error(std::string(e.what()) +
                " (pass --init-missing to initialize it from --seed)");
  }
  printLoadReport("mod-sample", prefillEntry.name, weights, report, o.seed, /*warnUnexpected=*/true);
  // A CUDA model keeps its parameters on the device: uploaded once here,
  // not on every prefill and decode step.
  for (const auto &[name, tensor] : params)
    if (model.isDeviceResident(name)) model.upload(name, tensor);
  Decoder decoder(model, params);

  // A model vocabulary larger than the tokenizer's (GPT-2's 50257 with the
  // byte tokenizer) is sampled over the ids the tokenizer can write.
  const int64_t sampleVocab =
      std::min<int64_t>(decoder.vocabSize(), int64_t(tokenizer->vocabSize()));
  if (sampleVocab < decoder.vocabSize())
    std::fprintf(stderr,
                 "mod-sample: note: sampling over the %lld ids of the %s "
                 "tokenizer, not the model's %lld\n",
                 static_cast<long long>(sampleVocab), tokenizer->describe().c_str(),
                 static_cast<long long>(decoder.vocabSize()));
  const int64_t batch = o.batch ? o.batch : int64_t(o.prompts.size());
  if (batch > decoder.batch())
    usageError("--batch " + std::to_string(batch) + " exceeds the batch size " +
               std::to_string(decoder.batch()) + " the model was compiled for");
  std::vector<std::vector<uint32_t>> ids(size_t(decoder.batch()));
  std::vector<std::vector<int32_t>> prompts(size_t(decoder.batch()));
  for (int64_t b = 0; b < decoder.batch(); ++b) {
    // Rows past --batch repeat the first prompt; nobody reads them.
    const std::string &text =
        o.prompts[size_t(b < batch ? b % int64_t(o.prompts.size()) : 0)];
    ids[size_t(b)] = tokenizer->encode(text);
    if (ids[size_t(b)].empty())
      throw Error("prompt " + std::to_string(b) + " is empty: it needs at least one token");
    if (int64_t(ids[size_t(b)].size()) > decoder.prefillLen())
      throw Error("prompt " + std::to_string(b) + " has " +
                  std::to_string(ids[size_t(b)].size()) +
                  " tokens, more than the model's prefill length " +
                  std::to_string(decoder.prefillLen()));
    for (uint32_t id : ids[size_t(b)])
      if (int64_t(id) >= decoder.vocabSize())
        throw Error("prompt " + std::to_string(b) + " has token id " +
                    std::to_string(id) + ", outside the model's vocabulary [0, " +
                    std::to_string(decoder.vocabSize()) + ") (--tokenizer=" +
                    o.tokenizer + ")");
    prompts[size_t(b)].assign(ids[size_t(b)].begin(), ids[size_t(b)].end());
  }
  std::vector<uint32_t> stopTokens;
  if (o.stop) {
    stopTokens = tokenizer->documentSeparator();
    if (o.tokenizer == "byte") stopTokens.insert(stopTokens.begin(), '\n');
  }

  // One generator per sequence, seeded with splitmix64(splitmix64(N) ^ b):
  // independent streams for every (seed, sequence) pair.
  auto splitmix64 = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  std::vector<Sampler> samplers;
  for (int64_t b = 0; b < decoder.batch(); ++b)
    samplers.emplace_back(o.sampling, splitmix64(splitmix64(o.seed) ^ uint64_t(b)));
  std::vector<size_t> promptSize(ids.size());
  for (size_t b = 0; b < ids.size(); ++b) promptSize[b] = ids[b].size();
  const bool stream = batch == 1;
  std::string printed;
  if (stream) {
    printed = tokenizer->decode(ids[0]);
    std::fwrite(printed.data(), 1, printed.size(), stdout);
    std::fflush(stdout);
  }

  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  Tensor logits = decoder.prefill(prompts);
  double prefillSeconds = std::chrono::duration<double>(Clock::now() - start).count();
  const int64_t v = decoder.vocabSize(), p = decoder.prefillLen();
  std::vector<bool> active(ids.size(), false);
  for (int64_t b = 0; b < batch; ++b) active[size_t(b)] = o.maxNewTokens > 0;
  std::vector<int32_t> next(ids.size(), 0);
  for (size_t b = 0; b < ids.size(); ++b)
    next[b] = samplers[b].sample(
        logits.data<float>() + (int64_t(b) * p + int64_t(promptSize[b]) - 1) * v,
        sampleVocab);
  int64_t generated = 0, steps = 0, processed = 0;
  double stepSeconds = 0;
  auto finish = [&](size_t b, const char *why) {
    active[b] = false;
    if (why) std::fprintf(stderr, "mod-sample: sequence %zu: %s\n", b, why);
    if (!stream) {
      std::string text = tokenizer->decode(ids[b]);
      std::printf("--- sample %zu ---\n%s\n", b, text.c_str());
      std::fflush(stdout);
    }
  };
  while (std::find(active.begin(), active.end(), true) != active.end()) {
    // Take the drawn tokens; a sequence that reached its end stops here.
    for (size_t b = 0; b < ids.size(); ++b) {
      if (!active[b]) continue;
      ids[b].push_back(uint32_t(next[b]));
      ++generated;
      if (stream && b == 0) {
        std::string text = tokenizer->decode(ids[0]);
        if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0) {
          std::fwrite(text.data() + printed.size(), 1, text.size() - printed.size(), stdout);
          std::fflush(stdout);
          printed = text;
        }
      }
      size_t produced = ids[b].size() - promptSize[b];
      if (o.stop && endsWith(ids[b], stopTokens))
        finish(b, nullptr);
      else if (int64_t(produced) >= o.maxNewTokens)
        finish(b, nullptr);
      else if (decoder.lengths()[b] >= decoder.maxSeqLen())
        finish(b, ("stopped: the KV cache is full (max-seq-len " +
                   std::to_string(decoder.maxSeqLen()) + ")").c_str());
    }
    if (std::find(active.begin(), active.end(), true) == active.end()) break;
    auto t0 = Clock::now();
    processed += std::count(active.begin(), active.end(), true);
    logits = decoder.step(next, active);
    stepSeconds += std::chrono::duration<double>(Clock::now() - t0).count();
    ++steps;
    for (size_t b = 0; b < ids.size(); ++b)
      if (active[b])
        next[b] = samplers[b].sample(logits.data<float>() + int64_t(b) * v, sampleVocab);
  }
  if (stream) std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "mod-sample: %lld sequence(s), %lld new tokens; prefill %.3f s, "
               "%lld decode steps of %lld tokens in %.3f s (%.2f ms per step, "
               "%.1f tokens/s)\n",
               static_cast<long long>(batch), static_cast<long long>(generated),
               prefillSeconds, static_cast<long long>(steps),
               static_cast<long long>(processed), stepSeconds,
               steps ? 1e3 * stepSeconds / double(steps) : 0.0,
               stepSeconds > 0 ? double(processed) / stepSeconds : 0.0);
  // MoD models: the share of the decode steps' tokens each routed block
  // processed (the others skipped it).
  for (const std::string &block : decoder.routedBlocks()) {
    int64_t routed = decoder.routedDecodedTokens(block);
    int64_t all = decoder.decodedTokens();
    std::fprintf(stderr,
                 "mod-sample: routed block %s: %lld of %lld decoded tokens "
                 "(%.1f%%)\n",
                 block.c_str(), static_cast<long long>(routed),
                 static_cast<long long>(all),
                 all ? 100.0 * double(routed) / double(all) : 0.0);
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  try {
    std::optional<Options> options = parseArgs(argc, argv);
    if (!options) {
      std::cout << kUsage;
      return 0;
    }
    return run(*options);
  } catch (const std::exception &e) {
    std::fflush(stdout);
    std::cerr << "mod-sample: error: " << e.what() << "\n";
    return 1;
  }
}
