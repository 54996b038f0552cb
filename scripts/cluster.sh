#!/usr/bin/env bash
# cluster.sh - a local tally cluster in the background: one coordinator and N workers.
#
#   scripts/cluster.sh up [--workers N] [--dir DIR]   start (coordinator on 127.0.0.1:$TALLY_PORT,
#                                                     default 7070) and print the export lines
#   scripts/cluster.sh env [--dir DIR]                print the export lines again
#   scripts/cluster.sh status [--dir DIR]             tally status of the cluster
#   scripts/cluster.sh down [--dir DIR]               stop everything `up` started
#
# DIR (default ./.tally-cluster) holds the generated token, the pid files and the logs. TALLY
# picks the binary (default build/tally beside this script).
set -euo pipefail

TALLY=${TALLY:-$(cd "$(dirname "$0")/.." && pwd)/build/tally}
cmd=${1:-}
[ $# -gt 0 ] && shift
dir=./.tally-cluster workers=2
while [ $# -gt 0 ]; do
    case $1 in
    --workers) workers=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
die() { echo "cluster.sh: $*" >&2; exit 1; }

# until_ok SECONDS WHAT CMD...: polls CMD until it succeeds, or dies after SECONDS.
until_ok() {
    local end=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || die "timed out waiting for $what (logs in $dir)"
        sleep 0.05
    done
}
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
exports() {
    [ -s "$dir/address" ] || die "no cluster in $dir (scripts/cluster.sh up)"
    echo "export TALLY_COORDINATOR=$(cat "$dir/address")"
    echo "export TALLY_TOKEN_FILE=$(cd "$dir" && pwd)/token"
}

case $cmd in
up)
    [[ $workers =~ ^[1-9][0-9]*$ ]] || die "--workers takes a positive number"
    [ -x "$TALLY" ] || die "no tally binary at $TALLY (run make, or set TALLY)"
    mkdir -p "$dir"
    running "$dir/coordinator.pid" && die "a cluster already runs from $dir (scripts/cluster.sh down first)"
    rm -f "$dir"/*.pid "$dir/address"
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/token")
    # setsid: each process leads its own group, so `down` also reaches a worker's task processes.
    setsid "$TALLY" coordinator --listen "127.0.0.1:${TALLY_PORT:-7070}" --token-file "$dir/token" \
        </dev/null >"$dir/coordinator.out" 2>"$dir/coordinator.log" &
    echo $! >"$dir/coordinator.pid"
    printed() { running "$dir/coordinator.pid" || die "the coordinator exited: $(tail -n 2 "$dir/coordinator.log")"
        grep -q '^coordinator listening on ' "$dir/coordinator.out"; }
    until_ok 20 "the coordinator" printed
    addr=$(sed -n 's/^coordinator listening on //p' "$dir/coordinator.out")
    echo "$addr" >"$dir/address"
    for i in $(seq 1 "$workers"); do
        setsid "$TALLY" worker --coordinator "$addr" --token-file "$dir/token" --name "w$i" \
            --work-dir "$dir/w$i.work" </dev/null >"$dir/w$i.out" 2>"$dir/w$i.log" &
        echo $! >"$dir/w$i.pid"
    done
    all_alive() {
        local n
        n=$("$TALLY" status --coordinator "$addr" --token-file "$dir/token" --json | grep -o '"state": *"alive"' | wc -l)
        [ "$n" -ge "$workers" ]
    }
    until_ok 30 "$workers workers to be alive" all_alive
    echo "cluster up: coordinator $addr, $workers workers, logs in $dir" >&2
    exports
    ;;
env) exports ;;
status)
    eval "$(exports)"
    exec "$TALLY" status
    ;;
down)
    for f in "$dir"/w*.pid "$dir"/coordinator.pid; do
        if [ -s "$f" ]; then kill -TERM "$(cat "$f")" 2>/dev/null || true; fi
    done
    gone() { for f in "$dir"/*.pid; do [ -e "$f" ] && running "$f" && return 1; done; return 0; }
    end=$((SECONDS + 5))
    until gone || [ $SECONDS -ge $end ]; do sleep 0.05; done
    for f in "$dir"/*.pid; do # leftovers, and task processes in the workers' groups
        if [ -s "$f" ]; then kill -KILL -- "-$(cat "$f")" 2>/dev/null || true; fi
    done
    rm -f "$dir"/*.pid "$dir/address"
    echo "cluster in $dir stopped" >&2
    ;;
*)
    echo "usage: scripts/cluster.sh up [--workers N] [--dir DIR] | env | status | down [--dir DIR]" >&2
    exit 2
    ;;
esac
