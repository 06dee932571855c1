//===- Driver.cpp - the CUDA driver API, loaded at first use --------------===//

#include "Driver.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <dlfcn.h>
#include <iterator>
#include <mutex>
#include <vector>

using namespace modrt::cuda;

namespace {
struct LoadedDriver {
  Driver api{};
  std::string error; // empty on success
  CUcontext context[64] = {};
};

std::atomic<int> defaultDevice{0};

template <typename Fn>
bool resolve(void *lib, const char *name, Fn &slot, std::string &error) {
  void *symbol = ::dlsym(lib, name);
  if (!symbol) {
    error = std::string("libcuda.so.1 has no ") + name +
            " (the driver is older than CUDA 11.2)";
    return false;
  }
  slot = reinterpret_cast<Fn>(symbol);
  return true;
}

LoadedDriver &load() {
  static LoadedDriver loaded;
  static std::once_flag once;
  std::call_once(once, [] {
    void *lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char *why = ::dlerror();
      loaded.error = std::string("cannot load the CUDA driver (") +
                     (why ? why : "libcuda.so.1 not found") +
                     "); a model compiled with --target=cuda needs an "
                     "NVIDIA GPU and its driver";
      return;
    }
    Driver &d = loaded.api;
    std::string &e = loaded.error;
    bool ok =
        resolve(lib, "cuInit", d.init, e) &&
        resolve(lib, "cuDeviceGetCount", d.deviceGetCount, e) &&
        resolve(lib, "cuDeviceGet", d.deviceGet, e) &&
        resolve(lib, "cuDevicePrimaryCtxRetain", d.primaryCtxRetain, e) &&
        resolve(lib, "cuCtxSetCurrent", d.ctxSetCurrent, e) &&
        resolve(lib, "cuGetErrorName", d.getErrorName, e) &&
        resolve(lib, "cuGetErrorString", d.getErrorString, e) &&
        resolve(lib, "cuModuleLoadData", d.moduleLoadData, e) &&
        resolve(lib, "cuModuleUnload", d.moduleUnload, e) &&
        resolve(lib, "cuModuleGetFunction", d.moduleGetFunction, e) &&
        resolve(lib, "cuLaunchKernel", d.launchKernel, e) &&
        resolve(lib, "cuStreamCreate", d.streamCreate, e) &&
        resolve(lib, "cuStreamDestroy_v2", d.streamDestroy, e) &&
        resolve(lib, "cuStreamSynchronize", d.streamSynchronize, e) &&
        resolve(lib, "cuStreamWaitEvent", d.streamWaitEvent, e) &&
        resolve(lib, "cuEventCreate", d.eventCreate, e) &&
        resolve(lib, "cuEventDestroy_v2", d.eventDestroy, e) &&
        resolve(lib, "cuEventSynchronize", d.eventSynchronize, e) &&
        resolve(lib, "cuEventRecord", d.eventRecord, e) &&
        resolve(lib, "cuMemAllocAsync", d.memAllocAsync, e) &&
        resolve(lib, "cuMemFreeAsync", d.memFreeAsync, e) &&
        resolve(lib, "cuMemAlloc_v2", d.memAlloc, e) &&
        resolve(lib, "cuMemFree_v2", d.memFree, e) &&
        resolve(lib, "cuMemAllocManaged", d.memAllocManaged, e) &&
        resolve(lib, "cuMemcpyAsync", d.memcpyAsync, e) &&
        resolve(lib, "cuMemcpyHtoD_v2", d.memcpyHtoD, e) &&
        resolve(lib, "cuMemcpyDtoH_v2", d.memcpyDtoH, e) &&
        resolve(lib, "cuMemsetD32Async", d.memsetD32Async, e) &&
        resolve(lib, "cuMemsetD16Async", d.memsetD16Async, e) &&
        resolve(lib, "cuMemHostRegister_v2", d.memHostRegister, e) &&
        resolve(lib, "cuMemHostUnregister", d.memHostUnregister, e);
    if (!ok)
      return;
    if (CUresult r = d.init(0); r != CUDA_SUCCESS) {
      const char *name = nullptr;
      d.getErrorName(r, &name);
      e = std::string("cuInit failed (") + (name ? name : "unknown error") +
          "): no usable NVIDIA GPU is visible";
      return;
    }
    int count = 0;
    if (d.deviceGetCount(&count) != CUDA_SUCCESS || count == 0)
      e = "no CUDA device is visible (check CUDA_VISIBLE_DEVICES)";
  });
  return loaded;
}
} // namespace

namespace {
/// The first error of the current model call on this thread. Generated code
/// runs on the caller's thread, so two threads calling models concurrently
/// each see their own errors.
thread_local std::string pendingError;

std::string describe(const Driver &d, CUresult result) {
  const char *name = nullptr, *text = nullptr;
  if (d.getErrorName)
    d.getErrorName(result, &name);
  if (d.getErrorString)
    d.getErrorString(result, &text);
  return std::string(name ? name : "unknown CUDA error " +
                                       std::to_string(int(result))) +
         (text ? std::string(": ") + text : std::string());
}
} // namespace

void modrt::cuda::fail(const std::string &message) {
  if (pendingError.empty())
    pendingError = message.empty() ? "unknown error" : message;
}

bool modrt::cuda::failed() { return !pendingError.empty(); }

bool modrt::cuda::check(CUresult result, const char *call) {
  if (result == CUDA_SUCCESS)
    return true;
  fail(std::string(call) + " failed: " + describe(load().api, result));
  return false;
}

const Driver *modrt::cuda::tryDriver(std::string &why) {
  LoadedDriver &loaded = load();
  if (!loaded.error.empty()) {
    why = loaded.error;
    return nullptr;
  }
  const Driver &d = loaded.api;
  int device = defaultDevice.load();
  int count = 0;
  d.deviceGetCount(&count);
  if (device < 0 || device >= count || device >= 64) {
    why = "CUDA device " + std::to_string(device) + " does not exist (" +
          std::to_string(count) + " visible)";
    return nullptr;
  }
  // Setting the context is cheap; doing it on every call keeps threads that
  // never called the runtime before working.
  static std::mutex mutex;
  CUcontext context;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!loaded.context[device]) {
      CUdevice dev;
      CUresult r = d.deviceGet(&dev, device);
      if (r == CUDA_SUCCESS)
        r = d.primaryCtxRetain(&loaded.context[device], dev);
      if (r != CUDA_SUCCESS) {
        loaded.context[device] = nullptr;
        why = "cannot use CUDA device " + std::to_string(device) + ": " +
              describe(d, r);
        return nullptr;
      }
    }
    context = loaded.context[device];
  }
  if (CUresult r = d.ctxSetCurrent(context); r != CUDA_SUCCESS) {
    why = "cuCtxSetCurrent failed: " + describe(d, r);
    return nullptr;
  }
  return &d;
}

const Driver *modrt::cuda::driver() {
  if (failed())
    return nullptr;
  std::string why;
  const Driver *d = tryDriver(why);
  if (!d)
    fail(why);
  return d;
}

void modrt::cuda::setDefaultDevice(int device) { defaultDevice = device; }

namespace {
thread_local std::vector<void *> liveStreams;
} // namespace

void *modrt::cuda::currentStream() {
  return liveStreams.empty() ? nullptr : liveStreams.back();
}

void modrt::cuda::pushStream(void *stream) { liveStreams.push_back(stream); }

void modrt::cuda::popStream(void *stream) {
  auto it = std::find(liveStreams.rbegin(), liveStreams.rend(), stream);
  if (it != liveStreams.rend())
    liveStreams.erase(std::next(it).base());
}

extern "C" int modrt_cuda_take_error(char *message, size_t size) {
  if (pendingError.empty())
    return 0;
  if (message && size) {
    size_t n = std::min(size - 1, pendingError.size());
    std::memcpy(message, pendingError.data(), n);
    message[n] = '\0';
  }
  pendingError.clear();
  return 1;
}
