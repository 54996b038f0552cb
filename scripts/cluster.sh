#!/usr/bin/env bash
# cluster.sh - a local tally cluster in the background: one coordinator (or several, electing
# their leader through a local ZooKeeper) and N workers.
#
#   scripts/cluster.sh up [--workers N]   start (coordinator on 127.0.0.1:$TALLY_PORT, default
#                                         7070; 0 picks a free port) and print the export lines
#   scripts/cluster.sh up --coordinators N   N > 1 coordinators for high availability (below)
#   scripts/cluster.sh env                print the export lines again
#   scripts/cluster.sh status             tally status of the cluster
#   scripts/cluster.sh down               stop everything `up` started
#
# The cluster's state lives in one place whatever the current directory, so that every command
# finds the cluster `up` started: $TALLY_CLUSTER_DIR, default $HOME/.tally-cluster (--dir DIR
# overrides both). It holds the generated token, the address, the pid files, the workers' work
# dirs and the logs; `up` appends to the logs of earlier runs, after a line saying when it
# started. TALLY picks the binary (default build/tally beside this script).
#
# With --coordinators N (N > 1), `up` first starts a ZooKeeper server (Debian's zookeeper
# package) as a plain process on a free port of 127.0.0.1, its config and data in DIR/zk (the
# data wiped at each `up`: no jobs or leaders of an earlier run) and its log in DIR/zk.log; then
# N coordinators on free ports (TALLY_PORT does not apply) that elect their leader through it.
# The workers get the list of all N and follow the leader themselves; the exported
# TALLY_COORDINATOR is zk://127.0.0.1:PORT/tally-local, which clients resolve through ZooKeeper
# to whichever coordinator leads. `down` stops ZooKeeper too. PYTHON picks the interpreter that
# chooses the port and asks ZooKeeper whether it runs (default python3).
set -euo pipefail

TALLY=${TALLY:-$(cd "$(dirname "$0")/.." && pwd)/build/tally}
PYTHON=${PYTHON:-python3}
ZK_JAR=/usr/share/java/zookeeper.jar
cmd=${1:-}
[ $# -gt 0 ] && shift
# fd 4 is the real stderr, also inside until_ok's conditions, whose output goes to /dev/null.
exec 4>&2
die() { echo "cluster.sh: $*" >&4; exit 1; }
# usage [CODE]: the usage, on stdout for --help (CODE 0), else on stderr with exit 2.
usage() {
    local code=${1:-2}
    {
        echo "usage: scripts/cluster.sh up [--workers N] [--coordinators N] | env | status | down   [--dir DIR]"
        echo "       (state in \$TALLY_CLUSTER_DIR, default \$HOME/.tally-cluster; TALLY_PORT: the"
        echo "       coordinator's port, default 7070, 0 for any free one; --coordinators N > 1:"
        echo "       N coordinators on free ports, electing their leader through a local ZooKeeper)"
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
coordinators=1
while [ $# -gt 0 ]; do
    case $1 in
    --workers) [ $# -ge 2 ] || usage; workers=$2; shift 2 ;;
    --coordinators) [ $# -ge 2 ] || usage; coordinators=$2; shift 2 ;;
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
# dir's token, or for ZooKeeper its config here (the pid of a process gone since, a reboot say,
# may belong to anyone by now).
running() {
    local pid mark="--token-file $dir/token"
    [ "$1" != "$dir/zk.pid" ] || mark=$dir/zk/zoo.cfg
    [ -s "$1" ] && pid=$(cat "$1") && kill -0 "$pid" 2>/dev/null || return 1
    ps -o args= -p "$pid" 2>/dev/null | grep -qF -- "$mark"
}
# live_pids [tally]: the pid files of processes that still run (coordinator.pid, or
# coordinator1.pid ... with --coordinators, then the workers', then ZooKeeper's unless `tally`).
live_pids() {
    local f last=("$dir/zk.pid")
    [ "${1:-}" != tally ] || last=()
    for f in "$dir"/coordinator.pid "$dir"/coordinator[0-9]*.pid "$dir"/w*.pid "${last[@]}"; do
        [ -e "$f" ] && running "$f" && echo "$f"
    done
    return 0
}
# A cluster runs while one of its coordinators does (and its ZooKeeper, if it has one).
need_cluster() {
    local live
    live=$(live_pids)
    if ! grep -q '/coordinator[0-9]*\.pid$' <<<"$live" || [ ! -s "$dir/address" ]; then
        die "no cluster is running (state in $dir; start one with scripts/cluster.sh up)"
    fi
    if [ -e "$dir/zk.pid" ] && ! grep -qxF "$dir/zk.pid" <<<"$live"; then
        die "the cluster's ZooKeeper is not running (log in $dir/zk.log; scripts/cluster.sh down, then up)"
    fi
}
exports() {
    echo "export TALLY_COORDINATOR=$(cat "$dir/address")"
    echo "export TALLY_TOKEN_FILE=$dir/token"
}
# log_header FILE: appends the line that starts this run's part of a log.
log_header() { echo "==== cluster.sh up at $(date '+%Y-%m-%d %H:%M:%S') (pid $$) ====" >>"$1"; }
# start_coordinator NAME ARGS...: a coordinator with logs NAME.log, stdout NAME.out, pid file
# NAME.pid; wait_listening NAME then waits for its address, into $caddr.
start_coordinator() {
    local name=$1
    shift
    log_header "$dir/$name.log"
    # Emptied here, not by the redirection below: that one happens in the background child,
    # possibly after wait_listening has read the address an earlier run left in the file.
    : >"$dir/$name.out"
    # setsid: each process leads its own group, so `down` also reaches a worker's task processes.
    setsid "$TALLY" coordinator --token-file "$dir/token" "$@" \
        </dev/null >"$dir/$name.out" 2>>"$dir/$name.log" &
    echo $! >"$dir/$name.pid"
}
wait_listening() {
    local name=$1
    printed() {
        # Alive, not `running`: for a moment after the fork its command line is not yet tally's.
        kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null ||
            die "the coordinator exited: $(tail -n 2 "$dir/$name.log")"
        grep -q '^coordinator listening on ' "$dir/$name.out"
    }
    until_ok 20 "the coordinator" printed
    caddr=$(sed -n 's/^coordinator listening on //p' "$dir/$name.out")
}
# start_zookeeper: a standalone ZooKeeper server on a free port of 127.0.0.1, data in DIR/zk;
# returns once it answers "imok" to "ruok". Sets $zkport.
start_zookeeper() {
    local zk=$dir/zk
    rm -rf "$zk/data"
    mkdir -p "$zk/data"
    # A port nothing listens on: bound, then closed, by the kernel's choice.
    zkport=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$zk/zoo.cfg" <<CFG
tickTime=500
dataDir=$zk/data
clientPort=$zkport
clientPortAddress=127.0.0.1
minSessionTimeout=1000
maxSessionTimeout=30000
admin.enableServer=false
4lw.commands.whitelist=ruok
CFG
    log_header "$dir/zk.log"
    setsid java -Xmx256m -cp "$zk:$ZK_JAR:/usr/share/java/slf4j-simple.jar" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$zk/zoo.cfg" </dev/null >>"$dir/zk.log" 2>&1 &
    echo $! >"$dir/zk.pid"
    imok() {
        kill -0 "$(cat "$dir/zk.pid")" 2>/dev/null || die "ZooKeeper exited: $(tail -n 2 "$dir/zk.log")"
        "$PYTHON" - "$zkport" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"ruok")
sys.exit(0 if s.recv(8) == b"imok" else 1)
PY
    }
    until_ok 60 "ZooKeeper on 127.0.0.1:$zkport" imok
}

case $cmd in
-h | --help | help) usage 0 ;;
up)
    [[ $workers =~ ^[1-9][0-9]*$ ]] || die "--workers takes a positive number"
    [[ $coordinators =~ ^[1-9][0-9]*$ ]] || die "--coordinators takes a positive number"
    [ -x "$TALLY" ] || die "no tally binary at $TALLY (run make, or set TALLY)"
    if [ "$coordinators" -gt 1 ]; then
        [ -r "$ZK_JAR" ] || die "no ZooKeeper at $ZK_JAR for --coordinators (scripts/install-deps.sh installs it)"
        command -v java >/dev/null || die "no java to run ZooKeeper with (scripts/install-deps.sh installs it)"
        command -v "$PYTHON" >/dev/null || die "no $PYTHON (set PYTHON)"
    fi
    mkdir -p "$dir"
    [ -z "$(live_pids)" ] || die "a cluster already runs from $dir (scripts/cluster.sh down first)"
    rm -f "$dir"/*.pid "$dir/address"
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/token")
    if [ "$coordinators" = 1 ]; then
        start_coordinator coordinator --listen "127.0.0.1:${TALLY_PORT:-7070}"
        wait_listening coordinator
        addr=$caddr     # what clients use
        waddr=$caddr    # what workers use
        echo "$addr" >"$dir/address"
    else
        start_zookeeper
        zk=127.0.0.1:$zkport/tally-local
        for i in $(seq 1 "$coordinators"); do
            start_coordinator "coordinator$i" --listen 127.0.0.1:0 --zookeeper "$zk" --zk-session-ms 2000
        done
        waddr=""
        for i in $(seq 1 "$coordinators"); do
            wait_listening "coordinator$i"
            waddr=${waddr:+$waddr,}$caddr
        done
        # Clients ask ZooKeeper which coordinator leads; the workers know them all.
        addr=zk://$zk
        echo "$addr" >"$dir/address"
    fi
    for i in $(seq 1 "$workers"); do
        log_header "$dir/w$i.log"
        setsid "$TALLY" worker --coordinator "$waddr" --token-file "$dir/token" --name "w$i" \
            --work-dir "$dir" </dev/null >"$dir/w$i.out" 2>>"$dir/w$i.log" &
        echo $! >"$dir/w$i.pid"
    done
    all_alive() {
        local n
        n=$("$TALLY" status --coordinator "$addr" --token-file "$dir/token" --json | grep -o '"state": *"alive"' | wc -l)
        [ "$n" -ge "$workers" ]
    }
    # With --coordinators: every coordinator listed, exactly one of them the leader, and the
    # workers alive (counted in "workers" only: a coordinator's record has a "state" too).
    elected() {
        "$TALLY" status --coordinator "$addr" --token-file "$dir/token" --json |
            "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
roles = [c.get("role") for c in d.get("coordinators", [])]
alive = [w for w in d["workers"] if w["state"] == "alive"]
sys.exit(0 if len(roles) == int(sys.argv[1]) and roles.count("leader") == 1 and len(alive) >= int(sys.argv[2]) else 1)' \
                "$coordinators" "$workers"
    }
    if [ "$coordinators" = 1 ]; then
        until_ok 30 "$workers workers to be alive" all_alive
        echo "cluster up: coordinator $addr, $workers worker$([ "$workers" = 1 ] || echo s), state and logs in $dir" >&2
    else
        until_ok 30 "a leader among the $coordinators coordinators and $workers workers to be alive" elected
        echo "cluster up: $coordinators coordinators ($waddr) on ZooKeeper 127.0.0.1:$zkport," \
            "$workers worker$([ "$workers" = 1 ] || echo s), state and logs in $dir" >&2
    fi
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
    what="" nc=0 nw=0 zk=""
    for f in $live; do
        case $f in
        # ZooKeeper last, once the coordinators have closed their sessions.
        */zk.pid) zk=1; continue ;;
        */coordinator.pid) what="the coordinator" ;;
        */coordinator[0-9]*.pid) nc=$((nc + 1)) ;;
        *) nw=$((nw + 1)) ;;
        esac
        kill -TERM "$(cat "$f")" 2>/dev/null || true
    done
    gone() { [ -z "$(live_pids "$@")" ]; }
    end=$((SECONDS + 5))
    until gone tally || [ $SECONDS -ge $end ]; do sleep 0.05; done
    if [ -n "$zk" ]; then
        kill -TERM "$(cat "$dir/zk.pid")" 2>/dev/null || true
        end=$((SECONDS + 5))
        until gone || [ $SECONDS -ge $end ]; do sleep 0.05; done
    fi
    # Leftovers, and task processes in the workers' groups (only groups that were ours just now:
    # the pid of a process that died long ago may belong to someone else by now).
    for f in $live; do
        kill -KILL -- "-$(cat "$f")" 2>/dev/null || true
    done
    rm -f "$dir"/*.pid "$dir/address"
    [ $nc = 0 ] || what="$nc coordinator$([ $nc = 1 ] || echo s)"
    [ -z "$zk" ] || what="${what:+$what, }ZooKeeper"
    [ $nw = 0 ] || what="${what:+$what and }$nw worker$([ $nw = 1 ] || echo s)"
    echo "cluster.sh: stopped $what (state and logs in $dir)" >&2
    ;;
*) usage ;;
esac
