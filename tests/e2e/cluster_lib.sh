# cluster_lib.sh - helpers for the cluster end-to-end tests: a coordinator and workers as real
# processes on free ports, killed and restarted on purpose, and queries of `tally status --json`.
#
# Source it first thing from a cluster test:   . "$(dirname "$0")/cluster_lib.sh"
# It sources lib.sh (temp dir $T, fail, step, poll_until, job_ok, ...) and adds:
#   cl_start_coordinator [ARGS]      coordinator on 127.0.0.1:0; sets CL_COORD (HOST:PORT)
#   cl_start_worker NAME [ARGS]      one worker; returns once the coordinator lists it alive
#   cl_start_worker_loop NAME [ARGS] the same, restarted (same name, new incarnation) whenever it dies
#   cl_worker_dir NAME               the worker's own directory (its map outputs), inside $CL/work
#   cl_kill_worker NAME [SIGNAL]     signals the worker process itself (default KILL)
#   cl_restart_worker NAME           kills it and starts it again with the same arguments
#   cl_q EXPR [ARGS]                 evaluates a Python expression over the status JSON
#   cl_until SECONDS WHAT EXPR [ARGS]  polls cl_q until it is true, with a deadline
#   cl_submit ARGS / cl_answer / cl_same   running jobs and checking them against `tally run`
#   cl_reset                         ends the cluster so far, for a fresh one in the same test
#   cl_chaos_seed N MIN              a --chaos-seed that makes a --chaos-delay worker reliably slow
# Every process the test starts runs in its own process group (setsid), recorded in
# $CL/pgids; the EXIT trap (also run on SIGTERM/SIGINT) stops the restart loops and SIGKILLs
# every recorded group, so task processes orphaned by a killed worker die too. Logs live in $CL;
# on failure their tails and any task process still running are printed, and CL_KEEP=DIR keeps
# the logs and the last status.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CL=$T/cluster
mkdir -p "$CL"
: >"$CL/pgids"
CL_TOKEN_FILE=$CL/token
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$CL_TOKEN_FILE"
CL_TOKEN=$(cat "$CL_TOKEN_FILE")
CL_COORD=""
CL_COORD_PID=""
CL_LOOPS=()
declare -A CL_WARGS=() # worker name -> its extra arguments, shell-quoted

# ---- Cleanup and failure reports ---------------------------------------------------------------

# cl_kill_groups [leaders]: SIGKILLs every process group the test recorded; with `leaders`,
# only the process that started each group (a worker's task processes live on, orphaned).
cl_kill_groups() {
    local g neg=-
    [ "${1:-}" != leaders ] || neg=""
    while read -r g; do
        [ -z "$g" ] || kill -KILL -- "$neg$g" 2>/dev/null || true
    done <"$CL/pgids"
    return 0
}

# cl_stop_all [leaders]: stops the restart loops and SIGKILLs every recorded process group (or
# with `leaders` only the coordinator and the workers, as a crash would).
cl_stop_all() {
    touch "$CL/stop"
    # A restart loop may be starting a worker right now: kill groups until every loop has seen
    # the stop file and exited (each kill ends the `wait` the loop sits in).
    local deadline=$((SECONDS + 5)) p alive
    while :; do
        cl_kill_groups "$@"
        alive=0
        for p in "${CL_LOOPS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] || [ $SECONDS -ge $deadline ] && break
        sleep 0.02
    done
    for p in "${CL_LOOPS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    cl_kill_groups "$@"
}

cl_cleanup() {
    local rc=$?
    trap - ERR
    set +e
    # CL_KEEP=DIR keeps the logs and the last status of a failed test (for flaky failures).
    if [ $rc != 0 ] && [ -n "${CL_KEEP:-}" ]; then
        local keep
        keep=$(mktemp -d "$CL_KEEP/$TEST_NAME.XXXXXX")
        [ -z "$CL_COORD" ] || cl_status >"$keep/status.json" 2>&1
        cp -r "$CL"/*.log "$CL"/*.wlog "$CL"/old "$keep/" 2>/dev/null
        echo "logs kept in $keep" >&2
    fi
    cl_stop_all 2>/dev/null
    lib_cleanup
}
trap cl_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# cl_dump_logs: the tails of the coordinator's and the workers' logs.
cl_dump_logs() {
    local f
    for f in "$CL"/coord.log "$CL"/*.wlog; do
        [ -s "$f" ] || continue
        echo "--- tail of $(basename "$f"):"
        tail -n 6 "$f"
    done
}

# cl_dump_tasks: the task processes (a worker's children) still running, with how long they
# have run and what they wait in: a hung attempt shows up here.
cl_dump_tasks() {
    local g p
    while read -r g; do
        [ -n "$g" ] || continue
        for p in $(cl_group_members "$g"); do
            [ "$p" != "$g" ] || continue
            echo "--- task process $p (group $g) running for $(ps -o etimes= -p "$p" 2>/dev/null | tr -d ' ') s," \
                "state $(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null), waiting in $(cat "/proc/$p/wchan" 2>/dev/null)"
        done
    done <"$CL/pgids"
}

# fail MESSAGE...: lib.sh's fail, with the cluster logs first (the message stays last, where
# the runner's output tail shows it).
fail() {
    cl_dump_logs >&2
    cl_dump_tasks >&2
    echo "FAIL $TEST_NAME (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}): $*" >&2
    if [ -s "$T/stderr" ]; then
        echo "--- stderr of the last tally command ($LAST_CMD):" >&2
        tail -n 8 "$T/stderr" >&2
    fi
    trap - ERR
    exit 1
}

# ---- Status queries ----------------------------------------------------------------------------

# cl_status [JOB]: prints `tally status --json` (of one job, with the workers).
cl_status() {
    timeout -k 2 10 "$TALLY" status --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" "$@" --json
}

# cl_q EXPR [ARGS...]: fetches the status and prints Python EXPR evaluated with d = the status
# JSON, a = ARGS, w = {name: worker record}, j = the first job (or None); succeeds if the value
# is true. With CL_Q_JOB=ID the status holds only that job.
cl_q() {
    local expr=$1
    shift
    local js
    js=$(cl_status ${CL_Q_JOB:+"$CL_Q_JOB"}) || return 1
    "$PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1])
a = sys.argv[3:]
w = {x["name"]: x for x in d["workers"]}
j = d["jobs"][0] if d["jobs"] else None
v = eval(sys.argv[2])
print(v if not isinstance(v, (dict, list)) else json.dumps(v))
sys.exit(0 if v else 1)' "$js" "$expr" "$@"
}

# cl_until SECONDS WHAT EXPR [ARGS...]: polls cl_q EXPR until it is true.
cl_until() {
    local secs=$1 what=$2
    shift 2
    poll_until "$secs" "$what" cl_q "$@" >/dev/null
}

# ---- Processes ---------------------------------------------------------------------------------

# cl_spawn LOG OUT CMD...: starts CMD in its own process group, records the group; sets CL_PID.
cl_spawn() {
    local log=$1 out=$2
    shift 2
    setsid "$@" >"$out" 2>>"$log" </dev/null &
    CL_PID=$!
    echo "$CL_PID" >>"$CL/pgids"
    disown "$CL_PID" # no "Killed" notices from bash: the tests kill on purpose
}

# cl_group_members PGID: the pids still in a process group (/proc/PID/stat field 5).
cl_group_members() {
    awk -v g="$1" '$5 == g { print $1 }' /proc/[0-9]*/stat 2>/dev/null || true
}

cl_alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# cl_start_coordinator [ARGS...]: starts a coordinator on a free port and waits until it answers.
cl_start_coordinator() {
    cl_spawn "$CL/coord.log" "$CL/coord.out" "$TALLY" coordinator --listen 127.0.0.1:0 \
        --token-file "$CL_TOKEN_FILE" "$@"
    CL_COORD_PID=$CL_PID
    cl_coord_printed() {
        cl_alive "$CL_COORD_PID" || fail "the coordinator exited at start: $(tail -n 3 "$CL/coord.log")"
        grep -q '^coordinator listening on ' "$CL/coord.out"
    }
    poll_until 20 "the coordinator to print its address" cl_coord_printed
    CL_COORD=$(sed -n 's/^coordinator listening on //p' "$CL/coord.out")
    [[ $CL_COORD =~ ^127\.0\.0\.1:[1-9][0-9]*$ ]] || fail "unexpected coordinator address '$CL_COORD'"
    poll_until 20 "the coordinator at $CL_COORD to answer" \
        curl -sf -o /dev/null -H "Authorization: Bearer $CL_TOKEN" "http://$CL_COORD/healthz"
    echo "coordinator at $CL_COORD (pid $CL_COORD_PID)"
}

# cl_wait_alive NAME ADDRESS: waits until the coordinator lists NAME alive at ADDRESS (a new
# incarnation listens on a new port, so the address tells it from the one before).
cl_wait_alive() {
    cl_until 20 "worker $1 alive at $2" \
        'a[0] in w and w[a[0]]["state"] == "alive" and w[a[0]]["address"] == a[1]' "$1" "$2"
}

# cl_worker_cmd NAME: the worker's command line (arguments in CL_WARGS[NAME]) into CL_CMD. Every
# worker gets --work-dir $CL/work, the parent in which each keeps its own directory.
cl_worker_cmd() {
    local name=$1
    eval "local -a extra=(${CL_WARGS[$name]})"
    CL_CMD=("$TALLY" worker --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" --name "$name"
        --work-dir "$CL/work" --listen 127.0.0.1:0 "${extra[@]}")
}

# cl_worker_dir NAME: the directory worker NAME keeps its map outputs in.
cl_worker_dir() { echo "$CL/work/tally-worker-$1"; }

# cl_worker_address NAME: waits for the worker's "listening" line; prints its address.
cl_worker_address() {
    local name=$1 pid=$2
    cl_worker_printed() {
        cl_alive "$pid" || fail "worker $name exited at start: $(tail -n 3 "$CL/$name.wlog")"
        grep -q "^worker $name listening on " "$CL/$name.out"
    }
    poll_until 20 "worker $name to print its address" cl_worker_printed
    sed -n "s/^worker $name listening on //p" "$CL/$name.out"
}

# cl_start_worker NAME [ARGS...]: starts a worker (default --slots 2) and waits until it is alive.
cl_start_worker() {
    local name=$1
    shift
    [ $# -gt 0 ] || set -- --slots 2
    CL_WARGS[$name]=$(printf '%q ' "$@")
    cl_worker_cmd "$name"
    : >"$CL/$name.out"
    cl_spawn "$CL/$name.wlog" "$CL/$name.out" "${CL_CMD[@]}"
    echo "$CL_PID" >"$CL/$name.pid"
    local addr
    addr=$(cl_worker_address "$name" "$CL_PID")
    cl_wait_alive "$name" "$addr"
}

# cl_worker_pid NAME: the pid of the worker's current incarnation.
cl_worker_pid() { cat "$CL/$1.pid"; }

# cl_kill_worker NAME [SIGNAL]: signals the worker process (not its task processes: a killed
# worker orphans them, as a real crash would). Waits until a SIGKILLed worker is gone.
cl_kill_worker() {
    local name=$1 sig=${2:-KILL} pid
    pid=$(cl_worker_pid "$name")
    kill "-$sig" "$pid"
    if [ "$sig" = KILL ] || [ "$sig" = 9 ]; then
        cl_gone() { ! cl_alive "$pid"; }
        poll_until 10 "worker $name (pid $pid) to die" cl_gone
    fi
}

# cl_restart_worker NAME: SIGKILLs the worker and starts a new incarnation with the same args.
cl_restart_worker() {
    local name=$1
    cl_kill_worker "$name" KILL
    eval "local -a extra=(${CL_WARGS[$name]})"
    cl_start_worker "$name" "${extra[@]}"
}

# cl_start_worker_loop NAME [ARGS...]: runs the worker in a background loop that starts a new
# incarnation (same name) whenever the last one dies, until the test ends. If ARGS contain
# --chaos-seed S, incarnation K gets seed S+K, so a crash at the first task does not repeat
# forever. $CL/NAME.restarts counts the restarts. Waits until the first incarnation is alive.
cl_start_worker_loop() {
    local name=$1
    shift
    CL_WARGS[$name]=$(printf '%q ' "$@")
    cl_worker_cmd "$name"
    : >"$CL/$name.restarts"
    rm -f "$CL/$name.pid"
    (
        trap - ERR EXIT
        set +e
        k=0
        cmd=("${CL_CMD[@]}")
        seed=""
        for ((i = 0; i < ${#cmd[@]}; i++)); do
            [ "${cmd[$i]}" = --chaos-seed ] && seed=$((i + 1))
        done
        base=${seed:+${cmd[$seed]}}
        while [ ! -e "$CL/stop" ]; do
            [ -n "$seed" ] && cmd[$seed]=$((base + k))
            setsid "${cmd[@]}" >"$CL/$name.out" 2>>"$CL/$name.wlog" </dev/null &
            pid=$!
            echo "$pid" >>"$CL/pgids"
            echo "$pid" >"$CL/$name.pid.tmp" && mv "$CL/$name.pid.tmp" "$CL/$name.pid"
            wait "$pid"
            [ -e "$CL/stop" ] && break
            k=$((k + 1))
            echo "$k" >>"$CL/$name.restarts"
        done
    ) 2>>"$CL/$name.wlog" &
    CL_LOOPS+=($!)
    cl_loop_started() { [ -s "$CL/$name.pid" ]; }
    poll_until 10 "the restart loop of $name to start it" cl_loop_started
    local addr
    addr=$(cl_worker_address "$name" "$(cl_worker_pid "$name")")
    cl_wait_alive "$name" "$addr"
}

# cl_reset: ends the cluster (every process the test started so far), for a fresh one.
cl_reset() {
    cl_stop_all
    local p
    for p in "${CL_LOOPS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -f "$CL/stop"
    : >"$CL/pgids"
    CL_LOOPS=()
    CL_COORD=""
    CL_COORD_PID=""
    mkdir -p "$CL/old"
    mv "$CL"/*.log "$CL"/*.wlog "$CL/old/" 2>/dev/null || true
}

# cl_chaos_seed N MIN: the smallest --chaos-seed whose first N draws of the worker's chaos
# generator (worker_rand() in src/cluster/worker.c, a splitmix64) are all >= MIN. A worker
# with --chaos-delay 1 draws twice per task (whether, then how long), so with such a seed its
# first N/2 tasks each sleep at least MIN * --chaos-max-delay-ms: a deterministic slow worker.
cl_chaos_seed() {
    "$PYTHON" -c '
import sys
n, lo = int(sys.argv[1]), float(sys.argv[2])
M = (1 << 64) - 1
def draws(seed):
    r = seed
    for _ in range(n):
        r = (r + 0x9E3779B97F4A7C15) & M
        z = r
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        z ^= z >> 31
        yield (z >> 11) / 9007199254740992.0
seed = 1
while min(draws(seed)) < lo:
    seed += 1
print(seed)' "$1" "$2"
}

# cl_crash_seed START P: the smallest --chaos-seed from START whose first draw is below P: a
# worker with --chaos-crash P and that seed dies at the start of its first task.
cl_crash_seed() {
    "$PYTHON" -c '
import sys
seed, p = int(sys.argv[1]), float(sys.argv[2])
M = (1 << 64) - 1
def first(seed):
    z = (seed + 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    z ^= z >> 31
    return (z >> 11) / 9007199254740992.0
while first(seed) >= p:
    seed += 1
print(seed)' "$1" "$2"
}

# cl_restarts NAME: how many times the loop restarted the worker.
cl_restarts() { wc -l <"$CL/$1.restarts" | tr -d ' '; }

# ---- Jobs ----------------------------------------------------------------------------------------

# cl_submit ARGS...: `tally submit ARGS...` against the test's cluster; sets RC (lib.sh tally_try).
cl_submit() {
    tally_try submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" "$@"
}

# cl_submit_ok ARGS...: the submit must exit 0, and _SUCCESS must exist the moment it returns.
cl_submit_ok() {
    cl_submit "$@"
    [ "$RC" = 0 ] || fail "submit exited $RC: $LAST_CMD"
    local out a prev=""
    for a in "$@"; do
        [ "$prev" = "-o" ] && out=$a
        prev=$a
    done
    [ -e "$out/_SUCCESS" ] || fail "submit returned 0 but $out/_SUCCESS does not exist"
    CL_JOB=$(sed -n 's/^tally: job \([^ ]*\) succeeded.*/\1/p' "$T/stdout")
    [ -n "$CL_JOB" ] || fail "no 'tally: job ID succeeded' line from submit: $(cat "$T/stdout")"
}

# cl_answer ANSWER_FILE JOB ARGS... -o OUT INPUT...: the sequential local answer (`tally run`),
# its parts concatenated and sorted into ANSWER_FILE.
cl_answer() {
    local ans=$1 out a prev=""
    shift
    for a in "$@"; do
        [ "$prev" = "-o" ] && out=$a
        prev=$a
    done
    job_ok "$@"
    cat "$out"/part-* | sort >"$ans"
    [ -s "$ans" ] || fail "test bug: the local answer $ans is empty"
}

# cl_same OUT ANSWER_FILE: OUT succeeded and its sorted, concatenated parts equal the answer.
cl_same() {
    local out=$1 ans=$2
    [ -e "$out/_SUCCESS" ] || fail "$out/_SUCCESS is missing"
    cat "$out"/part-* | sort >"$T/got.txt"
    if ! cmp -s "$T/got.txt" "$ans"; then
        diff "$ans" "$T/got.txt" | head -n 10 >&2
        fail "output $out differs from the local answer $ans ($(wc -l <"$T/got.txt") lines, expected $(wc -l <"$ans"))"
    fi
}

# cl_job_wait SECONDS JOB: waits until the job reached a terminal state; sets CL_STATE to it.
cl_job_wait() {
    CL_Q_JOB=$2 cl_until "$1" "job $2 to finish" 'j["state"] in ("succeeded", "failed", "cancelled")'
    CL_STATE=$(CL_Q_JOB=$2 cl_q 'j["state"]')
}

# cl_job_json JOB FILE: the status record of one job into FILE.
cl_job_json() { cl_status "$1" >"$2" || fail "tally status $1 failed"; }

# ---- Self-test ---------------------------------------------------------------------------------
# Run directly (bash tests/e2e/cluster_lib.sh; tests/run.sh skips *lib.sh), it checks its own
# helpers: restarts give new incarnations, and the trap leaves no process behind whether the
# test passes, fails or is terminated.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    if [ -n "${CL_SELFTEST:-}" ]; then
        # The child: a small cluster, then the exit CL_SELFTEST asks for.
        cl_start_coordinator --heartbeat-ms 50
        cl_start_worker w1 --slots 1
        cl_start_worker_loop w2 --slots 1
        cp "$CL/pgids" "$CL_SELFTEST_OUT"
        echo "${CL_LOOPS[*]}" >>"$CL_SELFTEST_OUT"
        echo "$T" >>"$CL_SELFTEST_OUT"
        old=$(cl_q 'w["w1"]["address"]')
        cl_restart_worker w1
        [ "$(cl_q 'w["w1"]["address"]')" != "$old" ] || fail "restarted w1 kept its address"
        grep -q 'worker=w1 restarted (new incarnation)' "$CL/coord.log" || fail "no new incarnation of w1"
        old=$(cl_q 'w["w2"]["address"]')
        cl_kill_worker w2 KILL
        cl_has_restarted() { [ "$(cl_restarts w2)" -ge 1 ]; }
        poll_until 10 "the loop to restart w2" cl_has_restarted
        cl_until 10 "the new w2 alive" 'w["w2"]["state"] == "alive" and w["w2"]["address"] != a[0]' "$old"
        cp "$CL/pgids" "$CL_SELFTEST_OUT.2"
        case $CL_SELFTEST in
        pass) exit 0 ;;
        fail) fail "deliberate failure (self-test)" ;;
        term)
            echo ready >"$CL_SELFTEST_OUT.ready"
            poll_until 60 "SIGTERM" false
            ;;
        esac
        exit 0
    fi
    for mode in pass fail term; do
        step "self-test: a test that ends by '$mode' leaves no process and no temp dir"
        out=$T/selftest-$mode
        CL_SELFTEST=$mode CL_SELFTEST_OUT=$out bash "${BASH_SOURCE[0]}" >"$T/child.log" 2>&1 &
        child=$!
        if [ $mode = term ]; then
            ready() { [ -e "$out.ready" ]; }
            poll_until 60 "the self-test child to be ready" ready
            kill -TERM "$child"
        fi
        rc=0
        wait "$child" || rc=$?
        case $mode in
        pass) [ $rc = 0 ] || { cat "$T/child.log" >&2; fail "self-test child exited $rc"; } ;;
        fail) [ $rc = 1 ] && grep -q 'deliberate failure' "$T/child.log" || { cat "$T/child.log" >&2; fail "expected exit 1, got $rc"; } ;;
        term) [ $rc = 143 ] || { cat "$T/child.log" >&2; fail "expected exit 143 after SIGTERM, got $rc"; } ;;
        esac
        [ -s "$out.2" ] || { cat "$T/child.log" >&2; fail "the child did not get through its checks"; }
        childT=$(tail -n 1 "$out")
        [ ! -e "$childT" ] || fail "the child's temp dir $childT is still there"
        for g in $(cat "$out.2") $(sed -n '$d;p' "$out" | tr ' ' '\n'); do
            # /proc/*/stat field 5 is the process group: nothing may be left in a recorded group.
            left=$(cl_group_members "$g")
            [ -z "$left" ] || fail "processes left in group $g after '$mode': $left"
            cl_alive "$g" && fail "process $g still alive after '$mode'"
        done
    done
    echo "cluster_lib: self-test passed"
fi
