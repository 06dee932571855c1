//===- ConfigFuzzer.cpp - libFuzzer target: mod-import's config reader ----===//
//
// Arbitrary text as a Hugging Face config.json through
// parseTransformerConfig and checkInstanceShape, and every configuration
// they accept through importTransformer (which must then produce a module
// that verifies). Errors are fine; crashes, undefined behaviour and
// unbounded memory are not.
//
//===----------------------------------------------------------------------===//

#include "mod/Frontend/Config.h"
#include "mod/Frontend/Import.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <cstdlib>

using namespace mlir;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<mod::frontend::TransformerConfig> config =
      mod::frontend::parseTransformerConfig(text);
  if (!config) {
    llvm::consumeError(config.takeError());
    return 0;
  }
  // The smallest instance: one sequence of (up to) two tokens.
  const int64_t batch = 1;
  const int64_t seq = std::min<int64_t>(2, config->maxPositions.value_or(2));
  if (llvm::Error err = mod::frontend::checkInstanceShape(*config, batch, seq)) {
    llvm::consumeError(std::move(err));
    return 0;
  }
  static MLIRContext context;
  static ScopedDiagnosticHandler quiet(&context,
                                       [](Diagnostic &) { return success(); });
  OwningOpRef<ModuleOp> module =
      mod::frontend::importTransformer(context, *config, batch, seq);
  // A configuration the reader accepted must import.
  if (!module)
    std::abort();
  return 0;
}
