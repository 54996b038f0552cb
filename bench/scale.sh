#!/usr/bin/env bash
# scale.sh - the scaling experiment: one job over the same input on 1, 2, ... N workers of one
# slot each (N executors, as Spark's "1 to 7 executors"), ROUNDS runs per size, rotating
# through the sizes round by round so that a drifting machine hits every size alike. Writes a
# table (workers, wall median, speed-up, efficiency) and a plot drawn by gnuplot, the drawing
# tool of `tally report`.
#
# usage: bench/scale.sh BUILD_DIR [N]      (N: default the number of CPUs)
# Environment:
#   TALLY_BENCH_DIR   cache of the input (default ~/.cache/tally-bench); results go to its scale/
#   ROUNDS            runs per size (default 3)
#   SCALE_SIZE        size of the generated text (default 256M)
#   SCALE_JOB         "wordcount" (default) or "aggregate" (the smart-plug aggregation of
#                     readings, 5 shards x 2M rows)
set -euo pipefail
export LC_ALL=C
BUILD=$(cd "${1:?usage: bench/scale.sh BUILD_DIR [N]}" && pwd)
T=$BUILD/tally
N=${2:-$(nproc)}
ROUNDS=${ROUNDS:-3}
SIZE=${SCALE_SIZE:-256M}
JOB=${SCALE_JOB:-wordcount}
CACHE=${TALLY_BENCH_DIR:-$HOME/.cache/tally-bench}
OUT=$CACHE/scale
mkdir -p "$OUT"
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "scale: N must be a positive number, not '$N'" >&2; exit 2; }
. "$(dirname "$0")/lib.sh"
bench_init

case $JOB in
wordcount)
    INPUT=$CACHE/text-$SIZE.txt
    [ -f "$INPUT" ] || "$T" gen text --size "$SIZE" --seed 9 -o "$INPUT" >/dev/null
    CMD=(wordcount -m 32 -r 4 -o "$WORK/out" "$INPUT")
    ;;
aggregate)
    INPUT=$CACHE/readings
    [ -d "$INPUT" ] || "$T" gen readings --shards 5 --rows 2000000 -o "$INPUT" >/dev/null
    CMD=(aggregate --where 'property==1' --group-by house_id,household_id,plug_id
        --agg 'count,avg(value),min(value),max(value)' -m 20 -r 2 -o "$WORK/out" "$INPUT"/readings_shard*.csv)
    ;;
*) echo "scale: SCALE_JOB must be wordcount or aggregate" >&2; exit 2 ;;
esac
cat "$INPUT" "$INPUT"/* >/dev/null 2>&1 || true

"$T" coordinator --listen 127.0.0.1:0 --token-file "$WORK/token" --log-level warn --speculation off \
    --probation off --worker-timeout-ms 1000 >"$WORK/coord.out" 2>"$WORK/coord.err" &
PIDS+=($!)
disown $!
COORD=$(bench_address "$WORK/coord.out")
export TALLY_COORDINATOR=$COORD
# N workers of one slot each, all started up front; a run on k workers cordons off the others
# by giving them nothing to do: they are stopped (SIGSTOP) and marked dead first.
WPIDS=()
for ((i = 1; i <= N; i++)); do
    "$T" worker --coordinator "$COORD" --token-file "$WORK/token" --name "w$i" --slots 1 \
        --work-dir "$WORK/w$i" --log-level warn >/dev/null 2>"$WORK/w$i.err" &
    WPIDS+=($!)
    PIDS+=($!)
    disown $!
done
bench_wait_alive "$N"

# use K: exactly workers w1..wK alive (the others killed for this run, restarted after).
use() {
    local k=$1 i
    for ((i = 1; i <= N; i++)); do
        if [ "$i" -le "$k" ]; then continue; fi
        kill -9 "${WPIDS[$((i - 1))]}" 2>/dev/null || true
    done
    # Wait until the coordinator counts exactly k alive (the killed ones time out).
    for _ in $(seq 600); do
        n=$("$T" status --json | python3 -c 'import json,sys; print(sum(w["state"]=="alive" for w in json.load(sys.stdin)["workers"]))')
        [ "$n" -eq "$k" ] && return 0
        sleep 0.05
    done
    echo "scale: the coordinator does not see $k workers" >&2
    exit 1
}
restore() {
    local i
    for ((i = 1; i <= N; i++)); do
        if kill -0 "${WPIDS[$((i - 1))]}" 2>/dev/null; then continue; fi
        "$T" worker --coordinator "$COORD" --token-file "$WORK/token" --name "w$i" --slots 1 \
            --work-dir "$WORK/w$i" --log-level warn >/dev/null 2>>"$WORK/w$i.err" &
        WPIDS[$((i - 1))]=$!
        PIDS+=($!)
        disown $!
    done
    bench_wait_alive "$N"
}

: >"$OUT/runs.csv"
echo "workers,round,wall_s" >"$OUT/runs.csv"
for ((r = 1; r <= ROUNDS; r++)); do
    for ((k = 1; k <= N; k++)); do
        use "$k"
        s=$(date +%s.%N)
        "$T" submit --quiet --overwrite "${CMD[@]}" >/dev/null
        e=$(date +%s.%N)
        awk -v k="$k" -v r="$r" -v s="$s" -v e="$e" 'BEGIN { printf "%d,%d,%.3f\n", k, r, e - s }' >>"$OUT/runs.csv"
        restore
    done
done

python3 - "$OUT" "$JOB" "$INPUT" <<'PY'
import csv, statistics, sys
out, job, inp = sys.argv[1:]
runs = {}
for row in csv.DictReader(open(out + "/runs.csv")):
    runs.setdefault(int(row["workers"]), []).append(float(row["wall_s"]))
base = statistics.median(runs[1])
with open(out + "/scale.csv", "w") as f:
    f.write("workers,wall_median_s,speedup,efficiency\n")
    print("%-8s %12s %9s %11s   runs (s)" % ("workers", "wall median", "speed-up", "efficiency"))
    for k in sorted(runs):
        m = statistics.median(runs[k])
        f.write("%d,%.3f,%.3f,%.3f\n" % (k, m, base / m, base / m / k))
        print("%-8d %10.3f s %8.2fx %10.0f%%   %s" % (k, m, base / m, 100 * base / m / k,
                                                   " ".join("%.2f" % v for v in runs[k])))
print("(%s over %s; medians of %d rounds; %s/scale.csv, scale.png)" % (job, inp, len(runs[1]), out))
PY
if command -v gnuplot >/dev/null; then
    (cd "$OUT" && gnuplot <<'GP'
set datafile separator ","
set terminal pngcairo size 800,500 noenhanced font 'Sans,11'
set output "scale.png"
set title "tally: speed-up against workers (one slot each)"
set xlabel "workers"
set ylabel "speed-up over 1 worker"
set key left top
set grid
stats "scale.csv" using 1 nooutput
set xrange [0.5:STATS_max + 0.5]
set yrange [0:STATS_max + 0.5]
set xtics 1
plot "scale.csv" using 1:3 skip 1 with linespoints lw 2 pt 7 title "measured", x with lines dt 2 title "linear"
GP
    ) || echo "scale: gnuplot failed; the table is still in $OUT/scale.csv" >&2
else
    echo "scale: gnuplot not installed (apt-get install gnuplot-nox): no plot" >&2
fi
