#!/usr/bin/env bash
# ha.sh - high-availability benchmarks (issue 8):
#   failover       SIGKILL of the leader to the first assignment by the next one, p50/p99 over
#                  KILLS (default 20) kills with a 2000 ms ZooKeeper session timeout, during a
#                  word count (the scenario of tests/e2e/ha_zk_kills.sh, run with KILLS and
#                  FAILOVER_OUT); target p99 <= 3000 ms (Spark standalone: 60-120 s)
#   durability     the small-job benchmark (aggregate over 5 CSV shards, M=10 R=2, 2 workers,
#                  ITERATIONS, default 100) without state, with --state-dir and with --zookeeper;
#                  target: each at most 10% slower p50 than without
# usage: bench/ha.sh BUILD_DIR        (part of make bench)
set -euo pipefail
export LC_ALL=C
BUILD=$(cd "${1:?usage: bench/ha.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$BUILD/tally
KILLS=${KILLS:-20}
ITERATIONS=${ITERATIONS:-100}
. "$(dirname "$0")/lib.sh"
bench_init

if [ "$KILLS" -gt 0 ]; then
    echo "== failover: $KILLS leader kills (SIGKILL) during a word count, 3 coordinators, ZooKeeper session 2000 ms"
    : >"$WORK/failover.txt"
    # A longer job than the test's (more, slower tasks), so that it outlasts every kill.
    TALLY=$T KILLS=$KILLS SESSION_MS=2000 MAPS=400 REDUCES=40 WORKER_DELAY_MS=600 FAILOVER_OUT=$WORK/failover.txt bash "$ROOT/tests/e2e/ha_zk_kills.sh" \
        >"$WORK/kills.log" 2>&1 || { tail -n 20 "$WORK/kills.log"; echo "the failover run failed" >&2; exit 1; }
    grep "kills; failover" "$WORK/kills.log" || true
    read -r p50 p99 max n < <(bench_percentiles <"$WORK/failover.txt")
    printf '%-44s p50 %5s ms  p99 %5s ms  max %5s ms  (n=%s; target p99 <= 3000 ms: %s; Spark standalone 60000-120000 ms)\n' \
        "leader SIGKILL -> next leader assigns" "$p50" "$p99" "$max" "$n" "$([ "$n" -gt 0 ] && [ "$p99" -le 3000 ] && echo PASS || echo MISS)"
fi

[ "$ITERATIONS" -gt 0 ] || exit 0
echo "== cost of durability: small job (5 CSV shards, M=10 R=2, 2 workers), $ITERATIONS iterations each"
"$T" gen readings --shards 5 -o "$WORK/readings" >/dev/null
zkport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/zk/data"
printf 'tickTime=500\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nminSessionTimeout=1000\nadmin.enableServer=false\n4lw.commands.whitelist=ruok\n' \
    "$WORK/zk/data" "$zkport" >"$WORK/zk/zoo.cfg"
java -Xmx256m -cp "$WORK/zk:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$WORK/zk/zoo.cfg" >"$WORK/zk.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do
    python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$zkport),1); s.sendall(b'ruok'); sys.exit(s.recv(4)!=b'imok')" 2>/dev/null && break
    sleep 0.1
done

# run_small MODE N ARGS...: a coordinator with ARGS and 2 workers run the small job N times; the
# latencies are appended to $WORK/lat-MODE.txt.
run_small() {
    local mode=$1 n=$2
    shift 2
    # It runs in a subshell ( ... ): its own processes die with it, however
    # it ends (the EXIT trap of the script does not see them).
    trap 'for p in "${PIDS[@]:1}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT
    "$T" coordinator --listen 127.0.0.1:0 --token-file "$WORK/token" --log-level warn "$@" >"$WORK/c-$mode.out" 2>"$WORK/c-$mode.err" &
    local cpid=$!
    PIDS+=($cpid)
    local coord
    coord=$(bench_address "$WORK/c-$mode.out")
    export TALLY_COORDINATOR=$coord
    for i in 1 2; do
        "$T" worker --coordinator "$coord" --token-file "$WORK/token" --name "$mode$i" --work-dir "$WORK/w-$mode$i" \
            --slots 2 --log-level warn >/dev/null 2>&1 &
        PIDS+=($!)
    done
    bench_wait_alive 2
    for k in $(seq "$n"); do
        t0=$(date +%s%N)
        "$T" submit --quiet aggregate --where 'property==1' --group-by house_id,household_id,plug_id \
            --agg 'count,avg(value),min(value),max(value)' -m 10 -r 2 --overwrite -o "$WORK/agg-$mode" \
            "$WORK"/readings/readings_shard*.csv >/dev/null
        t1=$(date +%s%N)
        [ -f "$WORK/agg-$mode/_SUCCESS" ] || { echo "$mode iteration $k: no _SUCCESS" >&2; exit 1; }
        echo $(((t1 - t0) / 1000000)) >>"$WORK/lat-$mode.txt"
    done
    for p in "${PIDS[@]}"; do [ "$p" = "${PIDS[0]}" ] || kill -9 "$p" 2>/dev/null || true; done
    PIDS=("${PIDS[0]}")
}
# The three alternate in series of 10 (a fresh cluster each): run one after the other, the
# machine's drift from minute to minute decided the comparison (issue 8's figures had the
# journal 21% faster than no state at all).
: >"$WORK/lat-none.txt"
: >"$WORK/lat-journal.txt"
: >"$WORK/lat-zk.txt"
for _ in $(seq 1 $(((ITERATIONS + 9) / 10))); do
    (run_small none 10)
    (run_small journal 10 --state-dir "$WORK/state")
    (run_small zk 10 --zookeeper "127.0.0.1:$zkport/bench" --zk-session-ms 2000)
done
read -r base b99 _ _ < <(bench_percentiles <"$WORK/lat-none.txt")
read -r jp50 j99 _ _ < <(bench_percentiles <"$WORK/lat-journal.txt")
read -r zp50 z99 _ _ < <(bench_percentiles <"$WORK/lat-zk.txt")
verdict() { awk -v b="$1" -v x="$2" 'BEGIN { d = 100 * (x - b) / b; printf "%+.1f%% p50: %s", d, (d <= 10 ? "PASS" : "MISS") }'; }
printf '%-44s p50 %5s ms  p99 %5s ms\n' "small job, no state" "$base" "$b99"
printf '%-44s p50 %5s ms  p99 %5s ms  (%s; target <= +10%%)\n' "small job, --state-dir (fdatasync)" "$jp50" "$j99" "$(verdict "$base" "$jp50")"
printf '%-44s p50 %5s ms  p99 %5s ms  (%s; target <= +10%%)\n' "small job, --zookeeper" "$zp50" "$z99" "$(verdict "$base" "$zp50")"
