#!/usr/bin/env bash
# The main job on its bundled default: installs what is missing, builds modc,
# then takes the bundled tiny GPT-2 config through the whole path:
#   mod-import (dense MLIR) -> mod-opt --mod-dense-to-mod (MoD: every other
#   block routes 12.5% of the tokens) -> --mod-flop-report -> mod-compile
#   (CPU) -> mod-run on the bundled prompt, printing the next-token
#   candidates and which tokens each routed block chose.
#   scripts/run-example.sh [config.json] [prompt.txt] [output-dir]
# The parameters are initialized from a seed (training comes later), so the
# predicted tokens are those of an untrained model.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MODC_BUILD_DIR:-$root/build}
config=${1:-$root/examples/configs/gpt2-tiny.json}
prompt=$(cat "${2:-$root/examples/prompt.txt}")
out=${3:-$root/out/$(basename "$config" .json)}
seq=32
capacity=0.125
"$root/scripts/setup.sh"
bin=$build/bin
mkdir -p "$out"

echo
echo "== mod-import $(basename "$config") --batch=1 --seq=$seq"
"$bin/mod-import" "$config" --batch=1 --seq=$seq -o "$out/dense.mlir"
echo "   $(grep -c 'linalg\.' "$out/dense.mlir") linalg ops -> $out/dense.mlir"

echo
echo "== mod-opt --mod-dense-to-mod=\"capacity=$capacity\" (every other block routed)"
"$bin/mod-opt" "$out/dense.mlir" --mod-dense-to-mod="capacity=$capacity return-routing" -o "$out/mod.mlir"
grep -o 'mod.routed_block([^)]*) capacity([0-9]*)[^{]*{mod.block = "[^"]*"}' "$out/mod.mlir" | sed 's/^/   /'

echo
echo "== mod-opt --mod-flop-report (forward FLOPs, MoD vs dense)"
"$bin/mod-opt" "$out/mod.mlir" --mod-flop-report="baseline=$out/dense.mlir" -o /dev/null

echo
echo "== mod-compile --target=cpu -> $out/model"
"$bin/mod-compile" "$out/mod.mlir" --target=cpu -o "$out/model"

echo
echo "== mod-run on the prompt \"$prompt\" (parameters initialized from seed 0)"
routed=$(grep -o '"routed_indices\.[0-9]*"' "$out/model/manifest.json" | tr -d '"' | paste -sd, -)
"$bin/mod-run" "$out/model" --prompt="$prompt" --init-missing --seed=0 --top=5 \
  --print="$routed" > "$out/run.txt"
# Show the routed token indices with the characters they hold.
while IFS= read -r line; do
  case "$line" in
    routed_indices.*) echo "block ${line#routed_indices.}" | sed 's/: i32.*/ routes tokens:/' ;;
    "[0,:]"*)
      for i in ${line#\[0,:\] }; do
        printf "   %2d %q\n" "$i" "${prompt:$i:1}"
      done ;;
    *) echo "$line" ;;
  esac
done < "$out/run.txt"
