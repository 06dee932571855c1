//===- Model.cpp - Load and call a compiled model directory ---------------===//

#include "modrt/Model.h"

#include "modrt/Sha256.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace modrt;

int modrt::configuredThreadCount() {
  const char *text = std::getenv("MODC_NUM_THREADS");
  if (!text || !*text) {
    unsigned cores = std::thread::hardware_concurrency();
    return cores == 0 ? 1 : int(cores);
  }
  char *end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 1 || value > 4096)
    throw Error(std::string("MODC_NUM_THREADS='") + text +
                "' must be a positive integer (the number of threads for "
                "parallel loops and BLAS)");
  return int(value);
}

namespace {
/// One thread pool for a CPU model: LLVM's OpenMP runtime, sized by the
/// thread count. The GEMMs run on it too: --mod-linalg-to-blas splits each
/// one into per-thread cblas_sgemm calls, so OpenBLAS itself runs
/// single-threaded (its own pool would compete with OpenMP's workers for the
/// same cores, spinning in sched_yield while the other pool works).
/// Model::load also sets the environment before dlopen, for runtimes that
/// read it when they start; the setters cover libraries already loaded.
void configureThreads(void *handle, int threads) {
  auto call = [&](const char *name, int value) {
    void *symbol = ::dlsym(handle, name);
    if (!symbol) return;
    void (*fn)(int);
    std::memcpy(&fn, &symbol, sizeof fn);
    fn(value);
  };
  call("openblas_set_num_threads", 1);
  call("omp_set_num_threads", threads);
  // Idle OpenMP workers sleep at once instead of spinning for 200 ms, which
  // on a shared machine would take cores from other processes between two
  // parallel regions.
  call("kmp_set_blocktime", 0);
}
} // namespace

namespace {
std::vector<int64_t> descriptorFor(const void *data,
                                   const std::vector<int64_t> &shape);
} // namespace

std::vector<int64_t> modrt::makeMemRefDescriptor(const Tensor &tensor) {
  return descriptorFor(tensor.rawData(), tensor.shape());
}

namespace {
std::vector<int64_t> descriptorFor(const void *data,
                                   const std::vector<int64_t> &shape) {
  static_assert(sizeof(void *) == sizeof(int64_t),
                "memref descriptors store pointers in 64-bit words");
  const size_t rank = shape.size();
  std::vector<int64_t> words(3 + 2 * rank, 0);
  std::memcpy(&words[0], &data, sizeof data); // allocated
  std::memcpy(&words[1], &data, sizeof data); // aligned
  words[2] = 0;                               // offset
  int64_t stride = 1;
  for (size_t i = rank; i-- > 0;) {
    words[3 + i] = shape[i];
    words[3 + rank + i] = stride;
    // Suffix products fit in int64 whenever the tensor has elements; with a
    // zero dimension in front they may not, but then no element is ever
    // addressed, so 0 is as good a stride as any.
    if (__builtin_mul_overflow(stride, shape[i], &stride)) stride = 0;
  }
  return words;
}
} // namespace

std::string modrt::entrySignature(const EntryPoint &entry) {
  auto list = [](const std::vector<TensorSpec> &specs) {
    std::string out;
    for (const TensorSpec &spec : specs) {
      if (!out.empty()) out += ',';
      out += spec.str();
      if (spec.deviceResident) out += "@device";
    }
    return out;
  };
  return "in:" + list(entry.inputs) + ";out:" + list(entry.outputs);
}

std::string modrt::signatureSymbol(std::string_view symbol) {
  constexpr std::string_view prefix = "_modrt_";
  if (symbol.substr(0, prefix.size()) != prefix) return {};
  return "_modrtsig_" + std::string(symbol.substr(prefix.size()));
}

namespace {
/// Closes a file descriptor on scope exit.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};
} // namespace

/// Checks the library file against the manifest's digest before any of its
/// code runs. Returns the identity (device, inode) of the file it hashed.
static std::pair<dev_t, ino_t> checkLibraryDigest(const Manifest &manifest,
                                                  const std::string &dir,
                                                  const std::string &path) {
  if (manifest.librarySha256.empty())
    throw Error(dir + "/manifest.json: records no \"library_sha256\", so " +
                path + " cannot be checked before loading; recompile the "
                "model with this version of mod-compile");
  FdGuard file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0)
    throw Error(path + ": cannot load model library: cannot open: " +
                std::strerror(errno));
  struct stat st;
  if (::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode))
    throw Error(path + ": cannot load model library: not a regular file");
  const std::string digest = sha256OfFile(file.fd, path);
  if (digest != manifest.librarySha256)
    throw Error(path + ": cannot load model library: its SHA-256 is " + digest +
                " but the manifest records " + manifest.librarySha256 +
                " (the library is truncated, corrupted or from another "
                "compilation; recompile the model)");
  return {st.st_dev, st.st_ino};
}

Model Model::load(const std::string &dir) {
  Model model;
  model.dir_ = dir;
  model.manifest_ = Manifest::load(dir + "/manifest.json");
  const std::string libraryPath = dir + "/" + model.manifest_.library;
  const auto identity = checkLibraryDigest(model.manifest_, dir, libraryPath);
  const int threads = configuredThreadCount();
  // OpenBLAS sizes its thread pool from the environment when it is loaded;
  // it runs single-threaded inside the OpenMP threads (configureThreads).
  ::setenv("OPENBLAS_NUM_THREADS", "1", 1);
  ::setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
  // RTLD_NOW surfaces unresolved symbols here instead of mid-call;
  // RTLD_LOCAL keeps two loaded models from resolving each other's symbols.
  model.handle_ = ::dlopen(libraryPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!model.handle_) {
    const char *why = ::dlerror();
    throw Error(libraryPath + ": cannot load model library: " +
                (why ? why : "unknown dlopen error"));
  }
  // The file dlopen mapped must be the one whose digest was checked (the
  // directory may have been replaced by a concurrent mod-compile).
  struct stat st;
  if (::stat(libraryPath.c_str(), &st) != 0 || st.st_dev != identity.first ||
      st.st_ino != identity.second)
    throw Error(libraryPath + ": cannot load model library: the file was "
                "replaced while it was being loaded; try again");
  configureThreads(model.handle_, threads);
  for (const EntryPoint &entry : model.manifest_.entryPoints) {
    const std::string where =
        libraryPath + ": entry point '" + entry.name + "': ";
    ::dlerror(); // clear any stale error
    void *symbol = ::dlsym(model.handle_, entry.symbol.c_str());
    if (!symbol) {
      const char *why = ::dlerror();
      throw Error(where + "symbol '" + entry.symbol + "' not found" +
                  (why ? std::string(" (") + why + ")" : std::string()));
    }
    const std::string sigName = signatureSymbol(entry.symbol);
    if (sigName.empty())
      throw Error(where + "symbol '" + entry.symbol +
                  "' does not start with \"_modrt_\", so it has no signature "
                  "to check the manifest against");
    const auto *signature =
        static_cast<const char *>(::dlsym(model.handle_, sigName.c_str()));
    if (!signature)
      throw Error(where + "signature symbol '" + sigName +
                  "' not found (the library predates signature checks; "
                  "recompile the model)");
    // Compare at most one byte past the expected string, so a shorter
    // string in the library is not read beyond its terminator.
    const std::string expected = entrySignature(entry);
    if (std::strncmp(signature, expected.c_str(), expected.size() + 1) != 0)
      throw Error(where + "the manifest declares " + expected +
                  " but the library was compiled for " +
                  std::string(signature, ::strnlen(signature, 4096)) +
                  "; the manifest does not belong to this library");
    EntryFunction fn;
    std::memcpy(&fn, &symbol, sizeof fn); // object -> function pointer
    model.functions_.push_back(fn);
  }
  // Searches model.so and the libraries it links: only CUDA models have it.
  if (void *symbol = ::dlsym(model.handle_, "modrt_cuda_take_error"))
    std::memcpy(&model.takeCUDAError_, &symbol, sizeof symbol);
  bool anyResident = false;
  for (const EntryPoint &entry : model.manifest_.entryPoints)
    for (const auto *specs : {&entry.inputs, &entry.outputs})
      for (const TensorSpec &spec : *specs)
        anyResident |= spec.deviceResident;
  if (anyResident) {
    auto resolve = [&](const char *name, auto &slot) {
      void *symbol = ::dlsym(model.handle_, name);
      if (!symbol || !model.takeCUDAError_)
        throw Error(libraryPath + ": the manifest has device-resident "
                    "tensors but the library does not link a libmodrt_cuda "
                    "with " + std::string(name) + "; rebuild modc and "
                    "recompile the model");
      std::memcpy(&slot, &symbol, sizeof symbol);
    };
    resolve("modrt_cuda_buffer_alloc", model.device_.alloc);
    resolve("modrt_cuda_buffer_free", model.device_.free);
    resolve("modrt_cuda_buffer_upload", model.device_.upload);
    resolve("modrt_cuda_buffer_download", model.device_.download);
  }
  return model;
}

Model::Model(Model &&other) noexcept
    : dir_(std::move(other.dir_)), manifest_(std::move(other.manifest_)),
      handle_(other.handle_), functions_(std::move(other.functions_)),
      takeCUDAError_(other.takeCUDAError_), device_(other.device_),
      deviceBuffers_(std::move(other.deviceBuffers_)) {
  other.handle_ = nullptr;
  other.takeCUDAError_ = nullptr;
  other.deviceBuffers_.clear();
}

Model &Model::operator=(Model &&other) noexcept {
  if (this != &other) {
    release();
    dir_ = std::move(other.dir_);
    manifest_ = std::move(other.manifest_);
    handle_ = other.handle_;
    functions_ = std::move(other.functions_);
    takeCUDAError_ = other.takeCUDAError_;
    device_ = other.device_;
    deviceBuffers_ = std::move(other.deviceBuffers_);
    other.handle_ = nullptr;
    other.takeCUDAError_ = nullptr;
    other.deviceBuffers_.clear();
  }
  return *this;
}

Model::~Model() { release(); }

void Model::release() {
  // Before dlclose: the functions live in a library the model loaded.
  for (auto &[name, buffer] : deviceBuffers_)
    if (device_.free) device_.free(buffer.ptr);
  deviceBuffers_.clear();
  if (handle_) ::dlclose(handle_);
  handle_ = nullptr;
  takeCUDAError_ = nullptr;
  functions_.clear();
}

const EntryPoint &Model::entry(std::string_view name) const {
  if (const EntryPoint *entry = manifest_.findEntry(name)) return *entry;
  throw Error("no entry point '" + std::string(name) +
              "' in the model (available: " + manifest_.entryNames() + ")");
}

size_t Model::checkCall(std::string_view entryName,
                        const std::vector<const Tensor *> &inputs) const {
  const EntryPoint &entry = this->entry(entryName);
  const std::string where = "entry point '" + entry.name + "': ";
  if (inputs.size() != entry.inputs.size())
    throw Error(where + "expected " + std::to_string(entry.inputs.size()) +
                " inputs, got " + std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorSpec &spec = entry.inputs[i];
    const Tensor *input = inputs[i];
    if (!input && spec.deviceResident) {
      if (!hasDeviceBuffer(spec.name))
        throw Error(where + "input " + std::to_string(i) + " ('" + spec.name +
                    "') is device-resident and was never uploaded "
                    "(Model::upload)");
      continue;
    }
    if (!input)
      throw Error(where + "input " + std::to_string(i) + " ('" + spec.name +
                  "') is null");
    if (input->dtype() != spec.dtype || input->shape() != spec.shape)
      throw Error(where + "input " + std::to_string(i) + " ('" + spec.name +
                  "') must be " + spec.str() + ", got " +
                  manifestDTypeName(input->dtype()) + "[" +
                  formatShape(input->shape()) + "]");
  }
  return size_t(&entry - manifest_.entryPoints.data());
}

void Model::throwIfCUDAError(const std::string &what) const {
  if (!takeCUDAError_) return;
  char message[1024];
  if (takeCUDAError_(message, sizeof message))
    throw Error(what + ": CUDA error: " + message);
}

const TensorSpec *Model::residentSpec(std::string_view name) const {
  for (const EntryPoint &entry : manifest_.entryPoints)
    for (const auto *specs : {&entry.inputs, &entry.outputs})
      for (const TensorSpec &spec : *specs)
        if (spec.deviceResident && spec.name == name) return &spec;
  return nullptr;
}

void *Model::residentBuffer(const TensorSpec &spec,
                            const std::string &where) const {
  auto it = deviceBuffers_.find(spec.name);
  if (it == deviceBuffers_.end()) {
    DeviceBuffer buffer{nullptr, spec.dtype, spec.shape,
                        dtypeSize(spec.dtype)};
    for (int64_t dim : spec.shape) buffer.bytes *= size_t(dim);
    if (buffer.bytes) {
      buffer.ptr = device_.alloc(buffer.bytes);
      if (!buffer.ptr) {
        throwIfCUDAError(where + ": allocating '" + spec.name + "'");
        throw Error(where + ": allocating '" + spec.name +
                    "': no device memory");
      }
    }
    it = deviceBuffers_.emplace(spec.name, std::move(buffer)).first;
  }
  return it->second.ptr;
}

bool Model::isDeviceResident(std::string_view name) const {
  return residentSpec(name) != nullptr;
}

bool Model::hasDeviceBuffer(std::string_view name) const {
  return deviceBuffers_.find(name) != deviceBuffers_.end();
}

void Model::upload(const std::string &name, const Tensor &value) {
  const TensorSpec *spec = residentSpec(name);
  if (!spec)
    throw Error("no device-resident tensor '" + name + "' in the model " +
                dir_ + " (only CUDA models keep tensors on the device)");
  if (value.dtype() != spec->dtype || value.shape() != spec->shape)
    throw Error("device-resident tensor '" + name + "' must be " +
                spec->str() + ", got " + manifestDTypeName(value.dtype()) +
                "[" + formatShape(value.shape()) + "]");
  auto it = deviceBuffers_.find(name);
  if (it == deviceBuffers_.end()) {
    DeviceBuffer buffer{nullptr, spec->dtype, spec->shape, value.byteSize()};
    if (buffer.bytes) {
      buffer.ptr = device_.alloc(buffer.bytes);
      if (!buffer.ptr) {
        throwIfCUDAError("uploading '" + name + "'");
        throw Error("uploading '" + name + "': no device memory");
      }
    }
    it = deviceBuffers_.emplace(name, std::move(buffer)).first;
  }
  if (it->second.bytes &&
      !device_.upload(it->second.ptr, value.rawData(), it->second.bytes))
    throwIfCUDAError("uploading '" + name + "'");
}

Tensor Model::download(const std::string &name) const {
  auto it = deviceBuffers_.find(name);
  if (it == deviceBuffers_.end())
    throw Error("device-resident tensor '" + name + "' was never uploaded");
  Tensor out(it->second.dtype, it->second.shape);
  if (it->second.bytes &&
      !device_.download(out.rawData(), it->second.ptr, it->second.bytes))
    throwIfCUDAError("downloading '" + name + "'");
  return out;
}

void Model::invoke(size_t index, const std::vector<const Tensor *> &inputs,
                   const std::vector<Tensor *> &outputs) const {
  const EntryPoint &entry = manifest_.entryPoints[index];
  const std::string where = "entry point '" + entry.name + "'";
  // Device buffers for the call, for device-resident inputs the caller gave
  // as host tensors; freed however the call ends.
  struct Temporaries {
    const DeviceAPI &api;
    std::vector<void *> buffers;
    ~Temporaries() {
      for (void *buffer : buffers) api.free(buffer);
    }
  } temporaries{device_, {}};
  std::vector<void *> deviceInputs(inputs.size(), nullptr);
  std::vector<void *> deviceOutputs(outputs.size(), nullptr);
  std::vector<std::vector<int64_t>> descriptors;
  descriptors.reserve(inputs.size() + outputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorSpec &spec = entry.inputs[i];
    if (!spec.deviceResident) {
      descriptors.push_back(makeMemRefDescriptor(*inputs[i]));
      continue;
    }
    if (!inputs[i]) {
      deviceInputs[i] = deviceBuffers_.find(spec.name)->second.ptr;
    } else if (size_t bytes = inputs[i]->byteSize()) {
      void *buffer = device_.alloc(bytes);
      if (buffer) temporaries.buffers.push_back(buffer);
      if (!buffer || !device_.upload(buffer, inputs[i]->rawData(), bytes)) {
        throwIfCUDAError(where + ": uploading '" + spec.name + "'");
        throw Error(where + ": uploading '" + spec.name + "' failed");
      }
      deviceInputs[i] = buffer;
    }
    descriptors.push_back(descriptorFor(deviceInputs[i], spec.shape));
  }
  for (size_t o = 0; o < outputs.size(); ++o) {
    const TensorSpec &spec = entry.outputs[o];
    // A device-resident output updates its input's device buffer in place,
    // or, aliasing none, writes the model's device buffer of its name (which
    // another entry point reads as a device-resident input).
    if (spec.deviceResident)
      deviceOutputs[o] = spec.aliasOf ? deviceInputs[*spec.aliasOf]
                                      : residentBuffer(spec, where);
    descriptors.push_back(
        spec.deviceResident ? descriptorFor(deviceOutputs[o], spec.shape)
                            : makeMemRefDescriptor(*outputs[o]));
  }
  std::vector<void *> args;
  args.reserve(descriptors.size());
  for (std::vector<int64_t> &descriptor : descriptors)
    args.push_back(descriptor.data());
  functions_[index](args.data());
  throwIfCUDAError(where);
  // Results for host tensors the caller passed for device-resident inputs,
  // and host copies of device-resident outputs the caller asked for.
  for (size_t o = 0; o < outputs.size(); ++o) {
    const TensorSpec &spec = entry.outputs[o];
    if (!spec.deviceResident || !outputs[o] || !outputs[o]->byteSize())
      continue;
    if (!device_.download(outputs[o]->rawData(), deviceOutputs[o],
                          outputs[o]->byteSize()))
      throwIfCUDAError(where + ": downloading '" + spec.name + "'");
  }
}

std::vector<Tensor> Model::call(std::string_view entryName,
                                const std::vector<const Tensor *> &inputs) const {
  const size_t index = checkCall(entryName, inputs);
  const EntryPoint &entry = manifest_.entryPoints[index];
  std::vector<Tensor> outputs;
  outputs.reserve(entry.outputs.size());
  std::vector<const Tensor *> args = inputs;
  for (const TensorSpec &spec : entry.outputs) {
    if (spec.aliasOf) {
      if (!inputs[*spec.aliasOf])
        throw Error("entry point '" + entry.name + "': output '" + spec.name +
                    "' would update the device buffer of '" +
                    entry.inputs[*spec.aliasOf].name +
                    "'; pass a host tensor, or use callInPlace");
      // Computed in place of a copy, so the caller's input stays as it was.
      outputs.push_back(*inputs[*spec.aliasOf]);
      args[*spec.aliasOf] = &outputs.back();
    } else {
      // Every element is written by the call: no zero fill.
      outputs.push_back(Tensor::uninitialized(spec.dtype, spec.shape));
    }
  }
  std::vector<Tensor *> outs;
  for (Tensor &output : outputs)
    outs.push_back(&output);
  invoke(index, args, outs);
  return outputs;
}

void Model::callInto(std::string_view entryName,
                     const std::vector<const Tensor *> &inputs,
                     std::vector<Tensor> &outputs) const {
  const size_t index = checkCall(entryName, inputs);
  const EntryPoint &entry = manifest_.entryPoints[index];
  bool reuse = outputs.size() == entry.outputs.size();
  for (size_t o = 0; reuse && o < outputs.size(); ++o)
    reuse = outputs[o].dtype() == entry.outputs[o].dtype &&
            outputs[o].shape() == entry.outputs[o].shape;
  if (!reuse) {
    outputs.clear();
    outputs.reserve(entry.outputs.size());
    for (const TensorSpec &spec : entry.outputs)
      outputs.emplace_back(spec.dtype, spec.shape);
  }
  std::vector<const Tensor *> args = inputs;
  std::vector<Tensor *> outs;
  for (size_t o = 0; o < entry.outputs.size(); ++o) {
    const TensorSpec &spec = entry.outputs[o];
    if (spec.aliasOf) {
      const Tensor *input = inputs[*spec.aliasOf];
      if (!input)
        throw Error("entry point '" + entry.name + "': output '" + spec.name +
                    "' would update the device buffer of '" +
                    entry.inputs[*spec.aliasOf].name +
                    "'; pass a host tensor, or use callInPlace");
      // Computed in place of a copy, so the caller's input stays as it was.
      if (input->byteSize())
        std::memcpy(outputs[o].rawData(), input->rawData(),
                    input->byteSize());
      args[*spec.aliasOf] = &outputs[o];
    }
    outs.push_back(&outputs[o]);
  }
  invoke(index, args, outs);
}

std::vector<Tensor> Model::callInPlace(std::string_view entryName,
                                       const std::vector<Tensor *> &inputs,
                                       bool keepOnDevice) const {
  const size_t index =
      checkCall(entryName, std::vector<const Tensor *>(inputs.begin(), inputs.end()));
  const EntryPoint &entry = manifest_.entryPoints[index];
  auto staysOnDevice = [&](const TensorSpec &spec) {
    return keepOnDevice && spec.deviceResident && !spec.aliasOf;
  };
  std::vector<Tensor> fresh;
  fresh.reserve(entry.outputs.size());
  for (const TensorSpec &spec : entry.outputs)
    if (!spec.aliasOf)
      fresh.push_back(staysOnDevice(spec)
                          ? Tensor(spec.dtype, {0})
                          : Tensor::uninitialized(spec.dtype, spec.shape));
  std::vector<Tensor *> outs;
  size_t next = 0;
  for (const TensorSpec &spec : entry.outputs) {
    Tensor *out = spec.aliasOf ? inputs[*spec.aliasOf] : &fresh[next++];
    outs.push_back(staysOnDevice(spec) ? nullptr : out);
  }
  invoke(index, std::vector<const Tensor *>(inputs.begin(), inputs.end()), outs);
  return fresh;
}
