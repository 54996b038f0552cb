#!/usr/bin/env bash
# run.sh - the test runner: every unit test binary and every end-to-end script, each in its own
# process under a timeout, for one or more build directories.
#
#   tests/run.sh BUILD_DIR [BUILD_DIR...]
#
# For each BUILD_DIR it runs BUILD_DIR/tests/test_* and tests/e2e/*.sh with TALLY, TALLY_BUILD and
# TALLY_EXAMPLES pointing into that build. A build dir whose name contains "asan" also gets the
# sanitizer options and TALLY_TEST_SLOW=1 (scripts shrink their matrices). Prints one line per
# test, `PASS name (1.2s)` or `FAIL name` followed by the tail of its output, and finally
# `N passed, N failed`; exits 1 if any test failed.
#
# Environment: TESTS=REGEX runs only the tests whose name (e.g. build/e2e/wordcount or
# build-asan/unit/test_fields) matches; TEST_TIMEOUT=SECONDS (default 300) per test;
# TEST_TAIL=N lines of output shown for a failure (default 40).
set -uo pipefail

if [ $# -eq 0 ]; then
    echo "usage: tests/run.sh BUILD_DIR [BUILD_DIR...]" >&2
    exit 2
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TIMEOUT=${TEST_TIMEOUT:-300}
TAIL=${TEST_TAIL:-40}
FILTER=${TESTS:-}
ORIG=$PWD
cd "$ROOT" # unit tests and scripts run from the repository root
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/tally-run.XXXXXX")
trap 'rm -rf "$LOGS"' EXIT

passed=0
failed=0

# run_one NAME CMD...: runs one test under `timeout` (which gives it its own process group and
# kills the whole group when time is up) and reports it.
run_one() {
    local name=$1
    shift
    if [ -n "$FILTER" ] && ! [[ $name =~ $FILTER ]]; then
        return 0
    fi
    local log=$LOGS/$(echo "$name" | tr '/' '_').log
    local start end rc
    start=$(date +%s.%N)
    timeout --kill-after=10 "$TIMEOUT" "$@" </dev/null >"$log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    local took
    took=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    if [ $rc -eq 0 ]; then
        echo "PASS $name (${took}s)"
        passed=$((passed + 1))
    else
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            echo "FAIL $name (timed out after ${TIMEOUT}s)"
        else
            echo "FAIL $name (exit $rc, ${took}s)"
        fi
        tail -n "$TAIL" "$log" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}

for build in "$@"; do
    if ! bdir=$(cd "$ORIG" && cd "$build" 2>/dev/null && pwd); then
        echo "FAIL $build (no such build directory)"
        failed=$((failed + 1))
        continue
    fi
    label=$(basename "$bdir")
    envs=(TALLY="$bdir/tally" TALLY_BUILD="$bdir" TALLY_EXAMPLES="$bdir/examples")
    if [[ $label == *asan* ]]; then
        envs+=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
            TALLY_TEST_SLOW=1)
    fi
    for t in "$bdir"/tests/test_*; do
        [ -f "$t" ] && [ -x "$t" ] || continue
        run_one "$label/unit/$(basename "$t")" env "${envs[@]}" "$t"
    done
    for t in "$ROOT"/tests/e2e/*.sh; do
        [ "$(basename "$t")" = lib.sh ] && continue
        run_one "$label/e2e/$(basename "$t" .sh)" env "${envs[@]}" bash "$t"
    done
done

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
