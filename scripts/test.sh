#!/usr/bin/env bash
# Installs what is missing, builds modc, and runs the whole test suite: the
# lit regression and integration tests, then the GoogleTest unit tests.
# Ends with each runner's summary and one combined "N passed, N failed" line.
# MODC_SANITIZE=1 builds and tests the ASan+UBSan configuration instead (in
# build-sanitize/ unless MODC_BUILD_DIR says otherwise); any sanitizer report
# fails the test that triggered it.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${MODC_SANITIZE:-0}" = 1 ]; then
  build=${MODC_BUILD_DIR:-$root/build-sanitize}
  export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=0:detect_stack_use_after_return=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
else
  build=${MODC_BUILD_DIR:-$root/build}
fi
MODC_BUILD_DIR=$build "$root/scripts/setup.sh" || exit 1

echo "== lit: regression and integration tests"
start=$SECONDS
/usr/lib/llvm-22/bin/lit -sv --time-tests -o "$build/lit-results.json" "$build/test"
lit_rc=$?
lit_time=$((SECONDS - start))

echo "== ctest: unit tests"
start=$SECONDS
(cd "$build" && ctest --output-on-failure -j"$(nproc)")
ctest_rc=$?
ctest_time=$((SECONDS - start))

MODC_SRC=$root python3 - "$build/lit-results.json" "$build/Testing/Temporary/LastTest.log" <<'PY'
import json, re, sys
lit = json.load(open(sys.argv[1]))["tests"]
codes = [t["code"] for t in lit]
passed = sum(c in ("PASS", "XFAIL") for c in codes)
skipped = sum(c == "UNSUPPORTED" for c in codes)
failed = len(codes) - passed - skipped
import os, re as _re
for t in lit:
    if t["code"] == "UNSUPPORTED":
        # The test's REQUIRES line says what this machine lacks.
        path = os.path.join(os.environ.get("MODC_SRC", "."), "test", t["name"].split(" :: ", 1)[1])
        needs = ""
        try:
            needs = ", ".join(m.strip() for m in _re.findall(r"REQUIRES:(.*)", open(path).read()))
        except OSError:
            pass
        print(f"skipped: {t['name']} (requires {needs or 'a missing lit feature'}; "
              "cuda-gpu means an NVIDIA GPU must be visible)")
log = open(sys.argv[2]).read()
unit_pass = len(re.findall(r'Test Passed\.', log))
unit_fail = len(re.findall(r'Test Failed\.', log))
print(f"modc: {passed + unit_pass} passed, {failed + unit_fail} failed, {skipped} skipped")
PY
echo "lit took ${lit_time} s, unit tests took ${ctest_time} s"
[ $lit_rc -eq 0 ] && [ $ctest_rc -eq 0 ]
