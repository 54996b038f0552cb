#!/usr/bin/env bash
# cluster_userjob.sh - user code on a cluster. A job whose map() dies with SIGSEGV on one record
# fails only the attempts that reach it: the worker lives on (same pid), its executors are
# replaced, and after two crashes at that record it is skipped and counted (Google MapReduce
# section 4.6). Running attempts show their progress and counters in `status --json`, fed by
# the workers' heartbeats.
. "$(dirname "$0")/cluster_lib.sh"

JOB_TIMEOUT=60
build_linelen linelen
build_linelen linelen_segv -DLINELEN_SEGV
build_linelen linelen_slow -DLINELEN_SLOW

gen_ok text --size 1M --seed 51 -o "$T/a.txt"
{ head -n 3000 "$T/a.txt"; echo "a poison line: CRASH-HERE"; tail -n +3001 "$T/a.txt"; } >"$T/in.txt"
poison_offset=$(head -n 3000 "$T/a.txt" | wc -c | tr -d ' ')
grep -v CRASH-HERE "$T/in.txt" >"$T/clean.txt"
cl_answer "$T/ans.txt" "$T/linelen.so" -m 2 -r 1 -o "$T/local" "$T/clean.txt"

cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 5000
cl_start_worker u1 --slots 2
pid=$(cl_worker_pid u1)

step "a map() that segfaults on one record: attempts fail, the record is skipped and counted, the worker lives"
cl_submit_ok "$T/linelen_segv.so" -m 2 -r 1 -o "$T/out" "$T/in.txt"
# The poison line is gone from the output, and only it: the answer over the clean input (its
# length bucket counts one line less).
cl_same "$T/out" "$T/ans.txt"
cl_job_json "$CL_JOB" "$T/job.json"
"$PYTHON" - "$T/job.json" "$T/in.txt" "$poison_offset" <<'EOF' || fail "the crashing record was not handled as it should (see above)"
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
path, off = sys.argv[2], int(sys.argv[3])
ok = True
def no(msg):
    global ok
    ok = False
    print(msg)
if j["counters"]["records_skipped"] != 1:
    no(f"records_skipped is {j['counters']['records_skipped']}, not 1")
for t in j["tasks"]:
    states = [a["state"] for a in t["attempts"]]
    print(t["phase"], t["index"], states, [a["error"] for a in t["attempts"] if a["error"]])
    failed = [a for a in t["attempts"] if a["state"] == "failed"]
    if failed:
        # Two crashes at the record, then the attempt that skips it.
        if states != ["failed", "failed", "succeeded"]:
            no(f"{t['phase']} {t['index']}: attempts {states}, expected failed, failed, succeeded")
        for a in failed:
            if f"{path}: offset {off}:" not in a["error"]:
                no(f"attempt {a['id']} error does not name {path} offset {off}: {a['error']}")
    elif states != ["succeeded"]:
        no(f"{t['phase']} {t['index']}: attempts {states}")
if sum(1 for t in j["tasks"] for a in t["attempts"] if a["state"] == "failed") != 2:
    no("not exactly two failed attempts")
sys.exit(0 if ok else 1)
EOF
cl_alive "$pid" || fail "the worker died with its job's map()"
assert_eq "$(cl_worker_pid u1)" "$pid" "worker pid after the crashes"
cl_q 'w["u1"]["state"] == "alive"' >/dev/null || fail "u1 is not alive after the crashes"
addr=$(cl_q 'w["u1"]["address"]')
starts=$(curl -sf -H "Authorization: Bearer $CL_TOKEN" "http://$addr/metrics" | sed -n 's/^tally_worker_executor_starts_total //p')
echo "u1 started $starts executors for 2 slots"
[ "${starts:-0}" -ge 4 ] || fail "u1 started ${starts:-no} executors: expected 2 plus a replacement per crash"
# Its executors were replaced: it runs the next job with both slots.
cl_submit_ok "$T/linelen.so" -m 2 -r 1 -o "$T/after" "$T/clean.txt"
cl_same "$T/after" "$T/ans.txt"

step "an executor that died while idle is replaced when its slot is next used; no attempt fails"
execs=$(pgrep -P "$pid" -f -- '__executor' | tr '\n' ' ')
echo "u1's executors: $execs"
[ "$(echo $execs | wc -w)" = 2 ] || fail "u1 does not have 2 executor processes: '$execs'"
for e in $execs; do kill -KILL "$e"; done
gone_all() { for e in $execs; do ! kill -0 "$e" 2>/dev/null || [ "$(awk '{ print $3 }' /proc/$e/stat 2>/dev/null)" = Z ] || return 1; done; }
poll_until 10 "the killed executors to be gone" gone_all
cl_submit_ok "$T/linelen.so" -m 2 -r 1 -o "$T/after-kill" "$T/clean.txt"
cl_same "$T/after-kill" "$T/ans.txt"
CL_Q_JOB=$CL_JOB cl_q '[x["state"] for t in j["tasks"] for x in t["attempts"]] == ["succeeded"] * 3' >/dev/null ||
    fail "attempts failed or ran twice after the executors died while idle: $(cl_status "$CL_JOB")"
grep -q 'was gone before it got an attempt' "$CL/u1.wlog" || fail "u1 did not notice its dead executors"

step "running attempts report progress and counters through the heartbeats"
id=$("$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" --detach "$T/linelen_slow.so" -m 1 -r 1 \
    -o "$T/slow" "$T/clean.txt") || fail "submit --detach failed"
# At 0.2 ms per line the map runs for seconds: its progress must show up part-way.
CL_Q_JOB=$id cl_until 30 "the map of $id to show progress between 0 and 1 and records read" \
    'any(x["state"] == "running" and 0 < x["progress"] < 1 and x["counters"]["input_records"] > 0
         for t in j["tasks"] if t["phase"] == "map" for x in t["attempts"]) and 0 < j["map_progress"] < 1'
seen=$(CL_Q_JOB=$id cl_q '[x["counters"]["input_records"] for t in j["tasks"] if t["phase"] == "map" for x in t["attempts"]][0]')
echo "map attempt seen running with $seen records read"
cl_job_wait 60 "$id"
assert_eq "$CL_STATE" succeeded "state of the slow job"
cl_same "$T/slow" "$T/ans.txt"
CL_Q_JOB=$id cl_q '(all(x["progress"] == 1 for t in j["tasks"] for x in t["attempts"]) and j["map_progress"] == 1
    and j["reduce_progress"] == 1 and j["counters"]["input_records"] > int(a[0]))' "$seen" >/dev/null ||
    fail "a finished job does not show complete progress and its final counters"
step "SIGTERM stops a coordinator and a worker cleanly, executors included (LeakSanitizer checks them under ASan)"
# Started as children of this shell, so that `wait` gives their exit status; under the
# sanitizer build a leak makes a process exit non-zero (abort_on_error), and an executor that
# does so is logged by its worker.
setsid "$TALLY" coordinator --listen 127.0.0.1:0 --token-file "$CL_TOKEN_FILE" >"$CL/g-coord.out" 2>"$CL/g-coord.log" </dev/null &
gc=$!
echo "$gc" >>"$CL/pgids"
poll_until 20 "the coordinator to print its address" grep -q '^coordinator listening on ' "$CL/g-coord.out"
gaddr=$(sed -n 's/^coordinator listening on //p' "$CL/g-coord.out")
# --work-dir is the parent of the worker's own directory: what else it holds must stay.
mkdir -p "$CL/g1.work"
echo precious >"$CL/g1.work/keep.txt"
setsid "$TALLY" worker --coordinator "$gaddr" --token-file "$CL_TOKEN_FILE" --name g1 --slots 2 \
    --work-dir "$CL/g1.work" >"$CL/g1.out" 2>"$CL/g1.wlog" </dev/null &
gw=$!
echo "$gw" >>"$CL/pgids"
poll_until 20 "worker g1 to print its address" grep -q '^worker g1 listening on ' "$CL/g1.out"
# A job of each kind of work: a user job, a built-in with a combiner, one that fails.
tally_try submit --coordinator "$gaddr" --token-file "$CL_TOKEN_FILE" "$T/linelen.so" -m 3 -r 2 -o "$T/g-1" "$T/clean.txt"
assert_eq "$RC" 0 "submit of linelen.so to the graceful cluster"
tally_try submit --coordinator "$gaddr" --token-file "$CL_TOKEN_FILE" wordcount -m 3 -r 2 -o "$T/g-2" "$T/clean.txt"
assert_eq "$RC" 0 "submit of wordcount to the graceful cluster"
tally_try submit --coordinator "$gaddr" --token-file "$CL_TOKEN_FILE" "$T/linelen_segv.so" --max-attempts 1 -m 2 -r 1 \
    -o "$T/g-3" "$T/in.txt"
assert_eq "$RC" 1 "submit of a job that crashes with --max-attempts 1"
kill -TERM "$gw" "$gc"
gone() { ! cl_alive "$1"; }
poll_until 30 "worker g1 to exit after SIGTERM" gone "$gw"
poll_until 30 "the coordinator to exit after SIGTERM" gone "$gc"
wrc=0 crc=0
wait "$gw" || wrc=$?
wait "$gc" || crc=$?
assert_eq "$wrc" 0 "worker exit status after SIGTERM (see $CL/g1.wlog: $(tail -n 5 "$CL/g1.wlog"))"
assert_eq "$crc" 0 "coordinator exit status after SIGTERM ($(tail -n 5 "$CL/g-coord.log"))"
# (The segfaulting job's executors print sanitizer reports on purpose; those are not at issue.)
if grep -E 'executor [0-9]+ ended with|LeakSanitizer' "$CL/g1.wlog" "$CL/g-coord.log"; then
    fail "a process or an executor did not end cleanly"
fi
[ "$(cat "$CL/g1.work/keep.txt" 2>/dev/null)" = precious ] ||
    fail "the worker removed its --work-dir $CL/g1.work or what it held (only its own directory in it may go)"
[ ! -e "$CL/g1.work/tally-worker-g1" ] || fail "the worker left its work dir behind"
echo "cluster_userjob: all cases passed"
