//===- Weights.h - Load, initialize and save model parameters ---*- C++ -*-===//
//
// The parameters of an entry point are the inputs its manifest marks
// "kind": "parameter". They are stored under their (Hugging Face) names in a
// safetensors file, the format the ecosystem exchanges weights in, and any
// that a file lacks can be initialized from the manifest's "init" rule.
//
// Checkpoints as published are read as they are (see readWeights and
// loadParameters): sharded files with a `model.safetensors.index.json`,
// names without the base model's prefix (GPT-2's hub files say `wte.weight`
// where GPT2LMHeadModel says `transformer.wte.weight`), and the non-parameter
// buffers that some of them carry (`attn.bias`, `attn.masked_bias`,
// `rotary_emb.inv_freq`).
//
// Initialization is reproducible and independent of parameter order: each
// tensor draws from its own stream, seeded with FNV-1a-64(name) XOR seed.
// The stream is xoshiro256** (state filled by splitmix64 from that seed);
// uniform doubles are the top 53 bits times 2^-53, and normal values come
// from the Box-Muller transform, both outputs of a pair used in turn:
//   u1 = 1 - uniform() (in (0, 1]), u2 = uniform(),
//   z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2).
// Values are std * z rounded to the parameter's dtype. std::normal_distribution
// is not used because its output differs between standard libraries; the
// values here depend only on the C library's log, sqrt, cos and sin.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_WEIGHTS_H
#define MODRT_WEIGHTS_H

#include "modrt/Manifest.h"
#include "modrt/Safetensors.h"
#include "modrt/Tensor.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace modrt {

/// Thrown by loadParameters for a parameter the file lacks, so that a tool
/// can suggest how to initialize it.
class MissingParameterError : public Error {
public:
  using Error::Error;
};

/// What loadParameters did besides loading, for the caller to report.
struct ParameterLoadReport {
  /// Parameters the file lacked, initialized because initMissing was set.
  std::vector<std::string> initialized;
  /// Tensors in the file that are no parameter of the entry point (ignored).
  std::vector<std::string> unexpected;
  /// Known non-parameter buffers in the file (ignored without a warning).
  std::vector<std::string> ignoredBuffers;
  /// Parameters read from a tensor of another name: (parameter, tensor),
  /// e.g. ("transformer.wte.weight", "wte.weight").
  std::vector<std::pair<std::string, std::string>> renamed;
};

/// The tensors of a weights file as published: `path` is a safetensors file,
/// a `*.safetensors.index.json` shard index (Hugging Face's
/// {"weight_map": {tensor: shard file}}, shard files relative to the index's
/// directory), or a directory holding `params.safetensors` (mod-train),
/// `model.safetensors` or `model.safetensors.index.json`, tried in that
/// order. Every tensor the index maps must be in its shard, and no tensor
/// may be in two shards. Errors name the file and the tensor.
SafetensorsFile readWeights(const std::string &path);

/// True for the names of buffers that published checkpoints carry but that
/// are no parameter of any model (the causal-mask buffers `*.attn.bias` and
/// `*.attn.masked_bias` of GPT-2, LLaMA's `*.rotary_emb.inv_freq`).
/// loadParameters ignores them unless the model has a parameter of that
/// very name.
bool isKnownBuffer(const std::string &name);

/// Every parameter of `entry`, by name, read from the weights at
/// `safetensorsPath` (anything readWeights accepts). A parameter is found by
/// exact name or, failing that, by the name with its base-model prefix
/// (`transformer.`, `model.`) removed, or with one added: the layouts of the
/// published GPT-2 and LLaMA checkpoints; each tensor serves one parameter.
/// A tensor of the parameter's dtype is taken as is, f16 and bf16 tensors
/// are widened when the parameter is f32, anything else, and any shape
/// mismatch, is an Error naming the tensor and both types. A missing tensor
/// is a MissingParameterError naming it unless `initMissing`, in which case
/// it is initialized with initParameter(spec, seed) and listed in the
/// report. With `initMissing`, a file that holds tensors (other than the
/// entry's data inputs and known buffers) but matches none of the
/// parameters is an Error: it is another model's, or another layout, and
/// initializing everything would silently discard it. An empty
/// `safetensorsPath` means no file: every parameter is then missing.
std::map<std::string, Tensor> loadParameters(const EntryPoint &entry,
                                             const std::string &safetensorsPath,
                                             bool initMissing, uint64_t seed,
                                             ParameterLoadReport *report = nullptr);

/// Prints on standard error, each line prefixed "<tool>: ", what `report`
/// says about loading from `source`: the parameters read under another name
/// (one summary line), the known buffers ignored, a warning per unexpected
/// tensor (no parameter of entry point `entry`) when `warnUnexpected`, and every parameter initialized from `seed`
/// when there was a file.
void printLoadReport(const std::string &tool, const std::string &entry,
                     const std::string &source, const ParameterLoadReport &report,
                     uint64_t seed, bool warnUnexpected);

/// A fresh tensor for parameter `spec` following its "init" rule (see the
/// file comment), drawn from `seed`, or from the spec's own initSeed when
/// the manifest fixes one. Throws Error when the spec has no init rule or a dtype
/// other than f32, f64, f16 or bf16.
Tensor initParameter(const TensorSpec &spec, uint64_t seed);

/// The per-tensor seed: FNV-1a-64 of `name`, XOR `seed`.
uint64_t parameterSeed(const std::string &name, uint64_t seed);

/// Writes `parameters` to `path` atomically (see writeSafetensors). The
/// default metadata is what PyTorch-based tools expect of a weights file.
void saveParameters(const std::string &path,
                    const std::map<std::string, Tensor> &parameters,
                    const std::map<std::string, std::string> &metadata = {
                        {"format", "pt"}});

} // namespace modrt

#endif // MODRT_WEIGHTS_H
