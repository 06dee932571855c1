#!/usr/bin/env bash
# Generates @prefill and @decode_step from an imported model with
# --mod-generate-decode, compiles them with the forward for the CPU, and
# checks that prefill of each sequence's prompt followed by one decode step
# per remaining token reproduces the logits of every position computed by
# the compiled forward and by the independent C++ reference (mod-reference),
# within 1e-4 of the logits' magnitude.
#
#   check-decode.sh WORKDIR CONFIG B S SEED PROMPT-LENGTHS SMAX [TARGET]
#
# TARGET (default cpu) is mod-compile's --target: with cuda, the forward and
# the decode steps run on the GPU (test/Integration/CUDA/decode-gpu.test).
#
# PROMPT-LENGTHS is a comma list (one per sequence, <= S): sequences with
# shorter prompts take more decode steps, so one batch mixes prefill and
# decode positions. Tokens are random, positions 0..S-1.
set -euo pipefail
work=$1 config=$2 batch=$3 seq=$4 seed=$5 prompts=$6 smax=$7 target=${8:-cpu}
mkdir -p "$work"
vocab=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$config")
mod-import "$config" --batch="$batch" --seq="$seq" -o "$work/dense.mlir"
# The CUDA lowering runs the key side over all Smax slots (its per-row
# attention over the filled slots has no GPU lowering yet).
full=""
if [ "$target" = cuda ]; then full=" full-cache-attention=true"; fi
mod-opt "$work/dense.mlir" --mod-generate-decode="max-seq-len=$smax$full" -o "$work/decode.mlir"
mod-compile "$work/decode.mlir" --target="$target" -o "$work/model"
mod-refcheck gen --manifest="$work/model/manifest.json" --entry=forward --seed="$seed" \
  --positions=arange --vocab="$vocab" -o "$work/inputs.safetensors"
mod-run "$work/model" --entry=forward --inputs="$work/inputs.safetensors" --init-missing \
  --seed="$seed" --save-weights="$work/weights.safetensors" --outputs="$work/forward.safetensors"
mod-decode-check "$work/model" --weights="$work/weights.safetensors" \
  --inputs="$work/inputs.safetensors" --prompt-lengths="$prompts" -o "$work/decoded.safetensors"
mod-reference forward --config="$config" --weights="$work/weights.safetensors" \
  --inputs="$work/inputs.safetensors" -o "$work/reference.safetensors"
echo "against the compiled forward:"
mod-reference compare --expected="$work/forward.safetensors" \
  --actual="$work/decoded.safetensors" --rtol=1e-4 --floor=1
echo "against the reference:"
mod-reference compare --expected="$work/reference.safetensors" \
  --actual="$work/decoded.safetensors" --rtol=1e-4 --floor=1
