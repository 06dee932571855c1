#!/usr/bin/env python3
"""Writes hand-rolled dense transformers that are spelled differently from
mod-import's output, for the --mod-dense-to-mod tests:

  generic-parallel.mlir  linalg.generic only (no named ops), the MLP computed
                         before the attention in program order, separate
                         q/k/v projections, and parallel attention+MLP blocks
                         (both read the same normalized block input);
                         D == S == heads*head_dim == 4.
  const-mask.mlir        the same model with a precomputed S x S mask constant
  index-mask.mlir        the same model with the causal mask computed from the
                         loop indices (linalg.index) instead of the positions
  conv-mixing.mlir       a block that mixes tokens with a shifted window
                         (compound index d1 + d2 on the token axis)
  positions-b2.mlir      generic-parallel.mlir with B = 2 and a sliding-window
                         causal mask (key j seen from query i iff
                         i - 2 < j <= i), so the mask depends on the
                         positions' values
  arange-b2.mlir         B = 2, the causal mask built as Hugging Face builds
                         it and torch-mlir exports it: a batch-less 1-D
                         arange(S) (linalg.index in a one-loop generic),
                         expand_shape to [1,1,S,1] and [1,1,1,S], a compare
                         with broadcast maps, collapse_shape to [S,S] and a
                         broadcast over the batch in its own generic; built
                         once and shared by both blocks; the same
                         sliding-window mask as positions-b2.mlir
  arange-direct-b2.mlir  the same, with no broadcast op: the masking op reads
                         the [S,S] table with a map that skips the batch loop

Usage: gen_variants.py OUTDIR
"""
import sys

B, S, D, F = 1, 4, 4, 8
WINDOW = None
T = lambda *d, t="f32": "tensor<" + "x".join(map(str, d)) + "x" + t + ">"

class Fn:
    def __init__(self):
        self.lines, self.n = [], 0

    def v(self):
        self.n += 1
        return f"%v{self.n}"

    def emit(self, s):
        self.lines.append("  " + s)

    def empty(self, ty):
        e = self.v()
        self.emit(f"{e} = tensor.empty() : {ty}")
        return e

    def zeros(self, ty):
        e, z = self.empty(ty), self.v()
        self.emit(f"{z} = linalg.fill ins(%zero : f32) outs({e} : {ty}) -> {ty}")
        return z

    def generic(self, ins, out, maps, iters, body, out_init=None):
        """ins: [(value, type)], out: type; body: lines using %a0.. and %acc."""
        r = self.v()
        init = out_init or self.empty(out)
        ins_s = ", ".join(v for v, _ in ins)
        tys = ", ".join(t for _, t in ins)
        maps_s = ", ".join(f"affine_map<{m}>" for m in maps)
        iters_s = ", ".join(f'"{i}"' for i in iters)
        args = "".join(f"%a{i}: {t.split('x')[-1][:-1]}, " for i, (_, t) in enumerate(ins))
        out_et = out.split("x")[-1][:-1]
        self.emit(f"{r} = linalg.generic {{indexing_maps = [{maps_s}], iterator_types = [{iters_s}]}}")
        ins_clause = f"ins({ins_s} : {tys}) " if ins else ""
        self.emit(f"    {ins_clause}outs({init} : {out}) {{")
        self.emit(f"  ^bb0({args}%acc: {out_et}):")
        for line in body:
            self.emit("    " + line)
        self.emit(f"}} -> {out}")
        return r

    def matmul(self, x, w, n_in, n_out):
        acc = self.zeros(T(B, S, n_out))
        return self.generic([(x, T(B, S, n_in)), (w, T(n_in, n_out))], T(B, S, n_out),
                            ["(b, s, o, i) -> (b, s, i)", "(b, s, o, i) -> (i, o)", "(b, s, o, i) -> (b, s, o)"],
                            ["parallel", "parallel", "parallel", "reduction"],
                            ["%p = arith.mulf %a0, %a1 : f32", "%r = arith.addf %acc, %p : f32", "linalg.yield %r : f32"],
                            out_init=acc)

    def add(self, x, y):
        m = "(b, s, d) -> (b, s, d)"
        return self.generic([(x, T(B, S, D)), (y, T(B, S, D))], T(B, S, D), [m, m, m],
                            ["parallel"] * 3, ["%r = arith.addf %a0, %a1 : f32", "linalg.yield %r : f32"])


def block(f, h, i, mask_kind):
    w = lambda n: f"%l{i}_{n}"
    m3 = "(b, s, d) -> (b, s, d)"
    # RMS-style norm without weights: h * rsqrt(mean(h^2) + eps).
    ss = f.generic([(h, T(B, S, D))], T(B, S), ["(b, s, d) -> (b, s, d)", "(b, s, d) -> (b, s)"],
                   ["parallel", "parallel", "reduction"],
                   ["%q = arith.mulf %a0, %a0 : f32", "%r = arith.addf %acc, %q : f32", "linalg.yield %r : f32"],
                   out_init=f.zeros(T(B, S)))
    ln = f.generic([(h, T(B, S, D)), (ss, T(B, S))], T(B, S, D), [m3, "(b, s, d) -> (b, s)", m3], ["parallel"] * 3,
                   [f"%m = arith.divf %a1, %dsize : f32", "%e = arith.addf %m, %eps : f32",
                    "%rs = math.rsqrt %e : f32", "%r = arith.mulf %a0, %rs : f32", "linalg.yield %r : f32"])
    # MLP first in program order (it reads the same ln as the attention).
    u = f.matmul(ln, w("w1"), D, F)
    m2 = "(b, s, d) -> (b, s, d)"
    relu = f.generic([(u, T(B, S, F))], T(B, S, F), [m2, m2], ["parallel"] * 3,
                     ["%r = arith.maximumf %a0, %zero : f32", "linalg.yield %r : f32"])
    mlp = f.matmul(relu, w("w2"), F, D)
    q = f.matmul(ln, w("wq"), D, D)
    k = f.matmul(ln, w("wk"), D, D)
    v = f.matmul(ln, w("wv"), D, D)
    scores = f.generic([(q, T(B, S, D)), (k, T(B, S, D))], T(B, S, S),
                       ["(b, i, j, d) -> (b, i, d)", "(b, i, j, d) -> (b, j, d)", "(b, i, j, d) -> (b, i, j)"],
                       ["parallel", "parallel", "parallel", "reduction"],
                       ["%p = arith.mulf %a0, %a1 : f32", "%ps = arith.mulf %p, %scale : f32",
                        "%r = arith.addf %acc, %ps : f32", "linalg.yield %r : f32"], out_init=f.zeros(T(B, S, S)))
    mask_type, mask_map = T(B, S, S, t="i1"), "(b, i, j) -> (b, i, j)"
    if mask_kind == "positions":
        mask = f.generic([("%positions", T(B, S, t="i32")), ("%positions", T(B, S, t="i32"))], T(B, S, S, t="i1"),
                         ["(b, i, j) -> (b, i)", "(b, i, j) -> (b, j)", "(b, i, j) -> (b, i, j)"], ["parallel"] * 3,
                         window_mask("%a1", "%a0", "i32"))
    elif mask_kind == "index":
        mask = f.generic([], T(B, S, S, t="i1"), ["(b, i, j) -> (b, i, j)"], ["parallel"] * 3,
                         ["%i = linalg.index 1 : index", "%j = linalg.index 2 : index",
                          "%c = arith.cmpi ule, %j, %i : index", "linalg.yield %c : i1"])
    elif mask_kind == "const":
        mask = "%const_mask"
    else:
        mask = f.mask
        if mask_kind == "arange-direct":
            mask_type, mask_map = T(S, S, t="i1"), "(b, i, j) -> (i, j)"
    m3s = "(b, i, j) -> (b, i, j)"
    masked = f.generic([(scores, T(B, S, S)), (mask, mask_type)], T(B, S, S), [m3s, mask_map, m3s],
                       ["parallel"] * 3, ["%r = arith.select %a1, %a0, %neg : f32", "linalg.yield %r : f32"])
    mx = f.generic([(masked, T(B, S, S))], T(B, S), [m3s, "(b, i, j) -> (b, i)"], ["parallel", "parallel", "reduction"],
                   ["%r = arith.maximumf %acc, %a0 : f32", "linalg.yield %r : f32"], out_init=f.zeros(T(B, S)))
    ex = f.generic([(masked, T(B, S, S)), (mx, T(B, S))], T(B, S, S), [m3s, "(b, i, j) -> (b, i)", m3s], ["parallel"] * 3,
                   ["%d = arith.subf %a0, %a1 : f32", "%r = math.exp %d : f32", "linalg.yield %r : f32"])
    sm = f.generic([(ex, T(B, S, S))], T(B, S), [m3s, "(b, i, j) -> (b, i)"], ["parallel", "parallel", "reduction"],
                   ["%r = arith.addf %acc, %a0 : f32", "linalg.yield %r : f32"], out_init=f.zeros(T(B, S)))
    p = f.generic([(ex, T(B, S, S)), (sm, T(B, S))], T(B, S, S), [m3s, "(b, i, j) -> (b, i)", m3s], ["parallel"] * 3,
                  ["%r = arith.divf %a0, %a1 : f32", "linalg.yield %r : f32"])
    o = f.generic([(p, T(B, S, S)), (v, T(B, S, D))], T(B, S, D),
                  ["(b, i, d, j) -> (b, i, j)", "(b, i, d, j) -> (b, j, d)", "(b, i, d, j) -> (b, i, d)"],
                  ["parallel", "parallel", "parallel", "reduction"],
                  ["%m = arith.mulf %a0, %a1 : f32", "%r = arith.addf %acc, %m : f32", "linalg.yield %r : f32"],
                  out_init=f.zeros(T(B, S, D)))
    attn = f.matmul(o, w("wo"), D, D)
    h1 = f.add(h, attn)
    return f.add(h1, mlp)  # parallel: the MLP read ln(h), not ln(h1)


def conv_block(f, h):
    # Each token sums a window of two tokens: out[b,s,d] = sum_w h[b, s + w, d].
    pad = "%hpad"
    f.emit(f"{pad} = tensor.insert_slice {h} into %padinit[0, 0, 0] [{B}, {S}, {D}] [1, 1, 1] : {T(B, S, D)} into {T(B, S + 1, D)}")
    mix = f.generic([(pad, T(B, S + 1, D)), ("%window", T(2, t="f32"))], T(B, S, D),
                    ["(b, s, d, w) -> (b, s + w, d)", "(b, s, d, w) -> (w)", "(b, s, d, w) -> (b, s, d)"],
                    ["parallel", "parallel", "parallel", "reduction"],
                    ["%m = arith.mulf %a0, %a1 : f32", "%r = arith.addf %acc, %m : f32", "linalg.yield %r : f32"],
                    out_init=f.zeros(T(B, S, D)))
    return f.add(h, mix)


def window_mask(pj, pi, ty):
    """Body lines of the mask "key j is seen from query i": causal, and with
    WINDOW set also i - j < WINDOW (sliding-window attention), which depends
    on the positions' values, not only on their order."""
    lines = [f"%c = arith.cmpi sle, {pj}, {pi} : {ty}"]
    if WINDOW is None:
        return lines + ["linalg.yield %c : i1"]
    return lines + [f"%dist = arith.subi {pi}, {pj} : {ty}", f"%w = arith.constant {WINDOW} : {ty}",
                    f"%near = arith.cmpi slt, %dist, %w : {ty}", "%m = arith.andi %c, %near : i1",
                    "linalg.yield %m : i1"]


def arange_mask(f, broadcast):
    """Hugging Face's causal mask from cache_position = arange(S), as
    torch-mlir exports it; returns the [S,S] (or broadcast [B,S,S]) i1 mask."""
    ar = f.generic([], T(S, t="i64"), ["(s) -> (s)"], ["parallel"],
                   ["%s = linalg.index 0 : index", "%c = arith.index_cast %s : index to i64",
                    "linalg.yield %c : i64"])
    rows, cols = f.v(), f.v()
    f.emit(f"{rows} = tensor.expand_shape {ar} [[0, 1, 2, 3]] output_shape [1, 1, {S}, 1] : "
           f"{T(S, t='i64')} into {T(1, 1, S, 1, t='i64')}")
    f.emit(f"{cols} = tensor.expand_shape {ar} [[0, 1, 2, 3]] output_shape [1, 1, 1, {S}] : "
           f"{T(S, t='i64')} into {T(1, 1, 1, S, t='i64')}")
    cmp = f.generic([(cols, T(1, 1, 1, S, t="i64")), (rows, T(1, 1, S, 1, t="i64"))], T(1, 1, S, S, t="i1"),
                    ["(d0, d1, d2, d3) -> (d0, d1, 0, d3)", "(d0, d1, d2, d3) -> (d0, d1, d2, 0)",
                     "(d0, d1, d2, d3) -> (d0, d1, d2, d3)"], ["parallel"] * 4,
                    window_mask("%a0", "%a1", "i64"))
    flat = f.v()
    f.emit(f"{flat} = tensor.collapse_shape {cmp} [[0, 1, 2], [3]] : {T(1, 1, S, S, t='i1')} into {T(S, S, t='i1')}")
    if not broadcast:
        return flat
    return f.generic([(flat, T(S, S, t="i1"))], T(B, S, S, t="i1"), ["(b, i, j) -> (i, j)", "(b, i, j) -> (b, i, j)"],
                     ["parallel"] * 3, ["linalg.yield %a0 : i1"])


def model(kind):
    f = Fn()
    params = []
    nblocks = 2
    for i in range(nblocks):
        for n, shape in [("w1", (D, F)), ("w2", (F, D)), ("wq", (D, D)), ("wk", (D, D)), ("wv", (D, D)), ("wo", (D, D))]:
            params.append((f"%l{i}_{n}", T(*shape), f"layers.{i}.{n}"))
    extra = ""
    if kind == "conv":
        extra = f", %window: {T(2)} {{mod.name = \"conv.window\", mod.kind = \"parameter\", mod.init = \"ones\"}}"
    args = ",\n    ".join(f'{v}: {t} {{mod.name = "{n}", mod.kind = "parameter", mod.init = "normal:0.02"}}'
                         for v, t, n in params)
    head = [f"func.func @forward({args}{extra},",
            f'    %emb: {T(16, D)} {{mod.name = "embed.weight", mod.kind = "parameter", mod.init = "normal:0.02"}},',
            f'    %tokens: {T(B, S, t="i32")} {{mod.name = "tokens"}}, %positions: {T(B, S, t="i32")} {{mod.name = "positions"}})',
            f'    -> ({T(B, S, D)} {{mod.name = "out"}}) {{']
    f.emit("%zero = arith.constant 0.0 : f32")
    f.emit("%eps = arith.constant 1.0e-6 : f32")
    f.emit(f"%dsize = arith.constant {float(D)} : f32")
    f.emit("%scale = arith.constant 0.5 : f32")
    f.emit("%neg = arith.constant -1.0e30 : f32")
    if kind == "const-mask":
        rows = ", ".join("[" + ", ".join("true" if j <= i else "false" for j in range(S)) + "]" for i in range(S))
        f.emit(f"%const_mask = arith.constant dense<[[{rows}]]> : {T(B, S, S, t='i1')}")
    if kind == "conv":
        f.emit(f"%padinit = arith.constant dense<0.0> : {T(B, S + 1, D)}")
    # Embedding lookup: h[b,s,:] = emb[tokens[b,s], :].
    h = f.generic([("%tokens", T(B, S, t="i32"))], T(B, S, D), ["(b, s, d) -> (b, s)", "(b, s, d) -> (b, s, d)"],
                  ["parallel"] * 3, ["%t = arith.index_cast %a0 : i32 to index", "%dd = linalg.index 2 : index",
                                     "%e = tensor.extract %emb[%t, %dd] : " + T(16, D), "linalg.yield %e : f32"])
    if kind in ("arange", "arange-direct"):
        f.mask = arange_mask(f, kind == "arange")
    for i in range(nblocks):
        if kind == "conv" and i == 1:
            h = conv_block(f, h)
        else:
            h = block(f, h, i, {"const-mask": "const", "index-mask": "index", "arange": "arange",
                                "arange-direct": "arange-direct"}.get(kind, "positions"))
    f.emit(f"return {h} : {T(B, S, D)}")
    return "\n".join(head + f.lines + ["}"]) + "\n"


out = sys.argv[1]
header = "// Generated by gen_variants.py; see that file for what this model exercises.\n"
for name, kind, batch in [("generic-parallel.mlir", "generic", 1), ("const-mask.mlir", "const-mask", 1),
                          ("conv-mixing.mlir", "conv", 1), ("index-mask.mlir", "index-mask", 1),
                          ("positions-b2.mlir", "generic", 2), ("arange-b2.mlir", "arange", 2),
                          ("arange-direct-b2.mlir", "arange-direct", 2)]:
    B, WINDOW = batch, (2 if batch == 2 else None)
    with open(f"{out}/{name}", "w") as fh:
        fh.write(header + model(kind))
