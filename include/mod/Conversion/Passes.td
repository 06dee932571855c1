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
    - `mod.topk`: a radix select per row, on buffers (bridged with
      `bufferization.to_buffer` / `to_tensor restrict writable`), in an
      `scf.parallel` over the rows. Scores become unsigned keys in a total
      order (`-0.0 == +0.0`, NaN above `+inf`); `W` = bits/8 passes of an
      8-bit histogram (most significant digit first) find the key `T` of the
      K-th largest score and how many tokens with key `T` are needed; a last
      pass in token order writes every token with key `> T` and the first
      needed ones with key `T` (ties go to the lower index), so the `K`
      indices come out ascending. Cost per row: `(W + 2) * S` steps (`W = 4`
      for f32; the figure `--mod-flop-report` prints as `topk_cmp`), plus
      `W` scans of 256 bins; scratch is `S` keys and 256 counters on the
      stack of the thread that owns the row.
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
    %rb = bufferization.to_buffer %r read_only : tensor<1x4xf32> to memref<1x4xf32>
    %ib = memref.alloc() : memref<1x2xi32>
    scf.parallel (%b) = (%c0) to (%c1) step (%c1) {
      %keys = memref.alloca() : memref<4xi32>
      %hist = memref.alloca() : memref<256xi32>
      scf.for %i ... { ... key ... }                  // keys
      scf.for %i ... { ... histogram of one digit ... } // 4 times
      scf.for %i ... iter_args(%slot = %c0, ...) { scf.if %take { memref.store ... } }
    }
    %idx = bufferization.to_tensor %ib restrict writable : memref<1x2xi32> to tensor<1x2xi32>
    ```
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect"];
}

//===----------------------------------------------------------------------===//
// CPU target
//===----------------------------------------------------------------------===//

def ReadOnlyEntryArguments : Pass<"mod-read-only-entry-arguments", "::mlir::ModuleOp"> {
  let summary = "Mark entry-point tensor arguments read-only for one-shot bufferization";
  let description = [{
    Entry points (public `func.func`s with a body) must never write into the
    buffers the caller passes in: calling one twice with the same inputs must
    give the same answer. One-shot bufferization with
    `bufferize-function-boundaries` treats function arguments as writable and
    would, for instance, let the lowering of `mod.scatter_add` update the
    caller's residual stream in place. This pass sets
    `bufferization.writable = false` on every tensor argument of an entry
    point, so that bufferization copies before any in-place write.

    The one exception is an argument that a result declares it aliases:
    a result with `mod.aliases = N : i64` (an in-place update such as
    `@adamw_step`'s parameters and optimizer state) is written into argument
    `N`, which is marked `bufferization.writable = true`. The pass consumes
    `mod.aliases` (mod-compile has already written it to the manifest as
    `alias_of`). An index that is out of range or names a non-tensor
    argument is an error.

    Before:

    ```mlir
    func.func @step(%p: tensor<4xf32>, %g: tensor<4xf32>)
        -> (tensor<4xf32> {mod.aliases = 0 : i64}) { ... }
    ```

    After:

    ```mlir
    func.func @step(%p: tensor<4xf32> {bufferization.writable = true},
                    %g: tensor<4xf32> {bufferization.writable = false})
        -> tensor<4xf32> { ... }
    ```
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect"];
}

def StridedCopiesToLinalg : Pass<"mod-strided-copies-to-linalg"> {
  let summary = "Turn memref.copy between non-contiguous buffers into linalg.copy";
  let description = [{
    `finalize-memref-to-llvm` lowers a `memref.copy` whose source or target
    is not a contiguous row-major buffer to a call to `memrefCopy` from
    MLIR's C runner utilities, which a compiled model does not link (a model
    with `tensor.concat` would fail to load). This pass rewrites such copies
    into `linalg.copy`, which becomes generated (parallel) loops; contiguous
    copies stay `memref.copy` (a `memcpy`).

    Before:

    ```mlir
    memref.copy %a, %b : memref<4x2xf32, strided<[4, 1]>> to memref<4x2xf32>
    ```

    After:

    ```mlir
    linalg.copy ins(%a : memref<4x2xf32, strided<[4, 1]>>) outs(%b : memref<4x2xf32>)
    ```
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def ElideSelfCopies : Pass<"mod-elide-self-copies", "::mlir::func::FuncOp"> {
  let summary = "Skip an argument-to-argument memref.copy when both are one buffer";
  let description = [{
    An entry point that updates an argument in place (a result with
    `mod.aliases`, e.g. @decode_step's KV caches) ends, after
    `buffer-results-to-out-params`, with a `memref.copy` of that argument
    into the result's out-parameter. The runtime passes the same buffer for
    both (`alias_of`), so the copy moves every byte of the cache onto itself:
    for a decode step that writes one token per row, a full read and write
    of every cache. This pass guards each `memref.copy` whose source and
    target are both arguments of the function's entry block, with the same
    identity-layout type, by a run-time comparison of their aligned
    pointers: equal pointers mean one buffer, and the copy is skipped; a
    caller that passes two buffers still gets the copy.

    Before that, a `memref.copy` whose source holds nothing but one constant
    at the copy becomes a `linalg.fill` of its target with that constant:
    the last write to the source (or to any reshape or subview of it) before
    the copy, in the copy's block, is a `linalg.fill` of all of it, and no
    use of it could write it in between (uses the pass does not know, or
    that could alias it, keep the copy). CSE merges the zero (or -inf) inits
    of many GEMMs and reductions into one filled tensor, and one-shot
    bufferization copies that buffer before each op that writes into it:
    the backward pass of GPT-2-small had about 730 such copies in
    `@loss_and_grad`. A fill writes the same bytes without reading any, and
    a zero fill right before a GEMM is what `--mod-linalg-to-blas` folds
    into beta = 0. Other copies are left as they are.

    Before:

    ```mlir
    func.func @step(%cache: memref<2x16xf32>, %out: memref<2x16xf32>) {
      memref.copy %cache, %out : memref<2x16xf32> to memref<2x16xf32>
      return
    }
    ```

    After:

    ```mlir
    %p = memref.extract_aligned_pointer_as_index %cache : memref<2x16xf32> -> index
    %q = memref.extract_aligned_pointer_as_index %out : memref<2x16xf32> -> index
    %distinct = arith.cmpi ne, %p, %q : index
    scf.if %distinct {
      memref.copy %cache, %out : memref<2x16xf32> to memref<2x16xf32>
    }
    ```

    and

    ```mlir
    linalg.fill ins(%zero : f32) outs(%shared : memref<4x4xf32>)
    memref.copy %shared, %c : memref<4x4xf32> to memref<4x4xf32>
    ```

    becomes

    ```mlir
    linalg.fill ins(%zero : f32) outs(%shared : memref<4x4xf32>)
    linalg.fill ins(%zero : f32) outs(%c : memref<4x4xf32>)
    ```
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect"];
}

def CPUCausalAttention : Pass<"mod-cpu-causal-attention", "::mlir::func::FuncOp"> {
  let summary = "Row-tiled causal attention on buffers: skip fully masked key tiles";
  let description = [{
    Runs after bufferization, before `--mod-linalg-to-blas`. Finds each
    attention chain: a contraction `C1` (scores `s[b.., i, j]` over a
    head dim), the ops that read its scores through buffers nothing else
    reads (masking, scaling, the row max, `exp`, the row sum, the
    division, in any spelling and order), and the contraction `C2` that
    reduces over the key dim `j` (`p · V`). The batch dims, the query dim
    `i` and the key dim `j` are labelled from the contractions' roles and
    followed through every indexing map; an op whose loops do not all get
    a label, a scratch buffer read after the chain, or an op in between
    that writes what the chain reads leaves the chain alone. `C1`'s M and N
    dims other than the query and the key are batch dims too (grouped-query
    attention's scores `[B, KV, G, S, S]` have M = (G, S)).

    The ops may reach a scratch buffer through reshape views
    (`memref.expand_shape` / `collapse_shape`): scores computed as
    `[B, KV, G, S, S]` and masked as `[B, H, S, S]`, or a `[B*H, S, S]`
    buffer that one layer's scores write as `[B, H, S, S]`. Labels follow
    each reshape: unit dims are added or dropped, and batch dims may merge
    (a dim over `[KV, G]` is indexed `kv * G + g`) or split, but a token or
    head dim never merges with another; the tiles repeat the same reshapes
    on their own scratch.

    The chain becomes one `scf.parallel` (marked `mod.gemm_tiles`, so it
    stays parallel) over the batch dims and tiles of `tile-rows` query
    rows. Each iteration runs every op of the chain on its rows
    `[i0, i0 + rows)` and the keys `[0, kend)` only, `kend = i0 + rows`,
    in scratch buffers of one tile on the stack (at most 1 MiB; the tile
    height shrinks to fit, so the scores stay in L2); `C1` and `C2` stay
    contractions on subviews, which `--mod-linalg-to-blas` turns into one
    `cblas_sgemm` each with a key range that grows with the tile index.
    Work: about `(n + 1) / 2n` of the full `S x S` scores for `n` tiles
    (0.53 at S = 1024 with 64-row tiles), and no `[B, H, S, S]` buffer.

    Skipping the keys `j >= kend` (all after every query of the tile) is
    proved by evaluating each op's scalar body abstractly at such points:
    the mask comparison is false there (`j <= i` on `linalg.index`
    statically; `pk[j] <= pq[i]` on positions read at the key and at the
    query, from one buffer or two, `sle`/`ule` or the mirrored
    `sge`/`uge`), so the masked
    score is a constant at most -1e20, `exp` of it minus the row max is 0,
    and every reduction over `j` (max, sum, the `p · V` contraction)
    yields its accumulator unchanged. The mask may be computed in the
    consuming ops or in a buffer written before the chain. A comparison
    must include the diagonal, so every row keeps an unmasked key. Position
    masks hold only for positions that increase along the sequence: each
    tile checks at run time (O(S)) that every skipped key's position is
    above every query's of the tile, else it uses all keys. This covers
    routed blocks, whose gathered positions increase because top-k indices
    are ascending, without relying on it, and a prefill, whose keys' positions
    (the cache's) are read from another buffer than its queries' (the
    prompt's). Assumed, as for the untiled
    code: scores and values are finite and unmasked scores are above the
    mask constant. Anything not proved leaves the chain as it was.

    Before (sketch):

    ```mlir
    linalg.generic ... ins(%q, %k) outs(%s : memref<1x12x1024x1024xf32>)   // C1
    linalg.generic ... ins(%s, %pos, %pos) outs(%max ...)                  // masked max
    ... exp, sum, divide into %p ...
    linalg.generic ... ins(%p, %v) outs(%o : memref<1x12x1024x64xf32>)    // C2
    ```

    After (sketch, `tile-rows=64`):

    ```mlir
    scf.parallel (%b, %h, %t) = (%c0, %c0, %c0) to (%c1, %c12, %c16) ... {
      %i0 = arith.muli %t, %c64 : index
      %kend = arith.minsi ... %i0 + rows ...   // or 1024 if positions fail
      %s = memref.alloca() : memref<1x1x64x1024xf32>
      %st = memref.subview %s[0, 0, 0, 0] [1, 1, %rows, %kend] [1, 1, 1, 1]
      linalg.generic ... ins(%q[.., %i0.., ..], %k[0..%kend]) outs(%st)  // C1 tile
      ... the same ops on [%rows, %kend] ...
      linalg.generic ... ins(%pt, %v[0..%kend]) outs(%o[.., %i0.., ..])  // C2 tile
    } {mod.gemm_tiles}
    ```
  }];
  let options = [
    Option<"tileRows", "tile-rows", "int64_t", /*default=*/"64",
           "Query rows per tile (at least 1; fewer when the scratch of a "
           "tile would pass 1 MiB)">,
  ];
  let dependentDialects = ["::mlir::affine::AffineDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect"];
}

def LinalgToBLAS : Pass<"mod-linalg-to-blas", "::mlir::ModuleOp"> {
  let summary = "Turn f32 matmul-shaped linalg ops on buffers into cblas_sgemm (or, for one row, cblas_sgemv) calls";
  let description = [{
    Replaces every f32 contraction on buffers (`linalg.matmul`,
    `linalg.batch_matmul`, and any `linalg.generic` whose body is
    `out + a * b` and whose indexing maps have one M, one N and one K
    dimension plus any number of batch dimensions) by calls to OpenBLAS's
    `cblas_sgemm` (row-major, `alpha = 1`).

    For each operand, the strides of its two GEMM dimensions come from the
    memref layout composed with the indexing map: unit stride on the inner
    dimension is a plain operand, unit stride on the outer one is a
    transposed operand (`CblasTrans`), so transposes never materialize. An
    output whose M stride is 1 is computed as `Cᵀ = Bᵀ·Aᵀ`. Extra M, N or K
    dimensions that collapse with the primary one in every operand (e.g.
    `[B,S,D]` tokens) are merged into it.

    The calls run on the OpenMP threads, OpenBLAS itself single-threaded
    (the runtime sets it so): an `scf.parallel` marked `mod.gemm_tiles`,
    which `--mod-cpu-parallel-loops` keeps parallel, iterates over the
    remaining dimensions of C (e.g. attention's batch and heads, one GEMM
    each, advancing each operand by its stride, 0 for a broadcast operand)
    and over slices of the larger of M and N: when there are fewer such
    calls than `omp_get_max_threads()` at run time, each call is cut into
    `ceil(threads / calls)` slices of a multiple of 16 rows or columns.
    Unmerged K dimensions become `scf.for` loops inside, accumulating into C.
    An op with fewer than 2^21 multiply-adds in all its calls is not worth
    waking the threads for: no slices, and the loop is left unmarked, so
    `--mod-cpu-parallel-loops` makes it sequential.

    linalg accumulates into its init, so `beta = 1`, except when C was just
    zeroed: a `linalg.fill` of 0.0 into C, or a `memref.copy` into C from a
    buffer just filled with 0.0 (bufferization's copy of a zero init shared
    by two GEMMs), with nothing in between that writes memory, is dropped
    and the calls use `beta = 0` (not with unmerged K loops).

    A GEMM with a single row (M = 1 after the transposition above: a decode
    step's projections, one query's attention scores) calls `cblas_sgemv`
    on the same slices instead: `y = Bᵀx` (`CblasTrans`) for B stored
    `[K][N]`, `y = Bx` for B stored transposed, x with A's stride, y with
    unit stride, and `beta = 1` always (the zero fill stays). OpenBLAS's
    sgemm packs all of B even for one row, which made a GPT-2-small decode
    step mostly copies of its weights.

    Sizes may be dynamic, strides may not: a decode step's attention over
    one row's filled cache slots (`--mod-generate-decode`) is a GEMV whose N
    (scores) or K (probabilities times values) is the row's length, on
    subviews of static buffers. Each dynamic size needs a constant upper
    bound, found through the subview's size operand (a constant, or a min,
    product or cast with one: `min(length, Smax)`, or a select between two
    bounded values: `--mod-cpu-causal-attention`'s key range), which the
    leading-dimension checks use (a leading dimension at least the bound
    is at least the size); the calls take the size at run time
    (`memref.dim` of an operand dimension its loop runs over), the slices
    and loops above are computed from it, and the 2^21 threshold counts
    the bound. A dynamic dimension never merges with another.

    Ops that do not fit (other element types, a body that is not a plain
    multiply-add, no unit stride in an operand, dynamic strides, a dynamic
    size with no constant bound) are left alone and become generated loops.

    Before:

    ```mlir
    linalg.matmul ins(%a, %b : memref<6x4xf32>, memref<4x8xf32>)
                  outs(%c : memref<6x8xf32>)
    ```

    After (sketch):

    ```mlir
    %pa = ... aligned pointer of %a plus its offset, as !llvm.ptr ...
    %threads = func.call @omp_get_max_threads() : () -> i32
    ... %slices = ceil(N / chunk), chunk = a multiple of 16 >= N / threads ...
    scf.parallel (%s) = (%c0) to (%slices) step (%c1) {
      ... %pb, %pc advanced by %s * chunk columns, %n = min(chunk, 8 - start) ...
      func.call @cblas_sgemm(%c101_i32, %c111_i32, %c111_i32, %c6_i32, %n, %c4_i32,
          %one, %pa, %c4_i32, %pb, %c8_i32, %one, %pc, %c8_i32) : (...) -> ()
    } {mod.gemm_tiles}
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect"];
}

def CPUFuseElementwise : Pass<"mod-cpu-fuse-elementwise"> {
  let summary = "Producer-consumer fusion of linalg ops on tensors for the CPU";
  let description = [{
    Runs before bufferization. Named linalg ops (other than `linalg.fill`)
    are generalized, then a producer `linalg.generic` is fused into its
    consumer when no element of the producer would be computed twice:

    - the producer only moves data (its body yields an input unchanged:
      transposes, broadcasts, copies), so fusing it only composes indexing
      maps. A transpose feeding a matmul becomes a transposed indexing map,
      which `--mod-linalg-to-blas` turns into a `CblasTrans` flag. The
      exception is a transpose of a matmul's result read by another matmul
      (attention's head merge into the output projection): fused, it would
      split the second GEMM's K into one small GEMM per head, so it stays a
      copy;
    - or every user reads it through a permutation map (elementwise chains,
      and elementwise ops feeding row reductions such as softmax's max and
      sum) and it has one user, or two users and a body of plain arithmetic
      (the masked, scaled attention scores feed softmax's max and its exp and
      are recomputed in both, so no `[B,H,S,S]` logits tensor is stored).
      Producers with more users (the residual stream) are materialized, so
      recomputation cannot snowball;
    - or it is a cheap body whose inputs are all broadcast into its iteration
      space, such as the causal mask `positions[b,j] <= positions[b,i]`:
      it fuses into every user, even one that broadcasts it over heads,
      because comparing two cached positions costs less than storing a
      `[B,S,S]` i1 tensor and loading it back (not when the body gathers
      with `tensor.extract`, like an embedding lookup).

    An elementwise op is never fused into a matmul (it would be recomputed
    for every output column). After that fusion, an add `x + C` whose
    operand C is a matmul's only use, computed from zeros, becomes the
    matmul accumulating onto `x` (its init), the add's permutation composed
    into the matmul's output map: the tied embedding's gradient (the LM
    head's `[D,V]` weight gradient, transposed, plus the `[V,D]` gradient of
    the lookup) is then one GEMM that `--mod-linalg-to-blas` writes straight
    into the embedding gradient with `beta = 1` and transpose flags, with no
    temporary and no separate add. `tensor.collapse_shape` / `tensor.expand_shape`
    with a single user are folded into the neighbouring generic by expanding
    its iteration space (so `[B*H,S,hd]` batch GEMMs read `[B,S,H,hd]`
    directly).

    Before:

    ```mlir
    %t = linalg.transpose ins(%w : tensor<5x4xf32>) outs(%e : tensor<4x5xf32>) permutation = [1, 0]
    %y = linalg.matmul ins(%x, %t : tensor<3x4xf32>, tensor<4x5xf32>) outs(%z : tensor<3x5xf32>) -> tensor<3x5xf32>
    ```

    After:

    ```mlir
    %y = linalg.generic {indexing_maps = [affine_map<(m, n, k) -> (m, k)>,
                                          affine_map<(m, n, k) -> (n, k)>,
                                          affine_map<(m, n, k) -> (m, n)>], ...}
        ins(%x, %w : tensor<3x4xf32>, tensor<5x4xf32>) outs(%z : tensor<3x5xf32>) { ... }
    ```
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def CPUParallelLoops : Pass<"mod-cpu-parallel-loops"> {
  let summary = "Choose which scf.parallel dimensions run on OpenMP threads";
  let description = [{
    Runs after `convert-linalg-to-parallel-loops` and before
    `convert-scf-to-openmp`. For each outermost `scf.parallel`:

    - nested `scf.parallel` loops become `scf.for` (one parallel region per
      loop nest; the thread that owns an outer iteration runs the inner ones);
    - a nest with fewer than `min-work` innermost iterations in total runs
      sequentially (`scf.for`): a parallel region costs more than it saves;
    - otherwise only the shortest prefix of dimensions with at least
      `min-parallel-iterations` iterations stays parallel, and the inner
      dimensions become `scf.for` loops, so the contiguous innermost loop
      keeps a simple induction variable that LLVM vectorizes.

    Loops with reductions (`init` values) are left unchanged, and so are the
    loops of GEMM calls that `--mod-linalg-to-blas` marks `mod.gemm_tiles`
    (each iteration is a whole GEMM or a slice of one, whatever the count)
    and the chunk loops of `--mod-cpu-parallel-reductions`
    (`mod.reduction_chunks`: each iteration folds a slice of a large
    reduction, and its trip counts are not static).

    The batch-row loops of a decode step's key side (`scf.for` marked
    `mod.key_rows` by `--mod-generate-decode`: an iteration writes only its
    own row of every result, after bufferization row b's subviews and
    buffers it allocates itself) become `scf.parallel` loops when they have
    at least two rows: the rows' attention (their GEMV calls, softmax and
    masks over each row's filled slots, whose dynamic trip counts the work
    estimate above cannot see) runs on the threads, one row per iteration,
    and the loops nested in a row run sequentially on its thread. A loop of
    one row stays sequential, so the GEMM calls inside keep their own
    parallel loops.

    Before:

    ```mlir
    scf.parallel (%b, %s, %d) = (%c0, %c0, %c0) to (%c1, %c256, %c768) step (%c1, %c1, %c1) {
      ...
    }
    ```

    After (`min-parallel-iterations=64`):

    ```mlir
    scf.parallel (%b, %s) = (%c0, %c0) to (%c1, %c256) step (%c1, %c1) {
      scf.for %d = %c0 to %c768 step %c1 {
        ...
      }
    }
    ```
  }];
  let options = [
    Option<"minWork", "min-work", "int64_t", /*default=*/"32768",
           "Innermost iterations of a loop nest below which it runs "
           "sequentially">,
    Option<"minParallelIterations", "min-parallel-iterations", "int64_t",
           /*default=*/"64",
           "Iterations the parallel dimensions should provide before the "
           "inner dimensions are made sequential">,
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect"];
}

def CPUParallelReductions : Pass<"mod-cpu-parallel-reductions"> {
  let summary = "Split large full reductions into parallel, vectorizable chunks";
  let description = [{
    Runs on buffers, before `convert-linalg-to-parallel-loops`. A linalg op
    whose loops are all reductions (a rank-0 result, such as the global
    gradient norm of `@adamw_step`, a sum of squares over every gradient)
    would become one sequential loop nest on one thread, its accumulator
    loaded and stored in every iteration, each add waiting for the previous
    one. When the op has at least `min-elements` iterations, static sizes,
    and a body `out = combine(out, f(ins))` whose combiner is associative
    with a neutral element (`arith.addf`, `mulf`, `maxnumf`, `minimumf`,
    `addi`, ...), it becomes:

    - an `scf.parallel` over `chunks` slices of the outermost loop (fewer
      when that loop is shorter), marked `mod.reduction_chunks` so that
      `--mod-cpu-parallel-loops` keeps it on the OpenMP threads; each chunk
      folds its slice from the neutral element into a register accumulator
      (`scf.for` `iter_args`), with `reassoc` on the combiner so LLVM
      vectorizes the innermost loop (several partial sums in a vector), and
      stores it in a `chunks`-element partials buffer;
    - then a sequential fold of the result's initial value and the partials,
      in chunk order.

    This reassociates the reduction (like any parallel sum). The chunking is
    static, so the result does not depend on the thread count. Ops inside an
    `scf.parallel` are left alone (they already run on a worker thread).

    Before:

    ```mlir
    linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                     affine_map<(d0, d1) -> ()>],
                    iterator_types = ["reduction", "reduction"]}
        ins(%g : memref<768x3072xf32>) outs(%acc : memref<f64>) {
    ^bb0(%x: f32, %a: f64):
      %e = arith.extf %x : f32 to f64
      %sq = arith.mulf %e, %e : f64
      %s = arith.addf %a, %sq : f64
      linalg.yield %s : f64
    }
    ```

    After (`chunks=64`; 12 rows per chunk):

    ```mlir
    %partials = memref.alloc() : memref<64xf64>
    scf.parallel (%c) = (%c0) to (%c64) step (%c1) {
      %lo = arith.muli %c, %c12 : index
      %hi = arith.minsi(%lo + 12, 768)
      %p = scf.for %i = %lo to %hi step %c1 iter_args(%a = %neg0) -> (f64) {
        %q = scf.for %j = %c0 to %c3072 step %c1 iter_args(%b = %a) -> (f64) {
          %x = memref.load %g[%i, %j] : memref<768x3072xf32>
          ...
          %s = arith.addf %b, %sq fastmath<reassoc> : f64
          scf.yield %s : f64
        }
        scf.yield %q : f64
      }
      memref.store %p, %partials[%c] : memref<64xf64>
    } {mod.reduction_chunks}
    %init = memref.load %acc[] : memref<f64>
    %sum = scf.for %c = %c0 to %c64 step %c1 iter_args(%a = %init) -> (f64) {
      ...
    }
    memref.store %sum, %acc[] : memref<f64>
    ```
  }];
  let options = [
    Option<"chunks", "chunks", "int64_t", /*default=*/"64",
           "Slices of the outermost loop folded independently (at most its "
           "trip count); a multiple of the thread count balances them">,
    Option<"minElements", "min-elements", "int64_t", /*default=*/"32768",
           "Iterations below which a full reduction stays one sequential "
           "loop nest">,
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect"];
}

def CPUApproximateMath : Pass<"mod-cpu-approximate-math"> {
  let summary = "Replace f32 exp/tanh/erf/log calls with vectorizable polynomials";
  let description = [{
    `math.exp`, `math.expm1`, `math.tanh`, `math.erf`, `math.log`,
    `math.log1p` and `math.log2` on f32 would lower to one libm call per
    element, which LLVM cannot vectorize; softmax and GELU evaluate them on
    every attention score and MLP activation. This pass rewrites them into
    MLIR's polynomial approximations (`populateMathPolynomialApproximationPatterns`),
    plain arithmetic accurate to a few ulp over the f32 range that LLVM
    vectorizes. `math.sin` and `math.cos` keep libm: their approximations
    lose accuracy for large arguments such as RoPE angles at late positions.

    Before:

    ```mlir
    %e = math.exp %x : f32
    ```

    After (sketch):

    ```mlir
    %k = math.floor ... %x * log2(e) ...
    %p = math.fma ... (degree-5 polynomial of the reduced argument) ...
    %e = arith.bitcast ... (2^k scaling in the exponent bits) ...
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::vector::VectorDialect"];
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

    Small batches: one block per row would leave all but B SMs idle, so when
    B < `min-blocks` the router and the gathers are split off into kernels
    with several blocks per row (grid `parts x B`): `mod_router_<n>`, then
    `mod_topk_<n>` (or `mod_topk_gather_<n>`), then `mod_gather_<n>`. A
    phase reading R bytes per row gets `min(ceil(min-blocks / B),
    R / 64 KiB)` blocks per row (64 KiB is about what one H100 SM reads in
    the time of a kernel launch); one with less than 128 KiB per row stays
    fused (the tiny test models keep the one fused kernel). The radix select
    and the compaction stay one block per row: they need block-wide
    barriers, and they read S scores where the router reads `S * D`.

    Cost per batch row (S tokens, D model width, K selected, E gathered
    elements per token, T = block-size threads, W = T / 32 warps):
    - router: `S * D` multiply-adds, each warp reading a token's D floats
      coalesced, plus a 5-step shuffle reduction per token; `S * D * 4`
      bytes read. Time about `S / (W * parts)` token dot products.
    - radix select: 4 passes, each reading the S scores (`S / T` loads per
      thread), one shared-memory atomic add per matching key, two barriers,
      and a 256-bin scan by warp 0; compaction: `ceil(S / T)` block-wide
      scans (3 barriers each); `K * 8` bytes written.
    - gathers: `K * E` 4-byte loads and stores per gathered tensor, spread
      over `T * parts` threads, plus one index load per element.
    - scale-scatter-add: `S * E` loads and stores of the residual plus
      `K * E` of the update; `ceil(S / W)` blocks per row, a
      `log2(K)`-step binary search per warp, no atomics.

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
    Option<"minBlocks", "min-blocks", "int64_t", /*default=*/"128",
           "Thread blocks to aim for in the router and gather phases: with "
           "a batch below this, they get ceil(min-blocks / B) blocks per row "
           "where the row has work for them (about the SM count; 132 on "
           "H100)">,
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

    Materialized transposes are folded into the calls: when a GEMM operand
    is a fresh buffer (or a `memref.collapse_shape` of one) filled by a
    `linalg.transpose` whose input has a static strided layout, cuBLAS reads
    that input in place: with `MODRT_CUBLAS_TRANSPOSE_A`/`_B` when its
    columns, not its rows, are contiguous (the adjoints' `A^T dC` and
    `dC B^T`, the attention's `K^T`), and with the leading dimension and
    batch stride of the permuted layout (the attention heads
    `[B, S, H, D] -> [B, H, S, D]` read out of the fused QKV projection).
    When the collapsed batch `B * H` has no single stride (the heads of one
    sequence are `D` floats apart, sequences `S * 3HD`), the GEMM becomes
    one call per sequence (at most 16; beyond that the transpose stays). The
    transpose and its buffer are removed only if every later reader of the
    transposed values (until the buffer is fully overwritten) is such a
    GEMM, or a second transpose whose own readers all are (an adjoint
    reading a saved activation transposed back: both permutations are
    composed), and nothing writes the transpose's input before the last of
    them (kernels count by their stores outside their workgroup memory);
    otherwise they stay and the GEMMs read the buffer. Each folded transpose
    saves a kernel launch and `2 * 4 * numel` bytes of device memory
    traffic (cuBLAS reads transposed and strided operands natively).

    The wrapper runs `cublasGemmStridedBatchedEx` on the stream of the
    calling function (the declaration is marked `mod.stream_ordered`, see
    `--mod-gpu-stream-order`). Cost: one library call, `2·batch·m·n·k`
    FLOPs at cuBLAS's SGEMM rate (FP32 CUDA cores) or, with `allow-tf32`,
    on TF32 tensor cores (inputs rounded to a 10-bit mantissa, f32
    accumulation; several times faster on sm_80+, about 1e-3 relative
    error per product).

    cuBLASLt epilogues (`fuse-epilogues`, default on): a rank-2
    `linalg.matmul` into a fresh buffer `C` that only an elementwise bias
    add reads afterwards, `D[i..., j] = C[i..., j] + bias[j]` (`C` read as it
    is or through an `expand_shape` that keeps its columns, `bias` a
    contiguous f32 vector of `n` floats indexed by the last loop), becomes
    one call of `modrt_cublaslt_matmul` writing `D` with
    `CUBLASLT_EPILOGUE_BIAS`. When the next op touching `D` is an
    elementwise `linalg.generic` computing the tanh GELU
    `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` of all of `D` (any
    order of factors and addends, or the inner term as
    `x (1 + 0.044715 x^2)`), in place or into a buffer `E` while `D` is not
    read again, it is fused too (`CUBLASLT_EPILOGUE_GELU_BIAS`, which
    computes exactly that approximation). The exact GELU
    `0.5 x (1 + erf(x / sqrt(2)))` and any other body is not fused: it
    stays a generated kernel after a bias-only epilogue. The output must not
    alias `A`, `B` or the bias, and nothing between the GEMM and the last
    fused op may read or write it or write the bias (the call writes it at
    the GEMM's place). When `C` is zero before the GEMM (a `linalg.fill` of
    0.0, or a copy of a buffer a zero fill wrote last), cuBLASLt does not
    read it (beta = 0) and the zeroing and `C` itself go away. The transpose
    flags of folded transposes and `allow-tf32` apply to the fused call as
    to the SGEMM. Backward (DGELU, BGRAD) epilogues are not fused: the
    adjoint GEMMs stay SGEMM calls.

    Cost of the fused call: the same `2·m·n·k` FLOPs as the SGEMM, plus
    `n` floats of bias read and one `tanh` per output element in the
    epilogue, on the GEMM's output tile while it is still in registers. It
    replaces the zeroing of `C` (a copy kernel or memset, `4·m·n` bytes
    written), the bias-add kernel (`8·m·n + 4·n` bytes moved) and the GELU
    kernel (`8·m·n` bytes): up to three launches and `20·m·n` bytes of
    device memory traffic per linear layer. The wrapper builds the
    cuBLASLt matmul descriptor, matrix layouts and heuristic algorithm once
    per distinct problem (sizes, leading dimensions, flags, pointer
    alignments) and caches them for the process; a call with a cached
    problem sets the bias pointer and enqueues one `cublasLtMatmul` (plus a
    stream-ordered workspace allocation when the chosen algorithm needs
    one) on the caller's stream.

    Mixed precision (`precision=bf16`, `mod-compile --cuda-precision=bf16`):
    the GEMMs take bf16 operands with f32 accumulation and an f32 result.
    Each becomes a call to `modrt_cublas_gemm_bf16_strided_batched` (same
    parameters; `cublasGemmStridedBatchedEx` with `CUDA_R_16BF` A and B,
    `CUDA_R_32F` C and `CUBLAS_COMPUTE_32F`, bf16 tensor cores on sm_80+).
    A and B are read from bf16 copies of the buffers they are taken from
    (the whole root buffer, so views, folded transposes and batch strides
    keep their element offsets): a `memref.alloc` of bf16 and a
    `linalg.generic` of `arith.truncf` (round to nearest even) before the
    call, which later passes turn into a device buffer and a generated
    elementwise kernel (cost: one launch, 6 bytes of traffic per element
    of the buffer). A copy is reused by every later GEMM in the same block
    that reads the same buffer as long as nothing may write that buffer in
    between (e.g. the tied embedding / LM head weight read by the forward
    and the backward GEMMs of `@loss_and_grad` is converted once per call).
    Nothing else changes precision: parameters, gradients and optimizer
    state stay f32 (the master weights, updated in f32 by `@adamw_step`),
    and elementwise ops, softmax, normalization and the loss run in f32 on
    the f32 GEMM results. A GEMM whose operand's root buffer has a dynamic
    shape or a non-identity layout stays an f32 SGEMM. Relative error per
    GEMM: about `2^-8` (bf16's 8-bit significand) of the operands'
    magnitude, versus about 1e-6 for f32. `allow-tf32` cannot be combined
    with `precision=bf16`, and with `precision=bf16` no epilogue is fused
    (the cuBLASLt wrapper is f32): the bias and GELU stay generated kernels.

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
    Option<"fuseEpilogues", "fuse-epilogues", "bool", /*default=*/"true",
           "Fuse a bias add (and tanh GELU) after a matmul into a cuBLASLt "
           "matmul epilogue (modrt_cublaslt_matmul)">,
    Option<"precision", "precision", "std::string", /*default=*/"\"f32\"",
           "GEMM operand precision: f32 (default, exact SGEMM) or bf16 "
           "(mixed precision: operands converted to bf16 by generated "
           "kernels, f32 accumulation and result; parameters, gradients "
           "and all other ops stay f32)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::memref::MemRefDialect"];
}

def MoDHostScalarsToGPU : Pass<"mod-host-scalars-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Move host scalar code reading buffers into single-thread GPU kernels";
  let description = [{
    Runs on bufferized host code of the CUDA target, before
    `--mod-scatter-add-to-gpu` and `--mod-gpu-device-buffers`. Host code
    that reads a scalar out of a buffer (a `tensor.extract` of a rank-0
    tensor: the AdamW hyperparameters, the global gradient norm that sets
    the clipping factor) and computes with it before linalg bodies capture
    the result would dereference device memory on the host, since the CUDA
    target keeps every buffer on the device.

    Host scalar code is every `memref.load` and `memref.store` in a
    function body (a store is what `tensor.from_elements` bufferizes to) and
    every region-free op without side effects that computes scalars
    (integers, indices, floats) from a loaded value. Each
    run of it that no op with side effects interrupts becomes a
    `mod_scalar_<n>` kernel of one thread that recomputes the run and stores
    each value used after the run into a fresh rank-0 buffer (`memref.alloc`,
    a device buffer after `--mod-gpu-device-buffers`). The consumers then
    read those buffers on the device:

    - a linalg op gets the buffer as an extra input with the indexing map
      `(d0, ...) -> ()` whose block argument replaces the captured value (a
      named op is generalized first; a scalar input operand becomes the
      buffer);
    - a `gpu.launch` or a host `scf.for` nest (a scatter-add) loads it at
      the start of its body;
    - a later run loads it in its own kernel.

    Cost: one launch of one thread per run (the AdamW step has two: the
    hyperparameters, and the clipping factor after the gradient-norm
    reduction), plus one broadcast load per consumer element instead of a
    kernel parameter. The host never waits for the device.

    Errors: a scalar returned by the function, used as an operand of a
    kernel launch or loop (e.g. a bound), or used by any other host op
    (e.g. a `memref.subview` offset).

    Before:

    ```mlir
    %n = memref.load %norm2[] : memref<f64>
    %r = math.sqrt %n : f64
    %c = arith.truncf %r : f64 to f32
    linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
        ins(%g : memref<32xf32>) outs(%out : memref<32xf32>) {
    ^bb0(%in: f32, %o: f32):
      %s = arith.mulf %in, %c : f32
      linalg.yield %s : f32
    }
    ```

    After:

    ```mlir
    %buf = memref.alloc() : memref<f32>
    gpu.launch ... (1 block of 1 thread) ... {
      %n = memref.load %norm2[] : memref<f64>
      %r = math.sqrt %n : f64
      %c = arith.truncf %r : f64 to f32
      memref.store %c, %buf[] : memref<f32>
      gpu.terminator
    }
    linalg.generic {indexing_maps = [#id, affine_map<(d0) -> ()>, #id], ...}
        ins(%g, %buf : memref<32xf32>, memref<f32>) outs(%out : memref<32xf32>) {
    ^bb0(%in: f32, %c: f32, %o: f32):
      %s = arith.mulf %in, %c : f32
      linalg.yield %s : f32
    }
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect"];
}

def MoDScatterAddToGPU : Pass<"mod-scatter-add-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Make host loop nests GPU kernels: scatter-adds with atomic adds, the rest one block in program order";
  let description = [{
    Runs on bufferized host code of the CUDA target, before
    `--mod-gpu-device-buffers`. A scatter-add, such as the embedding-lookup
    adjoint of `--mod-generate-grad` (`dW[tokens[b, s], d] += dy[b, s, d]`),
    writes a row chosen by data, so no linalg op expresses it: it is a
    sequential `scf.for` nest that, left alone, would run on the host and
    load and store buffers that the CUDA target keeps on the device.

    A host `scf.for` nest that touches memory becomes one kernel,
    `mod_atomic_scatter_<n>`, when its iterations commute:

    - a perfect nest of `scf.for` loops with constant bounds, positive steps
      and no loop-carried values; region-free ops without side effects and
      `memref.load`s at any level, `memref.store`s only in the innermost;
    - every `memref.store` is an accumulation `B[I] = B[I] + v`
      (`arith.addf` or `arith.addi` of a `memref.load` of the same buffer at
      the same index values), into a buffer allocated in the function
      (`memref.alloc`, possibly through views), which the nest reads
      nowhere else.

    The kernel covers the flattened iteration space (innermost loop fastest,
    so a feature dimension innermost is coalesced) with a grid-stride loop of
    `ceil(N / block-size)` blocks (at most `max-blocks`) of `block-size`
    threads; each thread runs one iteration's body with each accumulation
    made a `memref.atomic_rmw addf`/`addi` (PTX `atom.global.add` /
    `red.global.add`). Cost: one launch; per iteration the body's loads
    plus one atomic add per accumulation, atomics to one element serialized
    in the L2 (e.g. repeated tokens). Float sums are accumulated in an
    unspecified order, so results agree with the sequential loop to
    rounding and are not bitwise reproducible between runs.

    Any other host loop nest that touches memory (one with a store that is
    not an accumulation, a `memref.copy` or an `scf.if`: the per-row cache
    writes of `--mod-generate-decode`'s `@decode_step`, at a slot read from
    `lengths[b]`, and its routed-row compaction) need not commute, so it
    becomes `mod_host_loop_<n>`: one block of up to `block-size` threads
    that runs the nest in program order. Every thread runs the loops and
    branches (bounds and conditions are the same values in every thread: all
    reads of memory happen between block barriers); a `memref.store` is
    done by thread 0 and a `memref.copy` (static shapes) is spread over the
    threads, each between two `gpu.barrier`s. Allowed in such a nest:
    `scf.for` (any bounds, loop-carried values used only inside),
    `scf.if`, `memref.load`/`store`/`copy`, views and side-effect-free ops.
    Cost: one launch of one block; the iterations run one after the other
    (B for a decode step's cache writes), each copy parallel over its
    elements (one cache row: KV heads x head dim), two block barriers per
    write. A nest with any other op, a copy of dynamic shape, or a result
    used after it is an error.

    Errors (nothing is rewritten): a host loop nest touching memory that is
    neither (for a scatter-add nest: loop-carried values, non-constant
    bounds, a second loop or an op with regions in the nest, an op with
    other side effects, an accumulation into a function argument, a load of
    an accumulated buffer outside its accumulation), and a block size that
    is not a multiple of 32 in [32, 1024].

    Before:

    ```mlir
    scf.for %b = %c0 to %c2 step %c1 {
      scf.for %s = %c0 to %c16 step %c1 {
        scf.for %d = %c0 to %c32 step %c1 {
          %t = memref.load %tokens[%b, %s] : memref<2x16xi32>
          %g = memref.load %dy[%b, %s, %d] : memref<2x16x32xf32>
          %row = arith.index_cast %t : i32 to index
          %old = memref.load %dW[%row, %d] : memref<64x32xf32>
          %new = arith.addf %old, %g : f32
          memref.store %new, %dW[%row, %d] : memref<64x32xf32>
        }
      }
    }
    ```

    After (sketch):

    ```mlir
    gpu.launch blocks(...) in (%gx = %c4, ...) threads(...) in (%tx = %c256, ...) {
      scf.for %f = %flat to %c1024 step %c1024 {
        %d = arith.remui %f, %c32 ...
        %t = memref.load %tokens[%b, %s] : memref<2x16xi32>
        %g = memref.load %dy[%b, %s, %d] : memref<2x16x32xf32>
        %row = arith.index_cast %t : i32 to index
        %0 = memref.atomic_rmw addf %g, %dW[%row, %d] : (f32, memref<64x32xf32>) -> f32
      }
      gpu.terminator
    }
    ```
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"256",
           "Threads per block (a multiple of 32, at most 1024)">,
    Option<"maxBlocks", "max-blocks", "int64_t", /*default=*/"65536",
           "Most blocks per launch; larger nests use a grid-stride loop">,
  ];
  let dependentDialects = ["::mlir::affine::AffineDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect"];
}

def MoDGPUResidentArguments : Pass<"mod-gpu-resident-arguments", "::mlir::ModuleOp"> {
  let summary = "Keep parameters and in-place state on the GPU between calls";
  let description = [{
    Chooses the entry-point tensors of a CUDA model that live on the device
    from one call to the next instead of being copied host -> device (and
    back) on every call, and marks them `mod.device_resident`:

    - every argument with `mod.kind = "parameter"` (the weights);
    - every argument a result declares it updates in place
      (`mod.aliases = N`: `@adamw_step`'s parameters and moments, decode
      caches), and that result, marked `mod.device_resident = N` (the
      index tells `--mod-gpu-device-buffers`, once results are
      out-parameters, that the runtime passes one buffer for both);
    - every result (aliasing nothing) that another entry point takes as an
      argument of the same `mod.name` and type, and that argument: the
      gradients `grad.<p>` of `@loss_and_grad`, read by `@adamw_step`.
      The runtime keeps them in one device buffer per name, written by
      one call and read by the next (`modrt::Model::callInPlace` with
      `keepOnDevice`), so only the loss comes back to the host.

    mod-compile records the mark in manifest.json (`"residency": "device"`)
    and in the entry point's signature string; libmodrt then passes device
    pointers for these tensors: buffers it uploads once per loaded artifact
    (`modrt::Model::upload`), that training updates in place and that are
    downloaded only on request (checkpoints, `modrt::Model::download`).
    `--mod-gpu-device-buffers` copies nothing for a resident argument.
    Cost: none on the device; per call it removes one host -> device copy
    per parameter and per gradient read, one device -> host copy per
    gradient written, and one device -> host copy per in-place result
    (written in place by `--mod-gpu-device-buffers`).

    Runs on tensors, before `--mod-read-only-entry-arguments` consumes
    `mod.aliases`. Idempotent. An alias index out of range is an error.

    Before:

    ```mlir
    func.func @step(%p: tensor<4xf32> {mod.kind = "parameter"},
                    %g: tensor<4xf32>)
        -> (tensor<4xf32> {mod.aliases = 0 : i64}) { ... }
    ```

    After:

    ```mlir
    func.func @step(%p: tensor<4xf32> {mod.device_resident,
                                       mod.kind = "parameter"},
                    %g: tensor<4xf32>)
        -> (tensor<4xf32> {mod.aliases = 0 : i64, mod.device_resident = 0 : i64}) { ... }
    ```
  }];
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
      receive the results through `gpu.memcpy`;
    - an argument marked `mod.device_resident` (`--mod-gpu-resident-arguments`:
      the runtime passes a device buffer) is not copied: the body reads it
      where it is. If the body may write it (a linalg op or a copy writing it
      or a view of it, a call that may write through its address: calls
      write only the operands their callee lists in `mod.written_operands`,
      or everything without that list) or copies it into an out-parameter, it
      is first copied device -> device into a fresh buffer, so the caller's
      buffer changes only through the out-parameters. A device-resident
      out-parameter receives its result device -> device, or, when the
      result is a `memref.alloc` of its type not used after the copy, is
      that buffer: the result is computed straight into the caller's device
      buffer, with no copy (the device counterpart of
      `buffer-results-to-out-params{hoist-static-allocs}`). If the
      out-parameter updates argument %x in place (`mod.device_resident =
      N`: the runtime passes %x's buffer for both), this is done only when
      nothing reads %x after the result's first write, except that write
      itself when it is an elementwise linalg op reading %x through the same
      indexing map (each element of %x is read before it is overwritten):
      `@adamw_step` updates p, m and v in place with no copy. The argument
      A resident argument that the body copies into the resident
      out-parameter marked as its alias (bufferization wrote the donated
      argument itself: a decode step's per-row cache writes) is written
      where it is and the copy onto itself is dropped, as the runtime binds
      both to the same device buffer: a decode step's caches cost no copy
      per step.
      attributes are replaced by one function attribute listing their
      indices, `mod.device_resident_args = array<i64: ...>` (the LLVM IR
      translation drops, with a warning, argument attributes it does not
      know).

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
