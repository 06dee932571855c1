#!/usr/bin/env python3
"""Counts, per model, what the host code of one call of an entry point of a
--target=cuda model does: host synchronizations, host->device and
device->host copies, kernel launches, cuBLAS calls and kernel lookups
(mgpuModuleGetFunction), and the module loads of the model (cuModuleLoadData,
done once, during the first call). Needs no GPU (the CUDA toolkit's ptxas,
for the pipeline's last step).

The host code of the CUDA target is straight-line (mod-gpu-device-buffers
checks it), so a count in the IR of an entry function is the count per call.
Copies, syncs and launches are read from the IR after convert-scf-to-cf
(gpu dialect ops on memrefs, where a copy's direction shows: a function
argument is host memory, as is a memref.get_global); module loads and
kernel lookups only exist once gpu.launch_func is translated to LLVM IR, so
they are read from `mlir-translate --mlir-to-llvmir` of the final output.

Usage: bench/count-host-calls.py [--build DIR] [--entry forward]
                                 [--pipeline PIPELINE] [MODEL ...]
MODEL is a .mlir file or a config JSON of examples/configs (imported with
mod-import --batch=2 --seq=8, and also converted with --mod-dense-to-mod at
capacity 0.25 for a MoD variant). Default: the tiny GPT-2 and LLaMA configs
and the worked example. --pipeline replaces the lowering (a mod-opt
pass-pipeline string), e.g. to count an older pipeline with a newer build.
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLVM_BIN = "/usr/lib/llvm-22/bin"
COLUMNS = ["syncs", "h2d", "d2h", "d2d", "launches", "cublas",
           "module_loads", "lookups"]


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit("count-host-calls: %s failed:\n%s" % (" ".join(cmd), r.stderr[-4000:]))
    return r


def host_functions(text):
    """Top-level func.func bodies of a printed module (skipping gpu.module
    contents): name -> list of lines."""
    funcs, current, depth, in_gpu = {}, None, 0, 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("gpu.module ") or stripped.startswith("gpu.binary "):
            in_gpu = 1 if stripped.endswith("{") else 0
            gdepth = 0
        if in_gpu:
            gdepth += line.count("{") - line.count("}")
            if gdepth <= 0 and "}" in line:
                in_gpu = 0
            continue
        m = re.match(r"\s*func\.func (?:private |public )?@([\w.$-]+)\(", line)
        if m and current is None and line.rstrip().endswith("{"):
            current, depth = m.group(1), 0
            funcs[current] = []
        if current is not None:
            funcs[current].append(line)
            depth += line.count("{") - line.count("}")
            if depth <= 0:
                current = None
    return funcs


def count_gpu_level(lines, funcs, seen=None):
    """Counts in one host function (and the private functions it calls)."""
    seen = seen or set()
    counts = collections.Counter()
    defs = {}  # SSA name -> defining op name
    for line in lines:
        m = re.match(r"\s*(%[\w#:]+)(?:, %[\w]+)* = ([\w.]+)", line)
        if m:
            defs[m.group(1).split(":")[0]] = m.group(2)
    header = lines[0]
    args = set(re.findall(r"(%arg\d+)", header))

    def host(value):
        return value in args or defs.get(value) == "memref.get_global"

    for line in lines[1:]:
        s = line.strip()
        if re.match(r"gpu\.wait \[", s):  # blocking wait: host sync
            counts["syncs"] += 1
        m = re.search(r"gpu\.memcpy (?:async \[[^\]]*\] )?(%[\w]+), (%[\w]+)", s)
        if m:
            dst, src = m.group(1), m.group(2)
            counts["h2d" if host(src) else "d2h" if host(dst) else "d2d"] += 1
        if "gpu.launch_func" in s:
            counts["launches"] += 1
        m = re.search(r"call @([\w.$-]+)\(", s)
        if m:
            callee = m.group(1)
            if callee.startswith("modrt_cublas_"):
                counts["cublas"] += 1
            elif callee in funcs and callee not in seen:
                counts += count_gpu_level(funcs[callee], funcs, seen | {callee})
    return counts


def llvm_function_calls(ll, name):
    """Calls to mgpuModuleLoad / mgpuModuleGetFunction in `define ... @name(`
    and the functions it calls that are defined in the module."""
    bodies, current = {}, None
    for line in ll.splitlines():
        m = re.match(r"define .*@([\w.$-]+)\(", line)
        if m:
            current = m.group(1)
            bodies[current] = []
            continue
        if line.startswith("}"):
            current = None
        elif current:
            bodies[current].append(line)
    counts = collections.Counter()

    def visit(fn, seen):
        for line in bodies.get(fn, []):
            for callee in re.findall(r"call [^@]*@([\w.$-]+)\(", line):
                if callee == "mgpuModuleGetFunction":
                    counts["lookups"] += 1
                elif callee in bodies and callee not in seen:
                    visit(callee, seen | {callee})
    visit(name, {name})
    # Modules are loaded by global constructors (libmodrt_cuda defers the
    # cuModuleLoadData to the first launch): once per loaded model, during
    # its first call.
    counts["module_loads"] = len(re.findall(r"call [^@]*@mgpuModuleLoad(?:JIT)?\(", ll))
    return counts


def count_model(build, mlir, entry, pipeline, tmp):
    mod_opt = os.path.join(build, "bin", "mod-opt")
    lowered = os.path.join(tmp, "lowered.mlir")
    cmd = [mod_opt, mlir, "-o", lowered,
           "--mlir-print-ir-after=convert-scf-to-cf"]
    cmd += ["--pass-pipeline=builtin.module(%s)" % pipeline] if pipeline \
        else ["--mod-cuda-lowering"]
    r = run(cmd)
    funcs = host_functions(r.stderr)
    if entry not in funcs:
        sys.exit("count-host-calls: %s has no function @%s (has: %s)"
                 % (mlir, entry, ", ".join(sorted(funcs))))
    counts = count_gpu_level(funcs[entry], funcs, {entry})
    ll = run([os.path.join(LLVM_BIN, "mlir-translate"), "--mlir-to-llvmir",
              lowered]).stdout
    counts += llvm_function_calls(ll, entry)
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--entry", default="forward")
    p.add_argument("--pipeline", default="")
    p.add_argument("models", nargs="*")
    a = p.parse_args()
    models = a.models or [os.path.join(ROOT, "examples/configs/gpt2-tiny.json"),
                          os.path.join(ROOT, "examples/configs/llama-tiny.json")]
    tmp = tempfile.mkdtemp()
    try:
        rows = []
        for model in models:
            if model.endswith(".json"):
                base = os.path.splitext(os.path.basename(model))[0]
                dense = os.path.join(tmp, base + ".mlir")
                run([os.path.join(a.build, "bin", "mod-import"), model,
                     "--batch=2", "--seq=8", "-o", dense])
                moded = os.path.join(tmp, base + "-mod.mlir")
                run([os.path.join(a.build, "bin", "mod-opt"), dense,
                     "--mod-dense-to-mod=capacity=0.25", "-o", moded])
                variants = [(base, dense), (base + "-mod", moded)]
            else:
                variants = [(os.path.splitext(os.path.basename(model))[0], model)]
            for name, path in variants:
                c = count_model(a.build, path, a.entry, a.pipeline, tmp)
                rows.append([name] + [str(c[k]) for k in COLUMNS])
        header = ["model"] + COLUMNS
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
        for r in [header] + rows:
            print("  ".join(v.ljust(widths[i]) if i == 0 else v.rjust(widths[i])
                            for i, v in enumerate(r)))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
