#!/usr/bin/env bash
# small.sh - small-job latency (issue 10): the users' iterative analytics shape, an aggregate over
# 5 CSV shards of ~1.3 MB (M=10, R=2), on a cluster of real processes and under `tally run`.
#
# usage: bench/small.sh BUILD_DIR     (make bench, make bench-cluster)
# Environment: ITERATIONS (cluster runs, default 100), LOCAL_ITERATIONS (tally run iterations,
# default 40).
# Prints, each next to its target with PASS or MISS (a measurement, not a test: a miss does not
# fail the run):
#   - cluster: `tally submit` start to exit (after it saw _SUCCESS), one process per run, on a
#     coordinator and 2 workers of 2 slots: p50/p99/max over ITERATIONS (targets p50 <= 30 ms,
#     p99 <= 60 ms);
#   - local: `tally run -w 2 --iterations N --results F`, the results' total_ms (planning to
#     _SUCCESS, in one process): p50/p99 (target p50 <= 15 ms); and, for reference, a whole
#     `tally run` process (start to exit) per run, p50 over LOCAL_ITERATIONS / 2 runs.
set -euo pipefail
export LC_ALL=C
BUILD=$(cd "${1:?usage: bench/small.sh BUILD_DIR}" && pwd)
T=$BUILD/tally
ITERATIONS=${ITERATIONS:-100}
LOCAL_ITERATIONS=${LOCAL_ITERATIONS:-40}
. "$(dirname "$0")/lib.sh"
bench_init

JOB=(aggregate --where 'property==1' --group-by house_id,household_id,plug_id
     --agg 'count,avg(value),min(value),max(value)' -m 10 -r 2)
"$T" gen readings --shards 5 -o "$WORK/readings" > /dev/null
INPUTS=("$WORK"/readings/readings_shard*.csv)

# ms_since T0: whole milliseconds since $EPOCHREALTIME was T0 (read without starting a process).
ms_since() {
    local now=$EPOCHREALTIME
    echo $(( (${now/./} - ${1/./}) / 1000 ))
}

# verdict VALUE LIMIT...: PASS if each VALUE <= its LIMIT (pairs), else MISS.
verdict() {
    while [ $# -ge 2 ]; do
        [ "${1%.*}" -le "$2" ] || { echo MISS; return; }
        shift 2
    done
    echo PASS
}

echo "== small job: aggregate over 5 CSV shards of ~1.3 MB, M=10 R=2"

rm -f "$WORK/coord.out"
"$T" coordinator --listen 127.0.0.1:0 --token-file "$WORK/token" --log-level warn > "$WORK/coord.out" \
    2> "$WORK/coord.err" &
PIDS+=($!)
COORD=$(bench_address "$WORK/coord.out")
export TALLY_COORDINATOR=$COORD
for i in 1 2; do
    "$T" worker --coordinator "$COORD" --token-file "$WORK/token" --name s$i --slots 2 --work-dir "$WORK" \
        --log-level warn > "$WORK/s$i.out" 2> "$WORK/s$i.err" &
    PIDS+=($!)
done
bench_wait_alive 2
# A few runs first: the executors load the job, the page cache holds the shards.
for _ in 1 2 3; do
    "$T" submit --quiet "${JOB[@]}" --overwrite -o "$WORK/agg" "${INPUTS[@]}" > /dev/null
done
: > "$WORK/cluster.txt"
for k in $(seq "$ITERATIONS"); do
    t0=$EPOCHREALTIME
    "$T" submit --quiet "${JOB[@]}" --overwrite -o "$WORK/agg" "${INPUTS[@]}" > /dev/null
    ms=$(ms_since "$t0")
    [ -f "$WORK/agg/_SUCCESS" ] || { echo "iteration $k: no _SUCCESS" >&2; exit 1; }
    echo "$ms" >> "$WORK/cluster.txt"
done
read -r p50 p99 max n < <(bench_percentiles < "$WORK/cluster.txt")
printf '%-40s p50 %4s ms  p99 %4s ms  max %4s ms  (n=%s; targets p50 <= 30, p99 <= 60: %s)\n' \
    "cluster, 2 workers: submit -> _SUCCESS" "$p50" "$p99" "$max" "$n" "$(verdict "$p50" 30 "$p99" 60)"
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()

"$T" run "${JOB[@]}" -w 2 --quiet --overwrite -o "$WORK/local" "${INPUTS[@]}" > /dev/null
"$T" run "${JOB[@]}" -w 2 --quiet --overwrite -o "$WORK/local" --iterations "$LOCAL_ITERATIONS" \
    --results "$WORK/local.csv" "${INPUTS[@]}" > /dev/null
tail -n +2 "$WORK/local.csv" | cut -d, -f3 > "$WORK/local.txt"
read -r p50 p99 max n < <(bench_percentiles < "$WORK/local.txt")
printf '%-40s p50 %4s ms  p99 %4s ms  max %4s ms  (n=%s; target p50 <= 15: %s)\n' \
    "tally run -w 2 --iterations (total_ms)" "$p50" "$p99" "$max" "$n" "$(verdict "$p50" 15)"
: > "$WORK/process.txt"
for _ in $(seq $((LOCAL_ITERATIONS / 2))); do
    t0=$EPOCHREALTIME
    "$T" run "${JOB[@]}" -w 2 --quiet --overwrite -o "$WORK/local" "${INPUTS[@]}" > /dev/null
    ms_since "$t0" >> "$WORK/process.txt"
done
read -r p50 p99 max n < <(bench_percentiles < "$WORK/process.txt")
printf '%-40s p50 %4s ms  p99 %4s ms  max %4s ms  (n=%s; for reference)\n' \
    "tally run -w 2, whole process" "$p50" "$p99" "$max" "$n"
