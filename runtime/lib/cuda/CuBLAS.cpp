//===- CuBLAS.cpp - cuBLAS wrappers called by generated host code ---------===//
//
// libcublas is loaded with dlopen at the first GEMM, like the driver, so
// libmodrt_cuda has no link-time dependency on the toolkit's libraries.
//
//===----------------------------------------------------------------------===//

#include "modrt/cuda/Runtime.h"

#include "Driver.h"

#include <cublas_v2.h>
#include <dlfcn.h>
#include <mutex>
#include <string>

using namespace modrt::cuda;

namespace {
/// cublasGemmStridedBatchedEx's C entry point (the header also declares C++
/// overloads, so decltype cannot name it).
using GemmStridedBatchedExFn = cublasStatus_t (*)(
    cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
    const void *, const void *, cudaDataType, int, long long, const void *,
    cudaDataType, int, long long, const void *, void *, cudaDataType, int,
    long long, int, cublasComputeType_t, cublasGemmAlgo_t);

struct CuBLAS {
  decltype(&::cublasCreate_v2) create = nullptr;
  decltype(&::cublasSetStream_v2) setStream = nullptr;
  GemmStridedBatchedExFn gemmStridedBatchedEx = nullptr;
  decltype(&::cublasGetStatusString) statusString = nullptr;
  cublasHandle_t handle = nullptr;
  std::string error; // why cuBLAS cannot be used; empty when it can
  /// One handle for the process: its stream is set per call, under this.
  std::mutex mutex;
};

bool checkBlas(const CuBLAS &blas, cublasStatus_t status, const char *call) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return true;
  fail(std::string(call) + " failed: " +
       (blas.statusString ? blas.statusString(status)
                          : "cuBLAS status " + std::to_string(int(status))));
  return false;
}

/// cuBLAS, ready, or null with this thread's error set.
CuBLAS *cublas() {
  static CuBLAS blas;
  static std::once_flag once;
  if (!driver()) // the primary context must be current for cublasCreate
    return nullptr;
  std::call_once(once, [] {
    void *lib = nullptr;
    std::string tried;
    for (const char *name : {"libcublas.so.13", "libcublas.so.12",
                             "libcublas.so"}) {
      if ((lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL)))
        break;
      tried += std::string(tried.empty() ? "" : ", ") + name;
    }
    if (!lib) {
      blas.error = "cannot load cuBLAS (tried " + tried +
                   "); add the CUDA toolkit's lib64 to LD_LIBRARY_PATH";
      return;
    }
    blas.create = reinterpret_cast<decltype(blas.create)>(
        ::dlsym(lib, "cublasCreate_v2"));
    blas.setStream = reinterpret_cast<decltype(blas.setStream)>(
        ::dlsym(lib, "cublasSetStream_v2"));
    blas.gemmStridedBatchedEx =
        reinterpret_cast<GemmStridedBatchedExFn>(
            ::dlsym(lib, "cublasGemmStridedBatchedEx"));
    blas.statusString = reinterpret_cast<decltype(blas.statusString)>(
        ::dlsym(lib, "cublasGetStatusString"));
    if (!blas.create || !blas.setStream || !blas.gemmStridedBatchedEx) {
      blas.error = "the cuBLAS library found lacks cublasCreate_v2, "
                   "cublasSetStream_v2 or cublasGemmStridedBatchedEx";
      return;
    }
    if (cublasStatus_t s = blas.create(&blas.handle);
        s != CUBLAS_STATUS_SUCCESS)
      blas.error = std::string("cublasCreate failed: ") +
                   (blas.statusString ? blas.statusString(s) : "error");
  });
  if (!blas.error.empty()) {
    fail(blas.error);
    return nullptr;
  }
  return &blas;
}
} // namespace

namespace {
/// Row-major C[b] += op(A[b]) * op(B[b]) with A and B of type `abType`
/// (f32 or bf16), C f32, accumulation in `compute`.
void gemmStridedBatched(int64_t batch, int64_t m, int64_t n, int64_t k,
                        const void *a, int64_t lda, int64_t strideA,
                        const void *b, int64_t ldb, int64_t strideB, float *c,
                        int64_t ldc, int64_t strideC, int32_t flags,
                        cudaDataType abType, cublasComputeType_t compute) {
  if (batch == 0 || m == 0 || n == 0)
    return;
  CuBLAS *blas = cublas();
  if (!blas)
    return;
  const float one = 1.0f;
  // Row-major X^T read column-major is X itself, so a transposed row-major
  // operand is a non-transposed column-major one and vice versa.
  cublasOperation_t opA =
      (flags & MODRT_CUBLAS_TRANSPOSE_A) ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opB =
      (flags & MODRT_CUBLAS_TRANSPOSE_B) ? CUBLAS_OP_T : CUBLAS_OP_N;
  std::lock_guard<std::mutex> lock(blas->mutex);
  // Same stream as the kernels around the call: no host synchronization.
  if (!checkBlas(*blas,
                 blas->setStream(blas->handle,
                                 static_cast<cudaStream_t>(currentStream())),
                 "cublasSetStream"))
    return;
  // cuBLAS is column-major: a row-major m x n C is a column-major n x m
  // C^T, and C^T = B^T A^T with B^T, A^T being B and A read column-major.
  checkBlas(*blas,
            blas->gemmStridedBatchedEx(
                blas->handle, opB, opA, static_cast<int>(n),
                static_cast<int>(m), static_cast<int>(k), &one, b, abType,
                static_cast<int>(ldb), strideB, a, abType,
                static_cast<int>(lda), strideA, &one, c, CUDA_R_32F,
                static_cast<int>(ldc), strideC, static_cast<int>(batch),
                compute, CUBLAS_GEMM_DEFAULT),
            "cublasGemmStridedBatchedEx");
}
} // namespace

extern "C" void modrt_cublas_sgemm_strided_batched(
    int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,
    int64_t lda, int64_t strideA, const float *b, int64_t ldb, int64_t strideB,
    float *c, int64_t ldc, int64_t strideC, int32_t flags) {
  gemmStridedBatched(batch, m, n, k, a, lda, strideA, b, ldb, strideB, c, ldc,
                     strideC, flags, CUDA_R_32F,
                     (flags & MODRT_CUBLAS_TF32) ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                 : CUBLAS_COMPUTE_32F);
}

extern "C" void modrt_cublas_gemm_bf16_strided_batched(
    int64_t batch, int64_t m, int64_t n, int64_t k, const uint16_t *a,
    int64_t lda, int64_t strideA, const uint16_t *b, int64_t ldb,
    int64_t strideB, float *c, int64_t ldc, int64_t strideC, int32_t flags) {
  // bf16 tensor cores, f32 accumulation; TF32 does not apply.
  gemmStridedBatched(batch, m, n, k, a, lda, strideA, b, ldb, strideB, c, ldc,
                     strideC, flags & ~MODRT_CUBLAS_TF32, CUDA_R_16BF,
                     CUBLAS_COMPUTE_32F);
}
