#!/usr/bin/env bash
# Reproduces the small-scale Mixture-of-Depths study (issue 12): an isoFLOP
# grid of GPT-2 models, dense vs MoD (12.5%, every other block), learned vs
# stochastic routing, and causal (threshold) routing vs top-k, trained with
# mod-train on Debian's fortunes corpus (byte level); writes results.csv,
# results.json, isoflop.png, routing.png, agreement.png and REPORT.md.
#
#   scripts/experiments/run-study.sh [--reduced] [OUTDIR]
#
# OUTDIR defaults to out/study (out/study-reduced with --reduced). The full
# plan trains 3 sizes (L4 x D64/D96/D128, 0.2-0.8M parameters) x {dense, MoD}
# at 3 budgets (2e12, 4e12, 8e12 training FLOPs), plus 3 seeds of dense, MoD
# and stochastic MoD at the middle budget: 25 runs, about 1.5 h of a quiet
# 2-core machine (two runs at a time, one thread each). --reduced is the
# few-minute version the test suite runs (2 tiny sizes, 2 budgets).
# The study is resumable: rerunning skips finished runs and continues
# interrupted ones from their checkpoints. STUDY_DEADLINE=<unix time> starts
# no run after that time (the report then lists the missing runs);
# STUDY_JOBS / STUDY_THREADS set the runs at once and threads per run;
# MODC_SKIP_SETUP=1 skips scripts/setup.sh (use the build as it is).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${MODC_BUILD_DIR:-$root/build}
plan=full
if [ "${1:-}" = "--reduced" ]; then
  plan=reduced
  shift
fi
out=${1:-$root/out/study$([ $plan = reduced ] && echo -reduced)}
if [ "${MODC_SKIP_SETUP:-0}" != 1 ]; then
  "$root/scripts/setup.sh"
fi
if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  echo "run-study.sh: error: Debian's /usr/bin/python3 with matplotlib is needed (scripts/setup.sh installs python3-matplotlib)" >&2
  exit 1
fi
exec /usr/bin/python3 "$root/scripts/experiments/study.py" --out "$out" --plan "$plan" \
  --bin "$build/bin" --jobs "${STUDY_JOBS:-2}" --threads "${STUDY_THREADS:-1}" \
  --deadline "${STUDY_DEADLINE:-0}"
