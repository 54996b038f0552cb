#!/usr/bin/env bash
# noisy.sh - the noisy-neighbour experiment (issue 9) on one machine: a coordinator and three
# workers run the smart-plug aggregation (tally gen readings, 5 shards, M=10 R=2) ITERATIONS
# times, each run writing one CSV row per iteration (tally submit --iterations --results):
#
#   quiet-off   no noise, speculation and probation off
#   quiet-on    no noise, speculation and probation on (the defaults)
#   noisy-off   a CPU and memory hog (stress-ng) on worker w3's node, mitigation off
#   noisy-on    the same hog, mitigation on
#
# then `tally report` over them (percentiles, comparison, CDF plots) and the targets. Last, a
# worker made 5x slower (--chaos-slow 5): after how many iterations it is on probation.
#
# Nodes: on a cluster each worker has a node of its own, and a hog on w3's node takes nothing
# from w1 and w2. One 2-core machine has no such nodes, so each worker gets one: a cgroup with a
# CPU quota of NOISY_NODE_CPU (default 0.5) of a CPU, and the hog runs in w3's, as on w3's node
# (the three nodes, the coordinator and the client fit in 2 CPUs). Without a writable cgroup CPU
# controller it falls back to CPUs: w3 and the hog share the last CPU (taskset), everything else
# the others, which also takes that CPU away from the rest (the printout says which it used).
#
# usage: bench/noisy.sh BUILD_DIR      (part of make bench)
# Environment: ITERATIONS (default 100), NOISY_OUT (default BUILD_DIR/bench-results/noisy),
# NOISY_NODE_CPU (0.5), NOISY_HOG (stress-ng's arguments; default 2 CPU hogs and 1 memory hog
# touching 256 MiB).
set -euo pipefail
export LC_ALL=C
BUILD=$(cd "${1:?usage: bench/noisy.sh BUILD_DIR}" && pwd)
T=$BUILD/tally
ITERATIONS=${ITERATIONS:-100}
OUT=${NOISY_OUT:-$BUILD/bench-results/noisy}
NCPU=$(nproc)
NODE_CPU=${NOISY_NODE_CPU:-0.5}
read -r -a HOGARGS <<<"${NOISY_HOG:---cpu 2 --vm 1 --vm-bytes 256M}"
command -v stress-ng >/dev/null || { echo "noisy.sh: stress-ng is not installed (scripts/install-deps.sh)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "noisy.sh: taskset (util-linux) is not installed" >&2; exit 1; }
[ "$NCPU" -ge 2 ] || { echo "noisy.sh: needs at least 2 CPUs" >&2; exit 1; }

# ---- Nodes: cgroups with a CPU quota (v1 cpu controller or v2), else CPUs ---------------------
CGROOT=""
for d in /sys/fs/cgroup/cpu /sys/fs/cgroup; do
    if [ -w "$d/cgroup.procs" ] && { [ -e "$d/cpu.cfs_quota_us" ] || [ -e "$d/cgroup.subtree_control" ]; }; then
        if mkdir "$d/tally-noisy-$$" 2>/dev/null; then CGROOT=$d/tally-noisy-$$; break; fi
    fi
done
node_make() { # NAME: a cgroup with the node's quota; prints nothing, fails if it cannot
    local g=$CGROOT/$1 us
    mkdir -p "$g"
    us=$(python3 -c "import sys; print(int(float(sys.argv[1]) * 100000))" "$NODE_CPU")
    if [ -e "$g/cpu.cfs_quota_us" ]; then
        echo 100000 >"$g/cpu.cfs_period_us" && echo "$us" >"$g/cpu.cfs_quota_us"
    else
        echo "+cpu" >"$CGROOT/cgroup.subtree_control" 2>/dev/null || true
        echo "$us 100000" >"$g/cpu.max"
    fi
}
if [ -n "$CGROOT" ]; then
    for n in w1 w2 w3; do node_make "$n" || { rm -rf "$CGROOT" 2>/dev/null; CGROOT=""; break; }; done
fi
LAST=$((NCPU - 1))
REST=$(python3 -c "import sys; n = int(sys.argv[1]); print(','.join(str(i) for i in range(n - 1)))" "$NCPU")
# in_node NAME CMD...: execs the command as it runs on NAME's node. Called in a subshell (or as
# `cmd &`), so that $! is the command's own pid.
in_node() {
    local name=$1
    shift
    if [ -n "$CGROOT" ]; then
        exec sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGROOT/$name" "$@"
    elif [ "$name" = w3 ]; then
        exec taskset -c "$LAST" "$@"
    else
        exec taskset -c "$REST" "$@"
    fi
}
# off_nodes CMD...: execs the command on no worker's node (the coordinator, the client); likewise
off_nodes() { if [ -n "$CGROOT" ]; then exec "$@"; else exec taskset -c "$REST" "$@"; fi; }

mkdir -p "$OUT"
rm -f "$OUT"/*.csv
HOG=""
stop_hog() { # the hog runs in a process group of its own (setsid): its workers go with it
    [ -z "$HOG" ] || kill -9 -- "-$HOG" 2>/dev/null || true
    HOG=""
}
bench_at_exit() { # after lib.sh's cleanup has killed PIDS
    stop_hog
    if [ -n "$CGROOT" ]; then
        sleep 0.3
        for n in w1 w2 w3; do rmdir "$CGROOT/$n" 2>/dev/null || true; done
        rmdir "$CGROOT" 2>/dev/null || true
    fi
}
. "$(dirname "$0")/lib.sh"
bench_init
"$T" gen readings --shards 5 -o "$WORK/readings" >/dev/null
JOB=(aggregate --where 'property==1' --group-by house_id,household_id,plug_id
    --agg 'count,avg(value),min(value),max(value)' -m 10 -r 2)

start_coordinator() { # ARGS...: sets COORD
    rm -f "$WORK/coord.out" # not to read the address of the coordinator before
    off_nodes "$T" coordinator --listen 127.0.0.1:0 --token-file "$WORK/token" --log-level info "$@" \
        >"$WORK/coord.out" 2>"$WORK/coord.log" &
    PIDS+=($!)
    disown $!
    COORD=$(bench_address "$WORK/coord.out")
    export TALLY_COORDINATOR=$COORD
}

RUNNO=0 # each cluster's workers get fresh work dirs: a killed worker's executors may outlive it a moment
start_worker() { # NAME ARGS...: on its node
    local name=$1
    shift
    in_node "$name" "$T" worker --coordinator "$COORD" --token-file "$WORK/token" --name "$name" --slots 1 \
        --work-dir "$WORK/run$RUNNO/$name" --log-level warn "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    disown $!
}


stop_all() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    PIDS=()
    stop_hog
    RUNNO=$((RUNNO + 1))
}

# run NAME noise|quiet on|off N: a fresh cluster runs a series of N iterations, appending to
# $OUT/NAME.csv
run() {
    local name=$1 noise=$2 mit=$3 n=$4
    start_coordinator --speculation "$mit" --probation "$mit"
    for w in w1 w2 w3; do start_worker "$w"; done
    bench_wait_alive 3
    if [ "$noise" = noise ]; then
        in_node w3 setsid -w stress-ng "${HOGARGS[@]}" --timeout 3600 --quiet --temp-path "$WORK" >/dev/null 2>&1 &
        HOG=$!
        disown $!
        sleep 1 # let the hog take hold
    fi
    (off_nodes "$T" submit --quiet --iterations "$n" --results "$OUT/$name.csv" "${JOB[@]}" --overwrite -o "$WORK/out-$name" \
        "$WORK"/readings/readings_shard*.csv >/dev/null)
    [ -f "$WORK/out-$name/_SUCCESS" ] || { echo "$name: no _SUCCESS" >&2; exit 1; }
    [ "$noise" = quiet ] || echo "$name: $(grep -c 'put on probation' "$WORK/coord.log" || true) probations," \
        "$(grep -c 'speculative copy' "$WORK/coord.log" || true) speculative copies, $(grep -c 'migrating' "$WORK/coord.log" || true) migrations"
    cat "$WORK/coord.log" >>"$OUT/$name.coord.log"
    stop_all
}

echo "== noisy neighbour: smart-plug aggregation, 5 shards, M=10 R=2, 3 one-slot workers, $ITERATIONS iterations"
if [ -n "$CGROOT" ]; then
    echo "   nodes: each worker in a cgroup of $NODE_CPU CPU; the hog (stress-ng ${HOGARGS[*]}) in w3's"
else
    echo "   nodes: no writable cgroup CPU controller: w3 and the hog (stress-ng ${HOGARGS[*]}) share CPU $LAST, the rest CPU $REST"
fi
# Quiet, off against on: the cost of mitigation is a few per cent at most, less than this
# machine's drift from one minute to the next, so the two alternate in series of 10.
rm -f "$OUT"/*.coord.log
for _ in $(seq 1 $(((ITERATIONS + 9) / 10))); do
    run quiet-off quiet off 10
    run quiet-on quiet on 10
done
echo "quiet-on: $(grep -c 'speculative copy' "$OUT/quiet-on.coord.log" || true) speculative copies," \
    "$(grep -c 'put on probation' "$OUT/quiet-on.coord.log" || true) probations"
# Noisy: one series each, from a fresh coordinator (detection included).
run noisy-off noise off "$ITERATIONS"
run noisy-on noise on "$ITERATIONS"
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
print("%-12s %6s %6s %6s %6s %6s %6s" % ("run", "avg", "p50", "p90", "p99", "max", "copies"))
for n in rows:
    print("%-12s %6.1f %6d %6d %6d %6d %6d" % (n, sum(tot[n]) / len(tot[n]), p(n, 50), p(n, 90), p(n, 99), max(tot[n]),
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
bench_wait_alive 3
on=""
for k in $(seq 1 20); do
    (off_nodes "$T" submit --quiet "${JOB[@]}" --overwrite -o "$WORK/out-slow" "$WORK"/readings/readings_shard*.csv >/dev/null)
    if "$T" status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not any(w["name"]=="w3" and w["health"]["state"]=="probation" for w in d["workers"]))'; then
        on=$k
        break
    fi
done
printf 'on probation after %s iterations (target <= 3): %s\n' "${on:-more than 20}" \
    "$([ -n "$on" ] && [ "$on" -le 3 ] && echo PASS || echo MISS)"
stop_all
echo "CSVs, report and plots in $OUT"
