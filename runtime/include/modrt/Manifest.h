//===- Manifest.h - manifest.json written by mod-compile --------*- C++ -*-===//
//
// The manifest describes a compiled model directory: which shared library to
// load and, for each entry point, its symbol and the name, dtype and static
// shape of every input and output in calling order. Example:
//
//   {"format": "modc-manifest", "version": 1, "target": "cpu",
//    "library": "model.so", "library_sha256": "<64 hex digits>",
//    "entry_points": [
//      {"name": "forward", "symbol": "_modrt_forward",
//       "inputs":  [{"name": "x", "dtype": "f32", "shape": [1, 4, 8]},
//                   {"name": "transformer.h.0.mlp.c_fc.weight", "dtype": "f32",
//                    "shape": [8, 32], "kind": "parameter",
//                    "init": "normal:0.02"}],
//       "outputs": [{"name": "result0", "dtype": "f32", "shape": [1, 4, 8]}]}]}
//
// Inputs are data ("kind": "input" or no kind) or parameters ("kind":
// "parameter"), which carry an "init" rule: "normal:<std>", "zeros" or
// "ones" (see modrt/Weights.h). An output may carry "alias_of": "<input
// name>" (e.g. adamw_step's updated parameters): it is computed in place of
// that input, which has the same dtype and shape (see Model::callInPlace).
// A CUDA manifest may say "gemm_precision": "f32", "tf32" or "bf16" (how
// the matrix multiplications were compiled: mod-compile --cuda-tf32,
// --cuda-precision=bf16 for bf16 operands with f32 accumulation and f32
// master weights); absent means f32.
// In a CUDA model, an input or output may carry "residency": "device" (the
// default is "host"): the parameters and the tensors updated in place live
// in device buffers that libmodrt uploads once (see Model::upload), and the
// gradients stay in device buffers from @loss_and_grad to @adamw_step.
//
// Keys this runtime does not know are ignored so that newer compilers can add
// information (B, S, capacities, schedule, init) without breaking it; the full
// document stays available through `Manifest::json`.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_MANIFEST_H
#define MODRT_MANIFEST_H

#include "modrt/Json.h"
#include "modrt/Tensor.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace modrt {

/// How a parameter is initialized when no weights file provides it. The
/// manifest spells it "normal:<std>" (mean 0), "zeros" or "ones".
struct ParameterInit {
  enum class Kind { Normal, Zeros, Ones };
  Kind kind = Kind::Zeros;
  double std = 0.0; // Normal only: finite and >= 0

  /// Nullopt for anything but the three spellings above.
  static std::optional<ParameterInit> parse(std::string_view text);
  /// The manifest spelling ("normal:0.02").
  std::string str() const;
};

/// What an entry point input is: data the caller supplies on every call
/// ("kind": "input", the default), or a trained parameter ("kind":
/// "parameter") that the runtime loads from a weights file or initializes.
enum class InputKind { Data, Parameter };

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  /// Inputs only; outputs are always Data.
  InputKind kind = InputKind::Data;
  /// Parameters only: the manifest's "init" when present. A parameter's init
  /// must be well formed; a data input's is ignored.
  std::optional<ParameterInit> init;
  /// Parameters only: the manifest's "init_seed", a seed fixed by the
  /// compiler (e.g. --mod-dense-to-mod's router-init-seed) that replaces the
  /// run's --seed for this tensor.
  std::optional<uint64_t> initSeed;
  /// Outputs only: the index of the input this output replaces in place
  /// (the manifest's "alias_of": that input's name). The compiled code may
  /// write it into that input's buffer; Model::callInPlace makes it do so.
  std::optional<size_t> aliasOf;
  /// "residency": "device" (CUDA models, see Model::upload): the compiled
  /// code takes a device pointer for this tensor. An output that aliases
  /// an input is resident exactly when that input is (an in-place update of
  /// the device buffer); a resident output that aliases nothing is written
  /// into the model's device buffer of its name, for another entry point
  /// to read as a resident input (@loss_and_grad's gradients, read by
  /// @adamw_step). Every resident tensor of a given name has the same dtype
  /// and shape in all entry points, since they share one buffer.
  bool deviceResident = false;

  bool isParameter() const { return kind == InputKind::Parameter; }
  /// "f32[1x4x8]", as used in messages.
  std::string str() const;
};

struct EntryPoint {
  std::string name;
  std::string symbol;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

struct Manifest {
  static constexpr int64_t kVersion = 1;

  int64_t version = kVersion;
  std::string target;  // "cpu" or "cuda"
  std::string library; // relative to the model directory
  /// "library_sha256": SHA-256 of the library as 64 lowercase hex digits.
  /// Optional here (tools that only read the manifest need no library);
  /// Model::load requires it and checks the library against it.
  std::string librarySha256;
  /// "gemm_precision": "f32" (also when absent), "tf32" or "bf16".
  std::string gemmPrecision = "f32";
  std::vector<EntryPoint> entryPoints;
  Json json;           // the whole document, unknown keys included

  /// Nullptr when there is no entry point of that name.
  const EntryPoint *findEntry(std::string_view name) const;
  /// What the GEMM precision means, for tools to print: "f32", "tf32 (f32
  /// GEMMs on TF32 tensor cores)", "bf16 (bf16 GEMM operands, f32
  /// accumulation, f32 master weights)".
  std::string gemmPrecisionDescription() const;
  /// Comma-separated entry point names, for error messages.
  std::string entryNames() const;

  /// `source` names the document in error messages (usually its path).
  static Manifest parse(std::string_view text, const std::string &source);
  static Manifest load(const std::string &path);
};

} // namespace modrt

#endif // MODRT_MANIFEST_H
