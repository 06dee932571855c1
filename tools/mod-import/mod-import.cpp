//===- mod-import.cpp - Hugging Face config -> dense transformer MLIR -----===//
//
// mod-import config.json --batch=B --seq=S [-o out.mlir]
//
// Reads a Hugging Face style config.json (model_type gpt2 or llama) and
// writes `func.func @forward` for the dense decoder-only model in upstream
// dialects, ready for `mod-opt --mod-dense-to-mod` or `mod-compile`. A
// regular output file is written through a temporary and renamed, so a
// failed run never leaves a truncated module behind; devices and FIFOs are
// written directly.
//
//===----------------------------------------------------------------------===//

#include "mod/Frontend/Config.h"
#include "mod/Frontend/Import.h"
#include "modrt/FileUtil.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory category("mod-import options");
static cl::opt<std::string>
    configFile(cl::Positional, cl::Required, cl::value_desc("config.json"),
               cl::desc("<config.json> ('-' reads stdin)"),
               cl::cat(category));
static cl::opt<long long>
    batchSize("batch", cl::Required, cl::value_desc("B"),
              cl::desc("Number of sequences per call (static batch size, "
                       ">= 1)"),
              cl::cat(category));
static cl::opt<long long>
    seqLen("seq", cl::Required, cl::value_desc("S"),
           cl::desc("Tokens per sequence (static, >= 1, at most n_positions "
                    "for gpt2 or max_position_embeddings for llama)"),
           cl::cat(category));
static cl::opt<std::string>
    outputFile("o", cl::init("-"), cl::value_desc("file"),
               cl::desc("Output .mlir file (default: '-', stdout)"),
               cl::cat(category));
static cl::list<std::string> ignoredFields(
    "ignore-config-field", cl::value_desc("name"),
    cl::desc("Accept this top-level configuration field without reading "
             "it (repeatable). Fields mod-import does not know are errors, "
             "since they might change the computation; name one here only "
             "when you know it does not"),
    cl::cat(category));
static cl::opt<bool>
    verbose("v", cl::init(false),
            cl::desc("Print a summary of the imported model on stderr"),
            cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "mod-import: error: " << message << "\n";
  return 1;
}

/// Writes the module through libmodrt's writeFileAtomically: a regular file
/// is replaced by a rename, so a failed run never leaves a truncated module;
/// devices, FIFOs and '-' are written directly (renaming over /dev/null
/// would replace the device with a regular file).
static LogicalResult writeModule(ModuleOp module, StringRef path) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  os << "\n";
  if (path == "-") {
    llvm::outs() << text;
    llvm::outs().flush();
    if (llvm::outs().has_error()) {
      fail("writing standard output failed");
      return failure();
    }
    return success();
  }
  if (std::optional<std::string> error =
          modrt::tryWriteFileAtomically(path.str(), text)) {
    fail(*error);
    return failure();
  }
  return success();
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "mod-import: write a dense decoder-only transformer as MLIR\n\n"
      "Reads a Hugging Face style config.json and writes\n"
      "  func.func @forward(<parameters>, %tokens: tensor<BxSxi32>,\n"
      "                     %positions: tensor<BxSxi32>)\n"
      "      -> tensor<BxSxVOCABxf32>  (the logits)\n"
      "in the func, linalg, tensor, arith and math dialects with static "
      "shapes.\nEach parameter carries mod.name (its Hugging Face tensor "
      "name), mod.kind =\n\"parameter\" and mod.init (normal:<std>, zeros or "
      "ones). The causal mask,\nposition embeddings and RoPE angles are "
      "computed from %positions (query i\nsees key j iff positions[b,j] <= "
      "positions[b,i]). Token and position ids\noutside their tables are "
      "clamped to the nearest row.\n\n"
      "model_type gpt2 requires n_layer, n_embd, n_head, n_positions, "
      "vocab_size,\nlayer_norm_epsilon; optional n_inner (default 4*n_embd), "
      "tie_word_embeddings\n(default true), activation_function (gelu_new or "
      "gelu_pytorch_tanh).\n"
      "model_type llama requires hidden_size, num_hidden_layers, "
      "num_attention_heads,\nintermediate_size, vocab_size, rms_norm_eps; "
      "optional num_key_value_heads\n(default num_attention_heads), head_dim "
      "(default hidden_size /\nnum_attention_heads), tie_word_embeddings "
      "(default false),\nmax_position_embeddings (bounds --seq), hidden_act "
      "(silu), and RoPE in either\nspelling: transformers 5's "
      "rope_parameters {rope_theta, rope_type, ...} or\n4.x's top-level "
      "rope_theta (default 10000) and rope_scaling {type|rope_type,\n...} "
      "(where both give a value they must agree). rope_type default;\n"
      "linear {factor}; dynamic {factor} (frequencies grow with the sequence "
      "length\nonly beyond max_position_embeddings, which --seq may not "
      "exceed, so they are\nthe default ones); llama3 {factor, "
      "low_freq_factor, high_freq_factor,\noriginal_max_position_embeddings}; "
      "yarn {factor, attention_factor, beta_fast,\nbeta_slow, mscale, "
      "mscale_all_dim, original_max_position_embeddings,\ntruncate}. Other "
      "rope types and keys are errors.\n\n"
      "Every other field must be known not to change the forward "
      "computation\n(bookkeeping, token ids, generation defaults, dropout, "
      "initializer_range,\ndtype, ...) or is an error; see "
      "--ignore-config-field.\n\n"
      "Limits (sizes are computed with overflow checks; anything beyond is an\n"
      "error): at most 1024 layers; every size (hidden, heads, kv heads,\n"
      "head_dim, intermediate, vocab_size, n_positions, --batch, --seq) at\n"
      "most 1048576; any one tensor (parameter or activation, e.g. the\n"
      "[B,S,vocab] logits or the [B,heads,S,S] attention scores) at most 2^36\n"
      "elements, all parameters together at most 2^40; JSON nested at most 64\n"
      "levels deep. Duplicate keys in the configuration are an error.\n");

  auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(configFile);
  if (std::error_code ec = buffer.getError())
    return fail("cannot read " + configFile + ": " + ec.message());

  llvm::Expected<mod::frontend::TransformerConfig> config =
      mod::frontend::parseTransformerConfig((*buffer)->getBuffer(),
                                            ignoredFields);
  if (!config)
    return fail(configFile + ": " + llvm::toString(config.takeError()));
  if (llvm::Error err =
          mod::frontend::checkInstanceShape(*config, batchSize, seqLen))
    return fail(llvm::toString(std::move(err)));

  MLIRContext context;
  // Anything the verifier says is an importer bug; keep the tool's prefix.
  ScopedDiagnosticHandler handler(&context, [](Diagnostic &diag) {
    llvm::errs() << "mod-import: "
                 << (diag.getSeverity() == DiagnosticSeverity::Error
                         ? "error: internal error: "
                         : "note: ")
                 << diag << " (at " << diag.getLocation() << ")\n";
    return success();
  });
  OwningOpRef<ModuleOp> module = mod::frontend::importTransformer(
      context, *config, batchSize, seqLen);
  if (!module)
    return fail("the imported module failed to verify");

  if (verbose) {
    auto fn = cast<func::FuncOp>(module->lookupSymbol("forward"));
    llvm::errs() << "mod-import: " << mod::frontend::getModelTypeName(
                                          config->family)
                 << ": " << config->numLayers << " layers, hidden "
                 << config->hiddenSize << ", " << config->numHeads
                 << " heads (" << config->numKVHeads << " kv), vocab "
                 << config->vocabSize << ", " << fn.getNumArguments() - 2
                 << " parameters, batch " << batchSize << ", seq " << seqLen
                 << "\n";
  }
  if (failed(writeModule(*module, outputFile)))
    return 1;
  return 0;
}
