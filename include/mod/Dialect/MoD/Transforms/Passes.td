//===- Passes.td - MoD dialect transformations -------------*- tablegen -*-===//

#ifndef MOD_DIALECT_MOD_TRANSFORMS_PASSES_TD
#define MOD_DIALECT_MOD_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def ExpandRoutedBlocks : Pass<"mod-expand-routed-blocks"> {
  let summary = "Expand mod.routed_block into router, top-k, gather, body and scatter_add";
  let description = [{
    Rewrites every `mod.routed_block` into the primitive routing ops, inlining
    its body on the gathered tokens. The gate selected on the op (identity or
    sigmoid) scales the block output before it is added back.

    Before:

    ```mlir
    %out = mod.routed_block(%x, %p, %w) capacity(2) gate(sigmoid)
        : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
    ^bb0(%xk: tensor<1x2x8xf32>, %pk: tensor<1x2xi32>):
      %d = "some.block"(%xk, %pk) : (tensor<1x2x8xf32>, tensor<1x2xi32>) -> tensor<1x2x8xf32>
      mod.yield %d : tensor<1x2x8xf32>
    }
    ```

    After:

    ```mlir
    %r = mod.router %x, %w : tensor<1x4x8xf32>, tensor<8xf32> -> tensor<1x4xf32>
    %idx, %val = mod.topk %r k(2) : tensor<1x4xf32> -> tensor<1x2xi32>, tensor<1x2xf32>
    %xk = mod.gather %x[%idx] : tensor<1x4x8xf32>, tensor<1x2xi32> -> tensor<1x2x8xf32>
    %pk = mod.gather %p[%idx] : tensor<1x4xi32>, tensor<1x2xi32> -> tensor<1x2xi32>
    %d = "some.block"(%xk, %pk) : (tensor<1x2x8xf32>, tensor<1x2xi32>) -> tensor<1x2x8xf32>
    %g = linalg.generic ... // sigmoid(%val); omitted for gate(identity)
    %out = mod.scatter_add %x[%idx], %d scale %g : ... -> tensor<1x4x8xf32>
    ```
  }];
  let dependentDialects = ["::mlir::mod::MoDDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::arith::ArithDialect"];
}

#endif // MOD_DIALECT_MOD_TRANSFORMS_PASSES_TD
