#!/usr/bin/env bash
# noisy.sh - the noisy-neighbour experiment (issue 9) on one machine: a coordinator and three
# workers run the smart-plug aggregation (tally gen readings, 5 shards, M=10 R=2) ITERATIONS
# times, each run writing one CSV row per iteration (tally submit --iterations --results):
#
#   quiet-off   no noise, speculation and probation off
#   quiet-on    no noise, speculation and probation on (the defaults)
#   noisy-off   a CPU and memory hog (stress-ng) pinned to worker w3's CPU, mitigation off
#   noisy-on    the same hog, mitigation on
#
# then `tally report` over them (percentiles, comparison, CDF plots) and the targets. Last, a
# worker made 5x slower (--chaos-slow 5): after how many iterations it is on probation.
#
# usage: bench/noisy.sh BUILD_DIR      (part of make bench)
# Environment: ITERATIONS (default 100), NOISY_OUT (default BUILD_DIR/bench-results/noisy),
# NOISY_CPU (the CPU w3 and the hog share; default the last one), NOISY_HOG (stress-ng's
# arguments; default 4 CPU hogs and 2 memory hogs of 256 MiB: w3 gets about a fifth of its CPU).
set -euo pipefail
export LC_ALL=C
BUILD=$(cd "${1:?usage: bench/noisy.sh BUILD_DIR}" && pwd)
T=$BUILD/tally
ITERATIONS=${ITERATIONS:-100}
OUT=${NOISY_OUT:-$BUILD/bench-results/noisy}
NCPU=$(nproc)
CPU=${NOISY_CPU:-$((NCPU - 1))}
read -r -a HOGARGS <<<"${NOISY_HOG:---cpu 4 --vm 2 --vm-bytes 256M}"
# Everything but w3 (the coordinator, w1, w2, the submitting client) runs on the other CPUs, so
# the hog is w3's neighbour only, as on a cluster where it shares w3's node.
REST=$(python3 -c "import sys; n, c = int(sys.argv[1]), int(sys.argv[2]); print(','.join(str(i) for i in range(n) if i != c))" "$NCPU" "$CPU")
[ -n "$REST" ] || { echo "noisy.sh: needs at least 2 CPUs" >&2; exit 1; }
command -v stress-ng >/dev/null || { echo "noisy.sh: stress-ng is not installed (scripts/install-deps.sh)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "noisy.sh: taskset (util-linux) is not installed" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/*.csv
WORK=$(mktemp -d)
PIDS=()
HOG=""
stop_hog() { # the hog runs in a process group of its own (setsid): its workers go with it
    [ -z "$HOG" ] || kill -9 -- "-$HOG" 2>/dev/null || true
    HOG=""
}
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    stop_hog
    rm -rf "$WORK"
}
trap cleanup EXIT
head -c 24 /dev/urandom | base64 >"$WORK/token"
export TALLY_TOKEN_FILE=$WORK/token
"$T" gen readings --shards 5 -o "$WORK/readings" >/dev/null
JOB=(aggregate --where 'property==1' --group-by house_id,household_id,plug_id
    --agg 'count,avg(value),min(value),max(value)' -m 10 -r 2)

start_coordinator() { # ARGS...: sets COORD
    taskset -c "$REST" "$T" coordinator --listen 127.0.0.1:0 --token-file "$WORK/token" --log-level info "$@" >"$WORK/coord.out" 2>"$WORK/coord.log" &
    PIDS+=($!)
    disown $!
    COORD=""
    for _ in $(seq 200); do
        COORD=$(sed -n 's/^coordinator listening on //p' "$WORK/coord.out")
        [ -n "$COORD" ] && break
        sleep 0.05
    done
    [ -n "$COORD" ] || { echo "coordinator did not start" >&2; exit 1; }
    export TALLY_COORDINATOR=$COORD
}

start_worker() { # NAME [taskset CPU] ARGS...
    local name=$1 pin=(taskset -c "$REST")
    shift
    if [ "${1:-}" = taskset ]; then pin=(taskset -c "$2"); shift 2; fi
    "${pin[@]}" "$T" worker --coordinator "$COORD" --token-file "$WORK/token" --name "$name" --slots 1 \
        --work-dir "$WORK/$name" --log-level warn "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    disown $!
}

wait_alive() { # N
    for _ in $(seq 400); do
        n=$("$T" status --json | python3 -c 'import json,sys; print(sum(w["state"]=="alive" for w in json.load(sys.stdin)["workers"]))')
        [ "$n" -ge "$1" ] && return 0
        sleep 0.05
    done
    echo "workers did not come up" >&2
    exit 1
}

stop_all() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    PIDS=()
    stop_hog
}

# run NAME noise|quiet on|off: one series of ITERATIONS iterations into $OUT/NAME.csv
run() {
    local name=$1 noise=$2 mit=$3
    start_coordinator --speculation "$mit" --probation "$mit"
    start_worker w1
    start_worker w2
    start_worker w3 taskset "$CPU"
    wait_alive 3
    if [ "$noise" = noise ]; then
        # CPU hogs and memory hogs (touching their 256 MiB continuously) on w3's CPU: w3's
        # executor gets a small share of its CPU and shares its caches.
        setsid stress-ng "${HOGARGS[@]}" --taskset "$CPU" --timeout 3600 --quiet \
            --temp-path "$WORK" >/dev/null 2>&1 &
        HOG=$!
        disown $!
        sleep 1 # let the hog take hold
    fi
    taskset -c "$REST" "$T" submit --quiet --iterations "$ITERATIONS" --results "$OUT/$name.csv" "${JOB[@]}" -o "$WORK/out-$name" \
        "$WORK"/readings/readings_shard*.csv >/dev/null
    [ -f "$WORK/out-$name/_SUCCESS" ] || { echo "$name: no _SUCCESS" >&2; exit 1; }
    echo "$name: $(grep -c 'put on probation' "$WORK/coord.log" || true) probations," \
        "$(grep -c 'speculative copy' "$WORK/coord.log" || true) speculative copies, $(grep -c 'migrating' "$WORK/coord.log" || true) migrations"
    cp "$WORK/coord.log" "$OUT/$name.coord.log"
    stop_all
}

echo "== noisy neighbour: smart-plug aggregation, 5 shards, M=10 R=2, 3 one-slot workers, $ITERATIONS iterations;"
echo "   the hog (stress-ng ${HOGARGS[*]}) and w3 share CPU $CPU; everything else runs on CPU $REST"
run quiet-off quiet off
run quiet-on quiet on
run noisy-off noise off
run noisy-on noise on
"$T" report "$OUT/quiet-on.csv" "$OUT/noisy-off.csv" "$OUT/noisy-on.csv" "$OUT/quiet-off.csv" -o "$OUT/report"

python3 - "$OUT" <<'PY'
import csv, math, sys
out = sys.argv[1]
def load(name):
    with open(f"{out}/{name}.csv") as f:
        return list(csv.DictReader(f))
def pct(v, p):
    v = sorted(v)
    return v[max(1, math.ceil(p / 100 * len(v))) - 1]
rows = {n: load(n) for n in ("quiet-off", "quiet-on", "noisy-off", "noisy-on")}
tot = {n: [int(r["total_ms"]) for r in rs] for n, rs in rows.items()}
p = lambda n, q: pct(tot[n], q)
spec = sum(int(r["speculative_attempts"]) for r in rows["quiet-on"])
att = sum(int(r["attempts"]) for r in rows["quiet-on"])
def verdict(ok): return "PASS" if ok else "MISS"
print("%-12s %6s %6s %6s %6s %6s" % ("run", "p50", "p90", "p99", "max", "copies"))
for n in rows:
    print("%-12s %6d %6d %6d %6d %6d" % (n, p(n, 50), p(n, 90), p(n, 99), max(tot[n]),
                                          sum(int(r["speculative_attempts"]) for r in rows[n])))
a, b, c = p("noisy-on", 99), p("quiet-on", 99), p("noisy-off", 99)
print(f"noisy, mitigation on: p99 {a} ms <= 1.2 x quiet p99 {b} ms ({1.2*b:.0f}): {verdict(a <= 1.2 * b)}")
print(f"noisy, mitigation on: p99 {a} ms at least 30% below mitigation off {c} ms ({0.7*c:.0f}): {verdict(a <= 0.7 * c)}")
q50on, q50off = p("quiet-on", 50), p("quiet-off", 50)
print(f"quiet: p50 on {q50on} ms within 5% of off {q50off} ms: {verdict(q50on <= 1.05 * q50off)}")
print(f"quiet, mitigation on: {spec} speculative of {att} attempts ({100*spec/max(att,1):.2f}%, target <= 2%): {verdict(spec <= 0.02 * att)}")
PY

echo "== a worker made 5x slower (--chaos-slow 5): iterations until it is on probation"
start_coordinator
start_worker w1
start_worker w2
start_worker w3 --chaos-slow 5
wait_alive 3
on=""
for k in $(seq 1 20); do
    "$T" submit --quiet "${JOB[@]}" --overwrite -o "$WORK/out-slow" "$WORK"/readings/readings_shard*.csv >/dev/null
    if "$T" status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not any(w["name"]=="w3" and w["health"]["state"]=="probation" for w in d["workers"]))'; then
        on=$k
        break
    fi
done
printf 'on probation after %s iterations (target <= 3): %s\n' "${on:-more than 20}" \
    "$([ -n "$on" ] && [ "$on" -le 3 ] && echo PASS || echo MISS)"
stop_all
echo "CSVs, report and plots in $OUT"
