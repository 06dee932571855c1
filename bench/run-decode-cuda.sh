#!/usr/bin/env bash
# Decode steps on the GPU, dense vs MoD: bench/run-decode-cpu.sh with the
# models compiled by mod-compile --target=cuda (GEMMs in cuBLAS, the per-row
# cache writes one-block kernels; modrt::Decoder keeps the parameters and
# caches on the device, so a step copies only tokens, positions and lengths
# in and the logits out). Same options (BUILD_DIR, CONFIG, BATCHES, STEPS,
# SMAX, PROMPT); needs a GPU of the compute capability mod-compile targets
# (--sm=90 by default).
set -euo pipefail
TARGET=cuda exec "$(dirname "$0")/run-decode-cpu.sh" "$@"
