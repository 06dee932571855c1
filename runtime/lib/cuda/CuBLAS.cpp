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
struct CuBLAS {
  decltype(&::cublasCreate_v2) create = nullptr;
  decltype(&::cublasSgemmStridedBatched) sgemmStridedBatched = nullptr;
  decltype(&::cublasGetStatusString) statusString = nullptr;
  cublasHandle_t handle = nullptr;
};

void checkBlas(const CuBLAS &blas, cublasStatus_t status, const char *call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fatal(std::string(call) + " failed: " +
          (blas.statusString ? blas.statusString(status) : "cuBLAS error"));
}

CuBLAS &cublas() {
  static CuBLAS blas;
  static std::once_flag once;
  std::call_once(once, [] {
    driver(); // the primary context must be current for cublasCreate
    void *lib = nullptr;
    std::string tried;
    for (const char *name : {"libcublas.so.13", "libcublas.so.12",
                             "libcublas.so"}) {
      if ((lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL)))
        break;
      tried += std::string(tried.empty() ? "" : ", ") + name;
    }
    if (!lib)
      fatal("cannot load cuBLAS (tried " + tried +
            "); add the CUDA toolkit's lib64 to LD_LIBRARY_PATH");
    blas.create = reinterpret_cast<decltype(blas.create)>(
        ::dlsym(lib, "cublasCreate_v2"));
    blas.sgemmStridedBatched =
        reinterpret_cast<decltype(blas.sgemmStridedBatched)>(
            ::dlsym(lib, "cublasSgemmStridedBatched"));
    blas.statusString = reinterpret_cast<decltype(blas.statusString)>(
        ::dlsym(lib, "cublasGetStatusString"));
    if (!blas.create || !blas.sgemmStridedBatched)
      fatal("the cuBLAS library found lacks cublasCreate_v2 or "
            "cublasSgemmStridedBatched");
    checkBlas(blas, blas.create(&blas.handle), "cublasCreate");
  });
  return blas;
}
} // namespace

extern "C" void modrt_cublas_sgemm_strided_batched(
    int64_t batch, int64_t m, int64_t n, int64_t k, const float *a,
    int64_t lda, int64_t strideA, const float *b, int64_t ldb, int64_t strideB,
    float *c, int64_t ldc, int64_t strideC) {
  if (batch == 0 || m == 0 || n == 0)
    return;
  CuBLAS &blas = cublas();
  driver(); // make the context current on this thread
  const float one = 1.0f;
  // cuBLAS is column-major: a row-major m x n C is a column-major n x m
  // C^T, and C^T = B^T A^T with B^T, A^T being B and A read column-major.
  checkBlas(blas,
            blas.sgemmStridedBatched(
                blas.handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n),
                static_cast<int>(m), static_cast<int>(k), &one, b,
                static_cast<int>(ldb), strideB, a, static_cast<int>(lda),
                strideA, &one, c, static_cast<int>(ldc), strideC,
                static_cast<int>(batch)),
            "cublasSgemmStridedBatched");
}
