/* A stand-in for a --target=cuda model whose entry point hits a CUDA error:
 * it copies from a device address that was never allocated. On a machine
 * without a GPU the first mgpu* call fails already (no driver or device).
 * Either way libmodrt_cuda records the error instead of exiting, the later
 * calls do nothing, and modrt::Model::call reports it. The output is written
 * first so the test can see the function ran to its end. */

#include "modrt/cuda/Runtime.h"

typedef struct {
  float *allocated;
  float *aligned;
  int64_t offset;
  int64_t sizes[1];
  int64_t strides[1];
} MemRefF32x1;

void _modrt_forward(void **args) {
  MemRefF32x1 *out = (MemRefF32x1 *)args[0];
  out->aligned[out->offset] = 42.0f;
  void *stream = mgpuStreamCreate();
  void *device = mgpuMemAlloc(16, stream, false);
  mgpuMemcpy(out->aligned, (void *)(uintptr_t)0x10, 16, stream);
  mgpuLaunchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, stream, NULL, NULL, 0);
  mgpuMemFree(device, stream);
  mgpuStreamSynchronize(stream);
  mgpuStreamDestroy(stream);
}

/* Signature string (modrt/Model.h) for the manifest in CudaErrorTest.cpp. */
const char _modrtsig_forward[] = "in:;out:f32[4]";

/* Device-resident tensors (CudaErrorTest.cpp's DeviceResident* tests):
 * @resident reads its input `w` from the device buffer libmodrt passes and
 * copies it to the host output; @update writes 5, 6, 7, 8 into `w`'s buffer
 * in place (its output aliases `w`, both device-resident). */
void _modrt_resident(void **args) {
  MemRefF32x1 *w = (MemRefF32x1 *)args[0];
  MemRefF32x1 *out = (MemRefF32x1 *)args[1];
  void *stream = mgpuStreamCreate();
  mgpuMemcpy(out->aligned, w->aligned, 4 * sizeof(float), stream);
  mgpuStreamSynchronize(stream);
  mgpuStreamDestroy(stream);
}
const char _modrtsig_resident[] = "in:f32[4]@device;out:f32[4]";

void _modrt_update(void **args) {
  static float values[4] = {5.0f, 6.0f, 7.0f, 8.0f};
  MemRefF32x1 *out = (MemRefF32x1 *)args[1];
  void *stream = mgpuStreamCreate();
  mgpuMemcpy(out->aligned, values, sizeof values, stream);
  mgpuStreamSynchronize(stream);
  mgpuStreamDestroy(stream);
}
const char _modrtsig_update[] = "in:f32[4]@device;out:f32[4]@device";

/* A device-resident output that aliases no input (CudaErrorTest.cpp's
 * DeviceResidentOutputPassedToAnotherEntryPoint): @produce writes 1, 2, 3, 4
 * into the device buffer libmodrt passes for `g`; @consume reads `g` from its
 * device buffer and copies it to the host output. */
void _modrt_produce(void **args) {
  static float values[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  MemRefF32x1 *g = (MemRefF32x1 *)args[0];
  void *stream = mgpuStreamCreate();
  mgpuMemcpy(g->aligned, values, sizeof values, stream);
  mgpuStreamSynchronize(stream);
  mgpuStreamDestroy(stream);
}
const char _modrtsig_produce[] = "in:;out:f32[4]@device";

void _modrt_consume(void **args) {
  MemRefF32x1 *g = (MemRefF32x1 *)args[0];
  MemRefF32x1 *out = (MemRefF32x1 *)args[1];
  void *stream = mgpuStreamCreate();
  mgpuMemcpy(out->aligned, g->aligned, 4 * sizeof(float), stream);
  mgpuStreamSynchronize(stream);
  mgpuStreamDestroy(stream);
}
const char _modrtsig_consume[] = "in:f32[4]@device;out:f32[4]";
