#!/usr/bin/env bash
# The main job: installs what is missing, builds modc, then trains the bundled
# tiny GPT-2 (byte-level) converted to Mixture-of-Depths on the fortunes
# corpus, next to the same model dense, and draws the loss curves:
#   mod-import -> mod-opt --mod-dense-to-mod (every other block routes 12.5%
#   of the tokens) -> --mod-generate-grad --mod-generate-adamw -> mod-compile
#   -> mod-tokenize (fortunes, bytes) -> mod-train (MoD, then dense) ->
#   scripts/plot-metrics -> OUTDIR/loss.png
#   scripts/run-example.sh [config.json] [output-dir]
# STEPS=N (default 600) and THREADS=N (default: the core count) change the
# run; a second run in the same output directory starts over.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MODC_BUILD_DIR:-$root/build}
config=${1:-$root/examples/configs/gpt2-tiny.json}
out=${2:-$root/out/$(basename "$config" .json)}
batch=8 seq=64 capacity=0.125
steps=${STEPS:-600}
export MODC_NUM_THREADS=${THREADS:-$(nproc)}
"$root/scripts/setup.sh"
bin=$build/bin
mkdir -p "$out"
rm -rf "$out/run-mod" "$out/run-dense" # the runs start over

echo
echo "== compile $(basename "$config") at batch $batch x $seq tokens: dense and MoD (capacity $capacity, every other block)"
"$bin/mod-import" "$config" --batch=$batch --seq=$seq -o "$out/dense.mlir"
"$bin/mod-opt" "$out/dense.mlir" --mod-dense-to-mod="capacity=$capacity" -o "$out/mod.mlir"
"$bin/mod-opt" "$out/mod.mlir" --mod-flop-report="baseline=$out/dense.mlir" -o /dev/null | tail -2 | sed "s/^/   /"
for kind in mod dense; do
  "$bin/mod-opt" "$out/$kind.mlir" --mod-generate-grad --mod-generate-adamw -o "$out/$kind-train.mlir"
  "$bin/mod-compile" "$out/$kind-train.mlir" -o "$out/$kind"
done

echo
echo "== tokenize the fortunes corpus (byte level)"
"$bin/mod-tokenize" -o "$out/fortunes.tokens"

for kind in mod dense; do
  echo
  echo "== mod-train $kind: $steps steps, $MODC_NUM_THREADS thread(s) (Ctrl-C stops with a checkpoint; --resume continues)"
  "$bin/mod-train" "$out/$kind" --data="$out/fortunes.tokens" --out="$out/run-$kind" \
    --steps="$steps" --lr=1e-2 --min-lr=1e-3 --warmup=30 --eval-every=100 --log-every=50
done

echo
python3 - "$out/run-mod/metrics.jsonl" "$out/run-dense/metrics.jsonl" <<'EOF'
import json, statistics, sys
for label, path in zip(("MoD", "dense"), sys.argv[1:]):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    last = rows[-1]
    tps = statistics.median(r["tokens_per_s"] for r in rows[len(rows) // 10:])
    print(f"{label:6} step {last['step']}: train loss {last['loss']:.3f}, "
          f"val loss {last['val_loss']:.3f}, {tps:.0f} tokens/s (median)")
EOF
"$root/scripts/plot-metrics" "$out/run-mod" "$out/run-dense" --labels MoD,dense -o "$out/loss.png"
