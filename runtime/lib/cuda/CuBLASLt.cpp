//===- CuBLASLt.cpp - cuBLASLt matmul with bias/GELU epilogues ------------===//
//
// modrt_cublaslt_matmul (Runtime.h): one GEMM whose bias add and tanh GELU
// run in cuBLASLt's epilogue, so the result is written once instead of
// being re-read and re-written by two elementwise kernels.
//
// libcublasLt is loaded with dlopen at the first call, like libcublas and
// the driver: libmodrt_cuda has no link-time dependency on the toolkit.
//
// cuBLASLt needs a matmul descriptor, three matrix layouts, a preference and
// a heuristic query (which costs tens of microseconds) per problem. They
// are built once per distinct problem (sizes, leading dimensions, flags,
// alignment of the pointers) and cached for the life of the process; a call
// with a cached problem only sets the bias pointer on the descriptor and
// enqueues the matmul.
//
//===----------------------------------------------------------------------===//

#include "modrt/cuda/Runtime.h"

#include "Driver.h"

#include <cublasLt.h>
#include <dlfcn.h>

#include <map>
#include <mutex>
#include <string>
#include <tuple>

using namespace modrt::cuda;

namespace {
/// The workspace cuBLASLt may use per call (NVIDIA's recommendation for
/// Hopper); a call allocates only what the chosen algorithm asks for,
/// stream-ordered from the driver's pool, like the generated code's buffers.
constexpr size_t kMaxWorkspaceBytes = 32u << 20;

/// Alignments the heuristic is told about (bytes, power of two).
int64_t alignmentOf(const void *p) {
  auto bits = reinterpret_cast<uintptr_t>(p);
  int64_t align = 256;
  while (align > 4 && bits % align != 0)
    align /= 2;
  return align;
}

/// Everything the cached descriptor, layouts and algorithm depend on.
using ProblemKey = std::tuple<int64_t, int64_t, int64_t, // m, n, k
                              int64_t, int64_t, int64_t, int64_t, // ld a/b/c/d
                              int32_t, bool, bool, // flags, has C, has bias
                              int64_t, int64_t, int64_t, int64_t,
                              int64_t>; // alignment a/b/c/d/bias

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};

struct CuBLASLt {
  decltype(&::cublasLtCreate) create = nullptr;
  decltype(&::cublasLtGetStatusString) statusString = nullptr;
  decltype(&::cublasLtMatmulDescCreate) descCreate = nullptr;
  decltype(&::cublasLtMatmulDescSetAttribute) descSet = nullptr;
  decltype(&::cublasLtMatrixLayoutCreate) layoutCreate = nullptr;
  decltype(&::cublasLtMatmulPreferenceCreate) prefCreate = nullptr;
  decltype(&::cublasLtMatmulPreferenceSetAttribute) prefSet = nullptr;
  decltype(&::cublasLtMatmulPreferenceDestroy) prefDestroy = nullptr;
  decltype(&::cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
  decltype(&::cublasLtMatmul) matmul = nullptr;
  cublasLtHandle_t handle = nullptr;
  std::string error; // why cuBLASLt cannot be used; empty when it can
  /// Guards `plans` and the descriptors in it (the bias pointer is set on
  /// the shared descriptor right before each matmul is enqueued).
  std::mutex mutex;
  std::map<ProblemKey, Plan> plans;
};

bool checkLt(const CuBLASLt &lt, cublasStatus_t status, const char *call) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return true;
  fail(std::string(call) + " failed: " +
       (lt.statusString ? lt.statusString(status)
                        : "cuBLAS status " + std::to_string(int(status))));
  return false;
}

template <typename T>
bool resolve(void *lib, const char *name, T &fn, std::string &missing) {
  fn = reinterpret_cast<T>(::dlsym(lib, name));
  if (!fn)
    missing += std::string(missing.empty() ? "" : ", ") + name;
  return fn != nullptr;
}

/// cuBLASLt, ready, or null with this thread's error set.
CuBLASLt *cublasLt() {
  static CuBLASLt lt;
  static std::once_flag once;
  if (!driver()) // the primary context must be current for cublasLtCreate
    return nullptr;
  std::call_once(once, [] {
    void *lib = nullptr;
    std::string tried;
    for (const char *name : {"libcublasLt.so.13", "libcublasLt.so.12",
                             "libcublasLt.so"}) {
      if ((lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL)))
        break;
      tried += std::string(tried.empty() ? "" : ", ") + name;
    }
    if (!lib) {
      lt.error = "cannot load cuBLASLt (tried " + tried +
                 "); add the CUDA toolkit's lib64 to LD_LIBRARY_PATH";
      return;
    }
    std::string missing;
    resolve(lib, "cublasLtGetStatusString", lt.statusString, missing);
    bool ok = resolve(lib, "cublasLtCreate", lt.create, missing);
    ok &= resolve(lib, "cublasLtMatmulDescCreate", lt.descCreate, missing);
    ok &= resolve(lib, "cublasLtMatmulDescSetAttribute", lt.descSet, missing);
    ok &= resolve(lib, "cublasLtMatrixLayoutCreate", lt.layoutCreate, missing);
    ok &= resolve(lib, "cublasLtMatmulPreferenceCreate", lt.prefCreate,
                  missing);
    ok &= resolve(lib, "cublasLtMatmulPreferenceSetAttribute", lt.prefSet,
                  missing);
    ok &= resolve(lib, "cublasLtMatmulPreferenceDestroy", lt.prefDestroy,
                  missing);
    ok &= resolve(lib, "cublasLtMatmulAlgoGetHeuristic", lt.heuristic,
                  missing);
    ok &= resolve(lib, "cublasLtMatmul", lt.matmul, missing);
    if (!ok) {
      lt.error = "the cuBLASLt library found lacks " + missing;
      return;
    }
    if (cublasStatus_t s = lt.create(&lt.handle); s != CUBLAS_STATUS_SUCCESS)
      lt.error = std::string("cublasLtCreate failed: ") +
                 (lt.statusString ? lt.statusString(s) : "error");
  });
  if (!lt.error.empty()) {
    fail(lt.error);
    return nullptr;
  }
  return &lt;
}

/// Builds the descriptor, layouts and algorithm of a problem. The bias
/// pointer given is only used for its alignment (the heuristic reads it).
bool makePlan(CuBLASLt &lt, const ProblemKey &key, const void *bias,
              Plan &plan) {
  auto [m, n, k, lda, ldb, ldc, ldd, flags, hasC, hasBias, alignA, alignB,
        alignC, alignD, alignBias] = key;
  (void)alignBias;
  cublasComputeType_t compute = (flags & MODRT_CUBLAS_TF32)
                                    ? CUBLAS_COMPUTE_32F_FAST_TF32
                                    : CUBLAS_COMPUTE_32F;
  if (!checkLt(lt, lt.descCreate(&plan.desc, compute, CUDA_R_32F),
               "cublasLtMatmulDescCreate"))
    return false;
  // Row-major C (m x n) is column-major C^T (n x m) = op(B)^T op(A)^T:
  // cuBLASLt's A is our B and its B is our A, each read column-major, so a
  // row-major operand given as is needs no transpose and a transposed one
  // needs CUBLAS_OP_T.
  bool transA = flags & MODRT_CUBLAS_TRANSPOSE_A;
  bool transB = flags & MODRT_CUBLAS_TRANSPOSE_B;
  cublasOperation_t opLtA = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opLtB = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  // Bias: one value per row of column-major D, i.e. per column of our C.
  cublasLtEpilogue_t epilogue =
      (flags & MODRT_CUBLAS_GELU)
          ? (hasBias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
          : (hasBias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
  if (!checkLt(lt,
               lt.descSet(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opLtA,
                          sizeof(opLtA)),
               "cublasLtMatmulDescSetAttribute(TRANSA)") ||
      !checkLt(lt,
               lt.descSet(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opLtB,
                          sizeof(opLtB)),
               "cublasLtMatmulDescSetAttribute(TRANSB)") ||
      !checkLt(lt,
               lt.descSet(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                          sizeof(epilogue)),
               "cublasLtMatmulDescSetAttribute(EPILOGUE)"))
    return false;
  if (hasBias) {
    cudaDataType biasType = CUDA_R_32F;
    if (!checkLt(lt,
                 lt.descSet(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                            &biasType, sizeof(biasType)),
                 "cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)") ||
        !checkLt(lt,
                 lt.descSet(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                            &bias, sizeof(bias)),
                 "cublasLtMatmulDescSetAttribute(BIAS_POINTER)"))
      return false;
  }
  // Stored shapes (rows x cols, column-major) of cuBLASLt's A (our B), B
  // (our A), C and D.
  uint64_t aRows = transB ? k : n, aCols = transB ? n : k;
  uint64_t bRows = transA ? m : k, bCols = transA ? k : m;
  if (!checkLt(lt, lt.layoutCreate(&plan.a, CUDA_R_32F, aRows, aCols, ldb),
               "cublasLtMatrixLayoutCreate(A)") ||
      !checkLt(lt, lt.layoutCreate(&plan.b, CUDA_R_32F, bRows, bCols, lda),
               "cublasLtMatrixLayoutCreate(B)") ||
      !checkLt(lt,
               lt.layoutCreate(&plan.c, CUDA_R_32F, n, m, hasC ? ldc : ldd),
               "cublasLtMatrixLayoutCreate(C)") ||
      !checkLt(lt, lt.layoutCreate(&plan.d, CUDA_R_32F, n, m, ldd),
               "cublasLtMatrixLayoutCreate(D)"))
    return false;
  cublasLtMatmulPreference_t pref = nullptr;
  if (!checkLt(lt, lt.prefCreate(&pref), "cublasLtMatmulPreferenceCreate"))
    return false;
  uint64_t workspace = kMaxWorkspaceBytes;
  // The alignments of the pointers this problem is called with (the
  // default assumes 256 bytes; views into a buffer can have less).
  uint32_t align[4] = {uint32_t(alignB), uint32_t(alignA),
                       uint32_t(hasC ? alignC : alignD), uint32_t(alignD)};
  bool ok =
      checkLt(lt,
              lt.prefSet(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                         &workspace, sizeof(workspace)),
              "cublasLtMatmulPreferenceSetAttribute") &&
      checkLt(lt,
              lt.prefSet(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                         &align[0], sizeof(uint32_t)),
              "cublasLtMatmulPreferenceSetAttribute") &&
      checkLt(lt,
              lt.prefSet(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                         &align[1], sizeof(uint32_t)),
              "cublasLtMatmulPreferenceSetAttribute") &&
      checkLt(lt,
              lt.prefSet(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                         &align[2], sizeof(uint32_t)),
              "cublasLtMatmulPreferenceSetAttribute") &&
      checkLt(lt,
              lt.prefSet(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                         &align[3], sizeof(uint32_t)),
              "cublasLtMatmulPreferenceSetAttribute");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (ok)
    ok = checkLt(lt,
                 lt.heuristic(lt.handle, plan.desc, plan.a, plan.b, plan.c,
                              plan.d, pref, 1, &result, &found),
                 "cublasLtMatmulAlgoGetHeuristic");
  lt.prefDestroy(pref);
  if (!ok)
    return false;
  if (found == 0) {
    fail("cublasLtMatmulAlgoGetHeuristic found no algorithm for the " +
         std::to_string(m) + "x" + std::to_string(n) + "x" +
         std::to_string(k) + " matmul with epilogue " +
         std::to_string(int(epilogue)));
    return false;
  }
  plan.algo = result.algo;
  plan.workspace = result.workspaceSize;
  return true;
}
} // namespace

extern "C" void modrt_cublaslt_matmul(int64_t m, int64_t n, int64_t k,
                                      const float *a, int64_t lda,
                                      const float *b, int64_t ldb,
                                      const float *c, int64_t ldc, float *d,
                                      int64_t ldd, const float *bias,
                                      int32_t flags) {
  if (m == 0 || n == 0)
    return;
  const Driver *drv = driver();
  if (!drv)
    return;
  CuBLASLt *lt = cublasLt();
  if (!lt)
    return;
  ProblemKey key{m,
                 n,
                 k,
                 lda,
                 ldb,
                 c ? ldc : 0,
                 ldd,
                 flags,
                 c != nullptr,
                 bias != nullptr,
                 alignmentOf(a),
                 alignmentOf(b),
                 c ? alignmentOf(c) : 0,
                 alignmentOf(d),
                 bias ? alignmentOf(bias) : 0};
  auto stream = static_cast<CUstream>(currentStream());
  std::lock_guard<std::mutex> lock(lt->mutex);
  auto it = lt->plans.find(key);
  if (it == lt->plans.end()) {
    Plan plan;
    if (!makePlan(*lt, key, bias, plan))
      return; // not cached: the next call reports the error again
    it = lt->plans.emplace(key, plan).first;
  }
  Plan &plan = it->second;
  if (bias && !checkLt(*lt,
                       lt->descSet(plan.desc,
                                   CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                   sizeof(bias)),
                       "cublasLtMatmulDescSetAttribute(BIAS_POINTER)"))
    return;
  CUdeviceptr workspace = 0;
  if (plan.workspace &&
      !check(drv->memAllocAsync(&workspace, plan.workspace, stream),
             "cuMemAllocAsync"))
    return;
  const float one = 1.0f, zero = 0.0f;
  // Same stream as the kernels around the call: no host synchronization.
  checkLt(*lt,
          lt->matmul(lt->handle, plan.desc, &one, b, plan.a, a, plan.b,
                     c ? &one : &zero, c ? c : d, plan.c, d, plan.d,
                     &plan.algo, reinterpret_cast<void *>(workspace),
                     plan.workspace, static_cast<cudaStream_t>(stream)),
          "cublasLtMatmul");
  if (workspace)
    check(drv->memFreeAsync(workspace, stream), "cuMemFreeAsync");
}
