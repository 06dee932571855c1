#!/usr/bin/env bash
# Decode step time against the filled cache length, on the CPU: a
# GPT-2-shaped model (default examples/configs/gpt2-small.json) with caches
# of Smax=1024 slots, dense and converted by --mod-dense-to-mod (every other
# block routed), each generated twice by --mod-generate-decode: as it is
# (each row's attention runs over its filled slots only, "filled") and with
# full-cache-attention (over all Smax slots, the unfilled ones masked,
# "full": a step's cost does not depend on the filled length). For each
# filled length L in LENGTHS, mod-decode-bench prefills random prompts of L
# tokens and times decode steps (medians of STEPS, the four models' steps
# interleaved) in one run, printing filled/full and MoD/dense ratios side by
# side.
# Usage: bench/run-decode-context-cpu.sh [BUILD_DIR] (default: build);
#        CONFIG=path, BATCH (default 1), SMAX (1024), LENGTHS ("16 256 1000"),
#        STEPS (default 16), WORK=dir (keep the compiled models there, and
#        reuse them).
set -euo pipefail
build=${1:-build}
src=$(cd "$(dirname "$0")" && pwd)
config=${CONFIG:-$src/../examples/configs/gpt2-small.json}
smax=${SMAX:-1024} b=${BATCH:-1} lengths=${LENGTHS:-16 256 1000}
steps=${STEPS:-16}
prefill=0
for l in $lengths; do
  (( l > prefill )) && prefill=$l
  if (( l + 2 + steps > smax )); then
    echo "run-decode-context-cpu.sh: length $l + 2 warm-up + $steps steps exceeds SMAX=$smax" >&2
    exit 2
  fi
done
if [[ -n ${WORK:-} ]]; then
  # Compiled models are kept there and reused by a later run with the same
  # settings.
  out=$WORK/b$b-smax$smax-p$prefill
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
[[ -f $out/dense.mlir ]] ||
  "$build/bin/mod-import" "$config" --batch="$b" --seq="$prefill" -o "$out/dense.mlir"
[[ -f $out/mod.mlir ]] ||
  "$build/bin/mod-opt" "$out/dense.mlir" --mod-dense-to-mod -o "$out/mod.mlir"
for m in dense mod; do
  for a in filled full; do
    [[ -f $out/$m-$a/manifest.json ]] && continue
    opt="max-seq-len=$smax prefill-len=$prefill"
    [[ $a == full ]] && opt="$opt full-cache-attention"
    "$build/bin/mod-opt" "$out/$m.mlir" --mod-generate-decode="$opt" -o "$out/$m-$a.mlir"
    "$build/bin/mod-compile" "$out/$m-$a.mlir" --target=cpu -o "$out/$m-$a"
  done
done
for l in $lengths; do
  echo "Decode steps at filled length $l, B=$b, Smax=$smax (mod-decode-bench, CPU, load: $(cut -d' ' -f1-3 /proc/loadavg)):"
  "$build/bin/mod-decode-bench" "dense-full=$out/dense-full" "dense=$out/dense-filled" \
    "mod-full=$out/mod-full" "mod=$out/mod-filled" --prompt-len="$l" \
    --steps="$steps" --warmup=2 --ratio=dense/dense-full --ratio=mod/mod-full \
    --ratio=mod-full/dense-full --ratio=mod/dense
done
