#!/usr/bin/env bash
# ha_zk_ensemble.sh - a ZooKeeper ensemble of three with one server SIGKILLed (issue 8, test
# 5): two coordinators and two workers keep working, a job running across the kill and one
# submitted after it both give `tally run`'s answer.
. "$(dirname "$0")/cluster_lib.sh"
. "$(dirname "$0")/zk_lib.sh"

gen_ok text --size 3M --seed 95 -o "$T/in.txt"
cl_answer "$T/ans.txt" wordcount -m 6 -r 2 -o "$T/local" "$T/in.txt"
step "a ZooKeeper ensemble of three"
zk_start_ensemble 3
ZK="$ZK_HOSTS/ens"
ADDRS=()
for i in 1 2; do
    : >"$CL/coord$i.out"
    cl_spawn "$CL/coord$i.log" "$CL/coord$i.out" "$TALLY" coordinator --listen 127.0.0.1:0 --token-file "$CL_TOKEN_FILE" \
        --zookeeper "$ZK" --zk-session-ms 4000 --heartbeat-ms 100 --worker-timeout-ms 4000
    printed() { grep -q '^coordinator listening on ' "$CL/coord$i.out"; }
    poll_until 20 "coordinator $i to print its address" printed
done
CL_COORD="zk://$ZK"
leader() { cl_q '[m["address"] for m in d["coordinators"] if m["role"] == "leader" and m.get("state")][0]'; }
poll_until 30 "a leader" leader
for i in 1 2; do cl_start_worker "w$i" --slots 2 --chaos-delay 1 --chaos-max-delay-ms 300 --chaos-seed $((i * 5)); done

step "a job, with one ZooKeeper server SIGKILLed while it runs"
"$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" --coordinator-timeout-ms 30000 wordcount \
    -m 6 -r 2 -o "$T/out1" "$T/in.txt" >"$T/s1.out" 2>"$T/s1.err" &
submit=$!
cl_until 30 "the job running" "j and j['state'] == 'running' and j['maps_done'] >= 1"
kill -KILL "${ZK_PIDS[1]}"
wait "$submit" || fail "the submit exited $? after a ZooKeeper server died: $(cat "$T/s1.err")"
cl_same "$T/out1" "$T/ans.txt"
step "and a job submitted after it"
cl_submit_ok --coordinator-timeout-ms 30000 wordcount -m 6 -r 2 -o "$T/out2" "$T/in.txt"
cl_same "$T/out2" "$T/ans.txt"
poll_until 20 "a leader" leader
echo "ok"
