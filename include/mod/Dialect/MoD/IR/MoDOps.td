//===- MoDOps.td - MoD dialect operations ------------------*- tablegen -*-===//

#ifndef MOD_DIALECT_MOD_IR_MODOPS_TD
#define MOD_DIALECT_MOD_IR_MODOPS_TD

include "mod/Dialect/MoD/IR/MoDBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/IR/OpAsmInterface.td"

//===----------------------------------------------------------------------===//
// RouterOp
//===----------------------------------------------------------------------===//

def MoD_RouterOp : MoD_Op<"router", [Pure]> {
  let summary = "per-token router logits r[b,s] = w . x[b,s,:]";
  let description = [{
    Computes one scalar routing score per token: the dot product of the
    token's hidden vector with the router weight vector.

    `input` is `[B,S,D]`, `weight` is `[D]` and the result is `[B,S]`, all
    with the same floating-point element type.

    Example:

    ```mlir
    %r = mod.router %x, %w : tensor<2x16x64xf32>, tensor<64xf32> -> tensor<2x16xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$weight);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// TopKOp
//===----------------------------------------------------------------------===//

def MoD_TopKOp : MoD_Op<"topk", [Pure]> {
  let summary = "static-size top-k per row, indices returned in ascending order";
  let description = [{
    Selects, in every row `b` of the `[B,S]` score tensor, the `k` tokens with
    the largest scores. Equal scores go to the lower token index. The
    selected indices are returned **sorted ascending** (so gathered tokens keep
    their causal order) as `[B,K]` `i32`, together with the scores at those
    indices (`values[b,j] = input[b, indices[b,j]]`). `1 <= k <= S`.

    When `k == S` every token is selected and the op folds to the constant
    indices `0..S-1` and the input itself, as long as that constant has at
    most 65536 elements (`B*S`); a folder never builds larger constants. A
    `mod.gather` through the indices of a top-k over every token folds to its
    input at any size.

    Example:

    ```mlir
    %idx, %val = mod.topk %r k(2) : tensor<1x4xf32> -> tensor<1x2xi32>, tensor<1x2xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input,
                       ConfinedAttr<I64Attr, [IntPositive]>:$k);
  let results = (outs AnyRankedTensor:$indices, AnyRankedTensor:$values);
  let assemblyFormat = [{
    $input `k` `(` $k `)` attr-dict `:` type($input) `->` type($indices) `,` type($values)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// GatherOp
//===----------------------------------------------------------------------===//

def MoD_GatherOp : MoD_Op<"gather", [Pure]> {
  let summary = "gather rows along the token axis";
  let description = [{
    `result[b,j,...] = input[b, indices[b,j], ...]`: picks `K` rows along the
    token axis (axis 1) of every sequence. `input` is `[B,S,...]` of any
    element type and rank >= 2, `indices` is `[B,K]` `i32` with values in
    `[0,S)`, and the result is `[B,K,...]`.

    Example:

    ```mlir
    %xk = mod.gather %x[%idx] : tensor<1x4x8xf32>, tensor<1x2xi32> -> tensor<1x2x8xf32>
    %pk = mod.gather %p[%idx] : tensor<1x4xi32>, tensor<1x2xi32> -> tensor<1x2xi32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$indices);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `[` $indices `]` attr-dict `:` type($input) `,` type($indices) `->` type($result)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// ScatterAddOp
//===----------------------------------------------------------------------===//

def MoD_ScatterAddOp : MoD_Op<"scatter_add", [Pure,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "gated, scaled residual add at gathered token positions";
  let description = [{
    `result = input; result[b, indices[b,j], ...] += g(scale[b,j]) * update[b,j,...]`,
    where the gate `g` is the identity (default, not printed) or
    `gate(sigmoid)`: `g(v) = 1 / (1 + exp(-v))`.

    `input` is `[B,S,...]`, `indices` is `[B,K]` `i32`, `update` is
    `[B,K,...]` with the same trailing dimensions and element type as
    `input`, and `scale` is `[B,K]` with the element type of `input`.
    Tokens that are not indexed pass through unchanged. Indices produced by
    `mod.topk` are unique within a row; repeated indices accumulate.

    The gate is part of the op (rather than a separate elementwise op on
    `scale`) so that lowerings can fuse it by reading the attribute, and so
    that the adjoint of the op knows `dg/dscale` without pattern matching:
    `--mod-expand-routed-blocks` copies `mod.routed_block`'s gate here.

    Example:

    ```mlir
    %out = mod.scatter_add %x[%idx], %d scale %g
        : tensor<1x4x8xf32>, tensor<1x2xi32>, tensor<1x2x8xf32>, tensor<1x2xf32> -> tensor<1x4x8xf32>
    %gated = mod.scatter_add %x[%idx], %d scale %v gate(sigmoid)
        : tensor<1x4x8xf32>, tensor<1x2xi32>, tensor<1x2x8xf32>, tensor<1x2xf32> -> tensor<1x4x8xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$indices,
                       AnyRankedTensor:$update, AnyRankedTensor:$scale,
                       DefaultValuedAttr<MoD_GateKindAttr,
                                         "::mlir::mod::GateKind::Identity">:$gate);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `[` $indices `]` `,` $update `scale` $scale custom<Gate>($gate)
    attr-dict `:`
    type($input) `,` type($indices) `,` type($update) `,` type($scale) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// RoutedBlockOp
//===----------------------------------------------------------------------===//

def MoD_RoutedBlockOp : MoD_Op<"routed_block", [
    RecursiveMemoryEffects, SingleBlock,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "a transformer block that only the top-k routed tokens go through";
  let description = [{
    A Mixture-of-Depths block. For `input : [B,S,D]`, `positions : [B,S]`
    `i32` and `router_weight : [D]`:

    1. `r = mod.router input, router_weight`
    2. `idx, vals = mod.topk r k(capacity)` (ascending indices)
    3. the body runs on `xk = input[idx] : [B,K,D]` and `pk = positions[idx] : [B,K]`
       and yields the block's residual contribution `d : [B,K,D]`
    4. `result = input` with `g(vals) * d` added at the routed positions,
       where `g` is the identity (the paper's choice) or a sigmoid.

    The body may use values defined above it (the block's weights).
    `--mod-expand-routed-blocks` rewrites the op into exactly these steps.

    Example:

    ```mlir
    %out = mod.routed_block(%x, %pos, %w) capacity(2) gate(sigmoid)
        : (tensor<1x4x8xf32>, tensor<1x4xi32>, tensor<8xf32>) -> tensor<1x4x8xf32> {
    ^bb0(%xk: tensor<1x2x8xf32>, %pk: tensor<1x2xi32>):
      %d = ... : tensor<1x2x8xf32>
      mod.yield %d : tensor<1x2x8xf32>
    }
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, AnyRankedTensor:$positions,
                       AnyRankedTensor:$router_weight,
                       ConfinedAttr<I64Attr, [IntPositive]>:$capacity,
                       DefaultValuedAttr<MoD_GateKindAttr,
                                         "::mlir::mod::GateKind::Identity">:$gate);
  let results = (outs AnyRankedTensor:$result);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `(` $input `,` $positions `,` $router_weight `)` `capacity` `(` $capacity `)`
    custom<Gate>($gate) attr-dict `:`
    `(` type($input) `,` type($positions) `,` type($router_weight) `)` `->` type($result)
    $body
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
}

//===----------------------------------------------------------------------===//
// YieldOp
//===----------------------------------------------------------------------===//

def MoD_YieldOp : MoD_Op<"yield", [Pure, Terminator, ReturnLike,
    HasParent<"RoutedBlockOp">]> {
  let summary = "terminator of mod.routed_block: yields the block's residual contribution";
  let description = [{
    Returns the `[B,K,D]` residual contribution of the routed tokens from the
    body of a `mod.routed_block`.

    Example:

    ```mlir
    mod.yield %d : tensor<1x2x8xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$value);
  let assemblyFormat = "$value attr-dict `:` type($value)";
}

#endif // MOD_DIALECT_MOD_IR_MODOPS_TD
