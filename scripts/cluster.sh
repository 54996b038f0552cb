#!/usr/bin/env bash
# cluster.sh - a local tally cluster in the background: one coordinator and N workers.
#
#   scripts/cluster.sh up [--workers N]   start (coordinator on 127.0.0.1:$TALLY_PORT, default
#                                         7070; 0 picks a free port) and print the export lines
#   scripts/cluster.sh env                print the export lines again
#   scripts/cluster.sh status             tally status of the cluster
#   scripts/cluster.sh down               stop everything `up` started
#
# The cluster's state lives in one place whatever the current directory, so that every command
# finds the cluster `up` started: $TALLY_CLUSTER_DIR, default $HOME/.tally-cluster (--dir DIR
# overrides both). It holds the generated token, the address, the pid files, the workers' work
# dirs and the logs; `up` appends to the logs of earlier runs, after a line saying when it
# started. TALLY picks the binary (default build/tally beside this script).
set -euo pipefail

TALLY=${TALLY:-$(cd "$(dirname "$0")/.." && pwd)/build/tally}
cmd=${1:-}
[ $# -gt 0 ] && shift
# fd 4 is the real stderr, also inside until_ok's conditions, whose output goes to /dev/null.
exec 4>&2
die() { echo "cluster.sh: $*" >&4; exit 1; }
# usage [CODE]: the usage, on stdout for --help (CODE 0), else on stderr with exit 2.
usage() {
    local code=${1:-2}
    {
        echo "usage: scripts/cluster.sh up [--workers N] | env | status | down   [--dir DIR]"
        echo "       (state in \$TALLY_CLUSTER_DIR, default \$HOME/.tally-cluster; TALLY_PORT: the"
        echo "       coordinator's port, default 7070, 0 for any free one)"
    } >&$((code == 0 ? 1 : 2))
    exit "$code"
}
if [ -n "${TALLY_CLUSTER_DIR:-}" ]; then
    dir=$TALLY_CLUSTER_DIR
elif [ -n "${HOME:-}" ]; then
    dir=$HOME/.tally-cluster
else
    dir=""
fi
workers=2
while [ $# -gt 0 ]; do
    case $1 in
    --workers) [ $# -ge 2 ] || usage; workers=$2; shift 2 ;;
    --dir) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "cluster.sh: unknown option $1" >&2; usage ;;
    esac
done
[ -n "$dir" ] || die "neither TALLY_CLUSTER_DIR nor HOME is set: say where the cluster's state goes"
# Absolute, so that the printed paths work from anywhere.
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac

# until_ok SECONDS WHAT CMD...: polls CMD until it succeeds, or dies after SECONDS.
until_ok() {
    local end=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || die "timed out waiting for $what (logs in $dir)"
        sleep 0.05
    done
}
# running PIDFILE: the process of PIDFILE runs and is ours: its command line names this state
# dir's token (the pid of a process gone since, a reboot say, may belong to anyone by now).
running() {
    local pid
    [ -s "$1" ] && pid=$(cat "$1") && kill -0 "$pid" 2>/dev/null || return 1
    ps -o args= -p "$pid" 2>/dev/null | grep -qF -- "--token-file $dir/token"
}
# live_pids: the pid files of processes that still run.
live_pids() {
    local f
    for f in "$dir"/coordinator.pid "$dir"/w*.pid; do
        [ -e "$f" ] && running "$f" && echo "$f"
    done
    return 0
}
need_cluster() {
    if ! running "$dir/coordinator.pid" || [ ! -s "$dir/address" ]; then
        die "no cluster is running (state in $dir; start one with scripts/cluster.sh up)"
    fi
}
exports() {
    echo "export TALLY_COORDINATOR=$(cat "$dir/address")"
    echo "export TALLY_TOKEN_FILE=$dir/token"
}
# log_header FILE: appends the line that starts this run's part of a log.
log_header() { echo "==== cluster.sh up at $(date '+%Y-%m-%d %H:%M:%S') (pid $$) ====" >>"$1"; }

case $cmd in
-h | --help | help) usage 0 ;;
up)
    [[ $workers =~ ^[1-9][0-9]*$ ]] || die "--workers takes a positive number"
    [ -x "$TALLY" ] || die "no tally binary at $TALLY (run make, or set TALLY)"
    mkdir -p "$dir"
    [ -z "$(live_pids)" ] || die "a cluster already runs from $dir (scripts/cluster.sh down first)"
    rm -f "$dir"/*.pid "$dir/address"
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/token")
    log_header "$dir/coordinator.log"
    # setsid: each process leads its own group, so `down` also reaches a worker's task processes.
    setsid "$TALLY" coordinator --listen "127.0.0.1:${TALLY_PORT:-7070}" --token-file "$dir/token" \
        </dev/null >"$dir/coordinator.out" 2>>"$dir/coordinator.log" &
    echo $! >"$dir/coordinator.pid"
    printed() {
        # Alive, not `running`: for a moment after the fork its command line is not yet tally's.
        kill -0 "$(cat "$dir/coordinator.pid")" 2>/dev/null ||
            die "the coordinator exited: $(tail -n 2 "$dir/coordinator.log")"
        grep -q '^coordinator listening on ' "$dir/coordinator.out"
    }
    until_ok 20 "the coordinator" printed
    addr=$(sed -n 's/^coordinator listening on //p' "$dir/coordinator.out")
    echo "$addr" >"$dir/address"
    for i in $(seq 1 "$workers"); do
        log_header "$dir/w$i.log"
        setsid "$TALLY" worker --coordinator "$addr" --token-file "$dir/token" --name "w$i" \
            --work-dir "$dir" </dev/null >"$dir/w$i.out" 2>>"$dir/w$i.log" &
        echo $! >"$dir/w$i.pid"
    done
    all_alive() {
        local n
        n=$("$TALLY" status --coordinator "$addr" --token-file "$dir/token" --json | grep -o '"state": *"alive"' | wc -l)
        [ "$n" -ge "$workers" ]
    }
    until_ok 30 "$workers workers to be alive" all_alive
    echo "cluster up: coordinator $addr, $workers worker$([ "$workers" = 1 ] || echo s), state and logs in $dir" >&2
    exports
    ;;
env)
    need_cluster
    exports
    ;;
status)
    need_cluster
    exec "$TALLY" status --coordinator "$(cat "$dir/address")" --token-file "$dir/token"
    ;;
down)
    live=$(live_pids)
    if [ -z "$live" ]; then
        rm -f "$dir"/*.pid "$dir/address"
        die "no cluster is running (state in $dir): nothing to stop"
    fi
    what="" nw=0
    for f in $live; do
        kill -TERM "$(cat "$f")" 2>/dev/null || true
        case $f in */coordinator.pid) what="the coordinator" ;; *) nw=$((nw + 1)) ;; esac
    done
    gone() { [ -z "$(live_pids)" ]; }
    end=$((SECONDS + 5))
    until gone || [ $SECONDS -ge $end ]; do sleep 0.05; done
    # Leftovers, and task processes in the workers' groups (only groups that were ours just now:
    # the pid of a process that died long ago may belong to someone else by now).
    for f in $live; do
        kill -KILL -- "-$(cat "$f")" 2>/dev/null || true
    done
    rm -f "$dir"/*.pid "$dir/address"
    [ $nw = 0 ] || what="${what:+$what and }$nw worker$([ $nw = 1 ] || echo s)"
    echo "cluster.sh: stopped $what (state and logs in $dir)" >&2
    ;;
*) usage ;;
esac
