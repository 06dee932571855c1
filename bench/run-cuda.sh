#!/usr/bin/env bash
# Times on the GPU of this machine: the CUDA routing kernels, an MLP block
# routed at 12.5% against the same block dense, and the whole forward of a
# GPT-2-small-shaped model (S=2048) converted to MoD (every other block at
# 12.5%) against its dense forward. Prints medians and ratios.
# Usage: bench/run-cuda.sh [BUILD_DIR] (default: build). Needs a GPU and a
# build with libmodrt_cuda.
set -euo pipefail
build=${1:-build}
src=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$build/bin/mod-compile" "$src/routing.mlir" --target=cuda -o "$out/routing"
"$build/bin/mod-compile" "$src/forward.mlir" --target=cuda -o "$out/forward"
config="$src/../examples/configs/gpt2-small-s2048.json"
"$build/bin/mod-import" "$config" --batch=1 --seq=2048 -o "$out/gpt2.mlir"
"$build/bin/mod-opt" "$out/gpt2.mlir" --mod-dense-to-mod=capacity=0.125 -o "$out/gpt2-mod.mlir"
"$build/bin/mod-opt" "$out/gpt2-mod.mlir" --mod-flop-report="baseline=$out/gpt2.mlir" -o /dev/null | tail -2
"$build/bin/mod-compile" "$out/gpt2.mlir" --target=cuda -o "$out/gpt2"
"$build/bin/mod-compile" "$out/gpt2-mod.mlir" --target=cuda -o "$out/gpt2-mod"
# The routing model moves x to and from the device around two kernels; the
# copy-only baseline (dense identity is not a model) is the scatter output
# size, so compare routing against the dense forward to see its share.
"$build/bin/mod-bench" \
  routing="$out/routing:routing" \
  mod-forward="$out/forward:mod" \
  dense-forward="$out/forward:dense" \
  gpt2-mod="$out/gpt2-mod:forward" \
  gpt2-dense="$out/gpt2:forward" \
  --iters="${ITERS:-50}" --warmup=5 \
  --ratio=mod-forward/dense-forward --ratio=routing/dense-forward \
  --ratio=routing/mod-forward --ratio=gpt2-mod/gpt2-dense
