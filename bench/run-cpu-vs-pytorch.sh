#!/usr/bin/env bash
# modc vs PyTorch eager on the CPU, both sides in one run (bench/cpu_vs_pytorch.py):
# GPT-2-small-shaped dense and MoD forwards (medians), MoD/dense time vs the
# --mod-flop-report FLOP ratio, and the model's GEMM shapes as modc entry
# points vs OpenBLAS's own cblas_sgemm (GFLOP/s).
# Usage: bench/run-cpu-vs-pytorch.sh [BUILD_DIR] (default: build)
#   THREADS=N (default: every core) pins both sides to N threads;
#   ITERS=N (default 5); CASES=LAYERS:S:B,... (default 12:256:1,12:1024:1,12:256:4,12:1024:4).
# PyTorch comes from PyPI into BUILD_DIR/bench-venv (created on first use);
# nothing else uses it.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
venv="$build/bench-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "run-cpu-vs-pytorch: installing PyTorch from PyPI into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check torch numpy
fi
threads=${THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
exec "$venv/bin/python" "$src/cpu_vs_pytorch.py" --build "$build" --threads "$threads" \
  --iters "${ITERS:-5}" --cases "${CASES:-12:256:1,12:1024:1,12:256:4,12:1024:4}"
