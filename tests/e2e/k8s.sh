#!/usr/bin/env bash
# k8s.sh - deploy/k8s without a cluster: every kustomization renders (`kubectl kustomize`), the
# rendered objects validate against the Kubernetes API schema (tests/k8s/validate.py; a misspelt
# field or a wrong type fails), and the manifests run: tests/k8s/pods.py turns every tally
# container of the base, of the single overlay and of the failure drill into the process a
# kubelet would start (command line, environment from the ConfigMaps and the downward API, the
# Secret as a token file, the shared claim as one directory, pod DNS names as free 127.0.0.1
# ports; ZooKeeper is Debian's, as in the HA tests), restarted when it dies as
# restartPolicy: Always would. The submit Job then runs `tally submit wordcount -m 20 -r 5` over
# the Gutenberg books on the shared volume, and its output must equal the reference. A
# container that exits 2 (tally refused a flag or value) or gets a TALLY_* variable its command
# does not read fails the test; both are shown to be caught.
. "$(dirname "$0")/cluster_lib.sh"
. "$(dirname "$0")/zk_lib.sh"

K8S=$T/k8s
KT=$ROOT/tests/k8s
ZK_IMAGE='(^|/)zookeeper(:|@|$)'
command -v kubectl >/dev/null || fail "no kubectl on PATH (kubectl >= 1.21: its kustomize renders deploy/k8s)"

# ---- Rendering and validation ------------------------------------------------------------------

step "render the base, every overlay and the jobs with kubectl kustomize"
cp -r "$ROOT/deploy/k8s" "$K8S"
rm -f "$K8S/base/token"
head -c 32 /dev/urandom | base64 >"$K8S/base/token" # not in git: the README's first step
render() { # DIR NAME: kubectl kustomize DIR >$T/NAME.yaml
    kubectl kustomize "$K8S/$1" >"$T/$2.yaml" 2>"$T/kustomize.err" ||
        fail "kubectl kustomize deploy/k8s/$1 failed: $(cat "$T/kustomize.err")"
    ! grep -q . "$T/kustomize.err" || fail "kubectl kustomize deploy/k8s/$1 warned: $(cat "$T/kustomize.err")"
}
render base base
rendered=("$T/base.yaml")
for d in "$K8S"/overlays/*/ "$K8S"/jobs/*/; do
    rel=${d#"$K8S/"}
    rel=${rel%/}
    render "$rel" "${rel//\//-}"
    rendered+=("$T/${rel//\//-}.yaml")
done
[ -s "$T/overlays-single.yaml" ] && [ -s "$T/overlays-failure-drill.yaml" ] && [ -s "$T/jobs-wordcount.yaml" ] ||
    fail "test bug: an overlay or the wordcount job is missing from deploy/k8s"
grep -q "$(base64 -w0 <"$K8S/base/token")" "$T/base.yaml" || fail "the token file is not in the rendered Secret"

step "validate ${#rendered[@]} renderings against the Kubernetes API schema"
"$PYTHON" "$KT/validate.py" "${rendered[@]}" >"$T/validate.out" || fail "invalid manifests: $(cat "$T/validate.out")"
cat "$T/validate.out"

# bad_manifest NAME SED_SCRIPT EXPECTED_MESSAGE: the base changed by SED_SCRIPT must fail
# validation, saying EXPECTED_MESSAGE.
bad_manifest() {
    sed "$2" "$T/base.yaml" >"$T/bad-$1.yaml"
    ! cmp -s "$T/base.yaml" "$T/bad-$1.yaml" || fail "test bug: '$2' changed nothing in the base"
    if "$PYTHON" "$KT/validate.py" "$T/bad-$1.yaml" >"$T/bad.out"; then
        fail "validation passed a manifest with $1"
    fi
    grep -qF -- "$3" "$T/bad.out" || fail "validation of a manifest with $1 does not say '$3': $(cat "$T/bad.out")"
}
step "validation fails a misspelt field, a wrong type, an unknown apiVersion, a missing field"
bad_manifest "a misspelt field" 's/readinessProbe:/readynessProbe:/' \
    "unknown field 'readynessProbe' (did you mean 'readinessProbe'?)"
bad_manifest "a misspelt nested field" '0,/mountPath:/s//mountpath:/' "unknown field 'mountpath'"
bad_manifest "a string for an integer" '0,/replicas: 3/s//replicas: "3"/' "spec.replicas: '3' is not of type 'integer'"
bad_manifest "a number for a string" '0,/prometheus.io\/port: "7070"/s//prometheus.io\/port: 7070/' \
    "prometheus.io/port: 7070 is not of type 'string'"
bad_manifest "a removed apiVersion" '0,/apiVersion: policy\/v1$/s//apiVersion: policy\/v1beta1/' \
    "no schema for apiVersion 'policy/v1beta1' kind 'PodDisruptionBudget'"
bad_manifest "a container without its name" '0,/name: coordinator$/s//nom: coordinator/' "'name' is a required property"

step "the Prometheus scrape job passes promtool (a static target for the Kubernetes discovery)"
"$PYTHON" - "$ROOT/deploy/k8s/prometheus/prometheus.yml" "$T/prometheus.yml" "$K8S/base/token" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
for sc in d["scrape_configs"]:
    assert sc.pop("kubernetes_sd_configs"), "no kubernetes_sd_configs"
    sc["static_configs"] = [{"targets": ["127.0.0.1:7070"]}]
    sc["authorization"]["credentials_file"] = sys.argv[3]
yaml.safe_dump(d, open(sys.argv[2], "w"))
PY
promtool check config "$T/prometheus.yml" >"$T/promtool.out" 2>&1 || fail "promtool: $(cat "$T/promtool.out")"

# ---- Running the manifests ---------------------------------------------------------------------

# The probes kubelet sends carry no token: they are checked once this tally has the endpoints
# meant for them (/readyz marks them; /healthz alone is the older, token-protected one).
PROBES=0
if grep -qa '/readyz' "$TALLY"; then PROBES=1; fi
[ $PROBES = 1 ] || echo "note: this tally has no /readyz yet: the manifests' probes are not checked"

# plan RUN MANIFEST... : pods.py's processes for MANIFESTS into $T/RUN (its volumes beside);
# the Gutenberg books on the shared claim. Sets RUN to the directory.
plan() {
    RUN=$T/$1
    shift
    mkdir -p "$RUN/pvc/tally-data/in/gutenberg"
    cp "${BOOKS[@]}" "$RUN/pvc/tally-data/in/gutenberg/"
    "$PYTHON" "$KT/pods.py" --root "$RUN" --tally "$TALLY" --containerfile "$ROOT/Containerfile" \
        --skip-image "$ZK_IMAGE" --external "tally-zk:2181=127.0.0.1:${ZK_PORT:-1}" "$@" \
        >"$RUN/plan.txt" 2>"$RUN/plan.err" || fail "pods.py refused the manifests: $(cat "$RUN/plan.err")"
    sed 's/^/    /' "$RUN/plan.txt"
}

meta() { "$PYTHON" -c 'import json,sys; v=json.load(open(sys.argv[1]+"/meta.json")).get(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list)) else v)' "$1" "$2"; }

# The variables a process keeps from the test's environment (the rest is the container's).
PASS_ENV=(PATH="$PATH")
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
    [ -z "${!v:-}" ] || PASS_ENV+=("$v=${!v}")
done

# start_pod PLAN_DIR: runs the container as restartPolicy: Always would, in a loop that starts
# it again whenever it exits (each exit status is appended to $CL/POD.exits; the container's
# other processes, its executors, die with it). Logs in $CL/POD.wlog.
start_pod() {
    local d=$1 pod
    pod=$(meta "$d" pod)
    local -a argv envs
    mapfile -d '' argv <"$d/argv"
    mapfile -d '' envs <"$d/env"
    : >"$CL/$pod.exits"
    (
        trap - ERR EXIT
        set +e
        while [ ! -e "$CL/stop" ]; do
            setsid env -i "${PASS_ENV[@]}" "${envs[@]}" "${argv[@]}" >>"$CL/$pod.out" 2>>"$CL/$pod.wlog" </dev/null &
            pid=$!
            echo "$pid" >>"$CL/pgids"
            wait "$pid"
            rc=$?
            kill -KILL -- "-$pid" 2>/dev/null
            echo "$rc" >>"$CL/$pod.exits"
            [ -e "$CL/stop" ] && break
            sleep 0.1 # kubelet's restart back-off, shortened
        done
    ) 2>>"$CL/$pod.wlog" &
    CL_LOOPS+=($!)
}

# start_pods: every StatefulSet pod of the plan, all at once as Kubernetes starts them.
start_pods() {
    local d
    for d in "$RUN"/plan/*/; do
        [ "$(meta "$d" kind)" = StatefulSet ] && start_pod "${d%/}"
    done
    return 0
}

# k8s_reset: ends every process of the run so far (cl_reset) and forgets their exits.
k8s_reset() {
    cl_reset
    rm -f "$CL"/*.exits "$CL"/*.out
}

# check_exits [ALLOWED]: fails if a pod exited, except pods whose name matches the regex
# ALLOWED when they were killed (137: the failure injection's SIGKILL). Exit 2 is tally
# refusing its command line or environment.
check_exits() {
    local allowed=${1:-^$} f pod rc
    for f in "$CL"/*.exits; do
        [ -s "$f" ] || continue
        pod=$(basename "$f" .exits)
        while read -r rc; do
            [ "$rc" != 2 ] || fail "pod $pod exited 2: tally refused its command line or environment: $(tail -n 3 "$CL/$pod.wlog")"
            [[ $pod =~ $allowed && $rc == 137 ]] || fail "pod $pod exited $rc: $(tail -n 3 "$CL/$pod.wlog")"
        done <"$f"
    done
}

# client_env: the Job's environment, for `tally status` as it would run in the cluster.
client_env() {
    local d
    for d in "$RUN"/plan/*/; do
        if [ "$(meta "$d" kind)" = Job ]; then
            mapfile -d '' CLIENT_ENV <"$d/env"
            return 0
        fi
    done
    fail "test bug: no Job in the plan"
}

# k8s_q EXPR [ARGS]: like cl_q, through the Job's coordinator address and token.
k8s_q() {
    local js
    js=$(env -i "${PASS_ENV[@]}" "${CLIENT_ENV[@]}" timeout -k 2 10 "$TALLY" status --json 2>/dev/null) || return 1
    "$PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1])
a = sys.argv[3:]
w = {x["name"]: x for x in d["workers"]}
sys.exit(0 if eval(sys.argv[2]) else 1)' "$js" "$@"
}

# probe URL: the HTTP status of a GET without a token, as kubelet sends it.
probe() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" || true; }

# wait_up ALLOWED: every worker pod registered under its pod name at its advertised address,
# every coordinator listed (ZooKeeper), the probes answering; pods must not exit meanwhile.
wait_up() {
    local allowed=$1 d workers=() addrs=() ncoord=0 zk=0
    client_env
    for d in "$RUN"/plan/*/; do
        case $(meta "$d" subcommand) in
        worker)
            workers+=("$(meta "$d" pod)")
            addrs+=("127.0.0.1:$(meta "$d" ports | "$PYTHON" -c 'import json,sys; print(list(json.load(sys.stdin).values())[0])')")
            ;;
        coordinator)
            ncoord=$((ncoord + 1))
            tr '\0' '\n' <"$d/env" | grep -q '^TALLY_ZOOKEEPER=' && zk=1
            ;;
        esac
    done
    up() {
        check_exits "$allowed"
        k8s_q 'all(n in w and w[n]["state"] == "alive" and w[n]["address"] == ad for n, ad in zip(a[::2], a[1::2]))' \
            $(for i in "${!workers[@]}"; do echo "${workers[$i]}" "${addrs[$i]}"; done) || return 1
        [ $zk = 0 ] || k8s_q 'len(d.get("coordinators", [])) == int(a[0])' "$ncoord"
    }
    poll_until 40 "every pod of the plan up (${workers[*]} alive at their advertised addresses; $ncoord coordinator(s))" up
    [ $PROBES = 1 ] || return 0
    local url ready_coord=0 code
    for d in "$RUN"/plan/*/; do
        [ "$(meta "$d" kind)" = StatefulSet ] || continue
        url=$(meta "$d" probes | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get("livenessProbe",""))')
        [ -z "$url" ] || poll_until 20 "liveness probe $url of $(meta "$d" pod) to answer 200" \
            eval '[ "$(probe "$url")" = 200 ]'
        url=$(meta "$d" probes | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get("readinessProbe",""))')
        [ -n "$url" ] || continue
        if [ "$(meta "$d" subcommand)" = worker ]; then
            poll_until 20 "readiness probe $url of $(meta "$d" pod) to answer 200" eval '[ "$(probe "$url")" = 200 ]'
        elif [ "$(probe "$url")" = 200 ]; then
            ready_coord=$((ready_coord + 1)) # the leader; followers are not ready
        fi
    done
    [ $ncoord = 0 ] || [ $ready_coord -ge 1 ] || fail "no coordinator's readiness probe answers 200 (the leader's should)"
}

# check_scrapes: each pod's Prometheus annotations lead to its metrics (with the token, as the
# scrape job in deploy/k8s/prometheus sends it).
check_scrapes() {
    local d url n=0 token
    token=$(cat "$(tr '\0' '\n' <"$(ls -d "$RUN"/plan/*/ | head -n 1)env" | sed -n 's/^TALLY_TOKEN_FILE=//p')")
    for d in "$RUN"/plan/*/; do
        url=$(meta "$d" scrape)
        [ "$url" != None ] || continue
        curl -sf --max-time 5 -H "Authorization: Bearer $token" "$url" >"$T/metrics.txt" ||
            fail "no metrics at $url, where the annotations of $(meta "$d" pod) point"
        grep -q '^# TYPE tally_' "$T/metrics.txt" || fail "$url of $(meta "$d" pod) serves no tally metrics"
        n=$((n + 1))
    done
    [ $n -gt 0 ] || fail "test bug: no pod has scrape annotations"
}

# run_job: the Job's container, once (its restartPolicy is Never): it must exit 0.
run_job() {
    local d
    for d in "$RUN"/plan/*/; do
        [ "$(meta "$d" kind)" = Job ] || continue
        local -a argv envs
        mapfile -d '' argv <"$d/argv"
        mapfile -d '' envs <"$d/env"
        LAST_CMD="the Job $(meta "$d" pod): ${argv[*]:1}"
        RC=0
        timeout -k 5 90 env -i "${PASS_ENV[@]}" "${envs[@]}" "${argv[@]}" >"$T/stdout" 2>"$T/stderr" </dev/null || RC=$?
        [ "$RC" = 0 ] || fail "the Job's tally submit exited $RC"
    done
}

# check_output: the word count on the shared claim equals the reference.
check_output() {
    local out=$RUN/pvc/tally-data/out/wordcount
    check_out "$out" 5 --expect map_tasks=20 --expect input_files=${#BOOKS[@]} --expect records_skipped=0
    [ -s "$T/ref.txt" ] || ref wordcount "$RUN"/pvc/tally-data/in/gutenberg/*.txt >"$T/ref.txt"
    compare "$out" "$T/ref.txt"
}

step "a flag tally does not take makes its pod exit 2, and the test fails on it"
sed '0,/^        - --name$/s//        - --nmae/' "$T/base.yaml" >"$T/bad-flag.yaml"
! cmp -s "$T/base.yaml" "$T/bad-flag.yaml" || fail "test bug: no worker --name in the base"
plan bad-flag "$T/bad-flag.yaml" "$T/jobs-wordcount.yaml"
d=$(ls -d "$RUN"/plan/*-tally-worker-0-worker)
start_pod "$d"
exited() { [ -s "$CL/tally-worker-0.exits" ]; }
poll_until 10 "the worker with --nmae to exit" exited
[ "$(head -n 1 "$CL/tally-worker-0.exits")" = 2 ] || fail "tally worker --nmae exited $(head -n 1 "$CL/tally-worker-0.exits"), not 2"
grep -q -- '--nmae' "$CL/tally-worker-0.wlog" || fail "tally worker's message does not name --nmae: $(cat "$CL/tally-worker-0.wlog")"
if (check_exits) 2>/dev/null; then fail "check_exits let a pod that exited 2 pass"; fi
k8s_reset

step "a TALLY_* variable tally does not read fails the plan"
sed '0,/^  TALLY_SLOTS: "2"$/s//  TALLY_SLOTS: "2"\n  TALLY_SLOTZ: "2"/' "$T/base.yaml" >"$T/bad-env.yaml"
! cmp -s "$T/base.yaml" "$T/bad-env.yaml" || fail "test bug: no TALLY_SLOTS in the base"
if "$PYTHON" "$KT/pods.py" --root "$T/bad-env" --tally "$TALLY" --containerfile "$ROOT/Containerfile" \
    --skip-image "$ZK_IMAGE" --external tally-zk:2181=127.0.0.1:1 "$T/bad-env.yaml" >/dev/null 2>"$T/bad.out"; then
    fail "pods.py accepted TALLY_SLOTZ"
fi
grep -q 'environment variable TALLY_SLOTZ is not one `tally worker` reads' "$T/bad.out" ||
    fail "pods.py does not name TALLY_SLOTZ: $(cat "$T/bad.out")"

step "the base: ZooKeeper, three coordinators, three workers; the wordcount Job"
zk_start base
plan base "$T/base.yaml" "$T/jobs-wordcount.yaml"
start_pods
wait_up '^$'
check_scrapes
run_job
check_exits '^$'
check_output
k8s_reset

step "the failure drill: the drill worker and the leaders crash; the output is still right"
zk_start drill
plan drill "$T/overlays-failure-drill.yaml" "$T/jobs-wordcount.yaml"
start_pods
drill='^(tally-worker-drill-[0-9]+|tally-coordinator-[0-9]+)$'
wait_up "$drill"
run_job
check_exits "$drill"
check_output
grep -qx 137 "$CL/tally-worker-drill-0.exits" || fail "the drill worker never crashed: TALLY_FAIL_AFTER_TASKS did not reach it"
grep -l 'failure injection: crashing after' "$CL"/tally-coordinator-*.wlog >/dev/null ||
    fail "no coordinator crashed: TALLY_FAIL_AFTER_TASKS did not reach the leader"
echo "drill worker restarts: $(wc -l <"$CL/tally-worker-drill-0.exits"); coordinator restarts: $(cat "$CL"/tally-coordinator-*.exits | wc -l)"
k8s_reset
ZK_PORT=""

step "the single overlay: one coordinator with --state-dir on its claim, no ZooKeeper"
plan single "$T/overlays-single.yaml" "$T/jobs-wordcount.yaml"
start_pods
wait_up '^$'
run_job
check_exits '^$'
check_output
[ -n "$(ls -A "$RUN/pods/tally-coordinator-0/state")" ] || fail "the coordinator wrote nothing in its --state-dir claim"
echo "k8s: passed"
