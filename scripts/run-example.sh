#!/usr/bin/env bash
# The main job on its bundled default: installs what is missing, builds modc,
# then takes the bundled MoD program (the paper's worked example) through
# mod-opt, compiles it for the CPU with mod-compile and runs it with mod-run.
#   scripts/run-example.sh [program.mlir] [output-dir]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MODC_BUILD_DIR:-$root/build}
program=${1:-$root/examples/worked-example.mlir}
out=${2:-$root/out/$(basename "$program" .mlir)}
"$root/scripts/setup.sh"
bin=$build/bin

echo
echo "== mod-opt --mod-expand-routed-blocks: the routed block as router, top-k, gather, body, scatter_add"
"$bin/mod-opt" "$program" --mod-expand-routed-blocks | grep -E '= mod\.|mod\.scatter_add' | sed 's/^ */  /'

echo
echo "== mod-compile --target=cpu -> $out"
"$bin/mod-compile" "$program" --target=cpu -o "$out" -v

echo
echo "== mod-run $out"
"$bin/mod-run" "$out" --print
