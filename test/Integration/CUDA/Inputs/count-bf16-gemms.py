#!/usr/bin/env python3
"""Counts, per entry point, the GEMMs and bf16 conversions of a CUDA model.

Reads the module printed after --mod-linalg-to-cublas (mod-opt
--mod-cuda-lowering=precision=bf16 -mlir-print-ir-after=mod-linalg-to-cublas)
and prints, for every public func.func with a body, one line

  @NAME: bf16_gemms=N f32_gemms=N conversions=N weight_conversions=N
         converted_weights=N max_per_weight=N bf16_arguments=N

bf16_gemms / f32_gemms: calls of modrt_cublas_gemm_bf16_strided_batched /
modrt_cublas_sgemm_strided_batched or modrt_cublaslt_matmul (an f32 GEMM
with a fused epilogue). conversions: linalg.generic ops whose
output is a bf16 buffer (the f32 -> bf16 conversion kernels).
weight_conversions: those whose input is a function argument (a parameter
or another input buffer), converted_weights: how many distinct arguments
they convert, max_per_weight: the most conversions of one argument in one
call (1 when a weight read by several GEMMs is converted once).
bf16_arguments: arguments of bf16 type (0: parameters, gradients and
optimizer state stay f32).
"""
import re
import sys
from collections import Counter

FUNC = re.compile(r"^\s*func\.func @([\w.$-]+)\((.*)\)\s*(.*)\{\s*$")
CONVERT = re.compile(r"linalg\.generic .*ins\((%[\w]+) : [^)]*\) "
                     r"outs\(%[\w]+ : memref<[^>]*xbf16>\)")


def main():
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    current = None
    depth = 0
    for line in text.splitlines():
        m = FUNC.match(line)
        if m and current is None and "private" not in line.split("@")[0]:
            current = {"name": m.group(1), "bf16": 0, "f32": 0,
                       "conversions": 0, "weights": Counter(),
                       "bf16_args": m.group(2).count("bf16>")}
            depth = 1
            continue
        if current is None:
            continue
        depth += line.count("{") - line.count("}")
        if "call @modrt_cublas_gemm_bf16_strided_batched(" in line:
            current["bf16"] += 1
        if ("call @modrt_cublas_sgemm_strided_batched(" in line or
                "call @modrt_cublaslt_matmul(" in line):
            current["f32"] += 1
        c = CONVERT.search(line)
        if c:
            current["conversions"] += 1
            if c.group(1).startswith("%arg"):
                current["weights"][c.group(1)] += 1
        if depth <= 0:
            w = current["weights"]
            print(f"@{current['name']}: bf16_gemms={current['bf16']} "
                  f"f32_gemms={current['f32']} "
                  f"conversions={current['conversions']} "
                  f"weight_conversions={sum(w.values())} "
                  f"converted_weights={len(w)} "
                  f"max_per_weight={max(w.values()) if w else 0} "
                  f"bf16_arguments={current['bf16_args']}")
            current = None


if __name__ == "__main__":
    main()
