#!/usr/bin/env bash
# Runs modc's libFuzzer targets (see "Fuzzing and sanitizers" in README.md).
#
#   fuzz/run.sh long [SECONDS] [TARGET...]
#       The long campaign: builds the targets in the sanitizer build
#       (ASan+UBSan, everything coverage-instrumented; $MODC_FUZZ_BUILD_DIR,
#       default build-sanitize/), then fuzzes each TARGET (default: all of
#       safetensors manifest config mod-opt) for SECONDS (default 600) at low
#       priority. The corpus grows in fuzz/work/<target>/corpus (not tracked);
#       crashes, timeouts and out-of-memory inputs are saved in
#       fuzz/work/<target>/ and fuzzing continues after each. Ends with one
#       line per target: executions, crashes, corpus size.
#   fuzz/run.sh regress [TARGET...]
#       Runs each reproducer in fuzz/regressions/<target>/ once (see
#       fuzz/regressions/README.md), in the same build; one line per target.
#
# The suite's short fixed-seed runs are the lit tests in test/Fuzz.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${MODC_FUZZ_BUILD_DIR:-$root/build-sanitize}
all_targets=(safetensors manifest config mod-opt)
mode=${1:-}
shift || true

seeds() {
  case $1 in
    safetensors) echo "$root/fuzz/corpus/safetensors" ;;
    manifest) echo "$root/fuzz/corpus/manifest" ;;
    config) echo "$root/examples/configs" ;;
    mod-opt) echo "$root/test/Transforms $root/test/Dialect $root/test/Conversion/MoDToLinalg $root/test/Pipelines" ;;
  esac
  # Past crashes are good starting points for their neighbours.
  [ -d "$root/fuzz/regressions/$1" ] && echo "$root/fuzz/regressions/$1"
}

build_targets() {
  if [ "$build" = "$root/build-sanitize" ] || [ ! -f "$build/build.ninja" ]; then
    MODC_SANITIZE=1 MODC_BUILD_DIR="$build" "$root/scripts/setup.sh" >/dev/null || exit 1
  fi
  ninja -C "$build" -j"${MODC_JOBS:-$(nproc)}" "${@/#/modc-fuzz-}" >/dev/null || exit 1
}

case $mode in
  long)
    seconds=${1:-600}
    [ $# -gt 0 ] && shift
    targets=("$@")
    [ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
    build_targets "${targets[@]}"
    summary=()
    for t in "${targets[@]}"; do
      work=$root/fuzz/work/$t
      mkdir -p "$work/corpus"
      execs=0 crashes=0 end=$((SECONDS + seconds))
      while [ $SECONDS -lt $end ]; do
        log=$work/last.log
        # shellcheck disable=SC2046
        nice -n 19 "$build/bin/modc-fuzz-$t" -max_total_time=$((end - SECONDS)) \
          -timeout=30 -rss_limit_mb=4096 -max_len=32768 -print_final_stats=1 \
          -artifact_prefix="$work/" "$work/corpus" $(seeds "$t") >"$log" 2>&1
        rc=$?
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        [ -z "$n" ] && n=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
        execs=$((execs + ${n:-0}))
        if [ $rc -ne 0 ]; then
          crashes=$((crashes + 1))
          cp "$log" "$work/crash-log-$crashes.txt"
          echo "fuzz: $t: failure $crashes (see $work/crash-log-$crashes.txt)"
        fi
      done
      corpus=$(find "$work/corpus" -type f | wc -l)
      summary+=("$t: $execs executions, $crashes crashes, corpus $corpus inputs")
    done
    printf 'fuzz: %s\n' "${summary[@]}"
    ;;
  regress)
    targets=("$@")
    [ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
    build_targets "${targets[@]}"
    rc=0
    summary=()
    for t in "${targets[@]}"; do
      dir=$root/fuzz/regressions/$t
      [ -d "$dir" ] || continue
      inputs=("$dir"/*)
      log=$(mktemp)
      if "$build/bin/modc-fuzz-$t" -timeout=60 -rss_limit_mb=4096 "${inputs[@]}" >"$log" 2>&1; then
        summary+=("$t: ${#inputs[@]} reproducers, all passed")
      else
        cat "$log"
        summary+=("$t: FAILED (output above)")
        rc=1
      fi
      rm -f "$log"
    done
    printf 'fuzz: %s\n' "${summary[@]}"
    exit $rc
    ;;
  *)
    sed -n '2,/^set /p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
