#!/usr/bin/env bash
# Generates @prefill and @decode_step from an MoD model (an imported dense
# model converted by --mod-dense-to-mod with capacity=1.0), compiles them
# with the same model's threshold-routed forward (--mod-expand-routed-blocks
# routing=threshold, whose routed set is the causal decision r > 0 of every
# token), and checks that prefill of each sequence's prompt followed by one
# decode step per remaining token (teacher forcing) reproduces the logits of
# every position computed by that forward and by the independent C++
# reference's threshold routing, within 1e-4 of the logits' magnitude.
# Prints which rows each routed block took at prefill and at every step.
# The routed sets (which tokens went through each block) must equal the
# reference's exactly: `routed_mask.<block>` [B,S] of both.
#
# With a tenth argument PREDICTOR-HIDDEN the decisions are the predictor
# MLP's (logit > 0, parameters <block>.mod.predictor.* of that hidden width,
# initialized as training does): --mod-generate-decode=routing=predictor
# and --mod-expand-routed-blocks=routing=predictor; REFERENCE-SPEC then says
# routing=predictor.
#
#   check-decode-mod.sh WORKDIR CONFIG B S SEED PROMPT-LENGTHS SMAX DENSE-TO-MOD REFERENCE-SPEC [PREDICTOR-HIDDEN]
set -euo pipefail
work=$1 config=$2 batch=$3 seq=$4 seed=$5 prompts=$6 smax=$7 pass=$8 spec=$9
hidden=${10:-}
decode="max-seq-len=$smax" expand="routing=threshold"
if [ -n "$hidden" ]; then
  decode="$decode routing=predictor predictor-hidden=$hidden"
  expand="routing=predictor predictor-hidden=$hidden"
fi
mkdir -p "$work"
vocab=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$config")
mod-import "$config" --batch="$batch" --seq="$seq" -o "$work/dense.mlir"
mod-opt "$work/dense.mlir" --mod-dense-to-mod="$pass" \
  --mod-generate-decode="$decode" \
  --mod-expand-routed-blocks="$expand" -o "$work/decode.mlir"
mod-compile "$work/decode.mlir" --target=cpu -o "$work/model"
mod-refcheck gen --manifest="$work/model/manifest.json" --entry=forward --seed="$seed" \
  --positions=arange --vocab="$vocab" -o "$work/inputs.safetensors"
mod-run "$work/model" --entry=forward --inputs="$work/inputs.safetensors" --init-missing \
  --seed="$seed" --save-weights="$work/weights.safetensors" --outputs="$work/forward.safetensors"
mod-decode-check "$work/model" --weights="$work/weights.safetensors" \
  --inputs="$work/inputs.safetensors" --prompt-lengths="$prompts" --print-routing --routed-masks \
  -o "$work/decoded.safetensors"
mod-reference forward --config="$config" --weights="$work/weights.safetensors" \
  --inputs="$work/inputs.safetensors" --mod="$spec" --routed-masks \
  -o "$work/reference.safetensors"
echo "against the threshold-routed forward:"
mod-reference compare --expected="$work/forward.safetensors" \
  --actual="$work/decoded.safetensors" --rtol=1e-4 --floor=1
echo "against the reference:"
mod-reference compare --expected="$work/reference.safetensors" \
  --actual="$work/decoded.safetensors" --rtol=1e-4 --floor=1
