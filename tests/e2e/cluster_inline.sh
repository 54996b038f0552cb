#!/usr/bin/env bash
# cluster_inline.sh - small map outputs travel with the map's report (--inline-map-output): the
# reducers get them in their assignments and fetch nothing; outputs above the limit, and every
# output with the option off, still go through the shuffle; and a worker lost after its maps
# does not take such outputs with it (no map runs again), while the job ends right.
. "$(dirname "$0")/cluster_lib.sh"

JOB_TIMEOUT=60
SMALL=(aggregate --where 'property==1' --group-by house_id,household_id,plug_id
       --agg 'count,avg(value),min(value),max(value)')
gen_ok readings --shards 3 --rows 3000 -o "$T/readings"
gen_ok text --size 2M --seed 51 -o "$T/text.txt"
step "the local answers"
cl_answer "$T/ans-small.txt" "${SMALL[@]}" -m 6 -r 2 -o "$T/local-small" "$T/readings"
cl_answer "$T/ans-big.txt" wordcount -m 3 -r 2 -o "$T/local-big" "$T/text.txt"

# metric ADDRESS NAME: the value of one sample of the /metrics page at ADDRESS (0 when absent).
metric() {
    curl -sf -H "Authorization: Bearer $CL_TOKEN" "http://$1/metrics" |
        awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}
served() { metric "$(cl_q 'w[a[0]]["address"]' "$1")" tally_shuffle_served_requests_total; }
held() { metric "$CL_COORD" 'tally_map_outputs_inline_total{event="held"}'; }
# attempts_of JOB PHASE: the number of attempts of each task of that phase, space-separated.
attempts_of() { CL_Q_JOB=$1 cl_q '" ".join(str(len(t["attempts"])) for t in j["tasks"] if t["phase"] == a[0])' "$2"; }

step "small outputs come inline: the reducers fetch nothing"
# No speculation: a copy would add attempts (and reports) this test counts.
cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 15000 --speculation off --probation off
cl_start_worker i1 --slots 2
cl_start_worker i2 --slots 2
cl_submit_ok "${SMALL[@]}" -m 6 -r 2 -o "$T/small" "$T/readings"
cl_same "$T/small" "$T/ans-small.txt"
[ "$(held)" -eq 6 ] || fail "the coordinator held $(held) map outputs inline, expected all 6"
[ "$(served i1)" -eq 0 ] && [ "$(served i2)" -eq 0 ] ||
    fail "the workers served $(served i1) + $(served i2) shuffle requests for a job whose outputs came inline"

step "outputs above the limit go through the shuffle"
cl_submit_ok wordcount -m 3 -r 2 -o "$T/big" "$T/text.txt"
cl_same "$T/big" "$T/ans-big.txt"
[ "$(held)" -eq 6 ] || fail "word count map outputs (over 64 KiB each) were held inline: $(held) held in all"
[ $(($(served i1) + $(served i2))) -eq 6 ] ||
    fail "the workers served $(($(served i1) + $(served i2))) segments, expected 3 maps x 2 reduces = 6"

step "--inline-map-output 0: every output through the shuffle"
cl_reset
cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 15000 --speculation off --probation off \
    --inline-map-output 0
cl_start_worker o1 --slots 2
cl_start_worker o2 --slots 2
cl_submit_ok "${SMALL[@]}" -m 6 -r 2 -o "$T/off" "$T/readings"
cl_same "$T/off" "$T/ans-small.txt"
[ "$(held)" -eq 0 ] || fail "outputs were held inline with --inline-map-output 0"
[ $(($(served o1) + $(served o2))) -eq 12 ] ||
    fail "the workers served $(($(served o1) + $(served o2))) segments, expected 6 maps x 2 reduces = 12"

step "the mapper is lost before the reduce ran: the inline outputs are not lost with it"
# h1 runs every map alone, then freezes (SIGSTOP: --fail-mode hang) as its 5th task, the
# reduce, starts; the coordinator declares it dead, and the reduce runs on h2, started only
# now, from the outputs the coordinator holds: no map runs again, and nothing is fetched from
# the frozen worker (which would wait out connect timeouts and re-run the maps).
cl_reset
cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 1000 --speculation off --probation off
cl_start_worker h1 --slots 2 --fail-after-tasks 4 --fail-mode hang
id=$("$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" --detach "${SMALL[@]}" -m 4 -r 1 \
    -o "$T/lost" "$T/readings") || fail "submit --detach failed"
cl_until 30 "h1 to be declared dead" 'w["h1"]["state"] == "dead"'
grep -q 'failure injection: hanging after 4 tasks' "$CL/h1.wlog" || fail "test bug: h1 did not hang at its 5th task"
cl_start_worker h2 --slots 2
cl_job_wait 30 "$id"
assert_eq "$CL_STATE" succeeded "state of job $id after its mapper was lost"
cl_same "$T/lost" "$T/ans-small.txt"
assert_eq "$(attempts_of "$id" map)" "1 1 1 1" "attempts of each map (none may run again)"
assert_eq "$(attempts_of "$id" reduce)" "2" "attempts of the reduce (one killed with h1, one on h2)"
kept=$(metric "$CL_COORD" 'tally_map_outputs_inline_total{event="kept_on_loss"}')
[ "$kept" -eq 4 ] || fail "the coordinator kept $kept map outputs on h1's loss, expected 4"
[ "$(served h2)" -eq 0 ] || fail "h2 served shuffle requests"
[ "$(metric "$CL_COORD" tally_shuffle_fetch_failures_total)" -eq 0 ] || fail "a reducer tried to fetch from h1"
kill -CONT "$(cl_worker_pid h1)" 2>/dev/null || true
echo "cluster_inline: all cases passed"
