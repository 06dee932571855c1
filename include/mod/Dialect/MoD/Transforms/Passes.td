//===- Passes.td - MoD dialect transformations -------------*- tablegen -*-===//

#ifndef MOD_DIALECT_MOD_TRANSFORMS_PASSES_TD
#define MOD_DIALECT_MOD_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def ExpandRoutedBlocks : Pass<"mod-expand-routed-blocks"> {
  let summary = "Expand mod.routed_block into router, top-k, gather, body and scatter_add";
  let description = [{
    Rewrites every `mod.routed_block` into the primitive routing ops, inlining
    its body on the gathered tokens. The gate selected on the op (identity or
    sigmoid) becomes the `gate` attribute of the `mod.scatter_add` that adds
    the block output back, scaled by the gated top-k scores.

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
    %out = mod.scatter_add %x[%idx], %d scale %val gate(sigmoid)
        : ... -> tensor<1x4x8xf32>
    ```
  }];
  let dependentDialects = ["::mlir::mod::MoDDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::arith::ArithDialect"];
}

def DenseToMoD : Pass<"mod-dense-to-mod", "::mlir::ModuleOp"> {
  let summary = "Turn the blocks of a dense transformer into Mixture-of-Depths routed blocks";
  let description = [{
    Finds the residual stream of every public `func.func` (a chain of
    `[B,S,D]` values updated by elementwise adds), classifies each sublayer
    as token-mixing (it reduces or contracts over a token axis: attention) or
    position-wise (an MLP), groups them into blocks, and rewrites each
    scheduled block into a `mod.routed_block` whose body is the block's
    residual contribution `f = attn + mlp` cloned with every token axis of
    size S resized to the capacity K.

    Token axes are found by data flow from axis 1 of the arguments named
    `positions` (required) and `tokens` (`mod.name` argument attributes),
    never from sizes. Values derived from the positions that the block uses
    (causal masks, RoPE angles) are recomputed inside the block from the
    gathered positions `pk`, so attention inside a routed block is causal by
    position over the routed tokens. A `linalg.index` over a token axis (a
    mask built from loop indices) becomes the read `pk[b, j]`, using the
    op's loop over the batch axis.

    Each routed block gets a router weight `[D]`, a new function argument
    named `<block prefix>.mod.router.weight` (the prefix is the common prefix
    of the block's parameter names, e.g. `transformer.h.1`), marked as a
    parameter with initialization `normal:<router-init-std>`.

    Capacity: a fraction (contains a '.', e.g. `0.125`) gives
    `K = round(C * S)` (half away from zero) clamped to `[1, S]`; an integer
    (e.g. `256`) is K itself and must lie in `[1, S]`.

    Schedule: `every-other` (blocks 1, 3, 5, ...; block 0 stays dense),
    `every` (blocks `offset`, `offset + every`, ...), or `list` (the blocks
    in `blocks`).

    If anything cannot be proven safe (no residual chain, a token-mixing op
    whose token axis cannot be resized, a constant with a token axis such as
    an S x S mask not derived from the positions) the pass emits an error
    naming the block and the op and leaves the module unchanged.

    Before (one pre-norm block, sketched):

    ```mlir
    %a  = <attention>(%h0, %mask)    // token-mixing
    %h1 = linalg.add ins(%h0, %a ...)
    %m  = <mlp>(%h1)                 // position-wise
    %h2 = linalg.add ins(%h1, %m ...)
    ```

    After:

    ```mlir
    %h2 = mod.routed_block(%h0, %positions, %router_w) capacity(K) : ... {
    ^bb0(%xk: tensor<BxKxD>, %pk: tensor<BxKxi32>):
      %maskk = <mask recomputed from %pk>         // K x K
      %ak  = <attention>(%xk, %maskk)
      %h1k = linalg.add ins(%xk, %ak ...)
      %mk  = <mlp>(%h1k)
      %d   = linalg.generic ... %ak + %mk
      mod.yield %d
    }
    ```
  }];
  let options = [
    Option<"capacity", "capacity", "std::string", /*default=*/"\"0.125\"",
           "Routed tokens per sequence: a fraction of S such as 0.125 "
           "(K = round(C*S), clamped to [1,S]) or an absolute count such as 256">,
    Option<"schedule", "schedule", "std::string", /*default=*/"\"every-other\"",
           "Which blocks are routed: every-other (1, 3, 5, ...), every "
           "(offset, offset+every, ...), or list (the blocks option)">,
    Option<"every", "every", "unsigned", /*default=*/"2",
           "Period of the `every` schedule">,
    Option<"offset", "offset", "unsigned", /*default=*/"1",
           "First routed block of the `every` schedule">,
    ListOption<"blocks", "blocks", "unsigned",
               "Routed block indices for the `list` schedule">,
    Option<"gate", "gate", "std::string", /*default=*/"\"linear\"",
           "How the router score scales the block output: linear (the "
           "paper) or sigmoid">,
    Option<"routerInitStd", "router-init-std", "double", /*default=*/"0.02",
           "Standard deviation of the normal initialization of router weights">,
    Option<"routerInitSeed", "router-init-seed", "int64_t", /*default=*/"-1",
           "Seed for router weight initialization recorded in the manifest; "
           "-1 uses the runtime's seed">,
    Option<"returnRouting", "return-routing", "bool", /*default=*/"false",
           "Also return, for every routed block i, the ascending token "
           "indices it routes as a result named routed_indices.<i> (the "
           "extra router/top-k merges with the block's own after "
           "--mod-expand-routed-blocks and cse)">
  ];
  let dependentDialects = ["::mlir::mod::MoDDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def FlopReport : Pass<"mod-flop-report", "::mlir::ModuleOp"> {
  let summary = "Print the forward FLOPs of every transformer block, dense vs MoD";
  let description = [{
    Counts the floating-point operations of one forward pass of every public
    function that has a residual stream (see `--mod-dense-to-mod`), per block
    and in total, and prints them as a text table (or JSON) on stdout. The IR
    is not changed.

    Counting rules (static shapes, so the numbers are exact):
    - every linalg op (named or generic) costs its iteration count times the
      floating-point ops of its body, so a matmul `[m,k] x [k,n]` costs
      `2*m*n*k` (one multiply, one add) and an elementwise op its element
      count times its body's float ops;
    - contractions are `matmul`, except those with two token axes (attention
      scores `q.k^T` and weighted values `p.v`), which are `attention`;
    - `mod.router` costs `2*B*S*D` (`router`), `mod.scatter_add` `2*B*K*rest`
      (`elementwise`), `mod.gather` nothing;
    - `mod.topk` is reported separately as comparisons (`topk_cmp`,
      `B*S*S` for the rank-based selection the CPU lowering uses) and is
      not part of the FLOP total;
    - fills, copies, transposes, broadcasts and gathers are free.

    With `baseline=<file>`, the dense module the MoD module came from is
    counted too and the report adds the dense figures and the MoD/dense
    ratio per block and in total.
  }];
  let options = [
    Option<"format", "format", "std::string", /*default=*/"\"text\"",
           "Output format: text (a table) or json">,
    Option<"baseline", "baseline", "std::string", /*default=*/"\"\"",
           "A dense module (.mlir) to compare with: prints dense FLOPs and "
           "the MoD/dense ratio">
  ];
}

#endif // MOD_DIALECT_MOD_TRANSFORMS_PASSES_TD
