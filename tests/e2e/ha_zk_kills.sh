#!/usr/bin/env bash
# ha_zk_kills.sh - the leader killed again and again (issue 8, test 2): a 250 MB word count
# with M=100, R=20 on three workers while the coordinator that leads is SIGKILLed KILLS times
# (default 10), each new leader only once it has assigned work; a replacement coordinator
# joins after every kill, as Kubernetes would restart the pod. The job must finish with
# `tally run`'s answer and no committed task may run twice (from the attempts in status --json).
# With FAILOVER_OUT=FILE each kill's failover time (SIGKILL to the first assignment by the next
# leader, from the attempts' start times) is appended to FILE: bench/failover.sh uses that.
. "$(dirname "$0")/cluster_lib.sh"
. "$(dirname "$0")/zk_lib.sh"

KILLS=${KILLS:-10}
MAPS=${MAPS:-100}
REDUCES=${REDUCES:-20}
WORKER_DELAY_MS=${WORKER_DELAY_MS:-600} # each task waits up to this long, so that the job outlasts every kill
SESSION_MS=${SESSION_MS:-2000}
if slow; then size=40M; else size=250M; fi
gen_ok text --size "$size" --seed 93 -o "$T/in.txt"
step "the local answer ($size)"
cl_answer "$T/ans.txt" wordcount -m "$MAPS" -r "$REDUCES" -o "$T/local" "$T/in.txt"
rm -rf "$T/local"

zk_start z1
ZK="127.0.0.1:$ZK_PORT/kills"
ZK_COORD_ARGS=(--worker-timeout-ms 5000)
start_coordinator() { zk_start_coordinator "$@"; }
CL_COORD="zk://$ZK"
leader() { zk_leader; }

step "three coordinators, three workers"
for i in 1 2 3; do start_coordinator; done
poll_until 20 "a leader" leader
delay=()
[ "$WORKER_DELAY_MS" = 0 ] || delay=(--chaos-delay 1 --chaos-max-delay-ms "$WORKER_DELAY_MS")
for i in 1 2 3; do cl_start_worker "w$i" --slots 2 "${delay[@]}"; done

"$TALLY" submit --coordinator "zk://$ZK" --token-file "$CL_TOKEN_FILE" --coordinator-timeout-ms 60000 wordcount \
    -m "$MAPS" -r "$REDUCES" -o "$T/out" "$T/in.txt" >"$T/submit.out" 2>"$T/submit.err" &
submit=$!
: >"$T/kills"
# cl_q_started MS: the leader has assigned work since wall-clock MS (or the job is over).
cl_q_started() {
    cl_q "bool(d['jobs']) and (d['jobs'][-1]['state'] != 'running' or any(a['start_ms'] >= $1 for t in d['jobs'][-1]['tasks'] for a in t['attempts']))" >/dev/null
}
since=0
kills=0
for k in $(seq 1 "$KILLS"); do
    poll_until 60 "the leader to assign work (kill $k)" cl_q_started "$since"
    state=$(cl_q 'd["jobs"][-1]["state"]' || true)
    [ "$state" = running ] || break
    l=$(leader)
    kill -KILL "${CPID[$l]}"
    # After the kill: an attempt started from here on was started by the next leader.
    since=$("$PYTHON" -c 'import time; print(int(time.time() * 1000))')
    echo "$since $l" >>"$T/kills"
    kills=$k
    start_coordinator
done
step "$kills leaders killed; waiting for the job"
wait "$submit" || fail "the waiting submit exited $? after $kills failovers: $(cat "$T/submit.err")"
[ "$kills" = "$KILLS" ] || fail "the job finished after $kills of $KILLS kills (make it longer: WORKER_DELAY_MS)"
cl_same "$T/out" "$T/ans.txt"
cl_status >"$T/final.json"
"$PYTHON" - "$T/final.json" "$T/kills" "${FAILOVER_OUT:-}" <<'PY' || fail "a committed task ran twice"
import json, sys
d = json.load(open(sys.argv[1]))
job = d["jobs"][-1]
assert job["state"] == "succeeded", job["state"]
starts = sorted(a["start_ms"] for t in job["tasks"] for a in t["attempts"])
redone = 0
for t in job["tasks"]:
    ok = [a for a in t["attempts"] if a["state"] == "succeeded"]
    assert len(ok) == 1, ("task %s %d committed %d times" % (t["phase"], t["index"], len(ok)))
    redone += len(t["attempts"]) - 1
kills = [int(l.split()[0]) for l in open(sys.argv[2]) if l.strip()]
times = []
for k in kills:
    after = [s for s in starts if s >= k]
    if after: times.append(after[0] - k)
print("%d kills; failover (SIGKILL to the next leader's first assignment) ms: %s; extra attempts (killed "
      "running ones re-run): %d; committed tasks redone: 0" % (len(kills), times, redone))
if sys.argv[3]:
    with open(sys.argv[3], "a") as f:
        for t in times: f.write("%d\n" % t)
PY
echo "ok"
