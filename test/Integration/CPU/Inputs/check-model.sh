#!/usr/bin/env bash
# Compiles a Hugging Face config for the CPU (dense, or converted to MoD) and
# compares its outputs with the independent C++ reference (mod-reference).
#
#   check-model.sh WORKDIR CONFIG B S SEED [PASS-OPTIONS REFERENCE-SPEC [EXPAND-OPTIONS]]
#
# PASS-OPTIONS are --mod-dense-to-mod's options (return-routing is added, so
# the routed token indices are compared exactly too); REFERENCE-SPEC is the
# same routing for `mod-reference forward --mod`. EXPAND-OPTIONS (e.g.
# routing=threshold) run --mod-expand-routed-blocks with them before
# compiling; threshold routing has no static-shape routed indices to return,
# so return-routing is not added then (the reference prints its counts). Inputs: random tokens and,
# for sequences after the first, shuffled positions (so masks and RoPE must
# follow the positions). Parameters: initialized by mod-run from SEED and
# saved for the reference. Logits must agree within 1e-4 of their largest
# magnitude. MODC_TARGET=cuda compiles for the GPU instead of the CPU.
set -euo pipefail
work=$1 config=$2 batch=$3 seq=$4 seed=$5 pass=${6:-} spec=${7:-} expand=${8:-}
mkdir -p "$work"
vocab=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$config")
mod-import "$config" --batch="$batch" --seq="$seq" -o "$work/dense.mlir"
model=$work/dense.mlir
if [ -n "$pass" ]; then
  if [ -n "$expand" ]; then
    mod-opt "$work/dense.mlir" --mod-dense-to-mod="$pass" \
      --mod-expand-routed-blocks="$expand" -o "$work/mod.mlir"
  else
    mod-opt "$work/dense.mlir" --mod-dense-to-mod="$pass return-routing" -o "$work/mod.mlir"
  fi
  model=$work/mod.mlir
fi
mod-compile "$model" --target="${MODC_TARGET:-cpu}" -o "$work/model"
mod-refcheck gen --manifest="$work/model/manifest.json" --entry=forward --seed="$seed" \
  --positions=shuffled --vocab="$vocab" -o "$work/inputs.safetensors"
mod-run "$work/model" --inputs="$work/inputs.safetensors" --init-missing --seed="$seed" \
  --save-weights="$work/weights.safetensors" --outputs="$work/outputs.safetensors"
mod-reference forward --config="$config" --weights="$work/weights.safetensors" \
  --inputs="$work/inputs.safetensors" ${spec:+--mod="$spec"} -o "$work/reference.safetensors"
mod-reference compare --expected="$work/reference.safetensors" \
  --actual="$work/outputs.safetensors" --rtol=1e-4 --floor=1
