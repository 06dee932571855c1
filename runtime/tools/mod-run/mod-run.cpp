//===- mod-run.cpp - Run an entry point of a compiled modc model ----------===//
//
// mod-run <model-dir> [--entry=NAME] [--inputs=FILE] [--outputs=FILE]
//         [--print] [--print-limit=N] [--precision=N]
//
// Reads the entry point's inputs by argument name from a safetensors file,
// calls the compiled code through libmodrt and writes the outputs (named as
// in the manifest) to a safetensors file and/or prints them.
//
//===----------------------------------------------------------------------===//

#include "modrt/Model.h"
#include "modrt/Safetensors.h"

#include <algorithm>
#include <charconv>
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
  bool print = false;
  int64_t printLimit = kDefaultPrintLimit;
  int precision = kDefaultPrecision;
};

const char kUsage[] =
    R"(usage: mod-run <model-dir> [options]

Runs one entry point of a model compiled by mod-compile. <model-dir> holds
manifest.json and the shared library it names.

Options:
  --entry=NAME         Entry point to run. Defaults to the only one; when the
                       model has several, NAME is required.
  --inputs=FILE        Safetensors file holding one tensor per input, looked
                       up by the input's name in the manifest. f16 and bf16
                       tensors are converted when the input is f32; any other
                       dtype or shape mismatch is an error. Not needed when
                       the entry point takes no inputs.
  --outputs=FILE       Write the outputs, named as in the manifest, to this
                       safetensors file. The file is replaced atomically.
  --print              Print the outputs (the default when --outputs is not
                       given): a "name: dtype[shape]" line, then one line per
                       row of the last dimension, prefixed by its index.
  --print-limit=N      Print at most N values per output (default 1000;
                       0 prints everything).
  --precision=N        Significant digits of printed floats, 1 to 17
                       (default 6).
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
    } else if (name == "--print") {
      if (hasValue) usageError("option --print takes no value");
      printGiven = true;
    } else if (name == "--print-limit") {
      requireValue();
      options.printLimit = parseInteger(name, value, 0, INT64_MAX);
    } else if (name == "--precision") {
      requireValue();
      options.precision = int(parseInteger(name, value, 1, 17));
    } else {
      usageError("unknown option '" + arg + "'");
    }
  }
  if (options.modelDir.empty()) usageError("no model directory given");
  options.print = printGiven || options.outputsPath.empty();
  return options;
}

const EntryPoint &selectEntry(const Model &model, const std::string &name) {
  if (!name.empty()) return model.entry(name);
  const Manifest &manifest = model.manifest();
  if (manifest.entryPoints.size() == 1) return manifest.entryPoints.front();
  throw Error("the model has several entry points; choose one with "
              "--entry=NAME (available: " + manifest.entryNames() + ")");
}

/// Picks each input out of the file by name, converting half-precision
/// floats when the model wants f32.
std::vector<Tensor> gatherInputs(const EntryPoint &entry,
                                 const std::string &inputsPath) {
  std::vector<Tensor> inputs;
  if (entry.inputs.empty()) return inputs;
  if (inputsPath.empty()) {
    std::string names;
    for (const TensorSpec &spec : entry.inputs)
      names += (names.empty() ? "" : ", ") + spec.str() + " " + spec.name;
    throw Error("entry point '" + entry.name + "' takes inputs (" + names +
                "); pass them with --inputs=FILE.safetensors");
  }
  SafetensorsFile file = readSafetensors(inputsPath);
  for (const TensorSpec &spec : entry.inputs) {
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
    inputs.push_back(std::move(tensor));
  }
  return inputs;
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
  const EntryPoint &entry = selectEntry(model, options.entry);
  std::vector<Tensor> inputs = gatherInputs(entry, options.inputsPath);
  std::vector<const Tensor *> inputPointers;
  for (const Tensor &input : inputs) inputPointers.push_back(&input);

  std::vector<Tensor> outputs = model.call(entry.name, inputPointers);

  if (!options.outputsPath.empty()) {
    std::map<std::string, Tensor> named;
    for (size_t i = 0; i < outputs.size(); ++i)
      named.emplace(entry.outputs[i].name, outputs[i]);
    writeSafetensors(options.outputsPath, named,
                     {{"modc.entry_point", entry.name}});
  }
  if (options.print)
    for (size_t i = 0; i < outputs.size(); ++i)
      printTensor(entry.outputs[i].name, outputs[i], options.printLimit,
                  options.precision);
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
