//===- Driver.h - the CUDA driver API, loaded at first use -------*- C++ -*-===//

#ifndef MODRT_LIB_CUDA_DRIVER_H
#define MODRT_LIB_CUDA_DRIVER_H

#include <cuda.h>

#include <string>

namespace modrt::cuda {

/// Driver entry points resolved with dlsym. The `_v2` names are the ones
/// cuda.h's macros map the plain names to.
struct Driver {
  decltype(&::cuInit) init;
  decltype(&::cuDeviceGetCount) deviceGetCount;
  decltype(&::cuDeviceGet) deviceGet;
  decltype(&::cuDevicePrimaryCtxRetain) primaryCtxRetain;
  decltype(&::cuCtxSetCurrent) ctxSetCurrent;
  decltype(&::cuGetErrorName) getErrorName;
  decltype(&::cuGetErrorString) getErrorString;
  decltype(&::cuModuleLoadData) moduleLoadData;
  decltype(&::cuModuleUnload) moduleUnload;
  decltype(&::cuModuleGetFunction) moduleGetFunction;
  decltype(&::cuLaunchKernel) launchKernel;
  decltype(&::cuStreamCreate) streamCreate;
  decltype(&::cuStreamDestroy) streamDestroy;
  decltype(&::cuStreamSynchronize) streamSynchronize;
  decltype(&::cuStreamWaitEvent) streamWaitEvent;
  decltype(&::cuEventCreate) eventCreate;
  decltype(&::cuEventDestroy) eventDestroy;
  decltype(&::cuEventSynchronize) eventSynchronize;
  decltype(&::cuEventRecord) eventRecord;
  decltype(&::cuMemAllocAsync) memAllocAsync;
  decltype(&::cuMemFreeAsync) memFreeAsync;
  decltype(&::cuMemAlloc) memAlloc;
  decltype(&::cuMemFree) memFree;
  decltype(&::cuMemAllocManaged) memAllocManaged;
  decltype(&::cuMemcpyAsync) memcpyAsync;
  decltype(&::cuMemsetD32Async) memsetD32Async;
  decltype(&::cuMemsetD16Async) memsetD16Async;
  decltype(&::cuMemHostRegister) memHostRegister;
  decltype(&::cuMemHostUnregister) memHostUnregister;
};

/// Loads libcuda.so.1, initializes the driver and makes device `device`'s
/// primary context current on the calling thread (the context the CUDA
/// runtime and cuBLAS use too). Returns null with `why` set on failure.
const Driver *tryDriver(std::string &why);

/// Like tryDriver, but a failure is fatal (message on stderr, exit 1).
const Driver &driver();

/// Exits with "modrt_cuda: error: <call> failed: <name>: <description>"
/// unless `result` is CUDA_SUCCESS.
void check(CUresult result, const char *call);

/// Prints "modrt_cuda: error: <message>" and exits with status 1.
[[noreturn]] void fatal(const std::string &message);

/// Selects the device later driver() calls make current (default 0).
void setDefaultDevice(int device);

} // namespace modrt::cuda

#endif // MODRT_LIB_CUDA_DRIVER_H
