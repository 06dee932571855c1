//===- Runtime.h - libmodrt_cuda: the mgpu* ABI and cuBLAS wrappers -------===//
//
// Host code that modc generates for --target=cuda calls these C functions
// (the names and signatures MLIR 22's gpu-to-llvm lowering and gpu.binary
// translation emit). libmodrt_cuda implements them on the CUDA driver API,
// which it loads with dlopen("libcuda.so.1") at first use: the library
// builds, links and loads on machines without a GPU or driver, and a model
// run there stops with a message saying why.
//
// A CUDA error never ends the process. Generated code cannot propagate an
// error (and is not unwind-safe), so the first error of a call is recorded
// for the calling thread, every later mgpu*/cuBLAS call of that thread does
// nothing, the model function runs to its end, and the caller collects the
// error with modrt_cuda_take_error (modrt::Model::call does, and throws).
//
//===----------------------------------------------------------------------===//

#ifndef MODRT_CUDA_RUNTIME_H
#define MODRT_CUDA_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/// If a CUDA error is pending on the calling thread: copies its message
/// ("<call> failed: <CUDA_ERROR_NAME>: <description>", or why the driver or
/// cuBLAS cannot be used) into `message` (`size` bytes, truncated,
/// NUL-terminated), clears it and returns 1. Otherwise returns 0.
int modrt_cuda_take_error(char *message, size_t size);

/// Number of visible CUDA devices, or -1 when the driver cannot be used; in
/// both of the failing cases (-1, 0) `why` (if not null, `whyLen` bytes)
/// receives the reason. Never exits: tools can check before running a model.
int modrt_cuda_device_count(char *why, size_t whyLen);

// Module and kernel launch. The module handle is lazy: loading a model.so
// (whose constructors call mgpuModuleLoad) never touches the driver.
void *mgpuModuleLoad(void *data, size_t size);
void *mgpuModuleLoadJIT(void *data, int optLevel);
void mgpuModuleUnload(void *module);
void *mgpuModuleGetFunction(void *module, const char *name);
void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t sharedMemBytes, void *stream,
                      void **params, void **extra, size_t paramsCount);

// Streams and events.
void *mgpuStreamCreate(void);
void mgpuStreamDestroy(void *stream);
void mgpuStreamSynchronize(void *stream);
void mgpuStreamWaitEvent(void *stream, void *event);
void *mgpuEventCreate(void);
void mgpuEventDestroy(void *event);
void mgpuEventSynchronize(void *event);
void mgpuEventRecord(void *event, void *stream);

// Memory. Allocation and free are stream-ordered when a stream is given.
void *mgpuMemAlloc(uint64_t sizeBytes, void *stream, bool isHostShared);
void mgpuMemFree(void *ptr, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream);
void mgpuMemset32(void *dst, uint32_t value, size_t count, void *stream);
void mgpuMemset16(void *dst, uint16_t value, size_t count, void *stream);
void mgpuMemHostRegister(void *ptr, uint64_t sizeBytes);
void mgpuMemHostUnregister(void *ptr);
void mgpuSetDefaultDevice(int32_t device);

// Device-resident tensors (parameters, optimizer state: "residency":
// "device" in the manifest). libmodrt (modrt::Model) owns one buffer per
// such tensor for as long as the artifact is loaded and passes its address
// to the entry points instead of host memory. The copies are synchronous
// and on the legacy default stream, which the streams of generated code
// (blocking streams) are ordered with. On failure they return 0 / null with
// the error pending on the calling thread (modrt_cuda_take_error).

/// A device buffer of `sizeBytes` (> 0) bytes, or null.
void *modrt_cuda_buffer_alloc(uint64_t sizeBytes);
/// Frees a buffer of modrt_cuda_buffer_alloc; null is ignored. Reports
/// nothing (it runs from destructors, possibly after the driver shut down).
void modrt_cuda_buffer_free(void *buffer);
/// Host -> device: 1 on success.
int modrt_cuda_buffer_upload(void *device, const void *host,
                             uint64_t sizeBytes);
/// Device -> host, after all work queued before it: 1 on success.
int modrt_cuda_buffer_download(void *host, const void *device,
                               uint64_t sizeBytes);

/// Flags of modrt_cublas_sgemm_strided_batched.
enum {
  /// Allow TF32 tensor cores (inputs rounded to 10-bit mantissas, f32
  /// accumulation): CUBLAS_COMPUTE_32F_FAST_TF32 instead of _32F.
  MODRT_CUBLAS_TF32 = 1,
  /// A (resp. B) is given transposed: its buffer holds the k x m (n x k)
  /// row-major matrix, with leading dimension lda (ldb) of that matrix.
  MODRT_CUBLAS_TRANSPOSE_A = 2,
  MODRT_CUBLAS_TRANSPOSE_B = 4,
  /// modrt_cublaslt_matmul only: apply GELU (the tanh approximation
  /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), after the bias).
  MODRT_CUBLAS_GELU = 8,
};

/// C[b] = op(A[b]) * op(B[b]) + C[b] for b < batch, row-major f32 on device
/// pointers: op(A) is m x k (leading dimension lda), op(B) is k x n (ldb),
/// C is m x n (ldc); stride* are the distances between batch entries in
/// elements; `flags` is an OR of MODRT_CUBLAS_*. Runs on cuBLAS
/// (libcublas.so.13 or .12, loaded at first use) on the stream of the
/// calling generated function (the one it created last on this thread), so
/// it is ordered with the kernels around it without a host synchronization.
void modrt_cublas_sgemm_strided_batched(int64_t batch, int64_t m, int64_t n,
                                        int64_t k, const float *a, int64_t lda,
                                        int64_t strideA, const float *b,
                                        int64_t ldb, int64_t strideB, float *c,
                                        int64_t ldc, int64_t strideC,
                                        int32_t flags);

/// Mixed precision (mod-compile --cuda-precision=bf16): as
/// modrt_cublas_sgemm_strided_batched, but A and B hold bf16 values (the
/// raw 16-bit patterns; generated kernels convert the f32 buffers), C is
/// f32 and the products are accumulated in f32 (cublasGemmStridedBatchedEx
/// with CUDA_R_16BF A/B, CUDA_R_32F C, CUBLAS_COMPUTE_32F). MODRT_CUBLAS_TF32
/// is ignored; the transpose flags apply.
void modrt_cublas_gemm_bf16_strided_batched(
    int64_t batch, int64_t m, int64_t n, int64_t k, const uint16_t *a,
    int64_t lda, int64_t strideA, const uint16_t *b, int64_t ldb,
    int64_t strideB, float *c, int64_t ldc, int64_t strideC, int32_t flags);

/// D = epilogue(op(A) * op(B) + C), row-major f32 on device pointers, with
/// op(A) m x k (lda), op(B) k x n (ldb), C and D m x n (ldc, ldd; C may be
/// D; C null: nothing is added, D is overwritten). The epilogue adds
/// `bias` (n floats, one per column; null: none) to every row, then, with
/// MODRT_CUBLAS_GELU, applies the tanh GELU. `flags`: MODRT_CUBLAS_TF32,
/// _TRANSPOSE_A, _TRANSPOSE_B (as for the SGEMM above) and _GELU. Runs
/// cublasLtMatmul (libcublasLt.so.13 or .12, loaded at first use) on the
/// calling function's stream; the descriptor, layouts and algorithm of each
/// distinct problem (sizes, leading dimensions, flags, pointer alignments)
/// are built once and cached for the process.
void modrt_cublaslt_matmul(int64_t m, int64_t n, int64_t k, const float *a,
                           int64_t lda, const float *b, int64_t ldb,
                           const float *c, int64_t ldc, float *d, int64_t ldd,
                           const float *bias, int32_t flags);

#ifdef __cplusplus
}
#endif

#endif // MODRT_CUDA_RUNTIME_H
