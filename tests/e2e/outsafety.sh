#!/usr/bin/env bash
# outsafety.sh - tally run never loses its user's data and never leaves debris: an OUT that
# overlaps an input is refused before anything is removed; of two jobs started at once on one
# OUT exactly one runs and its output stays; a crashing user job fails attempts, not the run;
# a closed stdout/stderr does not kill a job; every way a job ends (failure, signal, SIGKILL)
# leaves an OUT the next run can use; a failed --overwrite puts the old output back.
. "$(dirname "$0")/lib.sh"

BOOK=${BOOKS[0]}
gen_ok readings --shards 2 --rows 3000 -o "$T/cp1"
build_linelen linelen_slow -DLINELEN_SLOW
build_linelen linelen_fail -DLINELEN_FAIL
build_linelen linelen_segv -DLINELEN_SEGV
build_linelen linelen_setup_segv -DLINELEN_SETUP_SEGV
ref wordcount "$BOOK" >"$T/ref.txt"

# tree_sum DIR: a checksum of every file below DIR (names and contents).
tree_sum() {
    (cd "$1" && find . -type f | LC_ALL=C sort | xargs -r md5sum) | md5sum
}

# no_debris OUT: no claim or staging directory of a finished job is left in OUT.
no_debris() {
    [ ! -e "$1/_temporary" ] || fail "$1/_temporary left behind"
    ! compgen -G "$1/.tally-claim-*" >/dev/null || fail "staging directories left in $1: $(ls -A "$1")"
}

AGG=(aggregate --group-by house_id --agg count)

step "--overwrite with the input inside OUT is refused and the input is untouched"
before=$(tree_sum "$T/cp1")
(cd "$T" && job_fails 2 "${AGG[@]}" --overwrite -o cp1 cp1/)
assert_stderr_has "overlap"
assert_eq "$(tree_sum "$T/cp1")" "$before" "the input directory after a refused --overwrite"
mkdir -p "$T/cp2/in"
cp "$T"/cp1/*.csv "$T/cp2/in/"
before2=$(tree_sum "$T/cp2")
(cd "$T" && job_fails 2 "${AGG[@]}" --overwrite -o cp2 cp2/in/)
(cd "$T" && job_fails 2 "${AGG[@]}" --overwrite -o cp2/in/.. cp2/in/readings_shard0.csv)
ln -s "$T/cp2" "$T/link-to-cp2"
job_fails 2 "${AGG[@]}" --overwrite -o "$T/link-to-cp2" "$T/cp2/in"
ln -s "$T/cp2/in/readings_shard1.csv" "$T/outside.csv"
job_fails 2 "${AGG[@]}" --overwrite -o "$T/cp2" "$T/outside.csv" # an input reached through a link
job_fails 2 "${AGG[@]}" --overwrite -o "$T/cp2/in/sub" "$T/cp2/i*" # a glob matching a directory
assert_eq "$(tree_sum "$T/cp2")" "$before2" "the input directory after refused runs"

step "an OUT inside an input directory is refused and not created"
job_fails 2 "${AGG[@]}" -o "$T/cp1/out" "$T/cp1"
assert_stderr_has "$T/cp1/out" "lies inside"
[ ! -e "$T/cp1/out" ] || fail "a refused job created $T/cp1/out"
assert_eq "$(tree_sum "$T/cp1")" "$before" "the input directory"

step "two jobs started at once on one OUT: exactly one succeeds and its output stays"
rounds=8
slow && rounds=4
for ((i = 0; i < rounds; i++)); do
    out=$T/race$i
    for k in a b; do
        timeout -k 5 "$JOB_TIMEOUT" "$TALLY" run wordcount -m 3 --work-dir "$WORK" -o "$out" "$BOOK" \
            >"$T/race.$k.out" 2>"$T/race.$k.err" &
        eval "pid_$k=$!"
    done
    rc_a=0 rc_b=0
    wait "$pid_a" || rc_a=$?
    wait "$pid_b" || rc_b=$?
    winners=0
    for k in a b; do
        eval "rc=\$rc_$k"
        if [ "$rc" = 0 ]; then
            winners=$((winners + 1))
        elif [ "$rc" = 2 ]; then
            grep -qE 'another job is writing|not empty' "$T/race.$k.err" ||
                fail "round $i: the losing job's message does not say why: $(cat "$T/race.$k.err")"
        else
            fail "round $i: a job exited $rc: $(cat "$T/race.$k.err")"
        fi
    done
    [ $winners = 1 ] || fail "round $i: $winners jobs succeeded on one OUT (exit codes $rc_a and $rc_b)"
    LAST_CMD="race round $i"
    check_out "$out" 1
    compare "$out" "$T/ref.txt"
    no_debris "$out"
    assert_workdir_clean
done

step "a user job that segfaults fails attempts, not the run: the record is skipped after two crashes"
{
    head -n 2000 "$BOOK"
    echo "a poison line: CRASH-HERE"
    tail -n +2001 "$BOOK"
} >"$T/poison.txt"
job_ok "$T/linelen_segv.so" -m 3 -o "$T/segv" "$T/poison.txt"
assert_eq "$(counter "$T/segv" records_skipped)" 1 "records_skipped after a record crashed two attempts"
assert_stderr_has "task process killed by signal" "poison.txt" # SIGSEGV (SIGABRT under ASan)
grep -v CRASH-HERE "$T/poison.txt" >"$T/clean.txt"
ref linelen "$T/clean.txt" >"$T/ref-clean.txt"
compare "$T/segv" "$T/ref-clean.txt"
no_debris "$T/segv"
step "... and with --max-attempts 2 the crashing map fails the job cleanly"
job_fails 1 "$T/linelen_segv.so" --max-attempts 2 -m 3 -o "$T/segv2" "$T/poison.txt"
assert_stderr_has "task process killed by signal"
[ ! -e "$T/segv2" ] || fail "a failed job left its OUT $T/segv2: $(ls -A "$T/segv2")"
job_ok "$T/linelen_segv.so" -m 3 -o "$T/segv2" "$T/poison.txt" # the rerun works

step "a user job whose setup() crashes fails with a message, and writes nothing"
job_fails 1 "$T/linelen_setup_segv.so" --job-arg crash=1 -o "$T/setupcrash" "$BOOK"
assert_stderr_has "could not be loaded" "killed by signal"
[ ! -e "$T/setupcrash" ] || fail "a job that crashed in setup() created its OUT"
job_ok "$T/linelen_setup_segv.so" -o "$T/setupcrash" "$BOOK"

step "a closed stdout or stderr does not kill the job"
rc=0
"$TALLY" run "$T/linelen_segv.so" --work-dir "$WORK" -o "$T/pipe1" "$T/poison.txt" 2>&1 | true
rc=${PIPESTATUS[0]}
assert_eq "$rc" 0 "exit status of tally run writing into a closed pipe"
compare "$T/pipe1" "$T/ref-clean.txt"
rc=0
"$TALLY" run "$T/linelen_segv.so" --work-dir "$WORK" -o "$T/pipe2" "$T/poison.txt" >&- 2>&- || rc=$?
assert_eq "$rc" 0 "exit status of tally run with stdout and stderr closed"
compare "$T/pipe2" "$T/ref-clean.txt"
no_debris "$T/pipe2"
assert_workdir_clean

# start_slow OUT [ARGS]: a slow job in the background (its pid in SLOW_PID), once it has
# claimed OUT and started a map.
start_slow() {
    local out=$1
    shift
    "$TALLY" run "$T/linelen_slow.so" -m 2 "$@" --work-dir "$WORK" -o "$out" "${BOOKS[@]}" \
        >"$T/slow.out" 2>"$T/slow.err" &
    SLOW_PID=$!
    BG_PIDS+=("$SLOW_PID")
    poll_until 30 "the slow job to claim $out and start its executors" \
        eval "[ -e '$out/_temporary/_owner' ] && compgen -G '$WORK/tally-job-*/exec-0.live' >/dev/null"
}

for sig in INT TERM HUP; do
    step "SIG$sig stops a job: exit 130, OUT removed, no work dir left"
    start_slow "$T/sig$sig"
    kill -"$sig" "$SLOW_PID"
    rc=0
    wait "$SLOW_PID" || rc=$?
    assert_eq "$rc" 130 "exit status after SIG$sig"
    [ ! -e "$T/sig$sig" ] || fail "OUT left after SIG$sig: $(ls -A "$T/sig$sig")"
    assert_workdir_clean
done

step "a run killed with SIGKILL: the next run on that OUT takes over and cleans up"
start_slow "$T/killed"
kill -KILL "$SLOW_PID"
wait "$SLOW_PID" || true
[ -e "$T/killed/_temporary" ] || fail "test bug: SIGKILL left no claim to take over"
poll_until 10 "the executors of the killed run to exit" eval "! pgrep -f '__executor $WORK/' >/dev/null"
job_ok wordcount -o "$T/killed" "$BOOK"
assert_stderr_has "no longer running"
check_out "$T/killed" 1
compare "$T/killed" "$T/ref.txt"
no_debris "$T/killed"

step "a failed --overwrite puts the old output back"
job_ok wordcount -r 2 -o "$T/keep" "$BOOK"
kept=$(tree_sum "$T/keep")
job_fails 1 "$T/linelen_fail.so" --overwrite -o "$T/keep" "$BOOK"
assert_eq "$(tree_sum "$T/keep")" "$kept" "OUT after a failed --overwrite"
no_debris "$T/keep"

step "an --overwrite run killed with SIGKILL: the next run puts the old output back first"
start_slow "$T/keep" --overwrite
# The claim (_owner) comes first, then --overwrite moves OUT's entries aside: wait for that.
poll_until 10 "--overwrite to move the old output aside" test -d "$T/keep/_temporary/_previous"
kill -KILL "$SLOW_PID"
wait "$SLOW_PID" || true
poll_until 10 "the executors of the killed run to exit" eval "! pgrep -f '__executor $WORK/' >/dev/null"
job_fails 2 wordcount -o "$T/keep" "$BOOK" # not empty: the old output is back
assert_eq "$(tree_sum "$T/keep")" "$kept" "OUT after the killed --overwrite was rolled back"
no_debris "$T/keep"
job_ok wordcount --overwrite -o "$T/keep" "$BOOK"
compare "$T/keep" "$T/ref.txt"

echo "outsafety: all cases passed"
