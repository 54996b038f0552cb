# lib.sh - shared helpers for the end-to-end tests: a fresh temp dir, running tally, assertions,
# polling with a deadline, and the bridge to the reference implementations in tests/ref/.
#
# Source it first thing from a test script:   . "$(dirname "$0")/lib.sh"
# Environment (set by tests/run.sh; defaults let a script run alone from the repo):
#   TALLY            the binary under test (default build/tally)
#   TALLY_EXAMPLES   the example user jobs (default: examples/ beside the binary)
#   TALLY_TEST_SLOW  non-empty under sanitizers: scripts shrink their matrices
# Every helper that checks something calls fail() with a message saying what was expected and
# what happened; a command that fails unexpectedly is reported with its line by the ERR trap.

set -Eeuo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TALLY=${TALLY:-$ROOT/build/tally}
TALLY_EXAMPLES=${TALLY_EXAMPLES:-$(dirname "$TALLY")/examples}
TALLY_TEST_SLOW=${TALLY_TEST_SLOW:-}
REF=$ROOT/tests/ref
# The references run on the system's Python: a version manager's shim (pyenv) can cost half a
# second per start, and the tests start Python hundreds of times.
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
DATA=$ROOT/tests/data
BOOKS=("$DATA"/gutenberg/*.txt)
TEST_NAME=$(basename "$0" .sh)

T=$(mktemp -d "${TMPDIR:-/tmp}/tally-$TEST_NAME.XXXXXX")
WORK=$T/work # the --work-dir of every job; must be empty again after each one
mkdir -p "$WORK"
BG_PIDS=()

lib_cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap lib_cleanup EXIT
trap 'rc=$?; echo "FAIL $TEST_NAME: command failed (exit $rc) at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&2' ERR

[ -x "$TALLY" ] || { echo "FAIL $TEST_NAME: no tally binary at $TALLY (build it first)" >&2; exit 1; }
TALLY=$(cd "$(dirname "$TALLY")" && pwd)/$(basename "$TALLY")

# ---- Reporting -------------------------------------------------------------------------------

# fail MESSAGE...: stops the test with the caller's location.
fail() {
    echo "FAIL $TEST_NAME (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}): $*" >&2
    if [ -s "$T/stderr" ]; then
        echo "--- stderr of the last tally command ($LAST_CMD):" >&2
        if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/stderr"; then
            # A sanitizer report: its head says what and where; its tail is a legend.
            grep -m 1 -A 30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/stderr" >&2
        else
            tail -n 15 "$T/stderr" >&2
        fi
    fi
    trap - ERR
    exit 1
}

# step TEXT: a progress line, so a failure's output tail shows which case broke.
step() { echo "--- [${SECONDS}s] $*"; }

# slow: true under sanitizers, where scripts run smaller matrices.
slow() { [ -n "$TALLY_TEST_SLOW" ]; }

# ---- Running tally ---------------------------------------------------------------------------

LAST_CMD=""
RC=0

# Seconds one tally command may take before the test calls it hung (a script may lower it).
JOB_TIMEOUT=${JOB_TIMEOUT:-120}

# tally_try ARGS...: runs `tally ARGS...`; stdout/stderr in $T/stdout, $T/stderr; exit in $RC.
# Fails the test if the command runs longer than $JOB_TIMEOUT seconds.
tally_try() {
    LAST_CMD="tally $*"
    RC=0
    timeout -k 5 "$JOB_TIMEOUT" "$TALLY" "$@" >"$T/stdout" 2>"$T/stderr" || RC=$?
    [ "$RC" != 124 ] || fail "tally took longer than ${JOB_TIMEOUT}s: $LAST_CMD"
}

# job_args ARGS...: prints ARGS with `--work-dir $WORK` inserted before `-o`, NUL-separated.
job_args() {
    local a done=0
    for a in "$@"; do
        if [ "$a" = "-o" ] && [ $done = 0 ]; then
            printf '%s\0' --work-dir "$WORK"
            done=1
        fi
        printf '%s\0' "$a"
    done
}

# job_try ARGS...: `tally run ARGS...` with the test's work dir; sets RC, never fails.
job_try() {
    local -a args
    mapfile -d '' args < <(job_args "$@")
    tally_try run "${args[@]}"
}

# job_ok ARGS...: `tally run ARGS...` must exit 0 and leave the work dir empty.
job_ok() {
    job_try "$@"
    [ "$RC" = 0 ] || fail "expected exit 0, got $RC from: $LAST_CMD"
    assert_workdir_clean
}

# job_fails CODE ARGS...: `tally run ARGS...` must exit CODE with a `tally: ` message on stderr,
# and leave the work dir empty.
job_fails() {
    local code=$1
    shift
    job_try "$@"
    [ "$RC" = "$code" ] || fail "expected exit $code, got $RC from: $LAST_CMD"
    grep -q '^tally: ' "$T/stderr" || fail "no 'tally: ' error message on stderr from: $LAST_CMD"
    assert_workdir_clean
}

# ---- Assertions ------------------------------------------------------------------------------

assert_eq() { # ACTUAL EXPECTED WHAT
    [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# assert_stderr_has TEXT...: the last command's stderr contains every TEXT (fixed strings).
assert_stderr_has() {
    local s
    for s in "$@"; do
        grep -qF -- "$s" "$T/stderr" || fail "stderr of '$LAST_CMD' does not mention '$s'"
    done
}

# assert_stderr_has_number N: stderr contains N as a whole decimal number (a byte offset).
assert_stderr_has_number() {
    grep -qE "(^|[^0-9])$1([^0-9]|\$)" "$T/stderr" ||
        fail "stderr of '$LAST_CMD' does not mention the number $1"
}

assert_workdir_clean() {
    [ -d "$WORK" ] || fail "the --work-dir $WORK itself was removed (only tally's subdirectory may be)"
    [ -z "$(ls -A "$WORK")" ] || fail "work dir not cleaned after '$LAST_CMD': $(ls -A "$WORK" | head -5 | tr '\n' ' ')"
}

# assert_failed_output OUT: a failed job leaves neither _SUCCESS nor any part file.
assert_failed_output() {
    [ ! -e "$1/_SUCCESS" ] || fail "$1/_SUCCESS exists after a failed job"
    ! compgen -G "$1/part-*" >/dev/null || fail "part files left in $1 after a failed job: $(cd "$1" && ls part-* | head -3 | tr '\n' ' ')"
}

# check_out OUT R [outcheck options]: the output invariants (tests/ref/outcheck.py).
check_out() {
    local out=$1 r=$2
    shift 2
    "$PYTHON" "$REF/outcheck.py" "$out" --reduces "$r" "$@" || fail "output invariants broken in $out (from: $LAST_CMD)"
}

# compare OUT REF_FILE [--key-fields G]: the parts equal the reference output.
compare() {
    "$PYTHON" "$REF/compare.py" "$@" || fail "output of '$LAST_CMD' differs from the reference"
}

# ref NAME ARGS...: runs tests/ref/NAME.py.
ref() {
    local name=$1
    shift
    "$PYTHON" "$REF/$name.py" "$@" || fail "reference $name.py failed"
}

# counter OUT NAME: prints one counter of OUT/_counters.json.
counter() {
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1/_counters.json" "$2" ||
        fail "cannot read counter $2 from $1/_counters.json"
}

# stat_of STATS_JSON NAME: prints one value the reference recorded with --stats.
stat_of() {
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# poll_until SECONDS WHAT CMD...: runs CMD until it succeeds; fails after SECONDS.
poll_until() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for: $what"
        sleep 0.02
    done
}

# matrix: prints "M R" pairs, the full matrix or a diagonal under TALLY_TEST_SLOW.
matrix() {
    if slow; then
        printf '%s\n' "1 1" "7 2" "50 5"
    else
        local m r
        for m in 1 3 7 50; do
            for r in 1 2 5; do
                echo "$m $r"
            done
        done
    fi
}

# lines_in FILES...: the number of records (lines, counting a last line without \n).
lines_in() {
    "$PYTHON" -c '
import sys
n = 0
for p in sys.argv[1:]:
    d = open(p, "rb").read()
    n += d.count(b"\n") + (1 if d and not d.endswith(b"\n") else 0)
print(n)' "$@"
}

# bytes_in FILES...: their total size.
bytes_in() {
    cat "$@" | wc -c
}

# build_linelen NAME [CFLAGS...]: compiles a variant of the test job tests/e2e/jobs/linelen.c
# (variants: see its header) into $T/NAME.so.
build_linelen() {
    local name=$1
    shift
    cc -std=c11 -Wall -Wextra -Werror -O1 -shared -fPIC -I"$ROOT/include" "$@" -o "$T/$name.so" \
        "$ROOT/tests/e2e/jobs/linelen.c" || fail "cannot compile linelen.c $*"
}

# gen_ok ARGS...: `tally gen ARGS...` must succeed.
gen_ok() {
    tally_try gen "$@"
    [ "$RC" = 0 ] || fail "tally gen $* failed with exit $RC"
}

# checked_job R EXPECTS... -- JOB_ARGS...: runs the job and checks the output invariants.
# Example: checked_job 2 --expect map_tasks=3 -- wordcount -m 3 -r 2 -o "$out" "${BOOKS[@]}"
checked_job() {
    local r=$1
    shift
    local -a checks=()
    while [ "$1" != "--" ]; do
        checks+=("$1")
        shift
    done
    shift
    job_ok "$@"
    local out a prev=""
    for a in "$@"; do
        [ "$prev" = "-o" ] && out=$a
        prev=$a
    done
    check_out "$out" "$r" "${checks[@]}"
}
