#!/usr/bin/env bash
# analytics.sh - the everyday jobs against their yardsticks, in one run: the smart-plug CSV
# aggregation, the per-producer JSON Lines aggregation, and word count of 1 GiB of Zipf text
# against a tuned single-core counter (wc_fast, bench/wc_fast.c from shared/yardsticks).
#
# usage: bench/analytics.sh BUILD_DIR      (make bench runs it)
#
# Commands alternate within each round (yardstick, then tally, ...) so that the drift of a
# shared 2-core machine hits both alike; each figure is the median of BENCH_ROUNDS rounds
# (default 3). Environment:
#   TALLY_BENCH_DIR   where data sets, outputs and logs are kept (default ~/.cache/tally-bench)
#   BENCH_ROUNDS      rounds (default 3)
#   BENCH_ONLY        a subset of "csv jsonl words" (default all three)
# Exit status: 0 when every command ran and tally's word counts equal wc_fast's and the
# aggregates are the same in every round; a missed target prints MISS but is not a failure.
set -euo pipefail
export LC_ALL=C

die() { echo "analytics: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: bench/analytics.sh BUILD_DIR"
BUILD=$(cd "$1" && pwd)
T=$BUILD/tally
WC_FAST=$BUILD/bench/wc_fast
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$T" ] || die "$T not found; run make"
[ -x "$WC_FAST" ] || die "$WC_FAST not found; run make bench"
[ -x /usr/bin/time ] || die "GNU time is needed (apt-get install time)"
ROUNDS=${BENCH_ROUNDS:-3}
ONLY=${BENCH_ONLY:-csv jsonl words}
CACHE=${TALLY_BENCH_DIR:-$HOME/.cache/tally-bench}
mkdir -p "$CACHE/out" "$CACHE/logs"

# Targets of issue 10 (and where each started: ~100 MB/s, ~45 MB/s, 0.9-1.15x).
CSV_TARGET=600   # MB/s
JSON_TARGET=500  # MB/s
WORDS_RATIO=0.60 # tally -w 2 time / wc_fast time
WORDS_RSS=256    # MiB, tally's whole process tree

# ---- Data sets (generated once, regenerated when tally gen's output changes) --------------

# ensure NAME GEN-ARGS...: $CACHE/NAME made by `tally gen GEN-ARGS -o ...`, kept while a
# stamp of the command and of a small sample of the generator's output still matches.
ensure() {
    local name=$1
    shift
    local kind=$1 sample want
    case $kind in
    text) sample=$("$T" gen text --size 64k -o - | cksum) ;;
    *) sample=$("$T" gen "$kind" --rows 200 -o "$CACHE/sample.$$" >/dev/null &&
        cat "$CACHE/sample.$$"/* | cksum; rm -rf "$CACHE/sample.$$") ;;
    esac
    want="gen $*; sample $sample"
    if [ -e "$CACHE/$name" ] && [ "$(cat "$CACHE/$name.stamp" 2>/dev/null)" = "$want" ]; then return; fi
    echo "analytics: generating $CACHE/$name" >&2
    rm -rf "$CACHE/$name" "$CACHE/$name.tmp"
    "$T" gen "$@" -o "$CACHE/$name.tmp" >/dev/null
    mv "$CACHE/$name.tmp" "$CACHE/$name"
    printf '%s\n' "$want" >"$CACHE/$name.stamp"
}

want() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
want csv && ensure readings readings --shards 5 --rows 2000000
want jsonl && ensure inferences inferences --shards 4 --rows 1000000
want words && ensure text-1G.txt text --size 1G

# ---- Timing --------------------------------------------------------------------------------

declare -A TIMES RSSES # label -> space-separated seconds / KiB, one per round
FAILED=0

# run LABEL CMD...: one timed run; appends its wall time and tree RSS.
run() {
    local label=$1 slug
    shift
    slug=$(echo "$label" | tr -c 'A-Za-z0-9' '_')
    if ! python3 "$ROOT/bench/treerss.py" "$CACHE/logs/$slug.rss" /usr/bin/time -f '%e' \
        -o "$CACHE/logs/$slug.time" "$@" >"$CACHE/logs/$slug.stdout" 2>"$CACHE/logs/$slug.stderr"; then
        echo "analytics: $label failed; last lines of $CACHE/logs/$slug.stderr:" >&2
        tail -n 5 "$CACHE/logs/$slug.stderr" | sed 's/^/    /' >&2
        FAILED=1
        return 0
    fi
    TIMES[$label]="${TIMES[$label]:-} $(tail -n 1 "$CACHE/logs/$slug.time")"
    RSSES[$label]="${RSSES[$label]:-} $(cat "$CACHE/logs/$slug.rss")"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "" }'; }

CSV_CMD=(aggregate --where 'property==1' --group-by house_id,household_id,plug_id
    --agg 'count,avg(value),min(value),max(value)' -m 10 -r 2)
JSON_CMD=(aggregate --group-by producer_id
    --agg 'count_if(ground_truth!=inferred),count,ratio_if(ground_truth!=inferred)')

cat "$CACHE"/readings/* "$CACHE"/inferences/* "$CACHE"/text-1G.txt >/dev/null 2>&1 || true
for ((r = 1; r <= ROUNDS; r++)); do
    echo "analytics: round $r of $ROUNDS" >&2
    if want words; then
        run "wc_fast (1 core)" "$WC_FAST" "$CACHE/text-1G.txt"
        cp "$CACHE/logs/wc_fast__1_core_.stdout" "$CACHE/out/wc_fast.txt" 2>/dev/null || true
        run "tally wordcount -w 2" "$T" run wordcount -w 2 --quiet --overwrite -o "$CACHE/out/words" \
            "$CACHE/text-1G.txt"
    fi
    if want csv; then
        run "tally csv -w 2" "$T" run "${CSV_CMD[@]}" -w 2 --quiet --overwrite -o "$CACHE/out/csv-$r" \
            "$CACHE"/readings/*.csv
    fi
    if want jsonl; then
        run "tally jsonl -w 2" "$T" run "${JSON_CMD[@]}" -w 2 --quiet --overwrite -o "$CACHE/out/jsonl-$r" \
            "$CACHE"/inferences/*.jsonl
    fi
done

# CPython's json module on one shard, one core: the yardstick the issue names for JSON Lines.
if want jsonl; then
    run "python3 json (1 core, 1 shard)" python3 -c '
import json, sys, collections
c = collections.Counter(); w = collections.Counter()
for line in open(sys.argv[1], "rb"):
    r = json.loads(line); p = r["producer_id"]; c[p] += 1; w[p] += r["ground_truth"] != r["inferred"]
print(len(c))' "$CACHE/inferences/inferences-00000.jsonl"
fi

# ---- Checks --------------------------------------------------------------------------------

if want words && [ -s "$CACHE/out/wc_fast.txt" ] && [ -d "$CACHE/out/words" ]; then
    if cmp -s <(awk '{ print $2 "\t" $1 }' "$CACHE/out/wc_fast.txt" | sort) \
        <(cat "$CACHE"/out/words/part-* | sort); then
        WORDS_CHECK="tally's counts equal wc_fast's"
    else
        WORDS_CHECK="MISMATCH: tally's counts differ from wc_fast's"
        FAILED=1
    fi
fi
for kind in csv jsonl; do
    want $kind || continue
    for ((r = 2; r <= ROUNDS; r++)); do
        [ -d "$CACHE/out/$kind-$r" ] && [ -d "$CACHE/out/$kind-1" ] || continue
        if ! diff -r -x _counters.json "$CACHE/out/$kind-1" "$CACHE/out/$kind-$r" >/dev/null; then
            echo "analytics: $kind output of round $r differs from round 1" >&2
            FAILED=1
        fi
    done
done

# ---- Report --------------------------------------------------------------------------------

bytes_of() { cat "$@" | wc -c; }
mbs() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", b / 1e6 / s; else print "-" }'; }
verdict() { awk -v v="$1" -v t="$2" -v k="$3" 'BEGIN { ok = (k == "min") ? v >= t : v <= t; print ok ? "PASS" : "MISS" }'; }

{
    echo
    printf '%-32s %8s %10s %10s   %s\n' command "wall s" "MB/s" "RSS MiB" "rounds (s)"
    for label in "wc_fast (1 core)" "tally wordcount -w 2" "tally csv -w 2" "tally jsonl -w 2" \
        "python3 json (1 core, 1 shard)"; do
        [ -n "${TIMES[$label]:-}" ] || continue
        case $label in
        *wordcount* | wc_fast*) b=$(bytes_of "$CACHE/text-1G.txt") ;;
        *csv*) b=$(bytes_of "$CACHE"/readings/*.csv) ;;
        *"1 shard"*) b=$(bytes_of "$CACHE/inferences/inferences-00000.jsonl") ;;
        *) b=$(bytes_of "$CACHE"/inferences/*.jsonl) ;;
        esac
        w=$(echo "${TIMES[$label]}" | median)
        m=$(echo "${RSSES[$label]}" | median)
        printf '%-32s %8s %10s %10.0f  %s\n' "$label" "$w" "$(mbs "$b" "$w")" "$(awk -v k="$m" 'BEGIN { print k / 1024 }')" \
            "${TIMES[$label]}"
        case $label in
        "tally csv -w 2") CSV_MBS=$(mbs "$b" "$w") ;;
        "tally jsonl -w 2") JSON_MBS=$(mbs "$b" "$w") ;;
        "tally wordcount -w 2") WT=$w WR=$(awk -v k="$m" 'BEGIN { printf "%.0f", k / 1024 }') ;;
        "wc_fast (1 core)") FT=$w ;;
        esac
    done
    echo
    echo "targets (issue 10; medians of $ROUNDS alternating rounds)"
    [ -n "${CSV_MBS:-}" ] && printf '  %-46s %6s MB/s vs >= %s (was ~100): %s\n' "CSV aggregate, smart-plug command, -w 2" \
        "$CSV_MBS" $CSV_TARGET "$(verdict "$CSV_MBS" $CSV_TARGET min)"
    [ -n "${JSON_MBS:-}" ] && printf '  %-46s %6s MB/s vs >= %s (was ~45): %s\n' "JSONL aggregate, per-producer command, -w 2" \
        "$JSON_MBS" $JSON_TARGET "$(verdict "$JSON_MBS" $JSON_TARGET min)"
    if [ -n "${WT:-}" ] && [ -n "${FT:-}" ]; then
        ratio=$(awk -v a="$WT" -v b="$FT" 'BEGIN { printf "%.2f", a / b }')
        printf '  %-46s %6sx wc_fast vs <= %s (was 0.9-1.15x): %s\n' "word count 1 GiB, -w 2, time" "$ratio" \
            $WORDS_RATIO "$(verdict "$ratio" $WORDS_RATIO max)"
        printf '  %-46s %6s MiB vs <= %s: %s\n' "word count 1 GiB, -w 2, peak RSS (tree)" "$WR" $WORDS_RSS \
            "$(verdict "$WR" $WORDS_RSS max)"
    fi
    [ -n "${WORDS_CHECK:-}" ] && echo "  correctness: $WORDS_CHECK"
} | tee "$CACHE/analytics.txt"
exit $FAILED
