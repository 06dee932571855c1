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

    With `routing=threshold` the routed set of each sequence is the causal
    decision `{i : r[b,i] > 0}` (sigmoid(r) > 0.5, the rule of aux-BCE
    trained routers at sampling time) instead of the top-k, so a forward pass
    computes exactly what prefill and decode compute. Shapes stay static:
    every block must have capacity equal to S (`--mod-dense-to-mod` with
    `capacity=1.0`), the body runs on all S tokens, and

    - an unrouted token's position becomes `max(p[b,:]) + 1`, later than
      every real position of its sequence, so the body's position-causal
      attention (query i sees key j iff `pk[j] <= pk[i]`) hides it from every
      routed query: routed tokens attend to the routed tokens alone;
    - an unrouted token's block output is dropped (a select keeps `x`), a
      routed token gets `x + g(r) * d`.

    ```mlir
    %r   = mod.router %x, %w : tensor<1x4x8xf32>, tensor<8xf32> -> tensor<1x4xf32>
    %max = linalg.generic ... // max over the row of %p
    %pk  = linalg.generic ... // %r > 0 ? %p : %max + 1
    %d   = "some.block"(%x, %pk) : (tensor<1x4x8xf32>, tensor<1x4xi32>) -> tensor<1x4x8xf32>
    %out = linalg.generic ... // %r > 0 ? %x + g(%r) * %d : %x
    ```

    With `routing=predictor` the routed set is `{i : q[b,i] > 0}` for the
    predictor MLP's logit `q = tanh(x W1 + b1) . w2 + b2` (the causal rule
    of a model trained with `--mod-generate-grad=predictor`, and of
    `--mod-generate-decode=routing=predictor`); everything else is as with
    `threshold`, and the router logit still gates the routed tokens'
    outputs. The predictor's parameters become new parameters of the
    function holding the block, inserted after its last leading parameter:
    `<prefix>.mod.predictor.{fc1.weight [D,H], fc1.bias [H], fc2.weight [H],
    fc2.bias []}` with `H = predictor-hidden`, `<prefix>` the router weight's
    name without `.mod.router.weight` (else `block<N>`), and the init rules
    of training (`normal:0.02` weights, zero biases).

    A block whose capacity is not S is an error with `routing=threshold` or
    `routing=predictor`; the IR is then left unchanged.
  }];
  let options = [
    Option<"routing", "routing", "std::string", /*default=*/"\"topk\"",
           "How tokens are chosen: topk (the K largest router logits of the "
           "sequence, training-time MoD), threshold (every token whose "
           "router logit is > 0, the causal rule sampling uses; needs "
           "capacity == S) or predictor (every token whose predictor-MLP "
           "logit is > 0; its parameters are added; needs capacity == S)">,
    Option<"predictorHidden", "predictor-hidden", "int64_t", /*default=*/"32",
           "Hidden width of the predictor MLP with routing=predictor (as in "
           "training)">
  ];
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

    Token axes are found by data flow from axis 1 of the token-id and
    position arguments, never from sizes. Those arguments are the ones named
    `tokens` / `positions` (`mod.name` argument attributes), or given by
    index with `tokens-arg` / `positions-arg`, or else found by their use,
    as exporters such as torch-mlir name nothing: the one static `[B,S]`
    integer argument converted to float (RoPE angles) or compared with
    values derived from itself (a causal mask) is the positions; the one
    used as an index into a float table (an embedding) is the token ids.
    i64 arguments (PyTorch's ids) become i32 arguments, sign-extended in the
    function, and both get their `mod.name` so the runtime can feed them. A
    model with no positions argument (its mask and RoPE angles come from an
    `arange`, i.e. `linalg.index`) gets one, `[B,S]` i32 named `positions`,
    right after the token ids; the runtime passes 0..S-1.

    `outs` inits that are only a `tensor.empty`, a splat constant or a
    `linalg.fill` of one carry no token-axis facts between the ops that share
    them (exporters CSE one zero init for several matmuls).
    `tensor.concat` keeps the token axes of the dimensions it does not
    concatenate. Values derived from the positions that the block uses
    (causal masks, RoPE angles) are recomputed inside the block from the
    gathered positions `pk`, so attention inside a routed block is causal by
    position over the routed tokens. A `linalg.index` over a token axis (a
    mask built from loop indices) becomes the read `pk[b, j]`, using the
    op's loop over the batch axis. A batch-less `arange(S)` (Hugging Face
    builds its masks from one, a `linalg.index` in a generic over one
    dimension) has one row for the whole batch, but each sequence routes its
    own tokens: inside the block the op gets an outer loop over the batch
    and reads `pk[b, j]`, the reshapes and linalg ops that follow keep that
    leading batch dimension, and the first op with a batch loop (the one
    that broadcast the table over the batch) reads it with that loop. Where
    the batch axis is merged with another dimension (e.g. `[B*H, S, S]`
    scores) or the table goes through other ops, the pass refuses.

    Not accepted: non-upstream ops (`tools/mod-export` rewrites torch-mlir's
    `tm_tensor.scan`, a cumulative sum or product, into upstream
    `linalg.generic` ops). Position-derived values that cannot be recomputed
    for the routed tokens are refused with a diagnostic on the op: a
    reduction over the token axis among them (a cumulative sum over the
    positions, as Hugging Face transformers 5 computes for packed-sequence
    detection when `position_ids` are passed without an attention mask),
    and a read of a token-axis tensor at a computed index (transformers'
    `position_ids[:, cache_position]`). mod-export turns that detection off
    unless asked with `--packed-sequences`.

    Each routed block gets a router weight `[D]`, a new function argument
    named `<block prefix>.mod.router.weight` (the prefix is the common prefix
    of the block's parameter names, e.g. `transformer.h.1`), marked as a
    parameter with initialization `normal:<router-init-std>`.

    Capacity: a fraction (contains a '.', e.g. `0.125`) gives
    `K = round(C * S)` (half away from zero) clamped to `[1, S]`; an integer
    (e.g. `256`) is K itself and must lie in `[1, S]`.

    Schedule: `every-other` (blocks 1, 3, 5, ...; block 0 stays dense),
    `every` (blocks `offset`, `offset + every`, ...), or `list` (the blocks
    in `blocks`). A schedule that routes no block of a function (e.g.
    `every-other` on a one-block model, or `offset` past the last block) is
    an error: the pass never returns the dense model as if it had converted
    it.

    The pass is all or nothing over the module: every function with a
    `positions` argument is converted, and if any of them fails the module
    is left exactly as it was.

    If anything cannot be proven safe (no residual chain, a token-mixing op
    whose token axis cannot be resized, a constant with a token axis such as
    an S x S mask not derived from the positions) the pass emits an error
    naming the block and the op and leaves the module unchanged.

    Routing: `learned` (the default) is the paper's router above.
    `stochastic` is the paper's stochastic-routing ablation: every routed
    block picks its K tokens uniformly at random (the same capacity and the
    same FLOPs as learned routing, less the router's `2*B*S*D`), and there
    is no router at all: no router weight parameter, nothing to learn, no
    router gradient, and the chosen tokens' block output is added with
    scale 1 (no gate; a linear gate would need router scores to multiply).
    The function gets a new argument `%routing_seed: tensor<i64>
    {mod.name = "routing_seed"}` (the last one) so that each call can draw
    a new set: `mod-train` passes a new value every step and micro-batch
    and fixed values for validation. Block `l` (its index among the
    function's blocks) routes, in row `b`, the top-K (ties to the lower
    index) of

    ```
    score[b,s] = (h >> 40) * 2^-24,
    h = splitmix64(splitmix64(routing_seed) ^ (l * 2^32 + b * S + s))
    ```

    (wrapping 64-bit arithmetic; `splitmix64(z)`: `z += 0x9e3779b97f4a7c15;
    z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9; z = (z ^ z >> 27) *
    0x94d049bb133111eb; z ^ z >> 31`), so a seed gives the same tokens on
    every target and different seeds give independent uniform draws. The
    blocks are emitted already expanded (`linalg.generic` scores,
    `mod.topk {mod.routing = "stochastic"}`, `mod.gather`, the body,
    `mod.scatter_add` with a constant scale of 1), since a
    `mod.routed_block` always scores with a router weight.

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
    Option<"routing", "routing", "std::string", /*default=*/"\"learned\"",
           "How routed blocks choose their K tokens: learned (a router "
           "weight per block, the paper's MoD) or stochastic (uniformly at "
           "random from a new routing_seed input, no router: the paper's "
           "ablation)">,
    Option<"routerInitStd", "router-init-std", "double", /*default=*/"0.02",
           "Standard deviation of the normal initialization of router weights">,
    Option<"routerInitSeed", "router-init-seed", "std::string",
           /*default=*/"\"-1\"",
           "Seed for router weight initialization, recorded as "
           "mod.init_seed (ui64) and in the manifest: an integer in "
           "[0, 2^64-1]; -1 uses the runtime's seed">,
    Option<"tokensArg", "tokens-arg", "int", /*default=*/"-1",
           "Index of the function argument holding the token ids, when "
           "their use cannot tell (-1: the argument named `tokens`, else "
           "the one integer [B,S] argument used as an embedding index)">,
    Option<"positionsArg", "positions-arg", "int", /*default=*/"-1",
           "Index of the function argument holding the positions, when "
           "their use cannot tell (-1: the argument named `positions`, else "
           "the one integer [B,S] argument converted to float (RoPE) or "
           "compared with itself (a causal mask); none: one is added)">,
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
    - `mod.topk` is reported separately as integer steps (`topk_cmp`,
      `B*(W+2)*S` for the radix select both lowerings use: one pass to form
      the keys, `W` = bits/8 histogram passes (4 for f32) and one compaction
      pass per row) and is not part of the FLOP total;
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

def ConvertFloatType : Pass<"mod-convert-float-type", "::mlir::ModuleOp"> {
  let summary = "Change one floating-point element type into another everywhere";
  let description = [{
    Rewrites every use of the floating-point type `from` into `to`: operand,
    result and block-argument types (also inside tensor, memref and function
    types), float constants and dense float constants (each value rounded
    once to the new type), so that a model imported in f32 can be compiled
    in f64 (the gradient checks need f64). Integer and index types are left
    alone. The rewrite is structural and applies to every dialect, so ops
    such as `mod.router` or `linalg.matmul` keep verifying as long as their
    operands change type together.

    Before (`from=f32 to=f64`):

    ```mlir
    func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
      %c = arith.constant 2.0 : f32
      ...
    }
    ```

    After:

    ```mlir
    func.func @f(%x: tensor<4xf64>) -> tensor<4xf64> {
      %c = arith.constant 2.000000e+00 : f64
      ...
    }
    ```

    An unknown type name is an error and leaves the module unchanged.
  }];
  let options = [
    Option<"from", "from", "std::string", /*default=*/"\"f32\"",
           "Element type to replace: f16, bf16, f32 or f64">,
    Option<"to", "to", "std::string", /*default=*/"\"f64\"",
           "Element type to use instead: f16, bf16, f32 or f64">
  ];
}

def LiftConstants : Pass<"mod-lift-constants", "::mlir::ModuleOp"> {
  let summary = "Turn large weight constants into named parameters, values written to safetensors";
  let description = [{
    Exporters such as torch-mlir freeze the weights into the IR as
    `dense_resource` (or `dense`) constants, so the compiled model would
    carry them in its code and could neither load other weights nor train.
    This pass replaces every non-splat floating-point tensor constant with
    at least `min-elements` elements, in every function that has a body, by
    a new function argument marked as a parameter (`mod.kind =
    "parameter"`, `mod.init = <init>`), appended after the existing
    arguments, and writes the constants' values under the same names to the
    safetensors file `weights`, which `mod-run --weights` / `mod-train`
    load.

    Names: the constant's location name where the exporter gave one
    (`loc("model.layers.0.mlp.up_proj.weight")`, also inside fused or
    call-site locations), else the `dense_resource` key with dots replaced by
    underscores (torch-mlir's `torch_tensor_64_16_torch.float32_1` becomes
    `torch_tensor_64_16_torch_float32_1`, so that such names do not make up
    a block prefix), else `constant_<n>` in program order. torch-mlir's
    FX importer (as of the version mod-export installs) gives no names: its
    locations are call-site chains of Python `file:line` (e.g.
    `normalization.py:228` called from `modeling_gpt2.py:583`), a layer's
    weight and bias share one location, and two layers of a class differ
    only in an outer call site, so no parameter name can be read from them
    and such constants keep their resource keys. Export with
    `tools/mod-export` instead, which passes the parameters as named
    arguments (their `named_parameters()` names). A name used twice
    gets `.1`, `.2`, ... appended. One constant used by several functions
    becomes one parameter of each of them, with one entry in the file.

    Splat constants (zeros, ones, masks filled with one value) and small
    tables (below `min-elements`, e.g. RoPE's inverse frequencies, which are
    buffers, not weights) stay constants.

    Before:

    ```mlir
    func.func @main(%ids: tensor<1x8xi64>) -> tensor<1x8x64xf32> {
      %w = arith.constant dense_resource<torch_tensor_64_16_torch.float32> : tensor<64x16xf32>
      ...
    }
    ```

    After (`min-elements=1024 weights=w.safetensors`):

    ```mlir
    func.func @main(%ids: tensor<1x8xi64>,
                    %w: tensor<64x16xf32> {mod.init = "normal:0.02",
                      mod.kind = "parameter",
                      mod.name = "torch_tensor_64_16_torch_float32"})
        -> tensor<1x8x64xf32> { ... }
    ```

    A constant whose data is not available (an elided `dense_resource`) or
    a missing `weights` path is an error, and the module is left unchanged.
  }];
  let options = [
    Option<"minElements", "min-elements", "int64_t", /*default=*/"1024",
           "Smallest constant, in elements, that becomes a parameter">,
    Option<"weights", "weights", "std::string", /*default=*/"\"\"",
           "Safetensors file to write the lifted values to (required)">,
    Option<"init", "init", "std::string", /*default=*/"\"normal:0.02\"",
           "mod.init rule recorded for the new parameters (used only by "
           "--init-missing, when the weights file is not given)">
  ];
}

def GenerateGrad : Pass<"mod-generate-grad", "::mlir::ModuleOp"> {
  let summary = "Generate @loss_and_grad: cross-entropy loss, causal-routing "
                "losses and reverse-mode gradients of every parameter";
  let description = [{
    Takes the forward function `func` (parameters marked `mod.kind =
    "parameter"`, `tokens` and `positions` `[B,S]` i32 arguments, one
    `[B,S,V]` logits result) and adds

    ```mlir
    func.func @loss_and_grad(<parameters>, %tokens, %positions,
                             %targets: tensor<BxSxi32> {mod.name = "targets"})
        -> (loss, aux_loss.<prefix>..., agreement.<prefix>...,
            predictor_loss.<prefix>..., predictor_agreement.<prefix>...,
            grad.<parameter>...)
    ```

    whose results carry `mod.name` attributes, which `mod-compile` copies into
    the manifest. `loss` is the mean next-token cross-entropy over the
    targets that are not -1 (negative targets are ignored; 0 if all are).
    The gradients are those of the training objective
    `loss + aux-loss * sum(aux_loss.*) + sum(predictor_loss.*)`.

    Reverse mode over linalg on tensors, in the style of LAGrad: the forward
    is cloned (routed blocks expanded into router, top-k, gather and
    scatter_add), then the ops are visited in reverse order:
    - `linalg.generic`: one adjoint generic per differentiable operand; its
      output map is that operand's map and the loops missing from that map
      become reductions, so broadcasts sum without atomics. The body is
      recomputed from the forward inputs and differentiated op by op (arith
      add/sub/mul/div/neg/max/min/select/casts, math exp/log/tanh/sqrt/rsqrt/
      erf/sin/cos/powf/absf; comparisons, integer ops and linalg.index carry
      no gradient). Reductions must combine with `addf` or a max (the max
      gets the gradient where it is attained). A `tensor.extract` of a
      differentiable tensor in a body (an embedding lookup) becomes a
      scatter-add loop (scf.for over the generic's iteration space).
    - `linalg.matmul` / `linalg.batch_matmul`: `dA = dC B^T`, `dB = A^T dC`,
      emitted as `linalg.transpose` + `linalg.matmul`/`batch_matmul`, so BLAS
      and cuBLAS still get every GEMM. Other named linalg ops are generalized
      first.
    - `tensor.collapse_shape`/`expand_shape` (inverse reshape),
      `extract_slice` (insert into zeros), `insert_slice`, `concat` (slices),
      `linalg.transpose` (inverse permutation), `linalg.broadcast` and fills.
    - `mod.router` (to x and to w), `mod.gather` (scatter-add of the rows),
      `mod.scatter_add` (to the residual, to the update through the scale,
      and to the scale), `mod.topk` (values only; indices carry no
      gradient), `mod.routed_block` (expanded first).
    An op that has a differentiable operand and no rule is an error naming
    it; nothing is emitted.

    Causal routing (ARCHITECTURE section 2): for every routed block
    (prefix taken from its `<prefix>.mod.router.weight` parameter)
    `aux_loss.<prefix>` is the mean binary cross-entropy between the router
    logits and top-k membership (targets carry no gradient), and
    `agreement.<prefix>` the fraction of tokens with `(logit > 0) ==
    membership`. With `predictor`, each block gets a 2-layer MLP
    `tanh(x W1 + b1) . w2 + b2` on the block input with the gradient
    stopped (parameters `<prefix>.mod.predictor.{fc1.weight [D,H], fc1.bias
    [H], fc2.weight [H], fc2.bias [1]}`), trained with BCE against membership:
    `predictor_loss.<prefix>` and `predictor_agreement.<prefix>`; its
    gradient never reaches the main model.

    Memory: every forward value the backward reads is kept (stored
    activations): the inputs of each differentiated generic and matmul, the
    results of max reductions, the router logits and indices, the gathered
    rows and block outputs. Scalar bodies are recomputed, not stored.
    `print-memory` prints the bytes of these stored values and the largest
    ones on stderr.
  }];
  let options = [
    Option<"func", "func", "std::string", /*default=*/"\"forward\"",
           "Name of the forward function to differentiate">,
    Option<"auxLoss", "aux-loss", "double", /*default=*/"0.01",
           "Weight of the router aux BCE losses in the training objective "
           "(0 keeps them as metrics only)">,
    Option<"predictor", "predictor", "bool", /*default=*/"false",
           "Add a causal-routing predictor MLP per routed block">,
    Option<"predictorHidden", "predictor-hidden", "int64_t", /*default=*/"32",
           "Hidden width of the predictor MLP">,
    Option<"predictorInitStd", "predictor-init-std", "double",
           /*default=*/"0.02",
           "Standard deviation of the normal initialization of the predictor "
           "weights (biases start at zero)">,
    Option<"printMemory", "print-memory", "bool", /*default=*/"false",
           "Print the bytes of stored forward activations on stderr">
  ];
  let dependentDialects = ["::mlir::mod::MoDDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect"];
}

def GenerateAdamW : Pass<"mod-generate-adamw", "::mlir::ModuleOp"> {
  let summary = "Generate the @adamw_step entry point that updates the parameters in place";
  let description = [{
    Adds a public function `@adamw_step` that applies one AdamW update
    (Loshchilov & Hutter, decoupled weight decay, PyTorch's formulation) to
    every parameter of the function named by `func` (the arguments with
    `mod.kind = "parameter"`, in their order there; normally the
    `@loss_and_grad` that `--mod-generate-grad` adds):

    ```mlir
    func.func @adamw_step(%p.. {mod.name = "<p>", mod.kind = "parameter"},
                          %g.. {mod.name = "grad.<p>"},
                          %m.. {mod.name = "m.<p>"}, %v.. {mod.name = "v.<p>"},
                          %lr: tensor<f32>, %beta1: tensor<f32>,
                          %beta2: tensor<f32>, %eps: tensor<f32>,
                          %weight_decay: tensor<f32>, %max_norm: tensor<f32>,
                          %step: tensor<i32>)
        -> (<p>.. {mod.aliases = 0 : i64, ...}, m.<p>.., v.<p>..,
            tensor<f32> {mod.name = "grad_norm"})
    ```

    (the scalars have the parameters' element type; `step` counts from 1).
    With `n = sqrt(sum over all gradients of g^2)` (accumulated in f64) and
    `c = max_norm / (n + 1e-6)` clamped to at most 1 when `max_norm > 0`,
    else `c = 1` (PyTorch's `clip_grad_norm_`), every element is updated as

    ```
    g' = c * g
    m' = beta1 * m + (1 - beta1) * g'
    v' = beta2 * v + (1 - beta2) * g'^2
    p' = p * (1 - lr * weight_decay)                                  (decayed only)
         - (lr / (1 - beta1^step)) * m' / (sqrt(v') / sqrt(1 - beta2^step) + eps)
    ```

    The scalar coefficients are computed in f64 and rounded to the element
    type once. `grad_norm` is `n`, before clipping. If `n` is not finite
    (a NaN or infinity in some gradient) the parameters, `m` and `v` are
    returned unchanged, so the state updated in place stays the last good
    one and the caller can stop on the reported norm.

    Weight decay rule: a parameter is decayed when its rank is at least 2
    (weight matrices and embeddings) and its name does not end in
    `.mod.router.weight`; biases, normalization scales and router weights
    are not decayed.

    In place: the parameter, `m` and `v` results carry a result attribute
    `mod.aliases = <argument index : i64>` naming the argument they replace.
    The runtime passes that argument's buffer as the result's buffer
    (`modrt::Model::callInPlace`), and the generated code only reads an
    element of `p`, `m`, `v` in the iteration that writes it. mod-compile
    records the pairs in the manifest as `"alias_of"`. No other entry point
    writes into its arguments.

    Errors (the module is left unchanged): no function named `func`, no
    parameter arguments, parameters whose element types are not one float
    type, or an existing `@adamw_step`.
  }];
  let options = [
    Option<"func", "func", "std::string", /*default=*/"\"loss_and_grad\"",
           "The function whose `mod.kind = \"parameter\"` arguments are the "
           "parameters to update (their names, order, initializers)">
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect"];
}

def GenerateDecode : Pass<"mod-generate-decode", "::mlir::ModuleOp"> {
  let summary = "Generate @prefill and a KV-cache @decode_step from a forward function";
  let description = [{
    Incrementalizes a forward function `(params..., tokens [B,S], positions
    [B,S]) -> logits [B,S,V]` (arguments found by their `mod.name`) into two
    new entry points that share caches of static maximum size `Smax`:

    ```mlir
    func.func @prefill(params..., %tokens: tensor<BxPxi32>,
                       %positions: tensor<BxPxi32>, %cache.0 ..., %lengths: tensor<Bxi32>)
        -> (tensor<BxPxVxf32> {mod.name = "logits"},
            tensor<BxSmaxx...> {mod.aliases = <cache.0's argument index> : i64}, ...)
    func.func @decode_step(params..., %tokens: tensor<Bxi32>,
                           %positions: tensor<Bxi32>, %cache.0 ..., %lengths: tensor<Bxi32>)
        -> (tensor<BxVxf32> {mod.name = "logits"}, <the updated caches>...)
    ```

    `@prefill` writes the first `lengths[b]` of its P tokens (a sequence's
    prompt, the rest is padding) into slots `0..lengths[b]-1` of an empty
    cache; `@decode_step` writes one token per sequence into slot
    `lengths[b]` (the tokens the cache already holds), one in-place
    `tensor.insert_slice` per row, so no pass over the whole cache. Each cache result
    replaces its argument in place (`mod.aliases`, the manifest's
    `alias_of`). The caller checks `lengths[b] + 1 <= Smax`.

    The analysis never matches op names. Token axes come from
    TokenAxisAnalysis; every token axis of a value the logits need is
    labelled *query* (only the new tokens) or *key* (every cache slot): the
    logits' token axis is a query axis, labels follow indexing maps
    backwards, and a loop over tokens that is no result dimension of its op
    (the key axis of attention's contractions and softmax) is a key loop. A
    value needed on the key side is read from a cache (the new tokens'
    values, computed position-wise, are written at their slots) or
    recomputed from cached operands when its op has no reduction, whichever
    caches fewer elements per token (ties: the cache). So keys and values
    are cached after their projection and RoPE, and the positions are cached
    for the key side of the mask. Position-derived values of the new tokens
    (RoPE angles, the query side of the mask) are computed from the new
    positions.

    **Cost of a decode step: the filled slots only.** Every linalg op of
    `@decode_step` that loops over keys (the keys' and values' transposes,
    the attention scores, the mask, the softmax, probabilities times
    values: any op with a key loop, found by the labels above, not by name)
    becomes an `scf.for` over the batch rows (marked `mod.key_rows`) whose
    body runs the op on row b's slices, its key atoms cut to
    `L_b = min(lengths[b] + 1, Smax)` slots (the tokens the cache held and
    the new one): `tensor.extract_slice` with a dynamic size of the caches
    (read as they are) and of the whole-batch buffers the row's results are
    inserted back into (a zero-filled init is filled per row in the loop).
    The length thus reaches the kernels as the dynamic size of their
    operands: `--mod-linalg-to-blas` makes the scores and the
    probabilities-times-values GEMMs `cblas_sgemv` calls of N = L_b and
    K = L_b (`memref.dim`), and the elementwise ops and reductions become
    loops to L_b. An operand that a per-row permutation of data (a
    transpose, such as the keys' and values' to `[B,H,hd,L]` and
    `[B,H,L,hd]`) makes, possibly through reshapes, is computed in its
    consumer's loop from the row of the permutation's source instead of
    being stored by a loop of its own: `--mod-cpu-fuse-elementwise` folds it
    into the GEMM's indexing maps, so the GEMMs read the caches in place
    (the leading dimension H*hd) and no transposed copy of the filled slots
    is written. Each iteration writes only its own row of every result
    (`mod.key_rows` promises it; `--mod-cpu-parallel-loops` runs the rows on
    the threads). A step then costs O(sum_b L_b) per attention layer
    (plus the position-wise work, independent of the lengths), not
    O(B * Smax); slots past L_b are never read. A routed block's step does
    the same over its rows' routed lengths (`routed_lengths[rows[i]] + 1`),
    first copying those slots of each row out of the whole batch's caches.
    This needs each row's part of every key-side value to be one box (the
    batch atom and the key atom outermost in their dimensions, as in
    `[B*H, d, Smax]`) and no `linalg.index` over the batch; otherwise, or
    with `full-cache-attention`, the step runs over all Smax slots with the
    unfilled ones masked as `@prefill` does:

    Unwritten cache slots read position `max(new positions) + 1` (so the
    position-causal mask hides them) and 0 in float caches (so stale memory
    cannot become NaN through a masked probability). A forward whose mask
    does not read the positions on its key side, an op with no
    incrementalization rule, a body that reads a token index, or a constant
    with a token axis is a diagnostic naming the op; the module is then left
    unchanged. So is a max-seq-len larger than a table the positions index
    (the rows of a learned position embedding, `tensor.extract` at a
    position, possibly clamped, in a generic over the positions): later
    positions would have no row of their own.

    **Mixture-of-Depths models.** A `mod.routed_block` (from
    `--mod-dense-to-mod`) decides causally per token: the token goes through
    the block iff its router logit is > 0 (`sigmoid(r) > 0.5`, `routing=router`,
    for aux-loss-trained routers) or iff the predictor MLP
    `tanh(x W1 + b1) . w2 + b2` is > 0 (`routing=predictor`; its parameters
    `<prefix>.mod.predictor.{fc1.weight,fc1.bias,fc2.weight,fc2.bias}`, as
    `--mod-generate-grad=predictor` trains them, become parameters of both
    entry points). A routed token adds `g(r) * d` to its residual as in the
    forward (`g` the block's gate); an unrouted token passes through. The
    block's body is incrementalized on its own, with `pk` as its positions:
    each routed block has its own caches `[B,Smax,...]` (keys, values and
    the positions of its routed tokens), which hold only the tokens routed
    through it, and an input `routed_lengths.<prefix>` `[B]` i32 (the tokens
    those caches hold per sequence, updated in place like the caches), so
    sequences of one batch have different cache lengths in different
    blocks. Prefill + decode then computes exactly the forward with
    `--mod-expand-routed-blocks=routing=threshold`.

    - `@decode_step` computes the decisions of the B new tokens, compacts the
      routed rows into `rows[0..n)` (an `scf.for` over the batch marked
      `mod.routed_rows`), and runs the block once on those n rows together:
      an `scf.index_switch` on k, the smallest of 1..min(B,8), the powers of
      two below B and B that holds n (marked
      `mod.routed_block = "<prefix>"`), selects a copy of the block's decode
      step built for a static batch of k rows (rows past n repeat the last
      routed row; computing a token twice writes the same values into the
      same slots). The step gathers its rows' hidden states, positions and
      routed lengths, writes each row's new keys and values in place at its
      slot `routed_lengths[row]` of the whole batch's caches (one
      `tensor.insert_slice` per row), reads the caches' filled slots through
      the row indices, and the routed rows' outputs and lengths are then written back
      in an `scf.for` to n. The dynamic row count n thus reaches the kernels
      as the static M = k of every GEMM of the selected copy: one
      `cblas_sgemm` (`cblas_sgemv` for k = 1) per projection on the CPU, one
      cuBLAS call (or kernel launch) of M = k rows on CUDA, which lower the
      copies like any static function. An unrouted row runs no Q/K/V
      projection, no attention, no MLP and writes no cache; n = 0 runs
      nothing, and a step's cost in the block falls with the routed fraction.
    - `@prefill` decides for the P prompt tokens, compacts each sequence's
      routed tokens in order (their count and indices), and runs the block on
      the routed tokens only: gathered to [B,K] for the smallest K of
      ceil(P/8), ceil(P/4), ceil(P/2), P that holds every sequence's count
      (an `scf.index_switch` on K, marked `mod.routed_block`, selects a copy
      of the block's prefill built for K tokens; K = 0 runs nothing; slots
      past a sequence's count repeat a token whose output is dropped and
      that writes no cache). The routed tokens are written into the block's
      caches in order (`routed_lengths` = their count) and their outputs are
      scattered back to their positions, in place on the block's input (so
      every case yields the same buffer as the default); unrouted tokens
      pass through. A prefill's cost in the block thus falls with the
      largest routed count of the batch.

    Nested routed blocks and a block body that uses a token-indexed value
    from outside it are diagnostics.
  }];
  let options = [
    Option<"forward", "func", "std::string", /*default=*/"\"forward\"",
           "The forward function to incrementalize">,
    Option<"maxSeqLen", "max-seq-len", "unsigned", /*default=*/"0",
           "Smax, the token slots of every cache (0: the forward's S)">,
    Option<"prefillLen", "prefill-len", "unsigned", /*default=*/"0",
           "P, the padded prompt length @prefill takes (0: the forward's S); "
           "at most Smax">,
    Option<"routing", "routing", "std::string", /*default=*/"\"router\"",
           "How a routed block decides per token, matching how its model was "
           "trained: router (sigmoid(router logit) > 0.5, aux-loss training) "
           "or predictor (the predictor MLP <prefix>.mod.predictor.* of "
           "--mod-generate-grad=predictor, its logit > 0, taken as extra "
           "parameters)">,
    Option<"predictorHidden", "predictor-hidden", "int64_t", /*default=*/"32",
           "Hidden width of the predictor MLP (as in training) with "
           "routing=predictor">,
    Option<"fullCacheAttention", "full-cache-attention", "bool",
           /*default=*/"false",
           "Compute @decode_step's key side over all Smax slots of every "
           "cache, the unfilled ones masked (the cost of a step then does "
           "not depend on the filled length; for comparison), instead of "
           "per row over its filled slots">
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::mod::MoDDialect",
                           "::mlir::func::FuncDialect"];
}

#endif // MOD_DIALECT_MOD_TRANSFORMS_PASSES_TD
