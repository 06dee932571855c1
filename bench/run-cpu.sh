#!/usr/bin/env bash
# MoD vs dense on the CPU, measured side by side in one run: a GPT-2-shaped
# model (4 layers, D=256, S=256, byte vocabulary) compiled dense and with
# every other block routed at 12.5%, timed by mod-bench (medians), next to the
# FLOP ratio --mod-flop-report predicts.
# Usage: bench/run-cpu.sh [BUILD_DIR] (default: build); ITERS=N (default 10).
set -euo pipefail
build=${1:-build}
src=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
config="$src/../examples/configs/gpt2-bench.json"
"$build/bin/mod-import" "$config" --batch=1 --seq=256 -o "$out/dense.mlir"
"$build/bin/mod-opt" "$out/dense.mlir" --mod-dense-to-mod=capacity=0.125 -o "$out/mod.mlir"
echo "FLOPs (mod-flop-report):"
"$build/bin/mod-opt" "$out/mod.mlir" --mod-flop-report="baseline=$out/dense.mlir" -o /dev/null | tail -2
"$build/bin/mod-compile" "$out/dense.mlir" --target=cpu -o "$out/dense"
"$build/bin/mod-compile" "$out/mod.mlir" --target=cpu -o "$out/mod"
echo "Wall time (mod-bench, CPU):"
"$build/bin/mod-bench" dense="$out/dense:forward" mod="$out/mod:forward" \
  --iters="${ITERS:-10}" --warmup=2 --ratio=mod/dense
