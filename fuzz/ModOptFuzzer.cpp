//===- ModOptFuzzer.cpp - libFuzzer target: mod-opt over modc's passes ----===//
//
// An input is a lit test file: MLIR text whose `RUN:` lines name the mod-opt
// passes to run. The target parses each `// -----` chunk and runs the
// passes of one of the file's mod-opt RUN lines (or, without one, one of
// modc's passes picked from the input's hash), as `mod-opt` would.
// Diagnostics are expected; crashes, undefined behaviour, hangs and
// unbounded memory are not.
//
// The custom mutator knows what makes these inputs interesting: it mostly
// replaces an integer literal (a dimension, a capacity, an option value)
// with a boundary value, or deletes or duplicates a line, and otherwise
// falls back to libFuzzer's byte-level mutations. Seeds are the lit suite's
// .mlir files (fuzz/run.sh collects them).
//
//===----------------------------------------------------------------------===//

#include "mod/InitAllModc.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

#include "llvm/ADT/Hashing.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace mlir;

extern "C" size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t maxSize);

namespace {

/// modc's own passes, for inputs that name none.
const char *const kDefaultPipelines[] = {
    "mod-dense-to-mod",
    "mod-dense-to-mod{schedule=every every=1 offset=0}",
    "mod-flop-report",
    "mod-expand-routed-blocks",
    "mod-lower-to-linalg",
    "canonicalize",
    "mod-cpu-lowering",
};

bool isRegisteredPass(StringRef name) {
  return PassInfo::lookup(name) || PassPipelineInfo::lookup(name);
}

/// Turns the arguments of one `mod-opt` RUN line into a textual pipeline:
/// `--name` and `--name=options` (quotes removed) for every registered pass
/// or pipeline; other flags are ignored.
std::string pipelineFromRunLine(StringRef args) {
  std::string pipeline;
  args = args.take_until([](char c) { return c == '|'; });
  SmallVector<StringRef> tokens;
  // Split on spaces outside quotes.
  size_t start = 0;
  char quote = 0;
  for (size_t i = 0; i <= args.size(); ++i) {
    char c = i < args.size() ? args[i] : ' ';
    if (quote) {
      if (c == quote)
        quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      continue;
    }
    if (c == ' ' || c == '\t') {
      if (i > start)
        tokens.push_back(args.slice(start, i));
      start = i + 1;
    }
  }
  for (StringRef token : tokens) {
    if (!token.consume_front("-"))
      continue;
    token.consume_front("-");
    auto [name, value] = token.split('=');
    if (!isRegisteredPass(name))
      continue;
    std::string options = value.str();
    llvm::erase(options, '\'');
    llvm::erase(options, '"');
    if (options.size() >= 2 && options.front() == '{' && options.back() == '}')
      options = options.substr(1, options.size() - 2);
    if (!pipeline.empty())
      pipeline += ",";
    pipeline += name.str();
    if (!options.empty())
      pipeline += "{" + options + "}";
  }
  return pipeline;
}

std::string choosePipeline(StringRef text) {
  std::vector<std::string> candidates;
  for (StringRef line : llvm::split(text, '\n')) {
    size_t run = line.find("RUN:");
    if (run == StringRef::npos)
      continue;
    StringRef rest = line.drop_front(run + 4);
    size_t tool = rest.find("mod-opt");
    if (tool == StringRef::npos)
      continue;
    std::string pipeline =
        pipelineFromRunLine(rest.drop_front(tool + strlen("mod-opt")));
    if (!pipeline.empty())
      candidates.push_back(pipeline);
  }
  size_t hash = llvm::hash_value(text);
  if (candidates.empty())
    return kDefaultPipelines[hash % std::size(kDefaultPipelines)];
  return candidates[hash % candidates.size()];
}

DialectRegistry &getRegistry() {
  static DialectRegistry *registry = [] {
    mod::registerModcPasses();
    auto *r = new DialectRegistry();
    mod::registerModcDialects(*r);
    return r;
  }();
  return *registry;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  StringRef text(reinterpret_cast<const char *>(data), size);
  DialectRegistry &registry = getRegistry();
  std::string pipeline = choosePipeline(text);
  SmallVector<StringRef> chunks;
  text.split(chunks, "// -----");
  for (StringRef chunk : chunks) {
    MLIRContext context(registry, MLIRContext::Threading::DISABLED);
    ScopedDiagnosticHandler quiet(&context,
                                  [](Diagnostic &) { return success(); });
    OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(chunk, &context);
    if (!module)
      continue;
    PassManager pm(&context, ModuleOp::getOperationName(),
                   OpPassManager::Nesting::Implicit);
    std::string error;
    llvm::raw_string_ostream errorStream(error);
    if (failed(parsePassPipeline(pipeline, pm, errorStream)))
      continue;
    (void)pm.run(*module);
  }
  return 0;
}

/// Replaces an integer literal with a boundary value, deletes or duplicates
/// a line, or leaves the input to libFuzzer's own mutations.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size,
                                          size_t maxSize, unsigned seed) {
  std::minstd_rand rng(seed);
  std::string text(reinterpret_cast<char *>(data), size);
  unsigned mode = rng() % 8;
  if (mode < 4) {
    std::vector<std::pair<size_t, size_t>> numbers;
    for (size_t i = 0; i < text.size();) {
      if (!llvm::isDigit(text[i])) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < text.size() && llvm::isDigit(text[j]))
        ++j;
      numbers.emplace_back(i, j - i);
      i = j;
    }
    if (!numbers.empty()) {
      static const char *const interesting[] = {
          "0", "1", "2", "3", "4", "7", "8", "16", "255", "256", "1024",
          "65535", "65536", "2147483647", "2147483648", "4294967295",
          "4294967296", "1000000000", "4611686018427387904",
          "9223372036854775807", "9223372036854775808",
          "18446744073709551615"};
      auto [at, length] = numbers[rng() % numbers.size()];
      std::string replacement;
      if (rng() % 4 == 0) {
        // Off by one from the old value (when it fits).
        unsigned long long old = std::strtoull(text.substr(at, length).c_str(),
                                               nullptr, 10);
        replacement = std::to_string(rng() % 2 ? old + 1 : old - (old > 0));
      } else {
        replacement = interesting[rng() % std::size(interesting)];
      }
      text.replace(at, length, replacement);
    }
  } else if (mode < 6) {
    std::vector<size_t> lineStarts{0};
    for (size_t i = 0; i < text.size(); ++i)
      if (text[i] == '\n' && i + 1 < text.size())
        lineStarts.push_back(i + 1);
    size_t pick = rng() % lineStarts.size();
    size_t begin = lineStarts[pick];
    size_t end = text.find('\n', begin);
    end = end == std::string::npos ? text.size() : end + 1;
    if (mode == 4)
      text.erase(begin, end - begin);
    else
      text.insert(begin, text.substr(begin, end - begin));
  } else {
    return LLVMFuzzerMutate(data, size, maxSize);
  }
  if (text.size() > maxSize)
    return LLVMFuzzerMutate(data, size, maxSize);
  std::memcpy(data, text.data(), text.size());
  return text.size();
}
