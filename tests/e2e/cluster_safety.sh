#!/usr/bin/env bash
# cluster_safety.sh - the coordinator guards its users' data as tally run does: an OUT that
# overlaps an input and a field no input has are refused at submit (exit 2) before anything
# is touched; of two jobs submitted at once on one OUT exactly one runs and its output stays;
# a coordinator SIGKILLed mid-job leaves a stale claim that the next job on that OUT (submitted
# to a new cluster, or run locally) takes over.
. "$(dirname "$0")/cluster_lib.sh"

BOOK=${BOOKS[0]}
build_linelen linelen_slow -DLINELEN_SLOW
build_linelen linelen_setup_segv -DLINELEN_SETUP_SEGV
gen_ok readings --shards 2 --rows 3000 -o "$T/cp1"
ref wordcount "$BOOK" >"$T/ref.txt"
tree_sum() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs -r md5sum) | md5sum; }

cl_start_coordinator
cl_start_worker s1
cl_start_worker s2

step "submit: an OUT overlapping an input is refused (exit 2) and the input is untouched"
before=$(tree_sum "$T/cp1")
(cd "$T" && cl_submit aggregate --group-by house_id --agg count --overwrite -o cp1 cp1/ && [ "$RC" = 2 ]) ||
    fail "submit -o cp1 cp1/ --overwrite: expected exit 2, got $RC: $(cat "$T/stderr")"
assert_stderr_has "overlap"
cl_submit aggregate --group-by house_id --agg count -o "$T/cp1/out" "$T/cp1"
[ "$RC" = 2 ] || fail "submit with OUT inside the input: expected exit 2, got $RC"
assert_eq "$(tree_sum "$T/cp1")" "$before" "the input after refused submits"
[ ! -e "$T/cp1/out" ] || fail "a refused submit created its OUT"

step "submit: a field no input has is refused (exit 2), naming it"
cl_submit aggregate --group-by prodcer_id --agg count -o "$T/typo" "$T/cp1"
[ "$RC" = 2 ] || fail "submit --group-by prodcer_id: expected exit 2, got $RC"
assert_stderr_has "'prodcer_id'" "house_id"
[ ! -e "$T/typo" ] || fail "a refused submit created its OUT"

step "a user job whose setup() crashes fails its submit, not the coordinator"
cl_submit "$T/linelen_setup_segv.so" --job-arg crash=1 -o "$T/crashed" "$BOOK"
[ "$RC" = 1 ] || fail "submit of a job that crashes in setup(): expected exit 1, got $RC"
assert_stderr_has "could not be loaded" "signal"
cl_alive "$CL_COORD_PID" || fail "the coordinator died loading a crashing job"
[ ! -e "$T/crashed" ] || fail "a refused submit created its OUT"
ref linelen "$BOOK" >"$T/ref-linelen.txt"
cl_submit_ok "$T/linelen_setup_segv.so" -o "$T/notcrashed" "$BOOK"
compare "$T/notcrashed" "$T/ref-linelen.txt"

step "two jobs submitted at once on one OUT: exactly one succeeds and its output stays"
for ((i = 0; i < 5; i++)); do
    out=$T/race$i
    for k in a b; do
        timeout -k 5 "$JOB_TIMEOUT" "$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" \
            wordcount -m 4 -r 2 -o "$out" "$BOOK" >"$T/race.$k.out" 2>"$T/race.$k.err" &
        eval "pid_$k=$!"
    done
    rc_a=0 rc_b=0
    wait "$pid_a" || rc_a=$?
    wait "$pid_b" || rc_b=$?
    [ "$((rc_a == 0)) $((rc_b == 0))" = "1 0" ] || [ "$((rc_a == 0)) $((rc_b == 0))" = "0 1" ] ||
        fail "round $i: exit codes $rc_a and $rc_b (want one 0): $(cat "$T/race.a.err" "$T/race.b.err")"
    for k in a b; do
        eval "rc=\$rc_$k"
        [ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "round $i: the losing submit exited $rc, not 2"
        [ "$rc" = 0 ] || grep -qE 'another job is writing|not empty' "$T/race.$k.err" ||
            fail "round $i: the losing submit does not say why: $(cat "$T/race.$k.err")"
    done
    LAST_CMD="race round $i"
    check_out "$out" 2
    compare "$out" "$T/ref.txt"
    [ ! -e "$out/_temporary" ] || fail "round $i: $out/_temporary left behind"
done

step "grep and index show inputs as given, relative ones too, under submit as under run"
mkdir -p "$T/rel/books"
cp "${BOOKS[0]}" "${BOOKS[1]}" "$T/rel/books/"
for job in "grep -e Ernest" index; do
    # shellcheck disable=SC2086 # the job and its options are words
    (cd "$T/rel" && "$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" -q $job -m 3 \
        -o "$T/sub-${job%% *}" books/ >/dev/null 2>"$T/stderr") || fail "submit $job failed: $(cat "$T/stderr")"
    # shellcheck disable=SC2086
    (cd "$T/rel" && "$TALLY" run -q $job -m 3 --work-dir "$WORK" -o "$T/run-${job%% *}" books/ >/dev/null 2>"$T/stderr") ||
        fail "run $job failed: $(cat "$T/stderr")"
    cmp "$T/sub-${job%% *}/part-00000" "$T/run-${job%% *}/part-00000" ||
        fail "$job: submit and run disagree: $(diff "$T/sub-${job%% *}/part-00000" "$T/run-${job%% *}/part-00000" | head -3)"
    grep -q "books/$(basename "${BOOKS[0]}")" "$T/run-${job%% *}/part-00000" ||
        fail "$job output does not name books/$(basename "${BOOKS[0]}"): $(head -2 "$T/run-${job%% *}/part-00000")"
    ! grep -q "$T" "$T/sub-${job%% *}/part-00000" || fail "$job under submit printed absolute paths"
done

step "a coordinator SIGKILLed mid-job: the next job on that OUT takes the stale claim over"
id=$("$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" --detach "$T/linelen_slow.so" -m 4 \
    -o "$T/lost" "${BOOKS[@]}") || fail "submit --detach failed"
CL_Q_JOB=$id cl_until 30 "a map of $id to run" \
    'any(x["state"] == "running" for t in j["tasks"] for x in t["attempts"])'
kill -KILL "$CL_COORD_PID"
[ -e "$T/lost/_temporary/_owner" ] || fail "test bug: the killed coordinator left no claim"
cl_reset
cl_start_coordinator
cl_start_worker s3
cl_submit_ok wordcount -r 2 -o "$T/lost" "$BOOK"
check_out "$T/lost" 2
compare "$T/lost" "$T/ref.txt"
[ ! -e "$T/lost/_temporary" ] || fail "$T/lost/_temporary left behind"
grep -q "no longer running" "$CL/coord.log" || fail "the coordinator did not log the take-over"

echo "cluster_safety: all cases passed"
