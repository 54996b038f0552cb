#!/usr/bin/env bash
# faults.sh - failures in the middle of a job: a full disk (TALLY_FAULT_ENOSPC_AFTER) and SIGINT.
# Either way the job exits non-zero, leaves no part file and no _SUCCESS, and removes its
# subdirectory of --work-dir.
. "$(dirname "$0")/lib.sh"

if slow; then small=1M; else small=3M; fi
gen_ok text --unique --size "$small" --seed 21 -o "$T/unique.txt"

step "disk full: intermediate writes fail after N bytes"
for n in 0 1 4096 200000; do
    # wordcount writes its map outputs; index with a small buffer also spill runs and merges.
    TALLY_FAULT_ENOSPC_AFTER=$n job_fails 1 wordcount -m 2 -r 2 -o "$T/enospc-wc-$n" "$T/unique.txt"
    assert_stderr_has "No space left on device"
    assert_failed_output "$T/enospc-wc-$n"
    TALLY_FAULT_ENOSPC_AFTER=$n job_fails 1 index --sort-buffer 64k -m 2 -r 3 -o "$T/enospc-ix-$n" \
        "$T/unique.txt" "${BOOKS[@]}"
    assert_stderr_has "No space left on device"
    assert_failed_output "$T/enospc-ix-$n"
done

step "the fault is only injected past N: a generous N lets the job succeed"
ref index "$T/unique.txt" "${BOOKS[@]}" >"$T/ref.txt"
TALLY_FAULT_ENOSPC_AFTER=$((1 << 40)) job_ok index --sort-buffer 64k -m 2 -r 3 -o "$T/enospc-ok" \
    "$T/unique.txt" "${BOOKS[@]}"
check_out "$T/enospc-ok" 3
compare "$T/enospc-ok" "$T/ref.txt"

step "SIGINT during a job"
# A job that takes a while: many distinct words and a small sort buffer, so it spills and merges.
# (The test signals it as soon as it has started, so only a job finishing within one 20 ms poll
# could escape.)
if slow; then size=24M; else size=48M; fi
gen_ok text --unique --size "$size" --seed 22 -o "$T/big.txt"

# bash starts background commands with SIGINT ignored; exec tally with default dispositions, as
# an interactive shell would, so the test sees what a user pressing Ctrl-C sees.
"$PYTHON" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$TALLY" run index --sort-buffer 1M -m 4 -r 3 \
    --work-dir "$WORK" -o "$T/sigint" "$T/big.txt" >"$T/sigint.stdout" 2>"$T/sigint.stderr" &
pid=$!
BG_PIDS+=("$pid")

workdir_in_use() { [ -n "$(ls -A "$WORK")" ]; }
poll_until 30 "tally to create its subdirectory of --work-dir" workdir_in_use
kill -0 "$pid" 2>/dev/null || fail "tally exited before SIGINT could be sent (make the input larger)"
kill -INT "$pid"
# Exited: gone, or a zombie waiting for `wait` (field 3 of /proc/PID/stat is the state).
exited() { [ ! -e "/proc/$pid" ] || [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = Z ]; }
poll_until 30 "tally to exit after SIGINT" exited
rc=0
wait "$pid" || rc=$?
BG_PIDS=()
echo "exit status after SIGINT: $rc"
[ "$rc" != 0 ] || fail "the job exited 0 after SIGINT (it finished first? then enlarge the input)"
assert_workdir_clean
assert_failed_output "$T/sigint"
if grep -q 'AddressSanitizer\|runtime error' "$T/sigint.stderr"; then
    cat "$T/sigint.stderr" >&2
    fail "sanitizer report after SIGINT"
fi
echo "faults: all cases passed"
