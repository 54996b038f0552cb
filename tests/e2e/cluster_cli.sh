#!/usr/bin/env bash
# cluster_cli.sh - the cluster's command line as a new user meets it: every subcommand answers
# --help without a token or a coordinator and refuses unknown options (exit 2); submit, status
# and cancel say every kind of failure in one `tally: ` line without raw JSON, with one exit
# code each (3 cannot connect or token refused, 2 usage or no such job, 1 otherwise); cancel
# says what it cancelled; Ctrl-C on a waiting submit leaves the job running (130); a submit that
# loses its coordinator says so (3) and removes the job's stale OUT/_temporary, but never one a
# live process holds; a worker whose token is refused exits 3; a worker's --work-dir is only
# the parent of its own directory; scripts/cluster.sh works from any directory and keeps its
# logs; status JOB shows that job only; the progress line of submit shows MB/s.
. "$(dirname "$0")/cluster_lib.sh"

JOB_TIMEOUT=60
build_linelen linelen_slow -DLINELEN_SLOW
BOOK=${BOOKS[3]} # the shortest: 2362 lines, about half a second of linelen_slow
gen_ok text --size 3M --seed 7 -o "$T/long.txt" # linelen_slow takes several seconds on it

# A port nothing listens on: bound, then closed, by the kernel's choice.
CLOSED=127.0.0.1:$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# only_tally_lines: every stderr line of the last command starts with `tally: ` and none is JSON.
only_tally_lines() {
    [ -s "$T/stderr" ] || fail "no message on stderr from: $LAST_CMD"
    ! grep -v '^tally: ' "$T/stderr" >/dev/null || fail "a stderr line of '$LAST_CMD' does not start with 'tally: '"
    ! grep -q '[{}]' "$T/stderr" || fail "raw JSON in the message of '$LAST_CMD'"
}

# expect CODE ARGS...: `tally ARGS...` exits CODE.
expect() {
    local code=$1
    shift
    tally_try "$@"
    [ "$RC" = "$code" ] || fail "expected exit $code, got $RC from: $LAST_CMD ($(head -c 300 "$T/stderr"))"
}

# ---- Without a cluster ---------------------------------------------------------------------------
step "--help answers locally for every subcommand, without a token or a coordinator"
export TALLY_COORDINATOR=$CLOSED
unset TALLY_TOKEN_FILE
for cmd in submit status cancel; do
    for h in --help -h; do
        expect 0 $cmd $h
        grep -q -- '--coordinator HOST:PORT' "$T/stdout" || fail "tally $cmd $h does not list --coordinator"
        grep -q -- '--token-file FILE' "$T/stdout" || fail "tally $cmd $h does not list --token-file"
        ! grep -q token "$T/stderr" || fail "tally $cmd $h asked for a token: $(cat "$T/stderr")"
    done
done
grep -q -- '--json' <("$TALLY" status --help) || fail "tally status --help does not list --json"
grep -q -- '--detach' <("$TALLY" submit --help) || fail "tally submit --help does not list --detach"
expect 0 cancel j1-1 --help # an id before --help changes nothing: no cancel is sent
expect 0 submit wordcount --help
grep -q -- '--fold-case' "$T/stdout" || fail "tally submit wordcount --help does not list wordcount's --fold-case"
expect 0 submit --detach grep -o "$T/x" --help
grep -q -- '-e, --regexp' "$T/stdout" || fail "tally submit grep --help does not list grep's -e"
for cmd in coordinator worker gen jobs version; do
    expect 0 $cmd --help
    grep -q -- '--help' "$T/stdout" || fail "tally $cmd --help does not list its options"
done
grep -q -- '--work-dir DIR' <("$TALLY" worker --help) || fail "tally worker --help does not list --work-dir"
grep -q 'tally-worker-NAME' <("$TALLY" worker --help) || fail "tally worker --help does not say what --work-dir holds"

step "unknown options are usage errors (exit 2) naming the option"
expect 2 status --jsn
assert_stderr_has "--jsn"
only_tally_lines
expect 2 cancel --frobnicate j1-1
assert_stderr_has "--frobnicate"
expect 2 submit --detatch wordcount -o "$T/x" "$BOOK"
assert_stderr_has "--detatch"
expect 2 submit wordcount --fold-cse -o "$T/x" "$BOOK"
assert_stderr_has "--fold-cse"
for cmd in coordinator worker gen jobs version; do
    expect 2 $cmd --frobnicate
    assert_stderr_has "--frobnicate"
done
expect 2 status j1 j2
expect 2 cancel
[ ! -e "$T/x" ] || fail "a refused submit created its OUT"

step "no coordinator: exit 3 and how to start one"
echo nosuchtoken >"$T/wrong-token"
for args in "status" "status j1-1" "cancel j1-1" "submit wordcount -o $T/x $BOOK"; do
    # shellcheck disable=SC2086
    expect 3 $args --token-file "$T/wrong-token"
    only_tally_lines
    assert_stderr_has "cannot connect to the coordinator at $CLOSED" "scripts/cluster.sh up" "TALLY_COORDINATOR"
done
expect 2 status # no token file: a usage error, said before anything is sent
only_tally_lines
assert_stderr_has "--token-file"

# ---- scripts/cluster.sh ------------------------------------------------------------------------------
step "cluster.sh: state in TALLY_CLUSTER_DIR, down/status/env from any directory, logs kept"
export TALLY_CLUSTER_DIR=$T/state TALLY_PORT=0
CS=$ROOT/scripts/cluster.sh
mkdir -p "$T/here" "$T/there"
# cs DIR ARGS...: cluster.sh ARGS... run from directory DIR; stdout, stderr and RC as tally_try.
cs() {
    local d=$1
    shift
    LAST_CMD="cluster.sh $* (in $d)"
    RC=0
    (cd "$d" && TALLY=$TALLY timeout -k 5 60 bash "$CS" "$@") >"$T/stdout" 2>"$T/stderr" || RC=$?
}
# The processes up started, for the EXIT trap (also those of a cluster.sh that kept its pid
# files in the current directory, so that a failing run leaves nothing behind).
cs_record_pids() { cat "$TALLY_CLUSTER_DIR"/*.pid "$T"/*/.tally-cluster/*.pid >>"$CL/pgids" 2>/dev/null || true; }
cs "$T/there" down
[ "$RC" != 0 ] || fail "cluster.sh down with no cluster exited 0"
assert_stderr_has "no cluster is running"
! grep -q stopped "$T/stderr" || fail "cluster.sh down claims to have stopped a cluster that was not running"
cs "$T/there" status
[ "$RC" != 0 ] || fail "cluster.sh status with no cluster exited 0"
assert_stderr_has "no cluster is running"
# A pid file left from before (a reboot) whose pid now belongs to a stranger: not ours to stop.
mkdir -p "$TALLY_CLUSTER_DIR"
sleep 300 </dev/null >/dev/null 2>&1 & # a stand-in process, not a wait
stranger=$!
BG_PIDS+=("$stranger")
echo "$stranger" >"$TALLY_CLUSTER_DIR/coordinator.pid"
echo "$stranger" >"$TALLY_CLUSTER_DIR/w1.pid"
cs "$T/there" down
[ "$RC" != 0 ] && grep -q "no cluster is running" "$T/stderr" || fail "cluster.sh down took a stranger for the cluster: $(cat "$T/stderr")"
cl_alive "$stranger" || fail "cluster.sh down killed a process that was not the cluster's"
kill -KILL "$stranger"
for round in 1 2; do
    cs "$T/here" up --workers 1
    cs_record_pids
    [ "$RC" = 0 ] || fail "cluster.sh up failed: $(cat "$T/stderr")"
    grep -q "^export TALLY_TOKEN_FILE=$TALLY_CLUSTER_DIR/token\$" "$T/stdout" || fail "up printed: $(cat "$T/stdout")"
    coord_pid=$(cat "$TALLY_CLUSTER_DIR/coordinator.pid")
    cs "$T/there" env
    [ "$RC" = 0 ] || fail "cluster.sh env from another directory failed: $(cat "$T/stderr")"
    (eval "$(cat "$T/stdout")" && cd "$T/there" && "$TALLY" status >"$T/cs-status.txt") ||
        fail "tally status with cluster.sh env's exports failed"
    grep -q '^w1 .*alive' "$T/cs-status.txt" || fail "no live w1 in the status: $(cat "$T/cs-status.txt")"
    cs "$T/there" status
    [ "$RC" = 0 ] && grep -q '^w1 .*alive' "$T/stdout" || fail "cluster.sh status from another directory: $(cat "$T/stdout" "$T/stderr")"
    cs "$T/there" down
    [ "$RC" = 0 ] || fail "cluster.sh down from another directory failed: $(cat "$T/stderr")"
    assert_stderr_has "stopped"
    coord_gone() { ! cl_alive "$coord_pid"; }
    poll_until 10 "the coordinator of cluster.sh to be gone after down" coord_gone
done
[ "$(grep -c '^==== cluster.sh up at' "$TALLY_CLUSTER_DIR/coordinator.log")" = 2 ] ||
    fail "the coordinator log does not hold both runs: $(grep -c '' "$TALLY_CLUSTER_DIR/coordinator.log") lines"
[ "$(grep -c 'INFO listening on' "$TALLY_CLUSTER_DIR/coordinator.log")" = 2 ] ||
    fail "the first run's coordinator log lines were lost"
[ ! -e "$T/here/.tally-cluster" ] && [ ! -e "$T/there/.tally-cluster" ] || fail "cluster.sh kept state in the current directory"
unset TALLY_CLUSTER_DIR TALLY_PORT

# ---- One cluster: errors, status, progress -------------------------------------------------------
step "a cluster: refused token, unknown job, usage errors, each with its exit code and wording"
cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 15000
export TALLY_COORDINATOR=$CL_COORD TALLY_TOKEN_FILE=$CL_TOKEN_FILE
cl_start_worker s1 --slots 2
for args in "status" "status j1-1" "cancel j1-1" "submit wordcount -o $T/x $BOOK"; do
    # shellcheck disable=SC2086
    expect 3 $args --token-file "$T/wrong-token"
    only_tally_lines
    assert_stderr_has "refused our token" "$T/wrong-token" "$CL_COORD"
done
for args in "status j1-1" "cancel j1-1"; do
    # shellcheck disable=SC2086
    expect 2 $args
    only_tally_lines
    assert_stderr_has "no job j1-1 on the coordinator at $CL_COORD"
done
expect 2 submit wordcount -o "$T/x" "$T/no/such/input.txt"
only_tally_lines
assert_stderr_has "$T/no/such/input.txt"
expect 2 submit aggregate --group-by nosuchfield --agg count -o "$T/x" "$BOOK"
only_tally_lines
[ ! -e "$T/x" ] || fail "a refused submit created its OUT"

step "submit on a terminal shows MB/s; the coordinator says '1 map, 1 reduce'"
# A terminal for submit: Python's pty copies what submit draws to our stdout.
"$PYTHON" -c 'import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))' \
    "$TALLY" submit "$T/linelen_slow.so" -m 1 -r 1 -o "$T/tty" "${BOOKS[0]}" "$BOOK" >"$T/tty.txt" 2>&1 </dev/null ||
    fail "submit on a terminal failed: $(tr '\r' '\n' <"$T/tty.txt" | tail -n 3)"
tr '\r' '\n' <"$T/tty.txt" | grep -E '^.*job j[0-9-]+  map .* [0-9]+\.[0-9] MB/s  [0-9.]+s' | grep -qvE ' 0\.0 MB/s' ||
    fail "no progress line with a non-zero MB/s: $(tr '\r' '\n' <"$T/tty.txt" | grep -a 'job j' | tail -n 3)"
grep -q 'submitted: .*, 1 map, 1 reduce, output' "$CL/coord.log" || fail "the coordinator log: $(grep submitted "$CL/coord.log")"
cl_submit_ok wordcount -m 2 -r 3 -o "$T/wc" "$BOOK"
grep -q 'submitted: wordcount, 2 maps, 3 reduces, output' "$CL/coord.log" || fail "the coordinator log: $(grep submitted "$CL/coord.log")"
grep -qE "^tally: job $CL_JOB succeeded in [0-9.]+ s: [0-9.]+ MB at [0-9.]+ MB/s" "$T/stdout" ||
    fail "the summary of submit: $(cat "$T/stdout")"

step "status JOB shows that job and not the workers; status shows both"
expect 0 status "$CL_JOB"
grep -q "^$CL_JOB .*succeeded" "$T/stdout" || fail "status $CL_JOB does not show the job: $(cat "$T/stdout")"
! grep -q '^WORKER' "$T/stdout" || fail "status $CL_JOB prints the workers table"
expect 0 status
grep -q '^WORKER' "$T/stdout" && grep -q "^$CL_JOB " "$T/stdout" || fail "status: $(cat "$T/stdout")"

step "Ctrl-C on a waiting submit: exit 130, the job goes on; cancel says what it cancelled"
"$TALLY" submit "$T/linelen_slow.so" -m 1 -o "$T/int" "$T/long.txt" >"$T/int.out" 2>"$T/int.err" &
sub=$!
BG_PIDS+=("$sub")
cl_until 30 "the job on $T/int to run" \
    'any(x["out"] == a[0] and any(t["state"] == "running" for t in x["tasks"]) for x in d["jobs"])' "$T/int"
iid=$(cl_q '[x["id"] for x in d["jobs"] if x["out"] == a[0]][0]' "$T/int")
kill -INT "$sub"
sub_done() { ! cl_alive "$sub"; }
poll_until 10 "submit to stop after SIGINT" sub_done
rc=0
wait "$sub" || rc=$?
assert_eq "$rc" 130 "exit status of a submit stopped by SIGINT"
grep -qx "tally: stopped waiting; job $iid goes on: follow it with tally status $iid, cancel it with tally cancel $iid" \
    "$T/int.err" || fail "submit did not say how to follow the job: $(cat "$T/int.err")"
assert_eq "$(CL_Q_JOB=$iid cl_q 'j["state"]')" running "state of the job after its submit was interrupted"
expect 0 cancel "$iid"
grep -qE "^tally: job $iid cancelled \(it was running: [0-9]+/1 maps, 0/1 reduces done\)\$" "$T/stdout" ||
    fail "cancel printed: $(cat "$T/stdout")"
! grep -q '[{}]' "$T/stdout" || fail "raw JSON from cancel"
cl_job_wait 30 "$iid"
assert_eq "$CL_STATE" cancelled "state of the cancelled job"
expect 1 cancel "$iid"
only_tally_lines
assert_stderr_has "already cancelled"

# ---- Workers ---------------------------------------------------------------------------------------
step "a worker whose token is refused exits 3 naming the coordinator and the token file"
LAST_CMD="tally worker --token-file $T/wrong-token"
rc=0
timeout -k 2 15 "$TALLY" worker --coordinator "$CL_COORD" --token-file "$T/wrong-token" --name intruder \
    --work-dir "$T/iw" --listen 127.0.0.1:0 >"$T/stdout" 2>"$T/stderr" </dev/null || rc=$?
[ "$rc" != 124 ] || fail "the worker with a refused token kept running (it retries for ever)"
assert_eq "$rc" 3 "exit status of a worker whose token is refused"
assert_stderr_has "refused our token" "$CL_COORD" "$T/wrong-token"

step "--work-dir is the parent of the worker's own directory: only that one is removed"
mkdir -p "$T/wparent"
echo precious >"$T/wparent/keep.txt"
cl_spawn "$CL/wd1.wlog" "$CL/wd1.out" "$TALLY" worker --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" \
    --name wd1 --slots 1 --work-dir "$T/wparent" --listen 127.0.0.1:0
wd1=$CL_PID
wd1_addr=$(cl_worker_address wd1 "$wd1")
cl_wait_alive wd1 "$wd1_addr"
[ -d "$T/wparent/tally-worker-wd1" ] || fail "no $T/wparent/tally-worker-wd1: $(ls -A "$T/wparent")"
expect 2 worker --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" --name wd1 --work-dir "$T/wparent" \
    --listen 127.0.0.1:0
assert_stderr_has "another worker" "$T/wparent/tally-worker-wd1"
[ -d "$T/wparent/tally-worker-wd1" ] || fail "the refused second worker removed the first one's directory"
kill -TERM "$wd1"
wd1_gone() { ! cl_alive "$wd1"; }
poll_until 20 "worker wd1 to stop after SIGTERM" wd1_gone
[ "$(cat "$T/wparent/keep.txt" 2>/dev/null)" = precious ] || fail "the worker removed its --work-dir or what it held"
[ ! -e "$T/wparent/tally-worker-wd1" ] || fail "the worker left its own directory behind"

# ---- Losing the coordinator (last: these stop it) ----------------------------------------------------
step "a frozen coordinator: submit gives up (exit 3) and leaves the claim a live process holds"
export TALLY_COORDINATOR_TIMEOUT_MS=1000
"$TALLY" submit "$T/linelen_slow.so" -m 1 -o "$T/frozen" "$T/long.txt" >"$T/fr.out" 2>"$T/fr.err" &
sub=$!
BG_PIDS+=("$sub")
cl_until 30 "the job on $T/frozen to run" \
    'any(x["out"] == a[0] and any(t["state"] == "running" for t in x["tasks"]) for x in d["jobs"])' "$T/frozen"
fid=$(cl_q '[x["id"] for x in d["jobs"] if x["out"] == a[0]][0]' "$T/frozen")
kill -STOP "$CL_COORD_PID"
poll_until 20 "submit to give up on the frozen coordinator" sub_done
rc=0
wait "$sub" || rc=$?
kill -CONT "$CL_COORD_PID"
assert_eq "$rc" 3 "exit status of a submit whose coordinator froze"
grep -q "^tally: lost the coordinator at $CL_COORD while waiting for job $fid .*fate is unknown" "$T/fr.err" ||
    fail "submit did not say it lost the coordinator: $(cat "$T/fr.err")"
grep -q "still holds $T/frozen/_temporary" "$T/fr.err" || fail "submit did not say a live process holds the claim: $(cat "$T/fr.err")"
[ -e "$T/frozen/_temporary/_owner" ] || fail "submit removed the claim of a job that still runs"

step "a SIGKILLed coordinator: submit says so (exit 3) and removes its job's stale OUT/_temporary"
"$TALLY" submit "$T/linelen_slow.so" -m 1 -o "$T/lost" "$T/long.txt" >"$T/lost.out" 2>"$T/lost.err" &
sub=$!
BG_PIDS+=("$sub")
cl_until 30 "the job on $T/lost to be submitted" 'any(x["out"] == a[0] for x in d["jobs"])' "$T/lost"
lid=$(cl_q '[x["id"] for x in d["jobs"] if x["out"] == a[0]][0]' "$T/lost")
[ -e "$T/lost/_temporary/_owner" ] || fail "test bug: the job on $T/lost has no claim"
grep -q "job=$lid " "$T/lost/_temporary/_owner" || fail "test bug: the claim does not name $lid: $(cat "$T/lost/_temporary/_owner")"
kill -KILL "$CL_COORD_PID"
poll_until 20 "submit to give up on the dead coordinator" sub_done
rc=0
wait "$sub" || rc=$?
assert_eq "$rc" 3 "exit status of a submit whose coordinator died"
grep -q "^tally: lost the coordinator at $CL_COORD while waiting for job $lid .*fate is unknown.*tally status $lid" \
    "$T/lost.err" || fail "submit did not say what losing the coordinator means: $(cat "$T/lost.err")"
grep -q "removed the $T/lost/_temporary" "$T/lost.err" || fail "submit did not say it removed the stale claim: $(cat "$T/lost.err")"
[ ! -e "$T/lost/_temporary" ] || fail "the dead job's $T/lost/_temporary is still there"
# The frozen job's claim is stale now too, but it names another job: that submit is gone and
# the next job on that OUT takes it over.
[ -e "$T/frozen/_temporary/_owner" ] || fail "the claim of another job was removed"

echo "cluster_cli: all cases passed"
