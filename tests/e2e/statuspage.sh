#!/usr/bin/env bash
# statuspage.sh - the coordinator's web status page in a real browser: Debian's chromium,
# driven by playwright-core (tests/browser/, installed from the npm registry on first use),
# against a live local cluster that ran a job. Without the token only the login form shows
# (also checked with plain `chromium --headless --dump-dom`); after logging in the workers and
# the job with its progress appear, the job's page has its tasks and attempt timeline, user
# text (the output path) stays text, and the token never reaches the URL or a script.
# Screenshots and DOM dumps go to $STATUSPAGE_KEEP (default: the test's temp dir).
. "$(dirname "$0")/cluster_lib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || fail "chromium is not installed (scripts/install-deps.sh installs it)"
command -v node >/dev/null || fail "node is not installed (scripts/install-deps.sh installs nodejs)"
BROWSER=$ROOT/tests/browser
if [ ! -d "$BROWSER/node_modules/playwright-core" ]; then
    step "npm ci in tests/browser (playwright-core, no browser download)"
    (cd "$BROWSER" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent) ||
        fail "npm ci in $BROWSER failed"
fi
KEEP=${STATUSPAGE_KEEP:-$T/page}
mkdir -p "$KEEP"

cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 15000 --speculation off --probation off
cl_start_worker w1 --slots 2
cl_start_worker w2 --slots 2

step "a job whose output path holds markup"
out="$T/out-<b>bold</b>"
cl_submit_ok wordcount -m 6 -r 2 -o "$out" "${BOOKS[@]}"

step "without the token: chromium --dump-dom shows the login form only"
"$CHROMIUM" --headless --no-sandbox --disable-gpu --virtual-time-budget=3000 --dump-dom \
    "http://$CL_COORD/" >"$KEEP/anonymous.html" 2>"$T/chromium.err" ||
    fail "chromium --dump-dom failed: $(tail -n 3 "$T/chromium.err")"
grep -q 'id="login-form"' "$KEEP/anonymous.html" || fail "the anonymous page has no login form"
grep -q '<section id="cluster" hidden' "$KEEP/anonymous.html" || fail "the anonymous page shows the cluster section"
! grep -q -e w1 -e w2 -e "$CL_JOB" "$KEEP/anonymous.html" || fail "the anonymous page shows cluster data"

step "log in, the workers and the job with its progress, the job's page"
node "$BROWSER/status.mjs" "http://$CL_COORD/" "$CL_TOKEN_FILE" "$KEEP" "$CL_JOB" w1 w2 ||
    fail "the browser checks failed (screenshots and DOM in $KEEP)"
grep -q 'data-worker="w1"' "$KEEP/cluster.html" || fail "the saved DOM lacks worker w1"
grep -q "data-job=\"$CL_JOB\"" "$KEEP/cluster.html" || fail "the saved DOM lacks the job"
[ -s "$KEEP/cluster.png" ] && [ -s "$KEEP/job.png" ] || fail "no screenshots"
echo "statuspage: all cases passed"
