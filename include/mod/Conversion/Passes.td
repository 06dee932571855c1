//===- Passes.td - MoD conversions -------------------------*- tablegen -*-===//

#ifndef MOD_CONVERSION_PASSES_TD
#define MOD_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertMoDToLinalg : Pass<"mod-lower-to-linalg"> {
  let summary = "Lower mod ops to linalg, tensor, arith and scf on static-shape tensors";
  let description = [{
    Lowers `mod.router`, `mod.topk`, `mod.gather` and `mod.scatter_add` to
    upstream dialects on tensors, ready for one-shot bufferization.
    `mod.routed_block` must be expanded first (`--mod-expand-routed-blocks`);
    a remaining one is an error.

    - `mod.router`: a `linalg.generic` contracting D (`B·S·D` multiply-adds).
    - `mod.topk`: a rank-based selection. For every token `i` a
      `linalg.generic` counts the tokens that beat it
      (`r[j] > r[i]`, or `r[j] == r[i]` and `j < i`: ties go to the lower
      index); token `i` is selected iff that count is `< K`, so exactly `K`
      tokens are selected in every row without any sort. An `scf.for` over
      the tokens then writes the selected indices in ascending order
      (a running prefix count gives each one its slot). Cost per row:
      `S²` comparisons (fully parallel over `i`) plus `S` sequential steps of
      compaction; memory is `O(B·S)`. The CUDA path replaces this with a radix
      select.
    - `mod.gather`: a `linalg.generic` over the `[B,K,...]` result whose body
      reads `input[b, idx[b,j], ...]` with `tensor.extract`.
    - `mod.scatter_add`: `scf.for` over `(b, j)` that adds
      `scale[b,j] * update[b,j,...]` into the row `idx[b,j]` of a copy of
      `input` through `tensor.extract_slice`/`tensor.insert_slice`
      (`B·K·D` multiply-adds); repeated indices accumulate.

    Before:

    ```mlir
    %idx, %val = mod.topk %r k(2) : tensor<1x4xf32> -> tensor<1x2xi32>, tensor<1x2xf32>
    ```

    After (sketch):

    ```mlir
    %beaten = linalg.generic {iterator_types = ["parallel", "parallel", "reduction"]}
        ins(%r, %r : ...) outs(%zeros : tensor<1x4xi32>) { ... }
    %idx, %val = scf.for %b ... { scf.for %i ... { tensor.insert ... } }
    ```
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect"];
}

//===----------------------------------------------------------------------===//
// CUDA target
//===----------------------------------------------------------------------===//

def ConvertMoDRoutingToGPU : Pass<"mod-lower-routing-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Lower mod routing ops to fused GPU kernels (gpu.launch)";
  let description = [{
    Replaces the expanded routing ops (`mod.router`, `mod.topk`, `mod.gather`,
    `mod.scatter_add`; run `--mod-expand-routed-blocks` first) with
    `gpu.launch` kernels on buffers, bridged to the surrounding tensor code by
    `bufferization.to_buffer` / `bufferization.to_tensor restrict writable`,
    so the function can still be bufferized with one-shot bufferization.

    - `mod_router_topk_gather_<n>`: `mod.router` → `mod.topk` → the
      `mod.gather`s of the top-k indices, fused into one kernel with one
      thread block per batch row: warp-per-token router dot products, a
      4-pass 8-bit radix select on totally ordered uint32 keys (histogram in
      workgroup memory; `-0.0 == +0.0`, NaN above `+inf`, ties to the lower
      index, exactly as `--mod-lower-to-linalg`), an ascending prefix-sum
      compaction writing `[B,K]` indices and values, then the gathered rows.
      Without a router (`mod.topk` on any scores) the kernel is
      `mod_topk_gather_<n>`. A gather whose input is not available at the
      top-k is not fused and gets a `mod_gather_<n>` kernel.
    - `mod_scale_scatter_add_<n>`: `out = x; out[b, idx[b,j], :] +=
      g(val[b,j]) * d[b,j,:]` for indices produced by `mod.topk` (unique and
      ascending): one warp per output row finds its update by binary search,
      so no atomics. The op's `gate` attribute (`gate(sigmoid)`:
      `1 / (1 + exp(-v))`) is applied in the kernel. Indices of other provenance may repeat and use
      `mod_scatter_add_<n>_copy` + `mod_scatter_add_<n>_atomic` instead.
    - A `mod.router` or `mod.gather` left over gets its own kernel.

    Router and top-k need f32 scores (an error names the op otherwise).

    Before:

    ```mlir
    %r = mod.router %x, %w : tensor<2x64x32xf32>, tensor<32xf32> -> tensor<2x64xf32>
    %idx, %val = mod.topk %r k(8) : tensor<2x64xf32> -> tensor<2x8xi32>, tensor<2x8xf32>
    %xk = mod.gather %x[%idx] : tensor<2x64x32xf32>, tensor<2x8xi32> -> tensor<2x8x32xf32>
    ```

    After (sketch):

    ```mlir
    %xb = bufferization.to_buffer %x read_only : tensor<2x64x32xf32> to memref<2x64x32xf32>
    %scores = memref.alloc() : memref<2x64xf32>
    %idxb = memref.alloc() : memref<2x8xi32>
    ...
    gpu.launch blocks(%bx, %by, %bz) in (%gx = %c2, ...) threads(...) in (%tx = %c256, ...)
        workgroup(%hist : memref<256xi32, #gpu.address_space<workgroup>>, ...)
        module(@mod_router_topk_gather_0) function(@mod_router_topk_gather_0) {
      ...
    }
    %idx = bufferization.to_tensor %idxb restrict writable : memref<2x8xi32> to tensor<2x8xi32>
    ```
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"256",
           "Threads per block of the routing kernels (a multiple of 32, at "
           "most 1024)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect"];
}

def ConvertLinalgMatmulToCuBLAS : Pass<"mod-linalg-to-cublas", "::mlir::ModuleOp"> {
  let summary = "Turn f32 linalg.matmul / linalg.batch_matmul on buffers into cuBLAS calls";
  let description = [{
    Replaces `linalg.matmul` and `linalg.batch_matmul` on f32 memrefs whose
    rows are contiguous (static unit inner stride) with a call to
    `modrt_cublas_sgemm_strided_batched` from libmodrt_cuda, which computes
    `C[b] = A[b] · B[b] + C[b]` (row-major, leading dimensions and batch
    strides from the memref layouts) on device pointers. Other matmuls
    (transposed or broadcast indexing maps, other element types, strided
    rows) are left alone and become generated loop kernels.

    The wrapper runs `cublasGemmStridedBatchedEx` on the stream of the
    calling function (the declaration is marked `mod.stream_ordered`, see
    `--mod-gpu-stream-order`). Cost: one library call, `2·batch·m·n·k`
    FLOPs at cuBLAS's SGEMM rate (FP32 CUDA cores) or, with `allow-tf32`,
    on TF32 tensor cores (inputs rounded to a 10-bit mantissa, f32
    accumulation; several times faster on sm_80+, about 1e-3 relative
    error per product).

    Before:

    ```mlir
    linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>)
                  outs(%c : memref<6x8xf32>)
    ```

    After (sketch):

    ```mlir
    %pa = ... aligned pointer of %a plus its offset, as !llvm.ptr ...
    func.call @modrt_cublas_sgemm_strided_batched(%c1_i64, %c6_i64, %c8_i64, %c4_i64,
        %pa, %lda, %sa, %pb, %ldb, %sb, %pc, %ldc, %sc, %flags) : (...) -> ()
    ```
  }];
  let options = [
    Option<"allowTF32", "allow-tf32", "bool", /*default=*/"false",
           "Let cuBLAS use TF32 tensor cores for the f32 GEMMs (faster, "
           "inputs rounded to 10 mantissa bits; f32 accumulation)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::memref::MemRefDialect"];
}

def MoDGPUDeviceBuffers : Pass<"mod-gpu-device-buffers", "::mlir::ModuleOp"> {
  let summary = "Keep every buffer on the GPU; copy only at the entry-point boundary";
  let description = [{
    Runs on bufferized host code (after `buffer-results-to-out-params`, with
    no deallocations yet). In every function with a body:

    - each `memref.alloc` becomes a `gpu.alloc`, freed with `gpu.dealloc`
      right after the last use of the buffer or of any view of it;
    - `memref.get_global` (constants) is copied into a fresh device buffer;
    - `memref.copy` becomes `linalg.copy` (a generated kernel once linalg is
      mapped to the GPU), except copies into an out-parameter, which become
      `gpu.memcpy` device → host;
    - in public functions (entry points, called with host buffers), every
      argument read by the body is copied host → device into a device buffer
      on entry; out-parameters (arguments only ever written by `memref.copy`)
      receive the results through `gpu.memcpy`.

    Host code must be straight-line: an allocation nested in host control
    flow is an error, as is a host `memref.load`/`memref.store` of a buffer.

    Before:

    ```mlir
    func.func @f(%x: memref<4xf32>, %out: memref<4xf32>) {
      %t = memref.alloc() : memref<4xf32>
      linalg.map { math.exp } ins(%x : memref<4xf32>) outs(%t : memref<4xf32>)
      memref.copy %t, %out : memref<4xf32> to memref<4xf32>
      return
    }
    ```

    After:

    ```mlir
    func.func @f(%x: memref<4xf32>, %out: memref<4xf32>) {
      %xd = gpu.alloc () : memref<4xf32>
      gpu.memcpy %xd, %x : memref<4xf32>, memref<4xf32>
      %t = gpu.alloc () : memref<4xf32>
      linalg.map { math.exp } ins(%xd : memref<4xf32>) outs(%t : memref<4xf32>)
      gpu.dealloc %xd : memref<4xf32>
      gpu.memcpy %out, %t : memref<4xf32>, memref<4xf32>
      gpu.dealloc %t : memref<4xf32>
      return
    }
    ```
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::memref::MemRefDialect"];
}

def MoDLinalgReductionsToGPU : Pass<"mod-linalg-reductions-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Make linalg ops without a parallel loop GPU kernels (full reductions, rank-0 ops)";
  let description = [{
    Runs on bufferized host code of the CUDA target, before
    `convert-linalg-to-parallel-loops`, which makes an `scf.parallel` only of
    a linalg op's leading parallel loops. Without this pass an op with no
    parallel loop (a full reduction to a rank-0 buffer such as a scalar
    loss, a rank-0 fill or copy) would stay a host loop reading device
    memory.

    - Every loop a reduction, body `out = combine(out, f(ins))` with an
      associative combiner that has a neutral element (`arith.addf`,
      `mulf`, `maximumf`, `minimumf`, `maxnumf`, `minnumf`, `addi`, `muli`,
      `andi`, `ori`, `xori`, `maxsi`, ...) on an f32/f64/i32/i64: a
      `mod_reduce_<n>` kernel of one block of `block-size` threads. Each
      thread folds a strided share of the N iterations from the neutral
      element, warps combine with `gpu.shuffle xor`, one slot per warp goes
      through workgroup memory and warp 0 combines the slots; thread 0 adds
      the output's initial value and stores. Cost: N loads per input,
      N / block-size sequential steps per thread plus 2 log2(32) shuffle
      rounds and one barrier; one launch. The summation order differs from
      a sequential loop (float results agree to rounding).
    - Any other op without a parallel loop: the op is moved into a
      `mod_reduce_<n>` kernel of a single thread (correct for any body;
      cost: the whole iteration space sequentially on one GPU thread).
    - An op with parallel loops behind a reduction loop (e.g. a bias
      gradient summing `[B,S,D]` over B and S) is generalized and
      interchanged so the parallel loops come first: one thread per output
      element later, instead of a host loop around one launch per reduction
      iteration.

    Before:

    ```mlir
    linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                     affine_map<(d0, d1) -> ()>],
                    iterator_types = ["reduction", "reduction"]}
        ins(%x : memref<8x300xf32>) outs(%loss : memref<f32>) {
    ^bb0(%in: f32, %acc: f32):
      %s = arith.addf %acc, %in : f32
      linalg.yield %s : f32
    }
    ```

    After (sketch):

    ```mlir
    gpu.launch blocks(...) in (%c1, %c1, %c1) threads(...) in (%c256, %c1, %c1)
        workgroup(%slots : memref<8xf32, #gpu.address_space<workgroup>>)
        module(@mod_reduce_0) function(@mod_reduce_0) {
      %p = scf.for %f = %tx to %c2400 step %c256 iter_args(%a = %cst_neg0) ...
      %w = ... gpu.shuffle xor ... arith.addf ...
      memref.store %w, %slots[%warp] ...
      gpu.barrier
      ... warp 0: combine the slots, thread 0: %loss[] = %loss[] + total ...
    }
    ```
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"256",
           "Threads of the tree-reduction kernels (a multiple of 32, at "
           "most 1024)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect"];
}

def MoDGPUStreamOrder : Pass<"mod-gpu-stream-order", "::mlir::ModuleOp"> {
  let summary = "Keep stream-ordered library calls on the kernels' stream: no host sync per cuBLAS call";
  let description = [{
    Runs after `gpu-async-region`, which puts the GPU ops of a host function
    on one stream (an async token chain) but ends the stream with a
    blocking `gpu.wait` (a host synchronization) before every other op with
    side effects, and starts a new one after it. A call to a function marked
    `mod.stream_ordered` (the cuBLAS wrappers `--mod-linalg-to-cublas`
    declares) enqueues on the calling function's live stream itself, so the
    wait before it and the new stream after it are removed and the old
    stream continues: per function, one host synchronization (before the
    return, where results must be in host memory) instead of one per GEMM.
    Waits before any other call or side effect stay. The marker is removed
    afterwards.

    Before:

    ```mlir
    %t0 = gpu.launch_func async [%s] @k::@k ...
    gpu.wait [%t0]
    func.call @modrt_cublas_sgemm_strided_batched(...) : (...) -> ()
    %s1 = gpu.wait async
    %t1 = gpu.launch_func async [%s1] @k2::@k2 ...
    ```

    After:

    ```mlir
    %t0 = gpu.launch_func async [%s] @k::@k ...
    func.call @modrt_cublas_sgemm_strided_batched(...) : (...) -> ()
    %t1 = gpu.launch_func async [%t0] @k2::@k2 ...
    ```
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def MoDGPUMergeKernelModules : Pass<"mod-gpu-merge-kernel-modules", "::mlir::ModuleOp"> {
  let summary = "Put every outlined kernel in one gpu.module: one cubin, one module load";
  let description = [{
    `gpu-kernel-outlining` makes one `gpu.module` per kernel, and each
    `gpu.module` becomes its own binary, loaded with its own
    `cuModuleLoadData` (and compiled by its own ptxas run). This pass moves
    every kernel into one `gpu.module` (`module-name`, default
    `@mod_kernels`) and retargets the `gpu.launch_func`s. A kernel takes the
    name of the module it came from, which is unique (the routing kernels
    are already called so, e.g. `@mod_router_topk_gather_0`; loop kernels
    become `@forward_kernel`, `@forward_kernel_0`, ...). Cost: none at run
    time; a model's kernels are loaded once, by the first launch.

    Runs after `gpu-kernel-outlining` and before `nvvm-attach-target`
    (a module with targets is an error).

    Before:

    ```mlir
    gpu.module @k0 { gpu.func @k0(...) kernel { ... } }
    gpu.module @f_kernel { gpu.func @f_kernel(...) kernel { ... } }
    gpu.launch_func @f_kernel::@f_kernel ...
    ```

    After:

    ```mlir
    gpu.module @mod_kernels {
      gpu.func @k0(...) kernel { ... }
      gpu.func @f_kernel(...) kernel { ... }
    }
    gpu.launch_func @mod_kernels::@f_kernel ...
    ```
  }];
  let options = [
    Option<"moduleName", "module-name", "std::string", /*default=*/"\"mod_kernels\"",
           "Name of the gpu.module that receives every kernel">,
  ];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def MoDParallelLoopsToGPU : Pass<"mod-parallel-loops-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Map host scf.parallel loops to 1-D gpu.launch kernels";
  let description = [{
    Turns every outermost `scf.parallel` in host code (static bounds, no
    reductions; what `convert-linalg-to-parallel-loops` produces) into a
    `gpu.launch` whose threads cover the flattened iteration space with the
    innermost dimension fastest (coalesced for row-major buffers). A grid-
    stride loop covers spaces larger than `max-blocks × block-size`.
    Sequential reduction loops inside the parallel loop run per thread.
    Cost: one launch per loop nest, `ceil(N / block-size)` blocks (at most
    `max-blocks`) for N iterations, each thread running the loop body (and
    its inner sequential loops) for its elements.

    Errors (the IR is left as it was): an `scf.parallel` with reductions or
    non-constant bounds, a block size that is not a multiple of 32 in
    [32, 1024], and a `memref.load`/`store`/`atomic_rmw` in host code
    outside any `scf.parallel` (it would read device memory on the host;
    linalg ops without a parallel loop go through
    `--mod-linalg-reductions-to-gpu` first).

    Before:

    ```mlir
    scf.parallel (%i, %j) = (%c0, %c0) to (%c64, %c512) step (%c1, %c1) {
      ...
    }
    ```

    After (sketch):

    ```mlir
    gpu.launch blocks(...) in (%gx = %c128, ...) threads(...) in (%tx = %c256, ...) {
      %flat = ... block_id x * 256 + thread_id x ...
      scf.for %f = %flat to %c32768 step %stride {
        %i = arith.divui %f, %c512
        %j = arith.remui %f, %c512
        ...
      }
      gpu.terminator
    }
    ```
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"256",
           "Threads per block (a multiple of 32, at most 1024)">,
    Option<"maxBlocks", "max-blocks", "int64_t", /*default=*/"65536",
           "Most blocks per launch; larger spaces use a grid-stride loop">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::scf::SCFDialect"];
}

#endif // MOD_CONVERSION_PASSES_TD
