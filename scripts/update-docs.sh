#!/usr/bin/env bash
# Regenerates docs/ from the ODS definitions: scripts/update-docs.sh [build-dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
ninja -C "$build" mod-doc
cp "$build/docs/MoDDialect.md" "$root/docs/Dialects/"
cp "$build/docs/MoDPasses.md" "$build/docs/MoDConversionPasses.md" "$root/docs/Passes/"
echo "docs/ updated from $build/docs"
