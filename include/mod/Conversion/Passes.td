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

#endif // MOD_CONVERSION_PASSES_TD
