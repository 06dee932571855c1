#!/usr/bin/env bash
# Decode steps on the CPU, dense vs MoD, measured side by side in one run: a
# GPT-2-shaped model (default examples/configs/gpt2-small.json: 12 layers,
# D=768, vocabulary 50257) with caches of Smax=256 slots, compiled dense and
# converted by --mod-dense-to-mod (every other block routed), both through
# --mod-generate-decode. mod-decode-bench prefills random prompts of 128
# tokens and times decode steps (medians) for B=1 and B=8; the MoD model runs
# with its random routers (about half the tokens routed) and with the
# routers scaled to 0 (no token routed: the floor of a routed block's cost),
# each next to its GEMM-FLOP ratio to the dense step.
# Usage: bench/run-decode-cpu.sh [BUILD_DIR] (default: build);
#        CONFIG=path, BATCHES="1 8", STEPS=N (default 16), SMAX, PROMPT,
#        TARGET=cpu|cuda (default cpu; bench/run-decode-cuda.sh sets cuda:
#        the same models compiled for the GPU, caches and parameters kept
#        on the device between steps).
set -euo pipefail
build=${1:-build}
src=$(cd "$(dirname "$0")" && pwd)
config=${CONFIG:-$src/../examples/configs/gpt2-small.json}
smax=${SMAX:-256} prompt=${PROMPT:-128} target=${TARGET:-cpu}
# The CUDA lowering runs the key side over all Smax slots (its per-row
# attention over the filled slots has no GPU lowering yet).
full=""
if [ "$target" = cuda ]; then full=" full-cache-attention=true"; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for b in ${BATCHES:-1 8}; do
  "$build/bin/mod-import" "$config" --batch="$b" --seq="$smax" -o "$out/dense$b.mlir"
  "$build/bin/mod-opt" "$out/dense$b.mlir" \
    --mod-generate-decode="max-seq-len=$smax prefill-len=$prompt$full" -o "$out/dense$b-decode.mlir"
  "$build/bin/mod-opt" "$out/dense$b.mlir" --mod-dense-to-mod \
    --mod-generate-decode="max-seq-len=$smax prefill-len=$prompt$full" -o "$out/mod$b-decode.mlir"
  "$build/bin/mod-compile" "$out/dense$b-decode.mlir" --target="$target" -o "$out/dense$b"
  "$build/bin/mod-compile" "$out/mod$b-decode.mlir" --target="$target" -o "$out/mod$b"
  echo "Decode steps, B=$b, Smax=$smax, prompt $prompt (mod-decode-bench, $target):"
  "$build/bin/mod-decode-bench" "dense=$out/dense$b" "mod=$out/mod$b" \
    "mod-none=$out/mod$b:router-scale=0" --prompt-len="$prompt" \
    --steps="${STEPS:-16}" --warmup=2 --ratio=mod/dense --ratio=mod-none/dense
done
