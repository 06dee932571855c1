//===- Weights.h - Load, initialize and save model parameters ---*- C++ -*-===//
//
// The parameters of an entry point are the inputs its manifest marks
// "kind": "parameter". They are stored under their (Hugging Face) names in a
// safetensors file, the format the ecosystem exchanges weights in, and any
// that a file lacks can be initialized from the manifest's "init" rule.
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
#include "modrt/Tensor.h"

#include <cstdint>
#include <map>
#include <string>
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
};

/// Every parameter of `entry`, by name. Each is read from `safetensorsPath`
/// by exact name: a tensor of the parameter's dtype is taken as is, f16 and
/// bf16 tensors are widened when the parameter is f32, anything else, and
/// any shape mismatch, is an Error naming the tensor and both types. A
/// missing tensor is a MissingParameterError naming it unless `initMissing`,
/// in which case
/// it is initialized with initParameter(spec, seed). An empty
/// `safetensorsPath` means no file: every parameter is then missing.
std::map<std::string, Tensor> loadParameters(const EntryPoint &entry,
                                             const std::string &safetensorsPath,
                                             bool initMissing, uint64_t seed,
                                             ParameterLoadReport *report = nullptr);

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
