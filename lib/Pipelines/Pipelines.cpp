//===- Pipelines.cpp - modc lowering pipelines ----------------------------===//

#include "mod/Pipelines/Pipelines.h"

#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

std::string mlir::mod::getCPULoweringPipeline() {
  // Kept textual so `mod-opt --mod-cpu-lowering` and mod-compile run exactly
  // the same passes and a user can replay any prefix of it with mod-opt.
  return "mod-expand-routed-blocks,"
         "mod-lower-to-linalg,"
         "canonicalize,cse,"
         "mod-cpu-fuse-elementwise,"
         "canonicalize,cse,"
         "mod-read-only-entry-arguments,"
         "one-shot-bufferize{bufferize-function-boundaries "
         "function-boundary-type-conversion=identity-layout-map},"
         "buffer-results-to-out-params{hoist-static-allocs modify-public-functions},"
         "buffer-deallocation-pipeline,"
         "canonicalize,"
         // In-place results: no copy of a buffer onto itself.
         "func.func(mod-elide-self-copies),"
         // Causal attention per query tile, before its GEMMs become calls.
         "func.func(mod-cpu-causal-attention),"
         "mod-linalg-to-blas,"
         "mod-strided-copies-to-linalg,"
         "mod-cpu-parallel-reductions,"
         "func.func(convert-linalg-to-parallel-loops),"
         "mod-cpu-parallel-loops,"
         "convert-scf-to-openmp,"
         "mod-cpu-approximate-math,"
         // Memref ops lower before scf: the memref.alloca_scope that
         // convert-scf-to-openmp puts in each parallel body must still hold
         // a single block when it is inlined.
         "expand-strided-metadata,"
         "lower-affine,"
         // Allocations call model.so's own buffer cache (cpuSupportSource).
         "finalize-memref-to-llvm{use-generic-functions},"
         "convert-scf-to-cf,"
         "convert-math-to-llvm,"
         "convert-math-to-libm,"
         "convert-arith-to-llvm,"
         "convert-index-to-llvm,"
         "convert-func-to-llvm,"
         "convert-cf-to-llvm,"
         "convert-openmp-to-llvm,"
         "reconcile-unrealized-casts";
}

LogicalResult mlir::mod::parsePipelineInto(OpPassManager &pm,
                                           StringRef pipeline, StringRef name,
                                           std::string &error) {
  std::string errors;
  llvm::raw_string_ostream os(errors);
  if (succeeded(parsePassPipeline(pipeline, pm, os)))
    return success();
  StringRef why = StringRef(errors).trim();
  error = ("the " + name + " pipeline does not parse: " +
           (why.empty() ? StringRef("unknown error") : why) + " (pipeline: " +
           pipeline + ")")
              .str();
  return failure();
}

LogicalResult mlir::mod::buildCPULoweringPipeline(OpPassManager &pm,
                                                  std::string &error) {
  return parsePipelineInto(pm, getCPULoweringPipeline(), "CPU lowering",
                           error);
}

std::vector<std::string> mlir::mod::cpuLinkArguments() {
  // libomp comes with LLVM (Debian's libomp-22-dev), outside the default
  // library path, hence the rpath.
  return {"-lopenblas", "-L" MODC_LLVM_LIBRARY_DIR, "-lomp",
          "-Wl,-rpath," MODC_LLVM_LIBRARY_DIR};
}

llvm::StringRef mlir::mod::cpuSupportSource() {
  return R"c(/* Linked into every CPU model.so by mod-compile. */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

/* Buffers of at least MODC_MIN_CACHED bytes are parked here when freed and
   handed out again to an allocation that they fit with at most 1/8 to
   spare. glibc returns such blocks to the kernel (they are mmapped), and
   the next call's writes fault every page in again: for a transformer
   forward that is a large share of its time. At most MODC_MAX_PARKED bytes
   stay parked; the oldest go first. */
#define MODC_SLOTS 64
#define MODC_MIN_CACHED ((size_t)1 << 20)
#define MODC_MAX_PARKED ((size_t)1 << 30)

static pthread_mutex_t modc_lock = PTHREAD_MUTEX_INITIALIZER;
static void *modc_block[MODC_SLOTS];
static size_t modc_size[MODC_SLOTS];
static uint64_t modc_stamp[MODC_SLOTS];
static uint64_t modc_clock;
static size_t modc_parked;

static void modc_evict_oldest(void) {
  int oldest = -1;
  for (int i = 0; i < MODC_SLOTS; ++i)
    if (modc_block[i] && (oldest < 0 || modc_stamp[i] < modc_stamp[oldest]))
      oldest = i;
  if (oldest < 0)
    return;
  free(modc_block[oldest]);
  modc_block[oldest] = NULL;
  modc_parked -= modc_size[oldest];
}

__attribute__((visibility("hidden"))) void *
_mlir_memref_to_llvm_alloc(uint64_t size) {
  if (size >= MODC_MIN_CACHED) {
    pthread_mutex_lock(&modc_lock);
    int best = -1;
    for (int i = 0; i < MODC_SLOTS; ++i)
      if (modc_block[i] && modc_size[i] >= size &&
          modc_size[i] - size <= size / 8 &&
          (best < 0 || modc_size[i] < modc_size[best]))
        best = i;
    if (best >= 0) {
      void *p = modc_block[best];
      modc_block[best] = NULL;
      modc_parked -= modc_size[best];
      pthread_mutex_unlock(&modc_lock);
      return p;
    }
    pthread_mutex_unlock(&modc_lock);
  }
  return malloc(size);
}

__attribute__((visibility("hidden"))) void
_mlir_memref_to_llvm_free(void *p) {
  if (!p)
    return;
  size_t size = malloc_usable_size(p);
  if (size >= MODC_MIN_CACHED && size <= MODC_MAX_PARKED) {
    pthread_mutex_lock(&modc_lock);
    for (;;) {
      int slot = -1;
      for (int i = 0; i < MODC_SLOTS && slot < 0; ++i)
        if (!modc_block[i])
          slot = i;
      if (slot >= 0 && modc_parked + size <= MODC_MAX_PARKED) {
        modc_block[slot] = p;
        modc_size[slot] = size;
        modc_stamp[slot] = ++modc_clock;
        modc_parked += size;
        pthread_mutex_unlock(&modc_lock);
        return;
      }
      modc_evict_oldest();
    }
  }
  free(p);
}

/* dlclose of the model returns what is parked. */
__attribute__((destructor)) static void modc_release_parked(void) {
  for (int i = 0; i < MODC_SLOTS; ++i)
    free(modc_block[i]);
}
)c";
}

void mlir::mod::registerMoDPipelines() {
  // Registered by hand so that a pipeline that fails to parse fails mod-opt
  // instead of running whatever prefix parsed.
  registerPassPipeline(
      "mod-cpu-lowering",
      "Lower mod/linalg/tensor IR to the LLVM dialect for the host CPU "
      "(expand routed blocks, lower mod ops, bufferize, results to "
      "out-parameters, loops, LLVM)",
      [](OpPassManager &pm, StringRef options,
         function_ref<LogicalResult(const Twine &)> errorHandler) {
        if (!options.empty())
          return errorHandler("--mod-cpu-lowering takes no options, got '" +
                              options + "'");
        std::string error;
        if (failed(buildCPULoweringPipeline(pm, error)))
          return errorHandler(error);
        return success();
      },
      [](function_ref<void(const detail::PassOptions &)>) {});
}
