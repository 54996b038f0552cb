#!/usr/bin/env bash
# chaos_slow.sh - `tally worker --chaos-slow FACTOR`, the deterministic slow worker: its
# attempts take FACTOR times as long with their progress that much slower all along (not a
# stall at the end), their output is unchanged, POST /v1/chaos (authenticated, validated) makes
# the worker fast again without a restart, a cancelled slow attempt still stops at once, bad
# factors are usage errors; and every heartbeat carries the worker's health.
. "$(dirname "$0")/cluster_lib.sh"

JOB_TIMEOUT=60
FACTOR=4
# The job: grep with a back-reference, whose map time is nearly all in map() calls, so that a
# map's progress (the share of its split read) runs evenly through its life, unlike a job whose
# maps spend most of their time sorting their output after the last record. Big enough that
# attempt time, which the factor multiplies, is most of the job's time (not the heartbeats and
# reports around it): about a second at factor 1 on one slot.
if slow; then size=12M; else size=16M; fi
JOB=(grep -e '([a-z]+)e\1' -m 4 -r 2)

# ---- Usage errors ---
step "--chaos-slow 0.5, abc, 1001 and TALLY_CHAOS_SLOW=0 are usage errors naming the flag"
for bad in 0.5 abc 1001 "" 4x nan; do
    tally_try worker --token-file "$CL_TOKEN_FILE" --chaos-slow "$bad"
    [ "$RC" = 2 ] || fail "--chaos-slow '$bad': expected exit 2, got $RC"
    grep -q -- '--chaos-slow' "$T/stderr" || fail "--chaos-slow '$bad': the message does not name the flag: $(cat "$T/stderr")"
done
TALLY_CHAOS_SLOW=0 tally_try worker --token-file "$CL_TOKEN_FILE"
[ "$RC" = 2 ] && grep -q -- '--chaos-slow' "$T/stderr" || fail "TALLY_CHAOS_SLOW=0: expected a usage error, got $RC"
tally_try worker --help
grep -q -- '--chaos-slow FACTOR' "$T/stdout" && grep -q 'TALLY_CHAOS_SLOW' "$T/stdout" ||
    fail "worker --help does not show --chaos-slow"

# ---- Health in the heartbeat ---
# A stand-in coordinator that keeps the last heartbeat body it got: the real one does not show
# what a worker sends.
step "every heartbeat carries health: PSI where the kernel has it, load1, the chaos factor"
cat >"$T/fakecoord.py" <<'EOF'
import http.server, os, sys, time
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/v1/heartbeat":
            with open(out + ".tmp", "wb") as f:
                f.write(body)
            os.replace(out + ".tmp", out)
            time.sleep(0.05)  # a long poll, briefly
        answer = b'{"heartbeat_ms":50,"epoch":1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
EOF
cl_spawn "$CL/fake.log" "$CL/fake.port" "$PYTHON" "$T/fakecoord.py" "$T/hb.json"
fake_port() { [ -s "$CL/fake.port" ]; }
poll_until 10 "the stand-in coordinator to print its port" fake_port
cl_spawn "$CL/hw.wlog" "$CL/hw.out" env TALLY_CHAOS_SLOW=2.5 "$TALLY" worker --coordinator "127.0.0.1:$(cat "$CL/fake.port")" \
    --token-file "$CL_TOKEN_FILE" --name hw --work-dir "$CL/work" --slots 1
hw_pid=$CL_PID
got_hb() { [ -s "$T/hb.json" ]; }
poll_until 10 "a heartbeat at the stand-in coordinator" got_hb
"$PYTHON" - "$T/hb.json" <<'EOF' || fail "the heartbeat's health is wrong: $(cat "$T/hb.json")"
import json, sys
h = json.load(open(sys.argv[1]))["health"]
print("health:", h)
ok = h.get("chaos_slow") == 2.5 and isinstance(h.get("load1"), (int, float)) and h["load1"] >= 0
for r in ("cpu", "io", "memory"):
    try:
        have = open("/proc/pressure/" + r).read().startswith("some ")
    except OSError:
        have = False
    v = h.get("psi_" + r)
    # Present exactly when this kernel has it, and a percentage.
    ok = ok and (v is not None) == have and (v is None or 0 <= v <= 100)
sys.exit(0 if ok else 1)
EOF
kill -KILL "$hw_pid"

# ---- Timing: factor 1, then FACTOR ---
cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 15000
gen_ok text --size "$size" --seed 41 -o "$T/in.txt"
cl_answer "$T/ans.txt" "${JOB[@]}" -o "$T/local" "$T/in.txt"

# job_ms JOB: how long the job ran, by the coordinator's clock.
job_ms() { CL_Q_JOB=$1 cl_q 'j["end_ms"] - j["start_ms"]'; }

step "one worker at --chaos-slow 1 (the default): the baseline"
cl_start_worker w1 --slots 1
cl_submit_ok "${JOB[@]}" -o "$T/fast" "$T/in.txt"
cl_same "$T/fast" "$T/ans.txt"
fast_ms=$(job_ms "$CL_JOB")
# A typical map attempt of the fast run (the median): a slowed one must be far from done at that age.
fast_map_ms=$(CL_Q_JOB=$CL_JOB cl_q 'sorted(a["end_ms"] - a["start_ms"] for t in j["tasks"] if t["phase"] == "map" for a in t["attempts"])[2]')
echo "factor 1: job $fast_ms ms, a map attempt $fast_map_ms ms"

step "the same worker restarted at --chaos-slow $FACTOR: the job takes >= 2.5x as long, progress advances gradually"
cl_kill_worker w1 KILL
cl_start_worker w1 --slots 1 --chaos-slow "$FACTOR"
w1=$(cl_q 'w["w1"]["address"]')
grep -q "chaos-slow: every attempt takes $FACTOR times as long" "$CL/w1.wlog" || fail "the worker did not log its factor"
id=$("$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" --detach \
    "${JOB[@]}" -o "$T/slow" "$T/in.txt") || fail "submit --detach failed"
# Samples the running attempts' progress until the job ends. Paced all along, a map attempt is
# far from done (under 3/4) when it has run as long as a whole fast map attempt plus the delay
# of the heartbeats; slowed by a sleep at its end instead, it would show its final value.
"$PYTHON" - "$TALLY" "$CL_COORD" "$CL_TOKEN_FILE" "$id" "$fast_map_ms" <<'EOF' || fail "progress did not advance gradually (see above)"
import json, subprocess, sys, time
tally, coord, tok, job, fast_map = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
seen = {}   # attempt id -> progress values seen while it ran, in order
early = []  # (age ms, progress) of map attempts past a fast map's whole duration yet < 3/4
deadline = time.time() + 50
while time.time() < deadline:
    st = subprocess.run([tally, "status", "--coordinator", coord, "--token-file", tok, job, "--json"],
                        capture_output=True, text=True, timeout=10)
    now = time.time() * 1000
    j = json.loads(st.stdout)["jobs"][0]
    for t in j["tasks"]:
        for a in t["attempts"]:
            p = a.get("progress")
            if a["state"] != "running" or p is None:
                continue
            if 0 < p < 1:
                seen.setdefault(a["id"], []).append(p)
            if t["phase"] == "map" and now - a["start_ms"] > fast_map + 300 and 0 < p < 0.75:
                early.append((round(now - a["start_ms"]), round(p, 3)))
    if j["state"] in ("succeeded", "failed", "cancelled"):
        break
    time.sleep(0.05)
gradual = {k: v for k, v in seen.items() if len(set(v)) >= 3 and v == sorted(v)}
print(f"attempts seen part-way: {len(seen)}, with 3+ rising values: {len(gradual)}; slow and part-way: {early[:4]}")
sys.exit(0 if j["state"] == "succeeded" and gradual and early else 1)
EOF
[ -e "$T/slow/_SUCCESS" ] || fail "the slowed job did not succeed"
cl_same "$T/slow" "$T/ans.txt"
slow_ms=$(job_ms "$id")
echo "factor $FACTOR: job $slow_ms ms ($(awk -v s="$slow_ms" -v f="$fast_ms" 'BEGIN { printf "%.2f", s / f }')x the baseline)"
awk -v s="$slow_ms" -v f="$fast_ms" 'BEGIN { exit !(s >= 2.5 * f) }' ||
    fail "at --chaos-slow $FACTOR the job took $slow_ms ms, not >= 2.5 x $fast_ms ms"

# ---- POST /v1/chaos ---
step "/v1/chaos: 401 without the token, 400 for a bad factor, GET shows it, {\"slow\":1} makes the next job fast"
code=$(curl -s -o "$T/c.out" -w '%{http_code}' -X POST -d '{"slow":1}' "http://$w1/v1/chaos")
[ "$code" = 401 ] || fail "POST /v1/chaos without a token: HTTP $code, expected 401"
code=$(curl -s -o "$T/c.out" -w '%{http_code}' -X POST -H "Authorization: Bearer wrong" -d '{"slow":1}' "http://$w1/v1/chaos")
[ "$code" = 401 ] || fail "POST /v1/chaos with a wrong token: HTTP $code, expected 401"
chaos() { curl -s -o "$T/c.out" -w '%{http_code}' -H "Authorization: Bearer $CL_TOKEN" "$@" "http://$w1/v1/chaos"; }
for body in '{"slow":0.5}' '{"slow":1001}' '{"slow":"2"}' '{"slow":null}' '{}' '{"fast":1}'; do
    code=$(chaos -X POST -d "$body")
    [ "$code" = 400 ] && grep -q "'slow'" "$T/c.out" || fail "POST /v1/chaos $body: HTTP $code $(cat "$T/c.out"), expected 400 naming 'slow'"
done
code=$(chaos -X POST -d 'not json')
[ "$code" = 400 ] || fail "POST /v1/chaos with a body that is not JSON: HTTP $code, expected 400"
code=$(chaos)
[ "$code" = 200 ] && [ "$(cat "$T/c.out")" = "{\"slow\":$FACTOR}" ] || fail "GET /v1/chaos: HTTP $code $(cat "$T/c.out")"
code=$(chaos -X POST -d '{"slow":1}')
[ "$code" = 200 ] && [ "$(cat "$T/c.out")" = '{"slow":1}' ] || fail "POST /v1/chaos {\"slow\":1}: HTTP $code $(cat "$T/c.out")"
grep -q "chaos-slow: factor 1 (was $FACTOR)" "$CL/w1.wlog" || fail "the worker did not log the change"
cl_submit_ok "${JOB[@]}" -o "$T/again" "$T/in.txt"
cl_same "$T/again" "$T/ans.txt"
again_ms=$(job_ms "$CL_JOB")
echo "after POST {\"slow\":1}: job $again_ms ms"
awk -v a="$again_ms" -v s="$slow_ms" 'BEGIN { exit !(2 * a < s) }' ||
    fail "after {\"slow\":1} the job took $again_ms ms: not fast again (slowed: $slow_ms ms)"

# ---- Kills ---
step "a cancelled job's attempts stop at once on a very slow worker"
[ "$(chaos -X POST -d '{"slow":200}')" = 200 ] || fail "POST /v1/chaos {\"slow\":200} failed"
id=$("$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" --detach \
    "${JOB[@]}" -o "$T/killed" "$T/in.txt") || fail "submit --detach failed"
CL_Q_JOB=$id cl_until 20 "an attempt of $id running with some progress" \
    'any(a["state"] == "running" and a.get("progress", 0) > 0 for t in j["tasks"] for a in t["attempts"])'
tally_try cancel --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" "$id"
t0=$SECONDS
# The worker's own count: the coordinator forgets the attempts at the cancel, whether or not
# the worker has stopped them.
w1_idle() {
    curl -sf -H "Authorization: Bearer $CL_TOKEN" "http://$w1/metrics" | grep -qx 'tally_worker_running_attempts 0'
}
poll_until 5 "w1 to run nothing after the cancel" w1_idle
echo "w1 idle $((SECONDS - t0)) s after the cancel"
cl_alive "$(cl_worker_pid w1)" || fail "w1 died"
