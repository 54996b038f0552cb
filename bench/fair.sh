#!/usr/bin/env bash
# fair.sh - small jobs beside a big one (issue 9, fair sharing): the smart-plug aggregation
# (5 shards, M=10 R=2) ITERATIONS times alone, then again while a word count of 1 GB (a 250 MB
# file four times, M=200 R=4) runs on the same coordinator and two 2-slot workers. Before fair sharing, jobs were served
# first come, first served: a 0.1 s aggregate submitted behind a 250 MB word count got its first
# task 8.3 s later.
#
# usage: bench/fair.sh BUILD_DIR       (part of make bench)
# Environment: TALLY_BENCH_DIR (cache, default ~/.cache/tally-bench), ITERATIONS (default 30).
set -euo pipefail
export LC_ALL=C
BUILD=$(cd "${1:?usage: bench/fair.sh BUILD_DIR}" && pwd)
T=$BUILD/tally
CACHE=${TALLY_BENCH_DIR:-$HOME/.cache/tally-bench}
ITERATIONS=${ITERATIONS:-30}
mkdir -p "$CACHE"
. "$(dirname "$0")/lib.sh"
bench_init
BIG=$CACHE/text-250M.txt
[ -f "$BIG" ] || "$T" gen text --size 250M --seed 7 -o "$BIG" >/dev/null
"$T" gen readings --shards 5 -o "$WORK/readings" >/dev/null
SMALL=(aggregate --where 'property==1' --group-by house_id,household_id,plug_id
    --agg 'count,avg(value),min(value),max(value)' -m 10 -r 2)

"$T" coordinator --listen 127.0.0.1:0 --token-file "$WORK/token" --log-level warn >"$WORK/coord.out" 2>"$WORK/coord.err" &
PIDS+=($!)
disown $!
COORD=$(bench_address "$WORK/coord.out")
export TALLY_COORDINATOR=$COORD
for i in 1 2; do
    "$T" worker --coordinator "$COORD" --token-file "$WORK/token" --name "w$i" --slots 2 --work-dir "$WORK/w$i" \
        --log-level warn >/dev/null 2>"$WORK/w$i.err" &
    PIDS+=($!)
    disown $!
done
bench_wait_alive 2

series() { # NAME: ITERATIONS small jobs, one CSV row each
    "$T" submit --quiet --iterations "$ITERATIONS" --results "$WORK/$1.csv" "${SMALL[@]}" -o "$WORK/out-$1" \
        "$WORK"/readings/readings_shard*.csv >/dev/null
}

big_running() {
    "$T" status "$1" --json | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["jobs"][0]["state"] != "running")'
}

echo "== small jobs beside a big one: aggregate (M=10 R=2) x $ITERATIONS, alone and while a 1 GB word count runs"
series alone
# The big job reads the 250 MB file four times over (1 GB, M=200): it must outlast the small
# series beside it.
for k in 1 2 3 4; do ln -s "$BIG" "$WORK/big-$k.txt"; done
big=$("$T" submit --detach wordcount -m 200 -r 4 -o "$WORK/big" "$WORK"/big-[1-4].txt)
# Let the big job take every slot first (the case that used to starve the small ones).
for _ in $(seq 200); do
    "$T" status "$big" --json | python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; sys.exit(sum(a["state"]=="running" for t in j["tasks"] for a in t["attempts"]) < 4)' && break
    sleep 0.05
done
series beside
big_running "$big" || echo "warning: the big job ended before the small ones did; the second series is partly alone" >&2
"$T" cancel "$big" >/dev/null 2>&1 || true
python3 - "$WORK" <<'PY'
import csv, math, sys
w = sys.argv[1]
def pct(v, p):
    v = sorted(v)
    return v[max(1, math.ceil(p / 100 * len(v))) - 1]
res = {}
for n in ("alone", "beside"):
    with open(f"{w}/{n}.csv") as f:
        res[n] = [int(r["total_ms"]) for r in csv.DictReader(f)]
for n, v in res.items():
    print("%-44s p50 %5d ms  p90 %5d ms  p99 %5d ms  max %5d ms  (n=%d)" % (
        "small job, " + ("alone" if n == "alone" else "beside a 1 GB word count"), pct(v, 50), pct(v, 90), pct(v, 99),
        max(v), len(v)))
print("slow-down beside the big job: p50 x%.2f, p99 x%.2f (was: first task after 8300 ms, first come first served)"
      % (pct(res["beside"], 50) / pct(res["alone"], 50), pct(res["beside"], 99) / pct(res["alone"], 99)))
PY
