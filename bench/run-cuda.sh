#!/usr/bin/env bash
# Times the CUDA routing kernels and a MoD block forward against the dense
# forward on the GPU of this machine. Usage: bench/run-cuda.sh [BUILD_DIR]
# (default: build). Needs a GPU and a build with libmodrt_cuda.
set -euo pipefail
build=${1:-build}
src=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$build/bin/mod-compile" "$src/routing.mlir" --target=cuda -o "$out/routing"
"$build/bin/mod-compile" "$src/forward.mlir" --target=cuda -o "$out/forward"
# The routing model moves x to and from the device around two kernels; the
# copy-only baseline (dense identity is not a model) is the scatter output
# size, so compare routing against the dense forward to see its share.
"$build/bin/mod-bench" \
  routing="$out/routing:routing" \
  mod-forward="$out/forward:mod" \
  dense-forward="$out/forward:dense" \
  --iters="${ITERS:-50}" --warmup=5 \
  --ratio=mod-forward/dense-forward --ratio=routing/dense-forward \
  --ratio=routing/mod-forward
