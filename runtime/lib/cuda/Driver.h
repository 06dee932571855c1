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
  decltype(&::cuMemcpyHtoD) memcpyHtoD;
  decltype(&::cuMemcpyDtoH) memcpyDtoH;
  decltype(&::cuMemsetD32Async) memsetD32Async;
  decltype(&::cuMemsetD16Async) memsetD16Async;
  decltype(&::cuMemHostRegister) memHostRegister;
  decltype(&::cuMemHostUnregister) memHostUnregister;
};

/// Loads libcuda.so.1, initializes the driver and makes device `device`'s
/// primary context current on the calling thread (the context the CUDA
/// runtime and cuBLAS use too). Returns null with `why` set on failure.
const Driver *tryDriver(std::string &why);

/// The driver, ready on this thread, or null when a CUDA error is pending
/// on this thread (see fail()) or the driver cannot be used (which then
/// becomes the pending error). Every mgpu* entry point starts with it and
/// does nothing when it is null, so after the first error the rest of a
/// model call falls through to its end and the caller sees that error.
const Driver *driver();

/// Records `message` as this thread's pending error unless one is pending
/// already (the first error is the cause; later ones are consequences).
void fail(const std::string &message);

/// fail()s with "<call> failed: <CUDA_ERROR_NAME>: <description>" unless
/// `result` is CUDA_SUCCESS; returns whether it was.
bool check(CUresult result, const char *call);

/// Whether this thread has a pending error.
bool failed();

/// The stream that generated code on this thread created last and has not
/// destroyed yet (null, the legacy default stream, when none): the stream
/// of the function running, since generated host code keeps one stream
/// alive at a time (--mod-gpu-stream-order). Library calls such as the cuBLAS
/// wrappers enqueue on it, ordered with the kernels around them.
void *currentStream();
void pushStream(void *stream);
void popStream(void *stream);

/// Selects the device later driver() calls make current (default 0).
void setDefaultDevice(int device);

} // namespace modrt::cuda

#endif // MODRT_LIB_CUDA_DRIVER_H
