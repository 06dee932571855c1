//===- mod-run.cpp - Run an entry point of a compiled modc model ----------===//
//
// mod-run <model-dir> [--entry=NAME] [--inputs=FILE] [--outputs=FILE]
//         [--weights=FILE] [--init-missing] [--seed=N] [--save-weights=FILE]
//         [--prompt=TEXT] [--top=N] [--print] [--print-limit=N]
//         [--precision=N] [--repeat=N]
//
// Reads the entry point's data inputs by argument name from a safetensors
// file (or, for a byte-level language model, makes them from --prompt), its
// parameters from a weights file or their manifest init rules, calls the
// compiled code through libmodrt and writes the outputs (named as in the
// manifest) to a safetensors file, prints them, or prints the most likely
// next tokens.
//
//===----------------------------------------------------------------------===//

#include "modrt/Model.h"
#include "modrt/Safetensors.h"
#include "modrt/Weights.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <string>

using namespace modrt;

namespace {

constexpr int64_t kDefaultPrintLimit = 1000;
constexpr int kDefaultPrecision = 6;

struct Options {
  std::string modelDir;
  std::string entry;
  std::string inputsPath;
  std::string outputsPath;
  std::string weightsPath;
  bool initMissing = false;
  uint64_t seed = 0;
  std::string saveWeightsPath;
  std::optional<std::string> prompt;
  int64_t top = 0; // 0: no top-token listing
  bool print = false;
  std::vector<std::string> printOnly; // empty: every output
  int64_t printLimit = kDefaultPrintLimit;
  int precision = kDefaultPrecision;
  int64_t repeat = 1;
};

const char kUsage[] =
    R"(usage: mod-run <model-dir> [options]

Runs one entry point of a model compiled by mod-compile. <model-dir> holds
manifest.json and the shared library it names.

Options:
  --entry=NAME         Entry point to run. Defaults to the only one; when the
                       model has several, NAME is required.
  --inputs=FILE        Safetensors file holding one tensor per data input,
                       looked up by the input's name in the manifest. f16 and
                       bf16 tensors are converted when the input is f32; any
                       other dtype or shape mismatch is an error. Not needed
                       when the entry point takes no data inputs (or --prompt
                       provides them all).
  --outputs=FILE       Write the outputs, named as in the manifest, to this
                       safetensors file. The file is replaced atomically.
  --weights=PATH       The parameters (the inputs the manifest marks "kind":
                       "parameter"): a safetensors file, a Hugging Face shard
                       index (model.safetensors.index.json), or a directory
                       holding params.safetensors, model.safetensors or
                       model.safetensors.index.json. Parameters are found by
                       name, or by the name with its base-model prefix
                       ("transformer.", "model.") removed or added, as in
                       checkpoints of the base model alone (GPT-2's hub
                       files: "wte.weight", "h.0.attn.c_attn.weight"). f16
                       and bf16 tensors are converted to f32 parameters; a
                       missing parameter or a shape mismatch is an error.
                       Known buffers (GPT-2's "attn.bias" and
                       "attn.masked_bias", "rotary_emb.inv_freq") are
                       ignored; other tensors that are no parameter are
                       ignored with a warning. Without --weights, parameters
                       are read from the --inputs file like data inputs.
  --init-missing       Initialize the parameters that the weights (or inputs)
                       file lacks, all of them when there is no such file,
                       from the manifest's init rules ("normal:<std>",
                       "zeros", "ones"), and list them on standard error.
                       A file that matches none of the parameters (but holds
                       tensors other than data inputs) is an error.
  --seed=N             Seed of --init-missing, 0 to 2^64-1 (default 0). The
                       values of a parameter depend only on the seed and its
                       name (see modrt/Weights.h), not on parameter order.
  --save-weights=FILE  Write the parameters that were used, initialized ones
                       included, to this safetensors file.
  --prompt=TEXT        For byte-level language models: fill the input named
                       `tokens` (i32 [B,S]) with the UTF-8 bytes of TEXT in
                       every row, right-padded with spaces (byte 0x20) to S,
                       and the input named `positions` (if any) with 0..S-1.
                       TEXT may be at most S bytes long. These inputs are not
                       read from --inputs.
  --top=N              For an output named `logits` [B,S,V]: print, for each
                       batch row, the N most likely next tokens after the last
                       prompt position (the last position without --prompt)
                       with their softmax probabilities, each as its byte
                       (printable ASCII as is, others as \xNN) and its id.
                       Without --print the outputs are then not printed.
  --print              Print the outputs (the default when neither --outputs
                       nor --top is given): a "name: dtype[shape]" line, then
                       one line per row of the last dimension, prefixed by
                       its index.
  --print=NAME[,NAME]  Print only the named outputs.
  --print-limit=N      Print at most N values per output (default 1000;
                       0 prints everything).
  --precision=N        Significant digits of printed floats, 1 to 17
                       (default 6).
  --repeat=N           Call the entry point N times (default 1) on the same
                       input buffers, print the median and fastest wall
                       time per call to standard error, and fail if any
                       call's outputs differ bit for bit from the first
                       call's (an entry point must never write into its
                       inputs). The threads used come from
                       $MODC_NUM_THREADS (default: every core).
  --help               Show this help.
)";

[[noreturn]] void usageError(const std::string &message) {
  throw Error(message + " (see mod-run --help)");
}

int64_t parseInteger(const std::string &option, const std::string &text,
                     int64_t min, int64_t max) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() ||
      value < min || value > max)
    usageError("invalid value '" + text + "' for " + option + ": expected an "
               "integer from " + std::to_string(min) + " to " +
               std::to_string(max));
  return value;
}

/// Returns nullopt when --help was given.
std::optional<Options> parseOptions(int argc, char **argv) {
  Options options;
  bool printGiven = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return std::nullopt;
    if (arg.rfind("--", 0) != 0) {
      if (!options.modelDir.empty())
        usageError("unexpected argument '" + arg + "': only one model "
                   "directory may be given");
      options.modelDir = arg;
      continue;
    }
    size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    bool hasValue = eq != std::string::npos;
    std::string value = hasValue ? arg.substr(eq + 1) : std::string();
    auto requireValue = [&] {
      if (!hasValue || value.empty())
        usageError("option " + name + " requires a value: " + name + "=...");
    };
    if (name == "--entry") {
      requireValue();
      options.entry = value;
    } else if (name == "--inputs") {
      requireValue();
      options.inputsPath = value;
    } else if (name == "--outputs") {
      requireValue();
      options.outputsPath = value;
    } else if (name == "--weights") {
      requireValue();
      options.weightsPath = value;
    } else if (name == "--init-missing") {
      if (hasValue) usageError("option --init-missing takes no value");
      options.initMissing = true;
    } else if (name == "--seed") {
      requireValue();
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(),
                                       options.seed);
      if (ec != std::errc() || ptr != value.data() + value.size())
        usageError("invalid value '" + value + "' for --seed: expected an "
                   "integer from 0 to 18446744073709551615");
    } else if (name == "--save-weights") {
      requireValue();
      options.saveWeightsPath = value;
    } else if (name == "--prompt") {
      requireValue();
      options.prompt = value;
    } else if (name == "--top") {
      requireValue();
      options.top = parseInteger(name, value, 1, INT64_MAX);
    } else if (name == "--print") {
      printGiven = true;
      if (hasValue) {
        std::string rest = value;
        for (size_t pos; !rest.empty();) {
          pos = rest.find(',');
          std::string one = rest.substr(0, pos);
          if (one.empty()) usageError("empty output name in --print");
          options.printOnly.push_back(one);
          rest = pos == std::string::npos ? "" : rest.substr(pos + 1);
        }
      }
    } else if (name == "--print-limit") {
      requireValue();
      options.printLimit = parseInteger(name, value, 0, INT64_MAX);
    } else if (name == "--repeat") {
      requireValue();
      options.repeat = parseInteger(name, value, 1, 1000000);
    } else if (name == "--precision") {
      requireValue();
      options.precision = int(parseInteger(name, value, 1, 17));
    } else {
      usageError("unknown option '" + arg + "'");
    }
  }
  if (options.modelDir.empty()) usageError("no model directory given");
  options.print = printGiven || (options.outputsPath.empty() && options.top == 0);
  return options;
}

const EntryPoint &selectEntry(const Model &model, const std::string &name) {
  if (!name.empty()) return model.entry(name);
  const Manifest &manifest = model.manifest();
  if (manifest.entryPoints.size() == 1) return manifest.entryPoints.front();
  throw Error("the model has several entry points; choose one with "
              "--entry=NAME (available: " + manifest.entryNames() + ")");
}

/// Loads (or initializes) the entry point's parameters as the options say.
std::map<std::string, Tensor> gatherParameters(const EntryPoint &entry,
                                               const Options &options) {
  std::vector<const TensorSpec *> specs;
  for (const TensorSpec &spec : entry.inputs)
    if (spec.isParameter()) specs.push_back(&spec);
  if (specs.empty()) {
    if (!options.weightsPath.empty() || options.initMissing)
      std::cerr << "mod-run: warning: entry point '" << entry.name
                << "' has no parameters; --weights and --init-missing have no effect\n";
    return {};
  }
  // Without --weights the parameters travel with the data in --inputs, as
  // they did before manifests told parameters apart.
  const bool fromInputs = options.weightsPath.empty();
  const std::string &source = fromInputs ? options.inputsPath : options.weightsPath;
  if (source.empty() && !options.initMissing)
    throw Error("entry point '" + entry.name + "' has " + std::to_string(specs.size()) +
                " parameters (the first is " + specs.front()->str() + " " +
                specs.front()->name + "); load them with --weights=FILE.safetensors "
                "or initialize them with --init-missing");
  ParameterLoadReport report;
  std::map<std::string, Tensor> parameters;
  try {
    parameters = loadParameters(entry, source, options.initMissing, options.seed, &report);
  } catch (const MissingParameterError &e) {
    throw Error(std::string(e.what()) + "; --init-missing initializes parameters the " +
                (fromInputs ? "inputs" : "weights") + " file lacks");
  }
  // The inputs file holds the data inputs too, so only a weights file's
  // strays are worth a warning.
  printLoadReport("mod-run", entry.name, source, report, options.seed, /*warnUnexpected=*/!fromInputs);
  return parameters;
}

/// The `tokens` (and `positions`) inputs of a byte-level language model for
/// --prompt: the prompt's bytes in every row, right-padded with spaces.
std::map<std::string, Tensor> promptInputs(const EntryPoint &entry,
                                           const std::string &prompt) {
  auto findInput = [&](const char *name) -> const TensorSpec * {
    for (const TensorSpec &spec : entry.inputs)
      if (spec.name == name && !spec.isParameter()) return &spec;
    return nullptr;
  };
  const TensorSpec *tokens = findInput("tokens");
  if (!tokens)
    throw Error("--prompt needs a data input named 'tokens' (i32 [B,S]); entry "
                "point '" + entry.name + "' has none");
  if (tokens->dtype != DType::I32 || tokens->shape.size() != 2)
    throw Error("--prompt needs input 'tokens' to be i32 [B,S], but it is " +
                tokens->str());
  const int64_t batch = tokens->shape[0], seqLen = tokens->shape[1];
  if (int64_t(prompt.size()) > seqLen)
    throw Error("--prompt is " + std::to_string(prompt.size()) +
                " bytes long, but entry point '" + entry.name +
                "' takes sequences of " + std::to_string(seqLen) + " tokens");
  std::map<std::string, Tensor> inputs;
  Tensor tokenTensor(DType::I32, tokens->shape);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seqLen; ++s)
      tokenTensor.data<int32_t>()[b * seqLen + s] =
          s < int64_t(prompt.size()) ? int32_t(static_cast<unsigned char>(prompt[size_t(s)]))
                                     : 0x20;
  inputs.emplace("tokens", std::move(tokenTensor));
  if (const TensorSpec *positions = findInput("positions")) {
    if (positions->dtype != DType::I32 || positions->shape != tokens->shape)
      throw Error("--prompt needs input 'positions' to be " + tokens->str() +
                  " like 'tokens', but it is " + positions->str());
    Tensor positionTensor(DType::I32, positions->shape);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t s = 0; s < seqLen; ++s)
        positionTensor.data<int32_t>()[b * seqLen + s] = int32_t(s);
    inputs.emplace("positions", std::move(positionTensor));
  }
  return inputs;
}

/// Every input in manifest order: parameters from `parameters`, inputs the
/// prompt made from `provided`, the rest picked out of the inputs file by
/// name (half-precision floats widened when the model wants f32).
std::vector<Tensor> gatherInputs(const EntryPoint &entry,
                                 const std::string &inputsPath,
                                 std::map<std::string, Tensor> &parameters,
                                 std::map<std::string, Tensor> &provided) {
  std::string needed;
  for (const TensorSpec &spec : entry.inputs)
    if (!spec.isParameter() && !provided.count(spec.name))
      needed += (needed.empty() ? "" : ", ") + spec.str() + " " + spec.name;
  if (!needed.empty() && inputsPath.empty())
    throw Error("entry point '" + entry.name + "' takes inputs (" + needed +
                "); pass them with --inputs=FILE.safetensors");
  SafetensorsFile file;
  if (!needed.empty()) file = readSafetensors(inputsPath);

  std::vector<Tensor> inputs;
  for (const TensorSpec &spec : entry.inputs) {
    if (spec.isParameter()) {
      inputs.push_back(std::move(parameters.at(spec.name)));
      continue;
    }
    if (auto it = provided.find(spec.name); it != provided.end()) {
      inputs.push_back(std::move(it->second));
      continue;
    }
    auto it = file.tensors.find(spec.name);
    if (it == file.tensors.end())
      throw Error(inputsPath + ": no tensor named '" + spec.name +
                  "' for input " + spec.str() + " of entry point '" +
                  entry.name + "'");
    Tensor &tensor = it->second;
    if (tensor.dtype() != spec.dtype) {
      bool widen = spec.dtype == DType::F32 &&
                   (tensor.dtype() == DType::F16 || tensor.dtype() == DType::BF16);
      if (!widen)
        throw Error(inputsPath + ": tensor '" + spec.name + "' is " +
                    manifestDTypeName(tensor.dtype()) + "[" +
                    formatShape(tensor.shape()) + "], but the input must be " +
                    spec.str());
      tensor = tensor.toF32();
    }
    if (tensor.shape() != spec.shape)
      throw Error(inputsPath + ": tensor '" + spec.name + "' is " +
                  manifestDTypeName(tensor.dtype()) + "[" +
                  formatShape(tensor.shape()) + "], but the input must be " +
                  spec.str());
    inputs.push_back(std::move(tensor));
  }
  return inputs;
}

/// A token id as its byte: printable ASCII as is (except the quote and the
/// backslash), other bytes as \xNN; ids beyond a byte have no character.
std::string tokenText(int64_t id) {
  if (id < 0 || id > 255) return "(no byte)";
  char buffer[8];
  if (id >= 0x20 && id < 0x7F && id != '\'' && id != '\\')
    std::snprintf(buffer, sizeof buffer, "'%c'", char(id));
  else
    std::snprintf(buffer, sizeof buffer, "'\\x%02X'", unsigned(id));
  return buffer;
}

/// --top: the n most likely next tokens after `position` in every row.
void printTopTokens(const EntryPoint &entry, const std::vector<Tensor> &outputs,
                    int64_t n, std::optional<int64_t> position) {
  const Tensor *logits = nullptr;
  for (size_t i = 0; i < outputs.size(); ++i)
    if (entry.outputs[i].name == "logits") logits = &outputs[i];
  if (!logits)
    throw Error("--top needs an output named 'logits' [B,S,V]; entry point '" +
                entry.name + "' has none");
  const std::vector<int64_t> &shape = logits->shape();
  DType d = logits->dtype();
  if (shape.size() != 3 || shape[1] == 0 || shape[2] == 0 ||
      (d != DType::F32 && d != DType::F64 && d != DType::F16 && d != DType::BF16))
    throw Error("--top needs output 'logits' to be a float [B,S,V] tensor with S, V > 0, "
                "but it is " + std::string(manifestDTypeName(d)) + "[" +
                formatShape(shape) + "]");
  const int64_t seqLen = shape[1], vocab = shape[2];
  const int64_t at = position.value_or(seqLen - 1);
  n = std::min(n, vocab);
  for (int64_t b = 0; b < shape[0]; ++b) {
    const int64_t base = (b * seqLen + at) * vocab;
    double largest = -INFINITY;
    for (int64_t v = 0; v < vocab; ++v)
      largest = std::max(largest, logits->elementAsDouble(base + v));
    std::vector<double> prob(static_cast<size_t>(vocab), 0.0);
    double total = 0.0;
    for (int64_t v = 0; v < vocab; ++v)
      total += prob[size_t(v)] = std::exp(logits->elementAsDouble(base + v) - largest);
    std::vector<int64_t> ids(static_cast<size_t>(vocab));
    for (int64_t v = 0; v < vocab; ++v) ids[size_t(v)] = v;
    // Most likely first; equal probabilities by ascending id.
    std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int64_t x, int64_t y) {
      return prob[size_t(x)] > prob[size_t(y)] || (prob[size_t(x)] == prob[size_t(y)] && x < y);
    });
    std::cout << "top " << n << " next tokens after position " << at << " of row " << b
              << ":\n";
    for (int64_t r = 0; r < n; ++r) {
      char line[96];
      std::snprintf(line, sizeof line, "  %-10s id %-6lld p=%.6f\n",
                    tokenText(ids[size_t(r)]).c_str(), static_cast<long long>(ids[size_t(r)]),
                    prob[size_t(ids[size_t(r)])] / total);
      std::cout << line;
    }
  }
}

void printValue(std::string &line, const Tensor &tensor, int64_t index,
                int precision) {
  char buf[64];
  double value = tensor.elementAsDouble(index);
  switch (tensor.dtype()) {
  case DType::F32: case DType::F64: case DType::F16: case DType::BF16:
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    break;
  case DType::I64: {
    int64_t v;
    std::memcpy(&v, static_cast<const char *>(tensor.rawData()) + index * 8, 8);
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    break;
  }
  default:
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(value));
    break;
  }
  line += ' ';
  line += buf;
}

/// Prints "name: dtype[shape]" and then each row of the last dimension as
/// "[i,j,:] v0 v1 ...", stopping after `limit` values (0: no limit).
void printTensor(const std::string &name, const Tensor &tensor, int64_t limit,
                 int precision) {
  std::cout << name << ": " << manifestDTypeName(tensor.dtype()) << "["
            << formatShape(tensor.shape()) << "]\n";
  const std::vector<int64_t> &shape = tensor.shape();
  const int64_t total = tensor.numElements();
  if (total == 0) {
    std::cout << "(no elements)\n";
    return;
  }
  const int64_t rowLength = shape.empty() ? 1 : shape.back();
  const int64_t shown = limit == 0 ? total : std::min(limit, total);
  std::vector<int64_t> index(shape.size() > 0 ? shape.size() - 1 : 0, 0);
  for (int64_t start = 0; start < shown; start += rowLength) {
    std::string line = "[";
    for (size_t d = 0; d < index.size(); ++d)
      line += std::to_string(index[d]) + ",";
    line += shape.empty() ? "]" : ":]";
    int64_t end = std::min(start + rowLength, shown);
    for (int64_t i = start; i < end; ++i) printValue(line, tensor, i, precision);
    if (end < start + rowLength) line += " ...";
    std::cout << line << '\n';
    // Advance the row index like an odometer.
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  if (shown < total)
    std::cout << "... " << (total - shown)
              << " more values not shown (--print-limit=0 shows all)\n";
}

int run(const Options &options) {
  Model model = Model::load(options.modelDir);
  // Printed before the call so that a failing call (e.g. no GPU) still
  // says how the model was compiled.
  if (model.manifest().gemmPrecision != "f32")
    std::cerr << "mod-run: GEMM precision "
              << model.manifest().gemmPrecisionDescription() << '\n';
  const EntryPoint &entry = selectEntry(model, options.entry);
  std::map<std::string, Tensor> parameters = gatherParameters(entry, options);
  // Saved before the call so the weights survive a failing run.
  if (!options.saveWeightsPath.empty())
    saveParameters(options.saveWeightsPath, parameters);
  std::map<std::string, Tensor> provided;
  if (options.prompt) provided = promptInputs(entry, *options.prompt);
  std::vector<Tensor> inputs =
      gatherInputs(entry, options.inputsPath, parameters, provided);
  std::vector<const Tensor *> inputPointers;
  for (const Tensor &input : inputs) inputPointers.push_back(&input);
  // A CUDA model keeps device-resident inputs (its parameters) on the
  // device: uploaded once, not copied on every --repeat call. An input the
  // entry point updates in place stays a host tensor (call() must not
  // change it), copied for each call.
  for (size_t i = 0; i < entry.inputs.size(); ++i) {
    const TensorSpec &spec = entry.inputs[i];
    bool updated = false;
    for (const TensorSpec &out : entry.outputs)
      updated |= out.aliasOf == i;
    if (spec.deviceResident && !updated) {
      model.upload(spec.name, inputs[i]);
      inputPointers[i] = nullptr;
    }
  }

  std::vector<Tensor> outputs;
  std::vector<double> millis;
  for (int64_t call = 0; call < options.repeat; ++call) {
    auto start = std::chrono::steady_clock::now();
    std::vector<Tensor> result = model.call(entry.name, inputPointers);
    millis.push_back(std::chrono::duration<double, std::milli>(
                         std::chrono::steady_clock::now() - start)
                         .count());
    if (call == 0) {
      outputs = std::move(result);
      continue;
    }
    for (size_t i = 0; i < outputs.size(); ++i)
      if (result[i].byteSize() != outputs[i].byteSize() ||
          std::memcmp(result[i].rawData(), outputs[i].rawData(),
                      outputs[i].byteSize()) != 0)
        throw Error("call " + std::to_string(call + 1) + " of '" + entry.name +
                    "' gave a different '" + entry.outputs[i].name +
                    "' than call 1 on the same inputs");
  }
  if (options.repeat > 1) {
    std::vector<double> sorted = millis;
    std::sort(sorted.begin(), sorted.end());
    std::fprintf(stderr, "mod-run: %s: %lld calls, median %.3f ms, fastest %.3f ms "
                 "(%d threads)\n", entry.name.c_str(), (long long)options.repeat,
                 sorted[sorted.size() / 2], sorted.front(), configuredThreadCount());
  }

  if (!options.outputsPath.empty()) {
    std::map<std::string, Tensor> named;
    for (size_t i = 0; i < outputs.size(); ++i)
      named.emplace(entry.outputs[i].name, outputs[i]);
    writeSafetensors(options.outputsPath, named,
                     {{"modc.entry_point", entry.name}});
  }
  for (const std::string &name : options.printOnly)
    if (std::none_of(entry.outputs.begin(), entry.outputs.end(),
                     [&](const TensorSpec &o) { return o.name == name; }))
      throw Error("--print names '" + name + "', which is not an output of '" +
                  entry.name + "'");
  if (options.print)
    for (size_t i = 0; i < outputs.size(); ++i)
      if (options.printOnly.empty() ||
          std::find(options.printOnly.begin(), options.printOnly.end(),
                    entry.outputs[i].name) != options.printOnly.end())
        printTensor(entry.outputs[i].name, outputs[i], options.printLimit,
                    options.precision);
  if (options.top > 0) {
    std::optional<int64_t> lastPromptPosition;
    if (options.prompt) lastPromptPosition = int64_t(options.prompt->size()) - 1;
    printTopTokens(entry, outputs, options.top, lastPromptPosition);
  }
  std::cout.flush();
  if (!std::cout) throw Error("cannot write to standard output");
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  try {
    std::optional<Options> options = parseOptions(argc, argv);
    if (!options) {
      std::cout << kUsage;
      return 0;
    }
    return run(*options);
  } catch (const std::bad_alloc &) {
    std::cerr << "mod-run: error: out of memory\n";
  } catch (const std::exception &e) {
    std::cerr << "mod-run: error: " << e.what() << '\n';
  }
  return 1;
}
