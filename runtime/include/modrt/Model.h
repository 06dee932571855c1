//===- Model.h - Load and call a compiled model directory -------*- C++ -*-===//
//
// A model directory holds manifest.json and the shared library it names.
// Model::load dlopens the library and resolves every entry point up front, so
// a broken artifact fails at load time rather than at the first call.
//
// Calling convention of an entry point symbol (the compiled code's ABI):
//
//   void fn(void **args);
//
// args has one pointer per input, then one per output, in manifest order.
// Each points to an MLIR ranked memref descriptor
//
//   struct { T *allocated; T *aligned; int64_t offset;
//            int64_t sizes[rank]; int64_t strides[rank]; };
//
// (only the first three fields for rank 0) with offset 0 and row-major
// contiguous strides. The runtime allocates the outputs; the model writes
// them and must not retain any pointer after returning.
//
// The runtime trusts neither file blindly. Before dlopen runs any code of the
// library, its SHA-256 must equal the manifest's "library_sha256" (a
// truncated, corrupted or foreign model.so is refused). After loading, each
// entry point `_modrt_<x>` must come with a NUL-terminated string
// `_modrtsig_<x>` holding the signature the code was compiled for (see
// entrySignature); a manifest that disagrees with it, e.g. one that declares
// a smaller output than the code writes, is refused instead of letting the
// code write past a buffer.
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_MODEL_H
#define MODRT_MODEL_H

#include "modrt/Manifest.h"
#include "modrt/Tensor.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace modrt {

/// Builds the memref descriptor for `tensor` as 3 + 2*rank int64 words (the
/// two pointer fields stored in the first two words). The descriptor points
/// into `tensor`, which must outlive it.
std::vector<int64_t> makeMemRefDescriptor(const Tensor &tensor);

/// The thread count for a CPU model's parallel loops and BLAS calls:
/// $MODC_NUM_THREADS, or every core when it is unset. Throws Error when the
/// variable is not a positive integer.
int configuredThreadCount();

/// The signature string of an entry point: input and output dtypes and
/// shapes in calling order, "in:f32[2x3],i32[4];out:f32[]". mod-compile
/// embeds the same string in the library (see the header comment).
std::string entrySignature(const EntryPoint &entry);

/// The signature symbol for an entry point symbol "_modrt_<x>":
/// "_modrtsig_<x>". Empty when `symbol` does not start with "_modrt_".
std::string signatureSymbol(std::string_view symbol);

class Model {
public:
  using EntryFunction = void (*)(void **);

  /// Reads `dir`/manifest.json, checks `dir`/<library> against the
  /// manifest's library_sha256, dlopens it, resolves every entry point
  /// symbol and checks its signature against the manifest. Throws Error on
  /// any failure.
  static Model load(const std::string &dir);

  Model(Model &&other) noexcept;
  Model &operator=(Model &&other) noexcept;
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;
  ~Model();

  const Manifest &manifest() const { return manifest_; }
  const std::string &directory() const { return dir_; }

  /// Throws Error listing the available entry points when `name` is unknown.
  const EntryPoint &entry(std::string_view name) const;

  /// Checks the inputs against the manifest (count, dtype, shape; errors name
  /// the argument and both types), allocates zeroed outputs and runs the entry
  /// point. Safe to call concurrently as far as the runtime is concerned.
  /// The inputs are never written: an output that aliases an input
  /// ("alias_of") is computed in a copy of that input. A CUDA error during
  /// the call (e.g. "cuLaunchKernel failed: CUDA_ERROR_...") is thrown as
  /// Error naming the entry point (call and callInPlace alike).
  std::vector<Tensor> call(std::string_view entryName,
                           const std::vector<const Tensor *> &inputs) const;

  // Device-resident tensors (CUDA models; the manifest's "residency":
  // "device": the parameters and the tensors updated in place). The Model
  // owns one device buffer per such name, shared by every entry point and
  // kept until the Model is destroyed. In call/callInPlace, a null input
  // for a device-resident tensor means "its device buffer" (which must have
  // been uploaded), and callInPlace updates that buffer in place (no copy
  // to the host). A host tensor for a device-resident input still works: it
  // is copied to a temporary device buffer for the call (and, for
  // callInPlace, back). Not thread-safe with calls that use the buffers.

  /// Whether some entry point takes `name` as a device-resident input or
  /// writes it as a device-resident output.
  bool isDeviceResident(std::string_view name) const;
  /// Copies `value` into the device buffer of `name` (allocated on the first
  /// upload). Throws Error for an unknown name, a dtype or shape other than
  /// the manifest's, or a CUDA error.
  void upload(const std::string &name, const Tensor &value);
  /// Whether `name`'s device buffer exists (has been uploaded).
  bool hasDeviceBuffer(std::string_view name) const;
  /// A host copy of `name`'s device buffer (e.g. to save a checkpoint).
  /// Throws Error when it was never uploaded or on a CUDA error.
  Tensor download(const std::string &name) const;

  /// Like call, but every output that aliases an input ("alias_of") is
  /// written into that input's tensor: the same buffer is passed as the
  /// input and as the output, so e.g. adamw_step updates the parameters and
  /// the optimizer state without copies. Returns the other outputs, in
  /// manifest order. Inputs no output aliases are not written.
  ///
  /// With `keepOnDevice`, a device-resident output that aliases no input
  /// (a CUDA model's gradients: @loss_and_grad writes them, @adamw_step
  /// reads them as device-resident inputs of the same name) stays in the
  /// Model's device buffer of its name, not copied to the host (download()
  /// reads it); its slot in the result is an empty tensor (shape [0]).
  /// Without it (and in call) such outputs are copied to the host as well.
  std::vector<Tensor> callInPlace(std::string_view entryName,
                                  const std::vector<Tensor *> &inputs,
                                  bool keepOnDevice = false) const;

  /// Like call, but the outputs go into `outputs`, which a caller keeps
  /// across calls: when it already holds one tensor per output of the
  /// manifest's dtype and shape, those buffers are overwritten (every entry
  /// point writes each element of its results, so they need not be zero);
  /// otherwise it is replaced by new zeroed tensors. A training loop calls
  /// loss_and_grad on about as many gradient bytes as parameters every step:
  /// reusing them saves allocating, zero-filling and page-faulting them in
  /// every time. An output that aliases an input starts as a copy of it, as
  /// in call; the inputs are never written.
  void callInto(std::string_view entryName,
                const std::vector<const Tensor *> &inputs,
                std::vector<Tensor> &outputs) const;

private:
  Model() = default;
  void release();
  /// Checks `inputs` and returns the index of the entry point.
  size_t checkCall(std::string_view entryName,
                   const std::vector<const Tensor *> &inputs) const;
  /// Runs entry point `index` on tensors the caller has checked.
  void invoke(size_t index, const std::vector<const Tensor *> &inputs,
              const std::vector<Tensor *> &outputs) const;

  std::string dir_;
  Manifest manifest_;
  void *handle_ = nullptr;
  std::vector<EntryFunction> functions_; // parallel to manifest_.entryPoints
  /// libmodrt_cuda's modrt_cuda_take_error when the model links it (a CUDA
  /// model): a CUDA error during a call is reported by throwing.
  int (*takeCUDAError_)(char *, size_t) = nullptr;
  /// libmodrt_cuda's modrt_cuda_buffer_*: resolved when the manifest has a
  /// device-resident tensor.
  struct DeviceAPI {
    void *(*alloc)(uint64_t) = nullptr;
    void (*free)(void *) = nullptr;
    int (*upload)(void *, const void *, uint64_t) = nullptr;
    int (*download)(void *, const void *, uint64_t) = nullptr;
  } device_;
  struct DeviceBuffer {
    void *ptr = nullptr;
    DType dtype;
    std::vector<int64_t> shape;
    size_t bytes = 0;
  };
  /// Mutable: a call allocates the buffer of a device-resident output on
  /// first use.
  mutable std::map<std::string, DeviceBuffer, std::less<>> deviceBuffers_;
  /// The spec of device-resident tensor `name` (an input or output of any
  /// entry point), or null.
  const TensorSpec *residentSpec(std::string_view name) const;
  /// The device buffer of `spec`'s name, allocated on first use.
  void *residentBuffer(const TensorSpec &spec, const std::string &where) const;
  /// Throws Error("<what>: CUDA error: ...") if a CUDA error is pending.
  void throwIfCUDAError(const std::string &what) const;
};

} // namespace modrt

#endif // MODRT_MODEL_H
