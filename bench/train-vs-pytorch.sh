#!/usr/bin/env bash
# Train-step time of modc against PyTorch (CPU) on the same tiny GPT-2
# (examples/configs/gpt2-tiny.json), dense and MoD (every other block routes
# 12.5% of the tokens), same batch, sequence length and thread count.
#
#   modc:    mod-import -> [--mod-dense-to-mod] -> --mod-generate-grad ->
#            --mod-generate-adamw -> mod-compile; mod-train on the fortunes
#            corpus, step time from metrics.jsonl (loss_and_grad + adamw_step
#            + data windows; the medians of the two entry-point calls,
#            loss_and_grad and adamw_step, are printed too)
#   PyTorch: bench/torch_train_step.py (forward, cross-entropy, backward,
#            clip_grad_norm_, torch.optim.AdamW) on random tokens
#
# Both: medians over STEPS steps after WARMUP. PyTorch (from PyPI) is
# installed with pip into a virtual environment under the build directory,
# created here and used by nothing else.
#
# Usage: bench/train-vs-pytorch.sh [BUILD_DIR]   (default: build)
#   B=4 S=64 THREADS=2 STEPS=30 WARMUP=5 CONFIG=examples/configs/gpt2-tiny.json
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
bin=$build/bin
B=${B:-4} S=${S:-64} THREADS=${THREADS:-2} STEPS=${STEPS:-30} WARMUP=${WARMUP:-5}
config=${CONFIG:-$src/examples/configs/gpt2-tiny.json}
capacity=0.125

venv=$build/bench-venv
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "bench: installing PyTorch (CPU) into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch numpy
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin/mod-import" "$config" --batch="$B" --seq="$S" -o "$out/dense.mlir"
"$bin/mod-opt" "$out/dense.mlir" --mod-dense-to-mod="capacity=$capacity" -o "$out/mod.mlir"
"$bin/mod-tokenize" -o "$out/tokens.bin" > /dev/null
for kind in dense mod; do
  "$bin/mod-opt" "$out/$kind.mlir" --mod-generate-grad --mod-generate-adamw -o "$out/$kind-train.mlir"
  "$bin/mod-compile" "$out/$kind-train.mlir" -o "$out/$kind"
done

median_modc() { # median of a metrics.jsonl field after WARMUP steps
  python3 - "$1" "$WARMUP" "${2:-step_seconds}" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(statistics.median(r[sys.argv[3]] for r in rows if r["step"] > int(sys.argv[2])))
EOF
}

declare -A t
for kind in dense mod; do
  MODC_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS "$bin/mod-train" "$out/$kind" \
    --data="$out/tokens.bin" --out="$out/run-$kind" --steps=$((WARMUP + STEPS)) \
    --eval-every=0 --ckpt-every=0 --log-every=100000 2> "$out/train-$kind.log"
  t[modc-$kind]=$(median_modc "$out/run-$kind/metrics.jsonl")
  t[lg-$kind]=$(median_modc "$out/run-$kind/metrics.jsonl" loss_and_grad_seconds)
  t[adamw-$kind]=$(median_modc "$out/run-$kind/metrics.jsonl" adamw_seconds)
  cap=(); [ "$kind" = mod ] && cap=(--capacity=$capacity)
  t[torch-$kind]=$("$venv/bin/python" "$src/bench/torch_train_step.py" "$config" \
    --batch="$B" --seq="$S" --threads="$THREADS" --steps="$STEPS" --warmup="$WARMUP" \
    "${cap[@]}" | awk '/median_step_s/ {print $2}')
done

python3 - "${t[modc-dense]}" "${t[torch-dense]}" "${t[modc-mod]}" "${t[torch-mod]}" \
  "${t[lg-dense]}" "${t[adamw-dense]}" "${t[lg-mod]}" "${t[adamw-mod]}" \
  "$B" "$S" "$THREADS" "$STEPS" "$(basename "$config")" <<'EOF'
import sys
md, td, mm, tm, lgd, ad, lgm, am = map(float, sys.argv[1:9])
b, s, threads, steps, cfg = sys.argv[9:]
print(f"train step, {cfg} B={b} S={s}, {threads} thread(s), median of {steps} steps")
print(f"{'':10}{'modc ms':>10}{'PyTorch ms':>12}{'modc/PyTorch':>14}"
      f"{'loss_and_grad ms':>18}{'adamw_step ms':>15}")
print(f"{'dense':10}{md*1e3:10.2f}{td*1e3:12.2f}{md/td:14.2f}{lgd*1e3:18.2f}{ad*1e3:15.2f}")
print(f"{'MoD':10}{mm*1e3:10.2f}{tm*1e3:12.2f}{mm/tm:14.2f}{lgm*1e3:18.2f}{am*1e3:15.2f}")
print(f"{'MoD/dense':10}{mm/md:10.2f}{tm/td:12.2f}")
EOF
