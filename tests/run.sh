#!/usr/bin/env bash
# run.sh - the test runner: every unit test binary and every end-to-end script, each in its own
# process under a timeout, for one or more build directories.
#
#   tests/run.sh BUILD_DIR [BUILD_DIR...]
#
# For each BUILD_DIR it runs BUILD_DIR/tests/test_* and tests/e2e/*.sh with TALLY, TALLY_BUILD and
# TALLY_EXAMPLES pointing into that build. A build dir whose name contains "asan" also gets the
# sanitizer options and TALLY_TEST_SLOW=1 (scripts shrink their matrices). Prints one line per
# test, in a fixed order, `PASS name (1.2s)` or `FAIL name` followed by the tail of its output,
# and finally `N passed, N failed`; exits 1 if any test failed. A script with a line
# `# run.sh: alone` runs with no other test beside it (it measures timing: another test's
# processes on these 2 cores would be noise it must not see).
#
# Environment:
#   TESTS=REGEX       run only the tests whose name matches (names look like build/e2e/wordcount
#                     and build-asan/unit/test_fields)
#   TEST_TIMEOUT=S    seconds per test (default 300)
#   TEST_JOBS=N       tests run at once (default: the number of CPUs); output order is fixed
#   TEST_TAIL=N       lines of output shown for a failed test (default 40)
set -uo pipefail

if [ $# -eq 0 ]; then
    echo "usage: tests/run.sh BUILD_DIR [BUILD_DIR...]" >&2
    exit 2
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TIMEOUT=${TEST_TIMEOUT:-300}
TAIL=${TEST_TAIL:-40}
JOBS=${TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
FILTER=${TESTS:-}
ORIG=$PWD
cd "$ROOT" # unit tests and scripts run from the repository root
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/tally-run.XXXXXX")
trap 'rm -rf "$LOGS"' EXIT

# ---- The list of tests: name, build dir, and the file to run -----------------------------

names=()
builds=()
files=()
alone=()
missing=0
for build in "$@"; do
    if ! bdir=$(cd "$ORIG" && cd "$build" 2>/dev/null && pwd); then
        echo "FAIL $build (no such build directory)"
        missing=$((missing + 1))
        continue
    fi
    label=$(basename "$bdir")
    for t in "$bdir"/tests/test_* "$ROOT"/tests/e2e/*.sh; do
        [ -f "$t" ] || continue
        case $t in
        *lib.sh) continue ;; # helpers sourced by the tests (lib.sh, cluster_lib.sh)
        *.sh) name=$label/e2e/$(basename "$t" .sh) ;;
        *.d | *.o) continue ;;
        *) [ -x "$t" ] || continue; name=$label/unit/$(basename "$t") ;;
        esac
        if [ -n "$FILTER" ] && ! [[ $name =~ $FILTER ]]; then
            continue
        fi
        names+=("$name")
        builds+=("$bdir")
        files+=("$t")
        if [[ $t == *.sh ]] && grep -q '^# run.sh: alone$' "$t"; then alone+=(1); else alone+=(0); fi
    done
done

# ---- Running ------------------------------------------------------------------------------

# launch I: starts test I in the background; its output goes to $LOGS/I.log, its exit status and
# duration to $LOGS/I.rc and $LOGS/I.time. `timeout` gives the test its own process group and
# kills the whole group when time is up.
launch() {
    local i=$1 bdir=${builds[$1]} file=${files[$1]}
    local -a envs=(TALLY="$bdir/tally" TALLY_BUILD="$bdir" TALLY_EXAMPLES="$bdir/examples")
    if [[ $(basename "$bdir") == *asan* ]]; then
        envs+=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
            TALLY_TEST_SLOW=1)
    fi
    local -a cmd=("$file")
    [[ $file == *.sh ]] && cmd=(bash "$file")
    (
        start=$(date +%s.%N)
        timeout --kill-after=10 "$TIMEOUT" env "${envs[@]}" "${cmd[@]}" </dev/null >"$LOGS/$i.log" 2>&1
        rc=$?
        end=$(date +%s.%N)
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }' >"$LOGS/$i.time"
        # Whole or not at all: the loop below takes the file's existence for the test's end.
        echo $rc >"$LOGS/$i.rc.tmp" && mv "$LOGS/$i.rc.tmp" "$LOGS/$i.rc"
    ) &
}

# report I: prints the result line of finished test I.
passed=0
failed=$missing
report() {
    local i=$1 rc took
    rc=$(cat "$LOGS/$i.rc")
    took=$(cat "$LOGS/$i.time")
    if [ "$rc" -eq 0 ]; then
        echo "PASS ${names[$i]} (${took}s)"
        passed=$((passed + 1))
    else
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "FAIL ${names[$i]} (timed out after ${TIMEOUT}s)"
        else
            echo "FAIL ${names[$i]} (exit $rc, ${took}s)"
        fi
        tail -n "$TAIL" "$LOGS/$i.log" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}

next=0  # the next test to start
shown=0 # the next test to report: reports keep the list's order whatever finishes first
while [ $shown -lt ${#names[@]} ]; do
    running=0 running_alone=0
    for ((i = shown; i < next; i++)); do
        [ -e "$LOGS/$i.rc" ] && continue
        running=$((running + 1))
        [ "${alone[$i]}" = 0 ] || running_alone=1
    done
    while [ $next -lt ${#names[@]} ] && [ $running -lt "$JOBS" ] && [ $running_alone = 0 ]; do
        if [ "${alone[$next]}" = 1 ]; then
            [ $running -eq 0 ] || break # it starts once the others have ended
            running_alone=1
        fi
        launch $next
        next=$((next + 1))
        running=$((running + 1))
    done
    while [ $shown -lt $next ] && [ -e "$LOGS/$shown.rc" ]; do
        report $shown
        shown=$((shown + 1))
    done
    if [ $shown -lt ${#names[@]} ]; then
        # Sleep until any test ends; 127 means none is left to wait for (a runner bug).
        wait -n
        if [ $? -eq 127 ] && [ ! -e "$LOGS/$shown.rc" ]; then
            echo 1 >"$LOGS/$shown.rc"
            echo "?" >"$LOGS/$shown.time"
            echo "run.sh: lost track of this test" >>"$LOGS/$shown.log"
        fi
    fi
done
wait

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
