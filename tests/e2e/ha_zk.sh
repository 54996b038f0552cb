#!/usr/bin/env bash
# ha_zk.sh - coordinators elected through a real ZooKeeper (issue 8, tests 1 and 3): three
# coordinators and three workers; the leader SIGKILLed during the map phase, during the
# reduce phase and during the job commit: the waiting submit exits 0, the output equals
# `tally run`'s, no committed task
# runs twice (from the attempts in status --json); a leader frozen with SIGSTOP past the session
# timeout is replaced, and after SIGCONT it steps down without writing anything.
. "$(dirname "$0")/cluster_lib.sh"
. "$(dirname "$0")/zk_lib.sh"

SESSION_MS=2000
gen_ok text --size 4M --seed 91 -o "$T/in.txt"
step "the local answer"
cl_answer "$T/ans.txt" wordcount -m 8 -r 3 -o "$T/local" "$T/in.txt"

zk_start z1
ZK="127.0.0.1:$ZK_PORT/ha-test"
ZK_COORD_ENV=(TALLY_FAULT_COMMIT_PAUSE_MS=1500) # the job commit pauses: the test kills the leader there
ZK_COORD_ARGS=(--worker-timeout-ms 4000)
start_coordinator() { zk_start_coordinator "$@"; }
leader() { zk_leader; }

step "three coordinators on one ZooKeeper, three workers that know them all"
for i in 1 2 3; do start_coordinator; done
CL_COORD=$(IFS=,; echo "${ADDRS[*]}")
poll_until 20 "a leader" leader
for i in 1 2 3; do cl_start_worker "w$i" --slots 1 --chaos-delay 1 --chaos-max-delay-ms 500 --chaos-seed $((i * 11)); done

# run_and_kill WHAT CONDITION SIGNAL: submits through zk://, kills the leader once CONDITION holds.
run_and_kill() {
    local what=$1 cond=$2 out=$T/out-$1
    rm -rf "$out"
    "$TALLY" submit --coordinator "zk://$ZK" --token-file "$CL_TOKEN_FILE" --coordinator-timeout-ms 30000 wordcount \
        -m 8 -r 3 -o "$out" "$T/in.txt" >"$T/submit-$what.out" 2>"$T/submit-$what.err" &
    local submit=$!
    local old
    old=$(leader) # now: during the commit the leader holds its lock and answers late
    if [ "$cond" = commit ]; then
        # The leader holds its lock through the commit: its log says when it is in there.
        in_commit() { grep -q "pausing .* in the job commit of $out" "$CL"/coord*.log; }
        poll_until 60 "$what" in_commit
    else
        # The newest job (the earlier ones stay listed, in submission order).
        cl_until 60 "$what" "(lambda j: bool(j) and j['state'] == 'running' and ($cond))(d['jobs'][-1] if d['jobs'] else None)"
    fi
    [ "$cond" = commit ] || cl_status >"$T/before-$what.json"
    [ "$cond" != commit ] || echo '{"jobs":[{"tasks":[]}]}' >"$T/before-$what.json" # (all committed)
    step "SIGKILL the leader $old ($what)"
    kill -KILL "${CPID[$old]}"
    wait "$submit" || fail "the waiting submit exited $? after the failover: $(cat "$T/submit-$what.err")"
    cl_same "$out" "$T/ans.txt"
    [ ! -e "$out/_temporary" ] || fail "$out/_temporary is left after the job ($what)"
    [ "$(ls "$out" | grep -vcE '^(part-[0-9]{5}|_SUCCESS|_counters\.json)$')" = 0 ] || fail "stray files in $out: $(ls "$out")"
    local new
    other_leader() { local l; l=$(leader) && [ "$l" != "$old" ]; }
    poll_until 30 "a new leader after $what" other_leader
    if ! new=$(leader); then
        for a in "${ADDRS[@]}"; do
            echo "$a: $(curl -s -m 3 -H "Authorization: Bearer $CL_TOKEN" "http://$a/v1/status" | head -c 200)" >&2
        done
        fail "no leader found through the list after the failover"
    fi
    [ "$new" != "$old" ] || fail "the dead leader is still listed as the leader"
    cl_status >"$T/after-$what.json"
    "$PYTHON" - "$T/before-$what.json" "$T/after-$what.json" <<'PY' || fail "a committed task ran twice ($what)"
import json, sys
before = json.load(open(sys.argv[1]))["jobs"][-1]
after = [j for j in json.load(open(sys.argv[2]))["jobs"] if j["id"] == before.get("id")] or \
    [json.load(open(sys.argv[2]))["jobs"][-1]]
after = after[0]
assert after["state"] == "succeeded", after["state"]
done = {(t["phase"], t["index"]): t for t in before["tasks"] if t["state"] == "succeeded"}
for t in after["tasks"]:
    k = (t["phase"], t["index"])
    ok = [a["id"] for a in t["attempts"] if a["state"] == "succeeded"]
    assert len(ok) == 1, (k, ok)
    if k in done:
        assert [a["id"] for a in done[k]["attempts"]] == [a["id"] for a in t["attempts"]], (k, t["attempts"])
print("%d tasks committed before the kill, none ran again" % len(done))
PY
    start_coordinator "${old##*:}" # a replacement on the same address, as Kubernetes would restart it
}

run_and_kill "map-phase" "j['maps_done'] >= 2"
run_and_kill "reduce-phase" "j['maps_done'] == j['maps_total'] and j['reduces_done'] < j['reduces_total']"
# Every reduce committed and the job not over: the leader is in the job commit (paused there by
# TALLY_FAULT_COMMIT_PAUSE_MS after its first part); the next leader finishes it.
run_and_kill "job-commit" commit

step "a leader frozen with SIGSTOP past the session timeout is replaced, and steps down after SIGCONT"
rm -rf "$T/out-stop"
"$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" --coordinator-timeout-ms 30000 wordcount \
    -m 8 -r 3 -o "$T/out-stop" "$T/in.txt" >"$T/submit-stop.out" 2>"$T/submit-stop.err" &
submit=$!
cl_until 60 "the job running" "(lambda j: bool(j) and j['state'] == 'running' and j['maps_done'] >= 1)(d['jobs'][-1] if d['jobs'] else None)"
old=$(leader)
oldpid=${CPID[$old]}
oldlog=${COORD_LOG[$old]}
kill -STOP "$oldpid"
# A frozen process still accepts connections (the kernel does) but never answers: a client
# given a list waits out its timeout on it, while zk:// asks ZooKeeper, which no longer
# names it once its session has expired. Status is asked through zk:// from here on.
CL_COORD="zk://$ZK"
newleader() { local l; l=$(leader) && [ "$l" != "$old" ]; }
poll_until 30 "a new leader other than the frozen $old" newleader
kill -CONT "$oldpid"
stepped() { grep -q "stepping down" "$oldlog" && cl_alive "$oldpid"; }
deadline=$((SECONDS + 30))
until stepped; do
    [ $SECONDS -lt $deadline ] || fail "the resumed old leader did not step down in 30 s: $(tail -n 8 "$oldlog")"
    sleep 0.05
done
wait "$submit" || fail "the submit exited $? after the frozen leader was replaced: $(cat "$T/submit-stop.err")"
cl_same "$T/out-stop" "$T/ans.txt"
n=$(ls "$T/out-stop" | grep -c '^_SUCCESS$')
[ "$n" = 1 ] || fail "_SUCCESS $n times"
job=$(sed -n 's/^tally: job \([^ ]*\) succeeded.*/\1/p' "$T/submit-stop.out")
! grep -q "job=$job succeeded" "$oldlog" || fail "the deposed leader committed job $job"
# It answers as a follower now.
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CL_TOKEN" "http://$old/v1/status")
[ "$code" = 421 ] || fail "the old leader answers /v1/status with HTTP $code, expected 421 (a follower)"
step "unexpected znode contents stop a takeover with an error naming the znode (test 6)"
for a in "${!CPID[@]}"; do kill -KILL "${CPID[$a]}" 2>/dev/null || true; done
ZK_HOSTPORT=${ZK%%/*}
zkcli() { java -cp "$ZK_CP" org.apache.zookeeper.ZooKeeperMain -server "$ZK_HOSTPORT" "$@" >>"$CL/zkcli.log" 2>&1; }
zkcli create /ha-test/tally/jobs/j1-999999 ""
zkcli create /ha-test/tally/jobs/j1-999999/r-0000000000 garbage
set +e
timeout 60 "$TALLY" coordinator --listen 127.0.0.1:0 --token-file "$CL_TOKEN_FILE" --zookeeper "$ZK" \
    --zk-session-ms "$SESSION_MS" >"$T/bad.out" 2>"$T/bad.err"
rc=$?
set -e
[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "a coordinator took over bad state (exit $rc): $(tail -n 3 "$T/bad.err")"
grep -q "znode /ha-test/tally/jobs/j1-999999/r-0000000000: unexpected contents" "$T/bad.err" ||
    fail "no clear error naming the znode: $(tail -n 3 "$T/bad.err")"
echo "ok"
