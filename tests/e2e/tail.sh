#!/usr/bin/env bash
# tail.sh - tail latency in the cluster: a deterministically slow worker (--chaos-slow) is beaten
# by speculative copies (also for a job's single reduce), put on probation and brought back when
# it is fast again; without noise nothing is copied; under crashes and delays copies keep the
# output exact. Issue 9's tests 1, 2, 3, 4 and 6.
# run.sh: alone
. "$(dirname "$0")/cluster_lib.sh"

if slow; then big=3M; else big=6M; fi
gen_ok text --size "$big" --seed 91 -o "$T/big.txt"
# tests 1 and 2: attempts must run long enough on the slow worker for a copy to be worth it
if slow; then big2=12M; else big2=24M; fi
gen_ok text --size "$big2" --seed 92 -o "$T/big2.txt"
"$TALLY" gen readings --shards 5 -o "$T/readings" >/dev/null || fail "tally gen readings failed"
SMALL=(aggregate --where 'property==1' --group-by house_id,household_id,plug_id
    --agg 'count,avg(value),min(value),max(value)' -m 10 -r 2)
step "the local answers"
cl_answer "$T/ans-big.txt" wordcount -m 12 -r 3 -o "$T/local-big" "$T/big.txt"
cl_answer "$T/ans-big2.txt" wordcount -m 6 -r 1 -o "$T/local-big2" "$T/big2.txt"
cl_answer "$T/ans-small.txt" "${SMALL[@]}" -o "$T/local-small" "$T/readings"

# job_q ID EXPR: cl_q over one job's status.
job_q() { CL_Q_JOB=$1 cl_q "$2"; }

# dump_job ID: its attempts, on stderr (for failures)
dump_job() {
    job_q "$1" '[(t["phase"][0] + str(t["index"]), [(x["worker"], x["state"], x["end_ms"] - x["start_ms"], x["speculative"])
        for x in t["attempts"]]) for t in j["tasks"]]' >&2 || true
}

# one_commit_per_task ID: every task has exactly one succeeded attempt.
one_commit_per_task() {
    job_q "$1" 'all(sum(x["state"] == "succeeded" for x in t["attempts"]) == 1 for t in j["tasks"])' >/dev/null ||
        fail "job $1: a task without exactly one committed attempt"
}

chaos() { # chaos WORKER FACTOR: the worker's runtime switch (POST /v1/chaos)
    curl -sf -H "Authorization: Bearer $(cat "$CL_TOKEN_FILE")" -d "{\"slow\": $2}" \
        "http://$(cl_q "w['$1']['address']")/v1/chaos" >/dev/null || fail "POST /v1/chaos to $1 failed"
}

# ---- Test 1: one worker 10x slower ---------------------------------------------------------------
step "test 1: one worker at --chaos-slow 10: copies beat it, the output is exact"
# Probation off: here the copies alone must do it (probation is test 3).
cl_start_coordinator --heartbeat-ms 100 --probation off
cl_start_worker s1 --slots 1 --chaos-slow 10
t0=$(date +%s%3N)
cl_submit_ok wordcount -m 6 -r 3 -o "$T/alone" "$T/big2.txt"
alone=$(($(date +%s%3N) - t0))
cl_same "$T/alone" "$T/ans-big2.txt"
cl_start_worker f1 --slots 1
cl_start_worker f2 --slots 1
cl_until 20 "f1 and f2 to register" 'w.get("f1", {}).get("state") == "alive" and w.get("f2", {}).get("state") == "alive"'
t0=$(date +%s%3N)
cl_submit_ok wordcount -m 6 -r 3 -o "$T/spec" "$T/big2.txt"
took=$(($(date +%s%3N) - t0))
id=$CL_JOB
echo "the slow worker alone: $alone ms; with two fast workers and speculation: $took ms"
cl_same "$T/spec" "$T/ans-big2.txt"
one_commit_per_task "$id"
n=$(job_q "$id" 'j["summary"]["speculative"]') || { dump_job "$id"; fail "no speculative attempt in job $id"; }
echo "speculative attempts: $n"
[ "$took" -lt $((alone / 3)) ] || fail "the job took $took ms, not well under the slow worker's $alone ms"
job_q "$id" 'any(x["speculative"] and x["state"] == "succeeded" for t in j["tasks"] for x in t["attempts"])' >/dev/null ||
    fail "no speculative copy won"
grep -q 'speculative copy' "$CL/coord.log" || fail "the coordinator did not log its copies"
cl_metric() { curl -sf -H "Authorization: Bearer $(cat "$CL_TOKEN_FILE")" "http://$CL_COORD/metrics" | grep "^$1" ; }
cl_metric 'tally_speculative_attempts_total{event="launched",reason="straggler"}' | awk '{ exit !($2 > 0) }' ||
    fail "tally_speculative_attempts_total{event=\"launched\"} is not positive"
cl_metric 'tally_speculative_attempts_total{event="won",reason="straggler"}' | awk '{ exit !($2 > 0) }' ||
    fail "tally_speculative_attempts_total{event=\"won\"} is not positive"

# ---- Test 2: R=1, the single reduce on the slow worker --------------------------------------------
step "test 2: R=1: the job's only reduce, run by the slow worker, is copied and the copy wins"
# Where the reduce lands is up to the heartbeats: run the job until it lands on s1 (each run has
# it there with probability about 1/3).
landed=""
for run in $(seq 1 50); do
    cl_submit_ok wordcount -m 6 -r 1 -o "$T/r1-$run" "$T/big2.txt"
    cl_same "$T/r1-$run" "$T/ans-big2.txt"
    one_commit_per_task "$CL_JOB"
    if job_q "$CL_JOB" 'next(t for t in j["tasks"] if t["phase"] == "reduce")["attempts"][0]["worker"] == "s1"' >/dev/null; then
        landed=$CL_JOB
        break
    fi
done
[ -n "$landed" ] || fail "in 50 runs the reduce never started on s1"
echo "run $run: the reduce started on s1"
job_q "$landed" 'any(x["speculative"] and x["state"] == "succeeded" and x["worker"] != "s1"
    for t in j["tasks"] if t["phase"] == "reduce" for x in t["attempts"])' >/dev/null ||
    { dump_job "$landed"; cl_q 'w["s1"]["health"]' >&2; fail "the reduce on s1 was not copied, or the copy did not win"; }
job_q "$landed" 'next(t for t in j["tasks"] if t["phase"] == "reduce")["attempts"][0]["state"] == "killed"' >/dev/null ||
    fail "the original reduce on s1 was not killed when its copy committed"
cl_reset

# ---- Test 3: probation -----------------------------------------------------------------------------
# 10x: these 5 ms attempts at 5x score only about 2.5 against a slow factor of 2, too close to
# call on a machine the test runner loads with another test (bench/noisy.sh measures the 5x
# worker's "within 3 iterations" target on a quiet machine).
step "test 3: a worker at --chaos-slow 10 goes on probation within 5 jobs, and back when it is fast"
cl_start_coordinator --heartbeat-ms 100 --probation-ms 500 --probe-every-ms 200
cl_start_worker s1 --slots 1 --chaos-slow 10
cl_start_worker f1 --slots 1
cl_start_worker f2 --slots 1
cl_until 20 "three workers" 'len([x for x in d["workers"] if x["state"] == "alive"]) == 3'
on=""
for it in 1 2 3 4 5; do
    cl_submit_ok "${SMALL[@]}" -o "$T/p-$it" "$T/readings"
    cl_same "$T/p-$it" "$T/ans-small.txt"
    if cl_q 'w["s1"]["health"]["state"] == "probation"' >/dev/null; then
        on=$it
        break
    fi
done
[ -n "$on" ] || { cl_status >&2; fail "s1 (10x slower) was not on probation after 5 jobs"; }
echo "s1 on probation after job $on"
grep -q 'worker=s1 put on probation' "$CL/coord.log" || fail "the probation was not logged with its reason"
cl_q 'w["f1"]["health"]["state"] == "ok" and w["f2"]["health"]["state"] == "ok"' >/dev/null ||
    fail "a fast worker went on probation too"
# On probation: only probes (at most one attempt at a time, one per --probe-every-ms).
for it in 1 2 3; do
    cl_submit_ok "${SMALL[@]}" -o "$T/q-$it" "$T/readings"
    cl_same "$T/q-$it" "$T/ans-small.txt"
    n=$(job_q "$CL_JOB" 'sum(x["worker"] == "s1" for t in j["tasks"] for x in t["attempts"])') || true # 0 is "false"
    [ "$n" -le 2 ] || fail "s1 on probation ran $n attempts of a 12-task job"
done
cl_q 'w["s1"]["health"]["state"] == "probation"' >/dev/null || fail "s1 left probation while still slow"
# Fast again (the runtime switch): its probes are fast, it comes back and takes work again.
chaos s1 1
back=""
for it in $(seq 1 40); do
    cl_submit_ok "${SMALL[@]}" -o "$T/b-$it" "$T/readings"
    cl_same "$T/b-$it" "$T/ans-small.txt"
    if cl_q 'w["s1"]["health"]["state"] == "ok"' >/dev/null; then
        back=$it
        break
    fi
done
[ -n "$back" ] || { cl_status >&2; fail "s1 did not come back from probation in 40 jobs after turning fast"; }
echo "s1 back after $back more jobs"
grep -q 'worker=s1 back from probation' "$CL/coord.log" || fail "the end of the probation was not logged"
cl_submit_ok wordcount -m 12 -r 3 -o "$T/after" "$T/big.txt"
cl_same "$T/after" "$T/ans-big.txt"
job_q "$CL_JOB" 'sum(x["worker"] == "s1" for t in j["tasks"] for x in t["attempts"]) >= 2' >/dev/null ||
    fail "s1 is back but got (almost) no attempts of a 15-task job"
cl_metric 'tally_probation_total{event="exit"}' | awk '{ exit !($2 >= 1) }' || fail "tally_probation_total{event=\"exit\"} is 0"
cl_reset

# ---- Test 4: no noise ------------------------------------------------------------------------------
step "test 4: no noise, 20 jobs: no speculative attempt at all"
cl_start_coordinator --heartbeat-ms 100
for i in 1 2 3; do cl_start_worker "n$i" --slots 1; done
cl_until 20 "three workers" 'len([x for x in d["workers"] if x["state"] == "alive"]) == 3'
for it in $(seq 1 20); do
    cl_submit_ok "${SMALL[@]}" -o "$T/n-$it" "$T/readings"
done
cl_same "$T/n-20" "$T/ans-small.txt"
n=$(cl_q 'sum(x["speculative"] for j in d["jobs"] for t in j["tasks"] for x in t["attempts"])') || true
[ "$n" = 0 ] || fail "$n speculative attempts in 20 jobs without noise"
# Probation is not asserted here: the test runner runs another test beside this one on this
# small machine, which is noise a worker may rightly be put on probation for (bench/noisy.sh
# counts probations in its quiet runs, on a machine to itself).
echo "probations during the 20 jobs: $(cl_q 'sum(x["health"]["probations"] for x in d["workers"])' || true)"

# ---- Fair sharing ------------------------------------------------------------------------------------
step "fair sharing: a small job submitted behind a big one gets slots while the big one still has maps to run"
# The big job reads big2.txt four times over (80 maps): it must still have maps to start when the
# small one arrives, a submit (client, setup, probe) later.
for k in 1 2 3 4; do ln -sf "$T/big2.txt" "$T/big2-$k.txt"; done
big=$("$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" --detach wordcount -m 80 -r 3 \
    -o "$T/fair-big" "$T/big2-1.txt" "$T/big2-2.txt" "$T/big2-3.txt" "$T/big2-4.txt") || fail "submit --detach failed"
CL_Q_JOB=$big cl_until 30 "the big job to run" 'j["state"] == "running" and j["maps_done"] >= 1'
cl_submit_ok "${SMALL[@]}" -o "$T/fair-small" "$T/readings"
small=$CL_JOB
cl_same "$T/fair-small" "$T/ans-small.txt"
cl_job_wait 60 "$big"
assert_eq "$CL_STATE" succeeded "state of the big job"
cat "$T/fair-big"/part-* | sort >"$T/fair-big.txt"
"$PYTHON" - "$T/ans-big2.txt" "$T/fair-big.txt" <<'EOF' || fail "the big job's counts are not 4 x big2.txt's"
import sys
a = dict(l.rsplit("\t", 1) for l in open(sys.argv[1]).read().splitlines())
b = dict(l.rsplit("\t", 1) for l in open(sys.argv[2]).read().splitlines())
sys.exit(0 if a.keys() == b.keys() and all(int(b[k]) == 4 * int(a[k]) for k in a) else 1)
EOF
"$PYTHON" - "$(cl_status)" "$big" "$small" <<'EOF' || fail "the small job waited for the big one's maps (first come, first served)"
import json, sys
d = json.loads(sys.argv[1])
jobs = {j["id"]: j for j in d["jobs"]}
big, small = jobs[sys.argv[2]], jobs[sys.argv[3]]
first_small = min(x["start_ms"] for t in small["tasks"] for x in t["attempts"])
last_big_map = max(x["start_ms"] for t in big["tasks"] if t["phase"] == "map" for x in t["attempts"])
print(f"small job: submitted {small['submit_ms'] - big['submit_ms']} ms after the big one, first attempt after "
      f"{first_small - small['submit_ms']} ms, done {small['end_ms'] - small['submit_ms']} ms after its submit; "
      f"the big job started its last map {last_big_map - first_small} ms after that")
sys.exit(0 if first_small < last_big_map and small["end_ms"] < big["end_ms"] else 1)
EOF
cl_reset

# ---- Test 6: speculation under crashes and delays ---------------------------------------------------
step "test 6: crashes and delays (as in the crash test) with speculation: the output stays exact"
cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 1000
seed=${CL_SEED:-$((RANDOM * 1000))}
echo "chaos seeds start at $seed"
for i in 1 2 3; do
    cl_start_worker_loop "c$i" --slots 2 --chaos-crash 0.2 --chaos-delay 0.4 --chaos-max-delay-ms 600 \
        --chaos-seed $((seed + i * 100))
done
if slow; then runs=1; else runs=3; fi
copies=0
for run in $(seq 1 $runs); do
    cl_submit_ok wordcount -m 12 -r 3 -o "$T/c-$run" "$T/big.txt"
    cl_same "$T/c-$run" "$T/ans-big.txt"
    # A map may succeed twice here (its output lost with a crashed worker, then run again);
    # a reduce commits once.
    job_q "$CL_JOB" 'all(sum(x["state"] == "succeeded" for x in t["attempts"]) == 1 for t in j["tasks"] if t["phase"] == "reduce")' \
        >/dev/null || fail "job $CL_JOB: a reduce task without exactly one committed attempt"
    copies=$((copies + $(job_q "$CL_JOB" 'j["summary"]["speculative"]' || true)))
done
echo "$copies speculative attempts in $runs jobs, $(($(cl_restarts c1) + $(cl_restarts c2) + $(cl_restarts c3))) worker restarts"
[ "$copies" -ge 1 ] || fail "no speculative attempt despite the delays: the test proved nothing"
echo "tail: all passed"
