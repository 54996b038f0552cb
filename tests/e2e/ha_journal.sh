#!/usr/bin/env bash
# ha_journal.sh - `tally coordinator --state-dir DIR` (issue 8, tests 4 and 6): a coordinator
# SIGKILLed mid-job and restarted on the same DIR finishes the job without re-running the tasks
# that had committed, and the waiting submit exits 0; the finished job stays in the history
# across restarts; a torn last journal record is ignored; a damaged journal or a record that
# makes no sense stops the coordinator with an error that names the file and the offset.
. "$(dirname "$0")/cluster_lib.sh"

STATE=$CL/state
gen_ok text --size 4M --seed 81 -o "$T/in.txt"
step "the local answer"
cl_answer "$T/ans.txt" wordcount -m 8 -r 3 -o "$T/local" "$T/in.txt"

# restart_coordinator: SIGKILLs the coordinator and starts it again on the same port and DIR.
restart_coordinator() {
    local port=${CL_COORD##*:}
    kill -KILL "$CL_COORD_PID" 2>/dev/null || true
    poll_until 10 "the coordinator to die" bash -c "! kill -0 $CL_COORD_PID 2>/dev/null"
    cl_start_coordinator --listen "127.0.0.1:$port" --heartbeat-ms 100 --worker-timeout-ms 3000 --state-dir "$STATE"
}

step "a coordinator with --state-dir, two slow workers (each task waits up to 600 ms)"
cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 3000 --state-dir "$STATE"
for i in 1 2; do cl_start_worker "w$i" --slots 1 --chaos-delay 1 --chaos-max-delay-ms 600 --chaos-seed $((i * 7)); done

step "submit, SIGKILL the coordinator once 3 maps have committed, restart it on the same DIR"
"$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" --coordinator-timeout-ms 30000 wordcount \
    -m 8 -r 3 -o "$T/out" "$T/in.txt" >"$T/submit.out" 2>"$T/submit.err" &
submit=$!
cl_until 30 "3 maps committed" 'j and j["maps_done"] >= 3'
cl_status >"$T/before.json"
restart_coordinator
wait "$submit" || fail "the waiting submit exited $? after the restart: $(cat "$T/submit.err")"
grep -q "succeeded" "$T/submit.out" || fail "submit did not report success: $(cat "$T/submit.out")"
cl_same "$T/out" "$T/ans.txt"
grep -q "resumed: " "$CL/coord.log" || fail "no 'resumed' log line after the restart"
cl_status >"$T/after.json"
"$PYTHON" - "$T/before.json" "$T/after.json" <<'PY' || fail "a task committed before the restart ran again"
import json, sys
before = json.load(open(sys.argv[1]))["jobs"][0]
after = json.load(open(sys.argv[2]))["jobs"][0]
assert after["state"] == "succeeded", after["state"]
done = {(t["phase"], t["index"]): [a["id"] for a in t["attempts"] if a["state"] == "succeeded"]
        for t in before["tasks"] if t["state"] == "succeeded"}
assert done, "nothing had committed before the kill"
for t in after["tasks"]:
    k = (t["phase"], t["index"])
    ok = [a["id"] for a in t["attempts"] if a["state"] == "succeeded"]
    assert len(ok) == 1, (k, ok)
    if k in done:
        assert ok == done[k], (k, done[k], ok)
        assert len(t["attempts"]) == len([a for a in before["tasks"] if (a["phase"], a["index"]) == k][0]["attempts"]), \
            ("committed task %s got new attempts after the restart" % (k,), t["attempts"])
print("%d tasks committed before the kill, none ran again" % len(done))
PY
[ "$(ls "$T/out" | grep -c '^_SUCCESS$')" = 1 ] || fail "_SUCCESS is not there exactly once"

step "the finished job stays listed after another restart"
job=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0]["id"])' "$T/after.json")
restart_coordinator
CL_Q_JOB=$job cl_q 'j["state"] == "succeeded"' >/dev/null || fail "job $job is not listed as succeeded after a restart"

step "a torn last record is ignored"
kill -KILL "$CL_COORD_PID"
printf '0000004f 1234abcd %s {"t":"ok","a":' "$job" >>"$STATE/journal"
restart_coordinator
grep -q "torn last record" "$CL/coord.log" || fail "the torn record was not reported"
CL_Q_JOB=$job cl_q 'j["state"] == "succeeded"' >/dev/null || fail "job $job lost after the torn record"

step "a damaged journal stops the coordinator with an error naming the offset"
kill -KILL "$CL_COORD_PID"
cp -r "$STATE" "$T/damaged"
"$PYTHON" - "$T/damaged/journal" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
first = b.index(b"\n") + 1          # the second record starts here
b[first + 30] ^= 0x01               # one bit inside its payload
open(p, "wb").write(bytes(b))
PY
tally_try coordinator --listen 127.0.0.1:0 --token-file "$CL_TOKEN_FILE" --state-dir "$T/damaged"
[ "$RC" != 0 ] || fail "a coordinator started on a damaged journal"
grep -qE "journal: offset [0-9]+: a checksum mismatch, with valid records after it" "$T/stderr" || fail "no clear error: $(cat "$T/stderr")"

step "a record that makes no sense is an error too, never a wrong job"
cp -r "$STATE" "$T/bad"
"$PYTHON" - "$T/bad/journal" "$job" <<'PY'
import sys, zlib
p, job = sys.argv[1], sys.argv[2]
payload = ('%s {"t":"start","j":"%s","a":999,"task":0,"w":"w1","ms":1}' % (job, job)).encode()
open(p, "ab").write(b"%08x %08x " % (len(payload), zlib.crc32(payload)) + payload + b"\n")
PY
tally_try coordinator --listen 127.0.0.1:0 --token-file "$CL_TOKEN_FILE" --state-dir "$T/bad"
[ "$RC" != 0 ] || fail "a coordinator started on a journal with a nonsense record"
grep -qE "journal: offset [0-9]+: .*does not replay" "$T/stderr" || fail "no clear error: $(cat "$T/stderr")"

step "two coordinators cannot share one DIR"
restart_coordinator
tally_try coordinator --listen 127.0.0.1:0 --token-file "$CL_TOKEN_FILE" --state-dir "$STATE"
[ "$RC" != 0 ] || fail "a second coordinator started on a DIR in use"
assert_stderr_has "is in use by another coordinator"
echo "ok"
