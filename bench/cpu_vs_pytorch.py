#!/usr/bin/env python3
"""modc (mod-compile --target=cpu) against PyTorch eager on the CPU.

Run through bench/run-cpu-vs-pytorch.sh, which provides a virtual environment
with PyTorch from PyPI (used here only, never by the tests). For each case
(a GPT-2-shaped config at a batch size B and sequence length S):

  * modc dense and MoD forward (mod-import, mod-opt --mod-dense-to-mod,
    mod-compile), timed by mod-bench (median of --iters calls);
  * the same two models in PyTorch eager: the dense GPT-2 forward, and a MoD
    forward written the way public MoD code is (router logits, topk, sort,
    gather, the block on the K gathered tokens, scatter_add of the gated
    update), median of --iters calls under torch.inference_mode();
  * the measured MoD/dense time next to the FLOP ratio --mod-flop-report
    predicts;
  * every GEMM shape of the dense model compiled as its own modc entry point
    and timed against OpenBLAS's cblas_sgemm (the system library modc
    links) on the same shape, as GFLOP/s;
  * what "modc MoD >= 2x PyTorch MoD" would take: the MoD forward's FLOPs
    (--mod-flop-report) over half of PyTorch's MoD time, as GFLOP/s, next to
    modc's achieved rate and OpenBLAS's best sgemm rate on the model's GEMM
    shapes (both sides run the same FLOPs through the same sgemm, so a 2x
    needing more than OpenBLAS's peak is out of reach without doing fewer
    FLOPs).

Both sides use the same thread count (--threads: MODC_NUM_THREADS for modc,
torch.set_num_threads and OPENBLAS_NUM_THREADS for the others).
"""

import argparse
import ctypes
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def flop_ratio(build, dense, mod):
    out = sh([f"{build}/bin/mod-opt", mod, f"--mod-flop-report=baseline={dense}",
              "-o", os.devnull])
    m = re.search(r"MoD/dense = ([0-9.]+)", out)
    total = re.search(r"total forward FLOPs: ([0-9]+)", out)
    base = re.search(r"dense baseline: ([0-9]+)", out)
    return float(m.group(1)), int(total.group(1)), int(base.group(1))


def mod_bench(build, cases, iters, env):
    args = [f"{build}/bin/mod-bench"] + [f"{n}={d}:forward" for n, d in cases]
    args += [f"--iters={iters}", "--warmup=1"]
    out = sh(args, env=env)
    med = {}
    for line in out.splitlines():
        m = re.match(r"(\S+)\s+median\s+([0-9.]+) ms", line)
        if m:
            med[m.group(1)] = float(m.group(2)) / 1e3
    return med


# ---- PyTorch models -------------------------------------------------------

def torch_models(torch, cfg, batch, seq, capacity):
    F = torch.nn.functional
    d, h, v = cfg["n_embd"], cfg["n_head"], cfg["vocab_size"]
    layers = cfg["n_layer"]
    g = torch.Generator().manual_seed(0)

    def w(*shape):
        return torch.randn(*shape, generator=g) * 0.02

    blocks = [dict(ln1=(torch.ones(d), torch.zeros(d)), attn=w(d, 3 * d), attn_b=torch.zeros(3 * d),
                   proj=w(d, d), proj_b=torch.zeros(d), ln2=(torch.ones(d), torch.zeros(d)),
                   fc=w(d, 4 * d), fc_b=torch.zeros(4 * d), out=w(4 * d, d), out_b=torch.zeros(d),
                   router=w(d))
              for _ in range(layers)]
    wte, wpe = w(v, d), w(cfg["n_positions"], d)
    lnf = (torch.ones(d), torch.zeros(d))

    def residual(p, x):
        """The block's residual contribution f(x) = a(x) + m(x + a(x))."""
        b_, s_, _ = x.shape
        y = F.layer_norm(x, (d,), *p["ln1"])
        q, k, vv = (y @ p["attn"] + p["attn_b"]).split(d, dim=2)
        q, k, vv = (t.view(b_, s_, h, d // h).transpose(1, 2) for t in (q, k, vv))
        a = F.scaled_dot_product_attention(q, k, vv, is_causal=True)
        a = a.transpose(1, 2).reshape(b_, s_, d) @ p["proj"] + p["proj_b"]
        y = F.layer_norm(x + a, (d,), *p["ln2"])
        m = F.gelu(y @ p["fc"] + p["fc_b"], approximate="tanh") @ p["out"] + p["out_b"]
        return a + m

    def embed(tokens):
        return wte[tokens] + wpe[torch.arange(seq)]

    def head(x):
        return F.layer_norm(x, (d,), *lnf) @ wte.t()

    def dense(tokens):
        x = embed(tokens)
        for p in blocks:
            x = x + residual(p, x)
        return head(x)

    k = max(1, int(capacity * seq))

    def mod(tokens):
        x = embed(tokens)
        for i, p in enumerate(blocks):
            if i % 2 == 0:
                x = x + residual(p, x)
                continue
            r = x @ p["router"]                                   # [B,S]
            idx = torch.topk(r, k, dim=1).indices.sort(dim=1).values
            gidx = idx.unsqueeze(-1).expand(-1, -1, d)
            xk = torch.gather(x, 1, gidx)
            upd = residual(p, xk) * torch.gather(r, 1, idx).unsqueeze(-1)
            x = x.scatter_add(1, gidx, upd)
        return head(x)

    tokens = torch.randint(0, v, (batch, seq), generator=g)
    return dense, mod, tokens


def time_torch(torch, fn, arg, iters):
    ts = []
    with torch.inference_mode():
        fn(arg)  # warm-up
        for _ in range(iters):
            t = time.perf_counter()
            fn(arg)
            ts.append(time.perf_counter() - t)
    return statistics.median(ts)


# ---- GEMMs -----------------------------------------------------------------

def gemm_shapes(cfg, batch, seq):
    d, v = cfg["n_embd"], cfg["vocab_size"]
    m = batch * seq
    return [("c_attn", m, 3 * d, d), ("c_fc", m, 4 * d, d), ("mlp.c_proj", m, d, 4 * d),
            ("lm_head", m, v, d)]


def gemm_module(name, m, n, k, transposed_b):
    b_type = f"tensor<{n}x{k}xf32>" if transposed_b else f"tensor<{k}x{n}xf32>"
    b_map = "(m, n, k) -> (n, k)" if transposed_b else "(m, n, k) -> (k, n)"
    return f"""
func.func @forward(%a: tensor<{m}x{k}xf32>, %b: {b_type}) -> tensor<{m}x{n}xf32> {{
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<{m}x{n}xf32>
  %c = linalg.fill ins(%zero : f32) outs(%e : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>
  %r = linalg.generic {{indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<{b_map}>,
                                         affine_map<(m, n, k) -> (m, n)>],
                       iterator_types = ["parallel", "parallel", "reduction"]}}
      ins(%a, %b : tensor<{m}x{k}xf32>, {b_type}) outs(%c : tensor<{m}x{n}xf32>) {{
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }} -> tensor<{m}x{n}xf32>
  return %r : tensor<{m}x{n}xf32>
}}
"""


def openblas_sgemm_seconds(m, n, k, transposed_b, threads, iters):
    lib = ctypes.CDLL("libopenblas.so.0")
    lib.openblas_set_num_threads(threads)
    a = (ctypes.c_float * (m * k))()
    b = (ctypes.c_float * (k * n))()
    c = (ctypes.c_float * (m * n))()
    for buf in (a, b):
        ctypes.memset(buf, 0, ctypes.sizeof(buf))
    one = ctypes.c_float(1.0)
    zero = ctypes.c_float(0.0)
    tb = 112 if transposed_b else 111
    ldb = k if transposed_b else n
    ts = []
    for i in range(iters + 1):
        t = time.perf_counter()
        lib.cblas_sgemm(101, 111, tb, m, n, k, one, a, k, b, ldb, zero, c, n)
        if i:
            ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--cases", default="12:256:1,12:1024:1,12:256:4",
                    help="comma-separated LAYERS:S:B cases of GPT-2-small (D=768, 12 heads, V=50257)")
    ap.add_argument("--capacity", type=float, default=0.125)
    ap.add_argument("--no-gemm", action="store_true", help="skip the GEMM-vs-OpenBLAS table")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    src = os.path.dirname(os.path.abspath(__file__))
    base_cfg = json.load(open(os.path.join(src, "..", "examples", "configs", "gpt2-small.json")))
    env = dict(os.environ, MODC_NUM_THREADS=str(args.threads))
    print(f"threads: {args.threads} (modc: MODC_NUM_THREADS; PyTorch {torch.__version__}: "
          f"set_num_threads, {torch.get_num_threads()} in use)")
    print("OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s (unset: OpenBLAS detects the CPU)" %
          (os.environ.get("OPENBLAS_CORETYPE", "unset"), os.environ.get("OPENBLAS_L2_SIZE", "unset")))
    print(f"medians of {args.iters} calls after one warm-up; times in seconds\n")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            layers, seq, batch = (int(x) for x in case.split(":"))
            cfg = dict(base_cfg, n_layer=layers, n_positions=max(seq, base_cfg["n_positions"]))
            cfg_path = os.path.join(tmp, f"gpt2-{layers}.json")
            json.dump(cfg, open(cfg_path, "w"))
            name = f"L{layers} S{seq} B{batch}"
            dense, mod = os.path.join(tmp, "dense.mlir"), os.path.join(tmp, "mod.mlir")
            sh([f"{args.build}/bin/mod-import", cfg_path, f"--batch={batch}", f"--seq={seq}", "-o", dense])
            sh([f"{args.build}/bin/mod-opt", dense, f"--mod-dense-to-mod=capacity={args.capacity}", "-o", mod])
            ratio, mod_flops, _ = flop_ratio(args.build, dense, mod)
            t0 = time.time()
            sh([f"{args.build}/bin/mod-compile", dense, "--target=cpu", "-o", os.path.join(tmp, "dense")])
            sh([f"{args.build}/bin/mod-compile", mod, "--target=cpu", "-o", os.path.join(tmp, "mod")])
            compile_s = time.time() - t0
            med = mod_bench(args.build, [("dense", os.path.join(tmp, "dense")),
                                         ("mod", os.path.join(tmp, "mod"))], args.iters, env)
            tdense, tmod, tokens = torch_models(torch, cfg, batch, seq, args.capacity)
            pt_dense = time_torch(torch, tdense, tokens, args.iters)
            pt_mod = time_torch(torch, tmod, tokens, args.iters)
            rows.append((name, med["dense"], pt_dense, med["mod"], pt_mod, ratio, compile_s, mod_flops))
            print(f"{name}: modc dense {med['dense']:.3f} mod {med['mod']:.3f} | "
                  f"torch dense {pt_dense:.3f} mod {pt_mod:.3f} | compile {compile_s:.0f} s",
                  flush=True)

        print("\nforward, GPT-2-small shape (D=768, 12 heads, V=50257), MoD = capacity "
              f"{args.capacity} every other block")
        print(f"{'case':<16}{'modc dense':>11}{'torch dense':>12}{'speedup':>9}"
              f"{'modc MoD':>10}{'torch MoD':>10}{'speedup':>9}{'MoD/dense':>10}{'FLOP ratio':>11}")
        for name, md, pd, mm, pm, ratio, _, _ in rows:
            print(f"{name:<16}{md:>11.3f}{pd:>12.3f}{pd / md:>8.2f}x{mm:>10.3f}{pm:>10.3f}"
                  f"{pm / mm:>8.2f}x{mm / md:>10.3f}{ratio:>11.3f}")
        print("speedup = PyTorch time / modc time (>1: modc faster)")

        if args.no_gemm:
            return
        _, seq, batch = (int(x) for x in args.cases.split(",")[0].split(":"))
        print(f"\nGEMMs of the dense model (B={batch}, S={seq}) as modc entry points vs OpenBLAS "
              "cblas_sgemm, same shapes")
        print(f"{'gemm':<12}{'M':>6}{'N':>7}{'K':>6}{'modc GFLOP/s':>14}{'OpenBLAS':>10}{'ratio':>8}")
        peak = 0.0
        for gname, m, n, k in gemm_shapes(base_cfg, batch, seq):
            transposed = gname == "lm_head"
            path = os.path.join(tmp, f"gemm-{gname}.mlir")
            open(path, "w").write(gemm_module(gname, m, n, k, transposed))
            out = os.path.join(tmp, f"gemm-{gname}")
            sh([f"{args.build}/bin/mod-compile", path, "--target=cpu", "-o", out])
            iters = max(args.iters, 5)
            t = mod_bench(args.build, [("gemm", out)], iters, env)["gemm"]
            os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
            tb = openblas_sgemm_seconds(m, n, k, transposed, args.threads, iters)
            flops = 2.0 * m * n * k
            peak = max(peak, flops / tb / 1e9)
            print(f"{gname + ('ᵀ' if transposed else ''):<12}{m:>6}{n:>7}{k:>6}"
                  f"{flops / t / 1e9:>14.1f}{flops / tb / 1e9:>10.1f}{tb / t:>8.2f}")

        print(f"\nMoD >= 2x PyTorch MoD: GFLOP/s the MoD forward would need, vs OpenBLAS's best "
              f"sgemm rate above ({peak:.1f} GFLOP/s)")
        print(f"{'case':<16}{'MoD GFLOP':>10}{'modc GFLOP/s':>14}{'torch GFLOP/s':>15}"
              f"{'2x needs':>10}{'of peak':>9}")
        for name, _, _, mm, pm, _, _, mflops in rows:
            need = mflops / (pm / 2) / 1e9
            print(f"{name:<16}{mflops / 1e9:>10.1f}{mflops / mm / 1e9:>14.1f}"
                  f"{mflops / pm / 1e9:>15.1f}{need:>10.1f}{need / peak:>8.2f}x")
        print("of peak > 1: a 2x needs the whole forward to run faster than OpenBLAS's own sgemm")


if __name__ == "__main__":
    main()
