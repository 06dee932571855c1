//===- MgpuABI.cpp - the mgpu* functions generated host code calls --------===//
//
// Debian ships no MLIR CUDA runtime, so libmodrt_cuda provides the ABI that
// MLIR 22's gpu-to-llvm lowering targets (the signatures are those of
// upstream's CudaRuntimeWrappers.cpp) on the driver API from Driver.h.
//
//===----------------------------------------------------------------------===//

#include "modrt/cuda/Runtime.h"

#include "Driver.h"

#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

using namespace modrt::cuda;

namespace {
/// What mgpuModuleLoad returns. model.so calls mgpuModuleLoad from a global
/// constructor, i.e. at dlopen time; deferring cuModuleLoadData to the first
/// kernel lookup keeps loading a CUDA model possible (e.g. to list its entry
/// points) on a machine without a GPU. Kernels are looked up once per name.
struct LazyModule {
  const void *image;
  std::mutex mutex;
  CUmodule module = nullptr;
  std::unordered_map<std::string, CUfunction> functions;

  /// The kernel `name`, or null with this thread's error set.
  CUfunction function(const Driver &d, const char *name) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!module && !check(d.moduleLoadData(&module, image), "cuModuleLoadData"))
      return nullptr;
    auto [it, inserted] = functions.try_emplace(name, nullptr);
    if (inserted) {
      std::string call = std::string("cuModuleGetFunction(\"") + name + "\")";
      if (!check(d.moduleGetFunction(&it->second, module, name),
                 call.c_str())) {
        functions.erase(it);
        return nullptr;
      }
    }
    return it->second;
  }
};
} // namespace

extern "C" {

int modrt_cuda_device_count(char *why, size_t whyLen) {
  std::string reason;
  const Driver *d = tryDriver(reason);
  int count = 0;
  if (d && d->deviceGetCount(&count) == CUDA_SUCCESS && count > 0)
    return count;
  if (why && whyLen) {
    std::strncpy(why, reason.c_str(), whyLen - 1);
    why[whyLen - 1] = '\0';
  }
  return reason.find("no CUDA device") != std::string::npos ? 0 : -1;
}

void *mgpuModuleLoad(void *data, size_t /*size*/) {
  return new LazyModule{data, {}, nullptr, {}};
}

void *mgpuModuleLoadJIT(void *data, int /*optLevel*/) {
  // cuModuleLoadData JIT-compiles PTX images itself.
  return new LazyModule{data, {}, nullptr, {}};
}

void mgpuModuleUnload(void *module) {
  auto *lazy = static_cast<LazyModule *>(module);
  if (!lazy)
    return;
  // Runs from a global destructor: at exit the driver may already be shut
  // down, so errors here are not worth reporting.
  std::string why;
  if (lazy->module)
    if (const Driver *d = tryDriver(why))
      d->moduleUnload(lazy->module);
  delete lazy;
}

void *mgpuModuleGetFunction(void *module, const char *name) {
  const Driver *d = driver();
  if (!d)
    return nullptr;
  return static_cast<LazyModule *>(module)->function(*d, name);
}

void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t sharedMemBytes, void *stream,
                      void **params, void **extra, size_t /*paramsCount*/) {
  const Driver *d = driver();
  if (!d || !function)
    return;
  check(d->launchKernel(static_cast<CUfunction>(function), gridX, gridY, gridZ,
                        blockX, blockY, blockZ, sharedMemBytes,
                        static_cast<CUstream>(stream), params, extra),
        "cuLaunchKernel");
}

void *mgpuStreamCreate(void) {
  const Driver *d = driver();
  CUstream stream = nullptr;
  // A blocking stream: it stays ordered with the legacy default stream.
  if (d && check(d->streamCreate(&stream, CU_STREAM_DEFAULT),
                 "cuStreamCreate"))
    pushStream(stream);
  return stream;
}

void mgpuStreamDestroy(void *stream) {
  // Also after an error: the stream must not leak. Destroying a stream
  // whose work failed is allowed.
  popStream(stream);
  std::string why;
  if (const Driver *d = tryDriver(why); d && stream)
    check(d->streamDestroy(static_cast<CUstream>(stream)), "cuStreamDestroy");
}

void mgpuStreamSynchronize(void *stream) {
  if (const Driver *d = driver())
    check(d->streamSynchronize(static_cast<CUstream>(stream)),
          "cuStreamSynchronize (a kernel or copy of the model failed)");
}

void mgpuStreamWaitEvent(void *stream, void *event) {
  if (const Driver *d = driver())
    check(d->streamWaitEvent(static_cast<CUstream>(stream),
                             static_cast<CUevent>(event), 0),
          "cuStreamWaitEvent");
}

void *mgpuEventCreate(void) {
  CUevent event = nullptr;
  if (const Driver *d = driver())
    check(d->eventCreate(&event, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
  return event;
}

void mgpuEventDestroy(void *event) {
  std::string why;
  if (const Driver *d = tryDriver(why); d && event)
    check(d->eventDestroy(static_cast<CUevent>(event)), "cuEventDestroy");
}

void mgpuEventSynchronize(void *event) {
  if (const Driver *d = driver())
    check(d->eventSynchronize(static_cast<CUevent>(event)),
          "cuEventSynchronize (a kernel or copy of the model failed)");
}

void mgpuEventRecord(void *event, void *stream) {
  if (const Driver *d = driver())
    check(d->eventRecord(static_cast<CUevent>(event),
                         static_cast<CUstream>(stream)),
          "cuEventRecord");
}

void *mgpuMemAlloc(uint64_t sizeBytes, void *stream, bool isHostShared) {
  const Driver *d = driver();
  CUdeviceptr ptr = 0;
  if (!d || sizeBytes == 0)
    return nullptr;
  if (isHostShared)
    check(d->memAllocManaged(&ptr, sizeBytes, CU_MEM_ATTACH_GLOBAL),
          "cuMemAllocManaged");
  else if (stream)
    // Stream-ordered pool allocation: no device synchronization per buffer.
    check(d->memAllocAsync(&ptr, sizeBytes, static_cast<CUstream>(stream)),
          "cuMemAllocAsync");
  else
    check(d->memAlloc(&ptr, sizeBytes), "cuMemAlloc");
  return reinterpret_cast<void *>(ptr);
}

void mgpuMemFree(void *ptr, void *stream) {
  if (!ptr)
    return;
  // Freed even after an error, so that a failed call leaks nothing.
  std::string why;
  const Driver *d = tryDriver(why);
  if (!d)
    return;
  auto devicePtr = reinterpret_cast<CUdeviceptr>(ptr);
  if (stream)
    check(d->memFreeAsync(devicePtr, static_cast<CUstream>(stream)),
          "cuMemFreeAsync");
  else
    check(d->memFree(devicePtr), "cuMemFree");
}

void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream) {
  const Driver *d = driver();
  if (!d || sizeBytes == 0)
    return;
  // Unified addressing: the driver infers host/device from the pointers.
  check(d->memcpyAsync(reinterpret_cast<CUdeviceptr>(dst),
                       reinterpret_cast<CUdeviceptr>(src), sizeBytes,
                       static_cast<CUstream>(stream)),
        "cuMemcpyAsync");
}

void mgpuMemset32(void *dst, uint32_t value, size_t count, void *stream) {
  if (const Driver *d = driver())
    check(d->memsetD32Async(reinterpret_cast<CUdeviceptr>(dst), value, count,
                            static_cast<CUstream>(stream)),
          "cuMemsetD32Async");
}

void mgpuMemset16(void *dst, uint16_t value, size_t count, void *stream) {
  if (const Driver *d = driver())
    check(d->memsetD16Async(reinterpret_cast<CUdeviceptr>(dst), value, count,
                            static_cast<CUstream>(stream)),
          "cuMemsetD16Async");
}

void mgpuMemHostRegister(void *ptr, uint64_t sizeBytes) {
  if (const Driver *d = driver())
    check(d->memHostRegister(ptr, sizeBytes, 0), "cuMemHostRegister");
}

void mgpuMemHostUnregister(void *ptr) {
  if (const Driver *d = driver())
    check(d->memHostUnregister(ptr), "cuMemHostUnregister");
}

void mgpuSetDefaultDevice(int32_t device) { setDefaultDevice(device); }

void *modrt_cuda_buffer_alloc(uint64_t sizeBytes) {
  const Driver *d = driver();
  CUdeviceptr ptr = 0;
  if (!d || sizeBytes == 0 ||
      !check(d->memAlloc(&ptr, sizeBytes), "cuMemAlloc (device-resident tensor)"))
    return nullptr;
  return reinterpret_cast<void *>(ptr);
}

void modrt_cuda_buffer_free(void *buffer) {
  std::string why;
  if (const Driver *d = tryDriver(why); d && buffer)
    d->memFree(reinterpret_cast<CUdeviceptr>(buffer));
}

int modrt_cuda_buffer_upload(void *device, const void *host,
                             uint64_t sizeBytes) {
  const Driver *d = driver();
  return d && check(d->memcpyHtoD(reinterpret_cast<CUdeviceptr>(device), host,
                                  sizeBytes),
                    "cuMemcpyHtoD (uploading a device-resident tensor)");
}

int modrt_cuda_buffer_download(void *host, const void *device,
                               uint64_t sizeBytes) {
  const Driver *d = driver();
  return d && check(d->memcpyDtoH(host, reinterpret_cast<CUdeviceptr>(device),
                                  sizeBytes),
                    "cuMemcpyDtoH (downloading a device-resident tensor)");
}

} // extern "C"
