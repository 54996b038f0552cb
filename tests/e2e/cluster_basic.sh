#!/usr/bin/env bash
# cluster_basic.sh - a cluster without faults: results equal `tally run`'s, attempts run in
# parallel on every worker and in both phases, one attempt per task, submit returns only once
# _SUCCESS exists and the cluster keeps serving, every endpoint refuses a missing or wrong
# token without changing anything, and the /metrics pages pass `promtool check metrics`.
. "$(dirname "$0")/cluster_lib.sh"

# No failures happen here, so a generous worker timeout: a loaded machine must not make a
# worker look dead (which would add attempts and break the M + R count). For the same reason no
# speculation or probation: a worker slowed by the test runner's other test would get copies
# (tail.sh tests those).
JOB_TIMEOUT=60 # seconds one submit may take
cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 15000 --speculation off --probation off

gen_ok text --size 2M --seed 31 -o "$T/gen.txt"
if slow; then big=3M; else big=6M; fi
gen_ok text --size "$big" --seed 32 -o "$T/big.txt"

# check_attempts JOB M R: exactly one attempt per task, all succeeded, every task succeeded.
check_attempts() {
    cl_job_json "$1" "$T/job.json"
    "$PYTHON" - "$T/job.json" "$2" "$3" <<'EOF' || fail "attempts of job $1 are not one succeeded attempt per task"
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
m, r = int(sys.argv[2]), int(sys.argv[3])
atts = [a for t in j["tasks"] for a in t["attempts"]]
bad = [(t["phase"], t["index"], t["state"], [a["state"] for a in t["attempts"]]) for t in j["tasks"]
       if t["state"] != "succeeded" or [a["state"] for a in t["attempts"]] != ["succeeded"]]
print(f"job {j['id']}: {len(atts)} attempts for {m} maps + {r} reduces; counter task_attempts = {j['counters']['task_attempts']}")
ok = (j["state"] == "succeeded" and j["maps_total"] == m and j["reduces_total"] == r and len(atts) == m + r
      and j["counters"]["task_attempts"] == m + r and not bad
      and sum(t["phase"] == "map" for t in j["tasks"]) == m and sum(t["phase"] == "reduce" for t in j["tasks"]) == r)
if bad: print("tasks not succeeded at the first attempt:", bad[:5])
sys.exit(0 if ok else 1)
EOF
}

# check_cluster_alive WORKERS...: the coordinator and these workers still run and are alive.
check_cluster_alive() {
    cl_alive "$CL_COORD_PID" || fail "the coordinator died"
    local n
    for n in "$@"; do
        cl_alive "$(cl_worker_pid "$n")" || fail "worker $n died"
    done
    cl_q 'all(w[n]["state"] == "alive" for n in a)' "$@" >/dev/null || fail "not all of $* alive: $(cl_status)"
}

# ---- Issue test 2: index on 2 workers ---
step "index on 2 workers equals tally run"
cl_start_worker w1 --slots 2
cl_start_worker w2 --slots 2
cl_answer "$T/ans-ix.txt" index -m 4 -r 2 -o "$T/local-ix" "${BOOKS[@]}" "$T/gen.txt"
cl_submit_ok index -m 4 -r 2 -o "$T/ix" "${BOOKS[@]}" "$T/gen.txt"
cl_same "$T/ix" "$T/ans-ix.txt"
grep -q "$T/gen.txt" "$T/ix/part-00000" "$T/ix/part-00001" || fail "the index does not name the input by its path"
check_attempts "$CL_JOB" 4 2
CL_Q_JOB=$CL_JOB cl_q 'set(x["worker"] for t in j["tasks"] for x in t["attempts"]) == {"w1", "w2"}' >/dev/null ||
    fail "the index job did not run on exactly w1 and w2"
check_cluster_alive w1 w2

# ---- Issue test 3: parallelism, attempts overlap on both workers and in both phases ---
step "2 workers x 2 slots: map attempts and reduce attempts overlap on each worker"
cl_answer "$T/ans-big.txt" wordcount -m 8 -r 4 -o "$T/local-big" "$T/big.txt"
cl_submit_ok wordcount -m 8 -r 4 -o "$T/big" "$T/big.txt"
cl_same "$T/big" "$T/ans-big.txt"
check_attempts "$CL_JOB" 8 4
cl_job_json "$CL_JOB" "$T/big.json"
"$PYTHON" - "$T/big.json" <<'EOF' || fail "the attempts did not run in parallel as they should (see above)"
import json, sys
j = json.load(open(sys.argv[1]))
slots = {w["name"]: w["slots"] for w in j["workers"]}
job = j["jobs"][0]

def peak(atts):
    """Most attempts running at one time (an attempt ending at t does not overlap one starting at t)."""
    ev = sorted([(a["start_ms"], 1) for a in atts] + [(a["end_ms"], -1) for a in atts], key=lambda e: (e[0], e[1]))
    n = best = 0
    for _, d in ev:
        n += d
        best = max(best, n)
    return best

ok = True
for phase in ("map", "reduce"):
    atts = [a for t in job["tasks"] if t["phase"] == phase for a in t["attempts"]]
    assert all(a["end_ms"] >= a["start_ms"] > 0 for a in atts), atts
    total = peak(atts)
    per = {n: peak([a for a in atts if a["worker"] == n]) for n in ("w1", "w2")}
    print(f"{phase}: {len(atts)} attempts, at most {total} at once; per worker {per} (slots {slots})")
    for n, p in per.items():
        if p < 2:
            print(f"  {phase} attempts did not overlap on {n}"); ok = False
        if p > slots[n]:
            print(f"  {n} ran {p} {phase} attempts at once on {slots[n]} slots"); ok = False
    if total < 3:
        print(f"  {phase} attempts did not overlap across the workers"); ok = False
# Over the whole job no worker may ever run more attempts than it has slots.
allatts = [a for t in job["tasks"] for a in t["attempts"]]
for n in ("w1", "w2"):
    p = peak([a for a in allatts if a["worker"] == n])
    if p > slots[n]:
        print(f"  {n} ran {p} attempts at once on {slots[n]} slots"); ok = False
sys.exit(0 if ok else 1)
EOF

# ---- Issue test 1: wordcount on 3 workers (a third joins) ---
step "wordcount on 3 workers equals tally run"
cl_start_worker w3 --slots 2
cl_answer "$T/ans-wc.txt" wordcount -m 9 -r 3 -o "$T/local-wc" "$T/gen.txt" "${BOOKS[@]}"
cl_submit_ok wordcount -m 9 -r 3 -o "$T/wc" "$T/gen.txt" "${BOOKS[@]}"
cl_same "$T/wc" "$T/ans-wc.txt"
for r in 0 1 2; do # same partitioner, same sort: each part equals the local one
    p=$(printf 'part-%05d' $r)
    cmp -s "$T/wc/$p" "$T/local-wc/$p" || fail "$p differs from the local run's"
done
check_attempts "$CL_JOB" 9 3
CL_Q_JOB=$CL_JOB cl_q 'all(any(x["worker"] == n for t in j["tasks"] for x in t["attempts"]) for n in a)' w1 w2 w3 \
    >/dev/null || fail "not every worker ran an attempt of the 9 maps and 3 reduces on 6 slots"
check_cluster_alive w1 w2 w3

# ---- Issue test 4: submit returns at _SUCCESS, the cluster keeps serving; --detach, env, cancel ---
step "after three jobs the cluster is alive and runs another (env config, --detach)"
check_cluster_alive w1 w2 w3
id=$(TALLY_COORDINATOR=$CL_COORD TALLY_TOKEN_FILE=$CL_TOKEN_FILE "$TALLY" submit --detach \
    wordcount -m 3 -r 2 -o "$T/detached" "${BOOKS[@]}") || fail "submit --detach failed"
[[ $id =~ ^[A-Za-z0-9_-]+$ ]] || fail "submit --detach printed '$id', not a job id"
cl_job_wait 60 "$id"
assert_eq "$CL_STATE" succeeded "state of the detached job"
[ -e "$T/detached/_SUCCESS" ] || fail "detached job succeeded without _SUCCESS"
cl_answer "$T/ans-books.txt" wordcount -m 3 -r 2 -o "$T/local-books" "${BOOKS[@]}"
cl_same "$T/detached" "$T/ans-books.txt"
check_attempts "$id" 3 2
TALLY_COORDINATOR=$CL_COORD TALLY_TOKEN_FILE=$CL_TOKEN_FILE "$TALLY" status >"$T/status.txt" ||
    fail "tally status with the environment's coordinator and token failed"
grep -q "^$id .*succeeded" "$T/status.txt" || fail "tally status does not list $id as succeeded: $(cat "$T/status.txt")"

# ---- Issue test 8: authentication and metrics ---------------------------------------------------
step "every endpoint refuses a missing or wrong token with 401 and changes nothing"
waddr=$(cl_q 'w["w1"]["address"]')
jobs_before=$(cl_q 'sorted(x["id"] for x in d["jobs"])')
workers_before=$(cl_q 'sorted(w)')
spec=$("$PYTHON" -c 'import json, sys; print(json.dumps({"spec": {"job": "wordcount", "args": {}, "inputs": [sys.argv[1]],
    "out": sys.argv[2], "maps": 1, "reduces": 1}}))' "$T/gen.txt" "$T/unauth")
hb='{"version":1,"name":"intruder","incarnation":"x","address":"127.0.0.1:1","slots":4,"running":[],"wait_ms":0}'
report="{\"name\":\"w1\",\"incarnation\":\"x\",\"job\":\"$id\",\"attempt\":0,\"result\":{\"ok\":true}}"
# bad_auth_headers MODE: curl arguments for one way of getting the token wrong.
bad_auth_headers() {
    case $1 in
    none) hdr=() ;;
    wrong) hdr=(-H "Authorization: Bearer wrong-$CL_TOKEN") ;;
    cookie) hdr=(-H "Cookie: tally_token=wrong-$CL_TOKEN") ;;   # the status page's cookie, wrong
    short) hdr=(-H "Authorization: Bearer ${CL_TOKEN%?}") ;; # a prefix of the token
    long) hdr=(-H "Authorization: Bearer ${CL_TOKEN}x") ;;   # the token and more
    basic) hdr=(-H "Authorization: Basic $CL_TOKEN") ;;      # the secret, wrong scheme
    esac
}
AUTH_MODES="none wrong cookie short long basic"
# expect_401 METHOD ADDRESS PATH [BODY]: the request, made with $hdr, is refused.
expect_401() {
    local body=()
    [ $# -lt 4 ] || body=(--data-binary "$4")
    code=$(curl -s -o "$T/curl.out" -w '%{http_code}' -X "$1" "${hdr[@]}" "${body[@]}" "http://$2$3") || true
    [ "$code" = 401 ] || fail "$1 http://$2$3 with auth '$auth' answered $code, not 401: $(head -c 200 "$T/curl.out")"
    n=$((n + 1))
}
n=0
for auth in $AUTH_MODES; do
    bad_auth_headers $auth
    expect_401 GET "$CL_COORD" /v1/status
    expect_401 GET "$CL_COORD" "/v1/jobs/$id"
    expect_401 POST "$CL_COORD" /v1/jobs "$spec"
    expect_401 POST "$CL_COORD" /v1/heartbeat "$hb"
    expect_401 POST "$CL_COORD" /v1/report "$report"
    expect_401 GET "$CL_COORD" /metrics
    expect_401 GET "$CL_COORD" /nowhere
    expect_401 GET "$CL_COORD" /ui/nothing-here
    expect_401 GET "$waddr" /metrics
    expect_401 GET "$waddr" /
    expect_401 GET "$waddr" "/v1/shuffle?job=$id&map=0&part=0"
done
echo "$n unauthenticated requests refused"
assert_eq "$(cl_q 'sorted(x["id"] for x in d["jobs"])')" "$jobs_before" "jobs after refused requests"
assert_eq "$(cl_q 'sorted(w)')" "$workers_before" "workers after refused requests"
[ ! -e "$T/unauth" ] || fail "a refused submission created its output directory"

step "the public paths answer without a token and give nothing away"
# Probes and the status page's static files: no job, worker or token in any of them.
for url in "$CL_COORD/healthz" "$CL_COORD/readyz" "$CL_COORD/" "$CL_COORD/ui/status.js" "$waddr/healthz" "$waddr/readyz"; do
    code=$(curl -s -o "$T/curl.out" -w '%{http_code}' "http://$url") || true
    assert_eq "$code" 200 "GET $url without a token"
    ! grep -q -e "$id" -e w1 -e "$CL_TOKEN" "$T/curl.out" || fail "GET $url without a token shows cluster data"
done
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "wrong-$CL_TOKEN" "http://$CL_COORD/v1/login") || true
assert_eq "$code" 401 "POST /v1/login with a wrong token"

step "the same requests with the token work (else the 401s prove nothing)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CL_TOKEN" "http://$CL_COORD/v1/status")
assert_eq "$code" 200 "GET /v1/status with the token"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: bearer  $CL_TOKEN" "http://$waddr/healthz")
assert_eq "$code" 200 "GET worker /healthz with the token (scheme in lower case, two spaces)"
code=$(curl -s -o "$T/curl.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $CL_TOKEN" \
    --data-binary "$spec" "http://$CL_COORD/v1/jobs")
assert_eq "$code" 200 "POST /v1/jobs with the token ($(cat "$T/curl.out"))"
uid=$("$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["id"])' <"$T/curl.out")
cl_job_wait 60 "$uid"
assert_eq "$CL_STATE" succeeded "state of the job submitted with curl"
cl_answer "$T/ans-unauth.txt" wordcount -m 1 -r 1 -o "$T/local-unauth" "$T/gen.txt"
cl_same "$T/unauth" "$T/ans-unauth.txt"

step "promtool check metrics on the coordinator and on a worker"
for addr in "$CL_COORD" "$waddr"; do
    curl -sf -H "Authorization: Bearer $CL_TOKEN" "http://$addr/metrics" >"$T/metrics.txt" ||
        fail "GET http://$addr/metrics failed"
    grep -q '^tally_' "$T/metrics.txt" || fail "no tally_ metric at http://$addr/metrics"
    if command -v promtool >/dev/null; then
        promtool check metrics <"$T/metrics.txt" >"$T/promtool.txt" 2>&1 ||
            fail "promtool check metrics failed for http://$addr/metrics: $(head -n 5 "$T/promtool.txt")"
    fi
done
command -v promtool >/dev/null || echo "SKIP promtool check metrics: promtool is not installed (apt-get install prometheus)"
curl -sf -H "Authorization: Bearer $CL_TOKEN" "http://$CL_COORD/metrics" >"$T/metrics.txt"
# Five jobs succeeded (index, big, wordcount, detached, curl), each with one attempt per task.
grep -qx 'tally_jobs_finished_total{state="succeeded"} 5' "$T/metrics.txt" ||
    fail "coordinator metrics do not count 5 succeeded jobs: $(grep jobs_finished "$T/metrics.txt")"
maps=$(sed -n 's/^tally_attempts_total{phase="map",outcome="succeeded"} //p' "$T/metrics.txt")
reds=$(sed -n 's/^tally_attempts_total{phase="reduce",outcome="succeeded"} //p' "$T/metrics.txt")
[ "${maps:-0}" = $((4 + 8 + 9 + 3 + 1)) ] && [ "${reds:-0}" = $((2 + 4 + 3 + 2 + 1)) ] ||
    fail "succeeded attempts in the metrics: $maps maps, $reds reduces; expected 25 maps and 12 reduces"
check_cluster_alive w1 w2 w3

# ---- Cancel (last: it leaves a hung worker behind) ---------------------------------------------
step "a job held by a hung worker: refused cancels leave it running, a cancel stops it, submit exits 1"
# w1-w3 are stopped so that they take no task; w4 hangs (SIGSTOPs itself) at its second task, so
# the job stays running with attempts assigned for as long as the test needs.
for x in w1 w2 w3; do kill -STOP "$(cl_worker_pid $x)"; done
cl_start_worker w4 --slots 2 --fail-after-tasks 1 --fail-mode hang
"$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" wordcount -m 8 -r 2 \
    -o "$T/cancelled" "$T/big.txt" >"$T/cancel.out" 2>"$T/cancel.err" &
sub=$!
BG_PIDS+=("$sub")
cl_until 30 "the job to have running attempts" \
    'any(x["out"] == a[0] and any(t["state"] == "running" for t in x["tasks"]) for x in d["jobs"])' "$T/cancelled"
cid=$(cl_q '[x["id"] for x in d["jobs"] if x["out"] == a[0]][0]' "$T/cancelled")
[ -d "$T/cancelled/_temporary" ] || fail "the running job has no $T/cancelled/_temporary"
for auth in $AUTH_MODES; do
    bad_auth_headers $auth
    expect_401 POST "$CL_COORD" "/v1/jobs/$cid/cancel" "{}"
done
assert_eq "$(CL_Q_JOB=$cid cl_q 'j["state"]')" running "state of the job after refused cancels"
cl_alive "$sub" || fail "submit returned while its job runs"
"$TALLY" cancel --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" "$cid" >/dev/null || fail "tally cancel $cid failed"
sub_done() { ! cl_alive "$sub"; }
poll_until 30 "submit to return after its job was cancelled" sub_done
rc=0
wait "$sub" || rc=$?
assert_eq "$rc" 1 "exit status of a submit whose job was cancelled"
grep -q "cancelled" "$T/cancel.err" || fail "submit did not say the job was cancelled: $(cat "$T/cancel.err")"
assert_eq "$(CL_Q_JOB=$cid cl_q 'j["state"]')" cancelled "state of the cancelled job"
CL_Q_JOB=$cid cl_q 'all(x["state"] != "running" for t in j["tasks"] for x in t["attempts"])' >/dev/null ||
    fail "attempts of the cancelled job still running for the coordinator"
assert_failed_output "$T/cancelled"
[ ! -e "$T/cancelled" ] || fail "the cancelled job's output directory is still there: $(ls -A "$T/cancelled")"
# w4 stays hung (resumed, --fail-mode hang goes on to crash it): kill it. w1-w3 resume and
# must hold no attempt and no file of the cancelled job.
cl_kill_worker w4 KILL
for x in w1 w2 w3; do kill -CONT "$(cl_worker_pid $x)"; done
worker_idle() {
    local x
    for x in w1 w2 w3; do
        curl -sf -H "Authorization: Bearer $CL_TOKEN" "http://$(cl_q 'w[a[0]]["address"]' $x)/metrics" |
            grep -qx 'tally_worker_running_attempts 0' || return 1
        [ -d "$(cl_worker_dir $x)" ] && [ ! -e "$(cl_worker_dir $x)/$cid" ] || return 1
    done
}
poll_until 20 "w1-w3 to hold no attempt and no file of the cancelled job" worker_idle
[ ! -e "$T/cancelled" ] || fail "the cancelled job's output directory came back: $(find "$T/cancelled" | head -5)"
check_cluster_alive w1 w2 w3
curl -sf -H "Authorization: Bearer $CL_TOKEN" "http://$CL_COORD/metrics" >"$T/metrics.txt"
grep -qx 'tally_jobs_finished_total{state="cancelled"} 1' "$T/metrics.txt" ||
    fail "coordinator metrics do not count 1 cancelled job: $(grep jobs_finished "$T/metrics.txt")"
echo "cluster_basic: all cases passed"
