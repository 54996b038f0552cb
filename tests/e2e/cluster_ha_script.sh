#!/usr/bin/env bash
# cluster_ha_script.sh - scripts/cluster.sh up --coordinators 3 as a user meets it: a local
# ZooKeeper and three coordinators electing their leader through it, two workers; the export
# lines point clients at zk://...; a job submitted through them succeeds with the output of
# `tally run`; status --json lists the three coordinators with exactly one leader; `down` stops
# everything, ZooKeeper included, and leaves no process behind. The EXIT trap runs `down` (and
# kills what it missed) whether the test passes or fails.
. "$(dirname "$0")/lib.sh"

JOB_TIMEOUT=60
CS=$ROOT/scripts/cluster.sh
C=$T/c     # the cluster's state dir
PIDS=()    # the processes `up` started (from its pid files), for the checks and the trap

# cs ARGS...: cluster.sh ARGS... --dir $C; stdout, stderr and RC as tally_try.
cs() {
    LAST_CMD="cluster.sh $*"
    RC=0
    TALLY=$TALLY PYTHON=$PYTHON timeout -k 5 120 bash "$CS" "$@" --dir "$C" >"$T/stdout" 2>"$T/stderr" || RC=$?
}

# alive PID: runs, and is not a zombie waiting for init to reap it.
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# group_members PGID: the pids still in a process group (/proc/PID/stat field 5).
group_members() { awk -v g="$1" '$5 == g { print $1 }' /proc/[0-9]*/stat 2>/dev/null || true; }

ha_cleanup() {
    local p
    trap - ERR
    set +e
    # `down` first, as a user would; then whatever it missed (each process leads its group).
    [ ! -d "$C" ] || TALLY=$TALLY timeout -k 5 30 bash "$CS" down --dir "$C" >/dev/null 2>&1
    for p in $(cat "$C"/*.pid 2>/dev/null) "${PIDS[@]}"; do
        kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
    done
    lib_cleanup
}
trap ha_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# fail MESSAGE...: lib.sh's fail, with the tails of the cluster's logs first.
fail() {
    local f
    for f in "$C"/*.log; do
        [ -s "$f" ] || continue
        echo "--- tail of $(basename "$f"):" >&2
        tail -n 6 "$f" >&2
    done
    echo "FAIL $TEST_NAME (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}): $*" >&2
    if [ -s "$T/stderr" ]; then
        echo "--- stderr of the last command ($LAST_CMD):" >&2
        tail -n 8 "$T/stderr" >&2
    fi
    trap - ERR
    exit 1
}

gen_ok text --size 200K --seed 1 -o "$T/in.txt"
step "the local answer"
job_ok wordcount -m 2 -r 2 -o "$T/local" "$T/in.txt"
cat "$T/local"/part-* | sort >"$T/ans.txt"

step "cluster.sh up --coordinators 3 --workers 2: ZooKeeper, three coordinators, two workers"
cs up --coordinators 3 --workers 2
for f in "$C"/*.pid; do [ -s "$f" ] && PIDS+=("$(cat "$f")"); done
[ "$RC" = 0 ] || fail "cluster.sh up --coordinators 3 exited $RC"
cp "$T/stdout" "$T/up.out"
for f in zk coordinator1 coordinator2 coordinator3 w1 w2; do
    [ -s "$C/$f.pid" ] || fail "no pid file $f.pid after up: $(cd "$C" && ls)"
done
[ ! -e "$C/coordinator.pid" ] || fail "up --coordinators 3 also started a single coordinator"
[ ${#PIDS[@]} = 6 ] || fail "expected 6 processes from up, got ${#PIDS[@]}: ${PIDS[*]}"
grep -qE '^export TALLY_COORDINATOR=zk://127\.0\.0\.1:[1-9][0-9]*/tally-local$' "$T/up.out" ||
    fail "up did not export a zk:// TALLY_COORDINATOR: $(cat "$T/up.out")"
grep -qxF "export TALLY_TOKEN_FILE=$C/token" "$T/up.out" || fail "up did not export the token file: $(cat "$T/up.out")"
assert_stderr_has "3 coordinators" "2 workers"
eval "$(cat "$T/up.out")"
zkport=$(sed -n 's|^export TALLY_COORDINATOR=zk://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$T/up.out")
grep -qx "clientPort=$zkport" "$C/zk/zoo.cfg" || fail "the exported port $zkport is not ZooKeeper's: $(cat "$C/zk/zoo.cfg")"
cs env
[ "$RC" = 0 ] && cmp -s "$T/stdout" "$T/up.out" || fail "cluster.sh env printed other lines than up: $(cat "$T/stdout")"

step "status --json: three coordinators, exactly one leader, the workers alive"
tally_try status --json
[ "$RC" = 0 ] || fail "tally status --json through $TALLY_COORDINATOR exited $RC"
for i in 1 2 3; do sed -n 's/^coordinator listening on //p' "$C/coordinator$i.out"; done >"$T/addrs.txt"
"$PYTHON" - "$T/stdout" "$T/addrs.txt" <<'PY' || fail "status --json does not show the HA cluster: $(cat "$T/stdout")"
import json, sys
d = json.load(open(sys.argv[1]))
started = sorted(open(sys.argv[2]).read().split())
cs = d["coordinators"]
assert len(cs) == 3, cs
assert sorted(c["address"] for c in cs) == started, (cs, started)
roles = [c["role"] for c in cs]
assert roles.count("leader") == 1 and roles.count("follower") == 2, roles
alive = sorted(w["name"] for w in d["workers"] if w["state"] == "alive")
assert alive == ["w1", "w2"], d["workers"]
print("leader", [c["address"] for c in cs if c["role"] == "leader"][0])
PY
cs status
[ "$RC" = 0 ] && grep -q '^w1 .*alive' "$T/stdout" && grep -q '^w2 .*alive' "$T/stdout" ||
    fail "cluster.sh status does not list the workers alive: $(cat "$T/stdout")"

step "a wordcount job through the exported zk:// address"
tally_try submit wordcount -m 2 -r 2 -o "$T/out" "$T/in.txt"
[ "$RC" = 0 ] || fail "submit through $TALLY_COORDINATOR exited $RC"
[ -e "$T/out/_SUCCESS" ] || fail "submit returned 0 but $T/out/_SUCCESS does not exist"
cat "$T/out"/part-* | sort >"$T/got.txt"
cmp -s "$T/got.txt" "$T/ans.txt" || fail "the cluster's output differs from tally run's"

step "cluster.sh down: everything stopped, ZooKeeper too, nothing left"
cs down
[ "$RC" = 0 ] || fail "cluster.sh down exited $RC"
assert_stderr_has "stopped 3 coordinators, ZooKeeper and 2 workers"
all_dead() {
    local p
    for p in "${PIDS[@]}"; do
        ! alive "$p" || return 1
        [ -z "$(group_members "$p")" ] || return 1
    done
}
poll_until 10 "every process of the cluster to be gone after down" all_dead
! compgen -G "$C/*.pid" >/dev/null || fail "pid files left after down: $(cd "$C" && ls ./*.pid)"
zk_answers() {
    "$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)' "$1" 2>/dev/null
}
! zk_answers "$zkport" || fail "ZooKeeper still answers on port $zkport after down"
PIDS=()
cs status
[ "$RC" != 0 ] && grep -q "no cluster is running" "$T/stderr" || fail "cluster.sh status after down: $(cat "$T/stdout" "$T/stderr")"

echo "cluster_ha_script: all cases passed"
