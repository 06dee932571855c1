//===- EntryPoints.h - entry points and the manifest they produce -*- C++ -*-===//
//
// An artifact's entry points are the public func.funcs with a body. Their
// arguments and results, with the `mod.*` attributes that describe them, are
// what manifest.json records for libmodrt.
//
//===----------------------------------------------------------------------===//

#ifndef MOD_COMPILER_ENTRYPOINTS_H
#define MOD_COMPILER_ENTRYPOINTS_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::mod {

/// What the runtime needs to know about one argument or result.
struct TensorSpec {
  std::string name;
  /// "f32", "f64", "i32" or "i64".
  std::string dtype;
  SmallVector<int64_t> shape;
  /// "parameter" for model weights (from `mod.kind`), empty for data inputs.
  std::string kind;
  /// How the runtime initializes a missing parameter (from `mod.init`).
  std::string init;
  /// A seed fixed for this parameter's initialization (`mod.init_seed`),
  /// any value in [0, 2^64 - 1].
  std::optional<uint64_t> initSeed;
  /// Results only: the name of the argument this result replaces in place
  /// (from `mod.aliases = <argument index>`).
  std::string aliasOf;
  /// The tensor stays on the GPU between calls and the code takes a device
  /// pointer for it (`mod.device_resident`, CUDA only): the manifest's
  /// "residency": "device", "@device" in the signature.
  bool deviceResident = false;
};

struct EntryPoint {
  std::string name;
  std::vector<TensorSpec> inputs, outputs;

  /// The `void <symbol>(void **args)` wrapper the runtime calls.
  std::string wrapperSymbol() const { return "_modrt_" + name; }
  /// The NUL-terminated string constant holding signature().
  std::string signatureSymbol() const { return "_modrtsig_" + name; }
  /// Input and output dtypes and shapes in calling order, spelled as
  /// libmodrt's entrySignature spells them: "in:f32[2x3],i32[4];out:f32[]".
  /// A device-resident tensor's entry ends in "@device" ("f32[4]@device").
  /// libmodrt refuses a manifest that disagrees with the library's string.
  std::string signature() const;
};

/// Describes every entry point of `module`, marks each for a C interface and
/// strips the `mod.*` argument attributes (which then live in the
/// manifest). Emits an error on the function for an argument the runtime
/// cannot pass (dynamic shape, unsupported element type) or when there is no
/// entry point.
FailureOr<std::vector<EntryPoint>> collectEntryPoints(ModuleOp module);

/// Target-independent facts about the compiled library that the manifest
/// records next to the entry points.
struct ManifestInfo {
  std::string target;
  std::string library = "model.so";
  /// Hex SHA-256 of the library file; empty to omit.
  std::string librarySha256;
  /// "gemm_precision" (CUDA: "f32", "tf32" or "bf16"); empty to omit.
  std::string gemmPrecision;
};

/// manifest.json's text (see runtime/include/modrt/Manifest.h).
std::string buildManifest(ArrayRef<EntryPoint> entries,
                          const ManifestInfo &info);

} // namespace mlir::mod

#endif // MOD_COMPILER_ENTRYPOINTS_H
