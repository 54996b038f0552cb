# bench/lib.sh - what the cluster benchmarks share; sourced by cluster.sh, ha.sh, noisy.sh and
# fair.sh after they set T (the tally binary):
#   bench_init                  WORK (a fresh directory, removed at exit), PIDS (killed at exit;
#                               a script may define bench_at_exit for more), a token in
#                               $WORK/token exported as TALLY_TOKEN_FILE
#   bench_address FILE          waits for "coordinator listening on HOST:PORT" in FILE (the
#                               coordinator's stdout; remove it before starting one), prints
#                               HOST:PORT
#   bench_wait_alive N          waits until N workers are alive (TALLY_COORDINATOR's)
#   bench_percentiles           reads numbers (ms), prints "p50 p99 max n", nearest rank as
#                               tally report's

bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    if declare -F bench_at_exit >/dev/null; then bench_at_exit; fi
    rm -rf "$WORK"
}

bench_init() {
    WORK=$(mktemp -d)
    PIDS=()
    trap bench_cleanup EXIT
    head -c 24 /dev/urandom | base64 >"$WORK/token"
    export TALLY_TOKEN_FILE=$WORK/token
}

bench_address() {
    local a="" _
    for _ in $(seq 200); do
        a=$(sed -n 's/^coordinator listening on //p' "$1" 2>/dev/null || true)
        [ -n "$a" ] && break
        sleep 0.05
    done
    [ -n "$a" ] || { echo "the coordinator did not start (see ${1%.out}.err)" >&2; exit 1; }
    echo "$a"
}

bench_wait_alive() {
    local n _
    for _ in $(seq 400); do
        n=$("$T" status --json 2>/dev/null |
            python3 -c 'import json,sys; print(sum(w["state"] == "alive" for w in json.load(sys.stdin)["workers"]))' \
                2>/dev/null || echo 0)
        [ "$n" -ge "$1" ] && return 0
        sleep 0.05
    done
    echo "the workers did not come up" >&2
    exit 1
}

bench_percentiles() {
    python3 -c '
import math, sys
v = sorted(float(x) for x in sys.stdin.read().split())
if not v:
    print("- - - 0")
    sys.exit(0)
p = lambda q: v[max(1, math.ceil(q * len(v))) - 1]
print("%.0f %.0f %.0f %d" % (p(0.50), p(0.99), v[-1], len(v)))'
}
