#!/usr/bin/env bash
# demo.sh - generates a small sample into build/demo/ and shows tally's aggregate and wordcount
# jobs on it. usage: scripts/demo.sh TALLY_BINARY   (make demo runs it with build/tally)
set -euo pipefail
export LC_ALL=C

[ $# -eq 1 ] || { echo "usage: scripts/demo.sh TALLY_BINARY" >&2; exit 2; }
[ -x "$1" ] || { echo "demo: $1 is not an executable; run make first" >&2; exit 1; }
TALLY=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")/.." # the paths below are relative to the repository root
DEMO=build/demo

# Prints a tally command line as one would type it, then runs it (globs expanded) with the
# binary under test. The command lines are literals of this script.
tally() {
    printf '\n$ tally %s\n' "$1"
    eval "\"\$TALLY\" $1"
}

# Prints the first N rows of a job's output directory (all files but _metadata), sorted so that
# the rows of all reducers read as one table.
rows() {
    local dir=$1 n=$2
    # sed, unlike head, reads to the end, so sort never dies of SIGPIPE under pipefail.
    find "$dir" -type f ! -name '_*' ! -name '.*' -exec cat {} + | sort | sed -n "1,${n}p"
}

echo "== generating the sample in $DEMO"
rm -rf "$DEMO/readings" "$DEMO/inferences"
"$TALLY" gen readings --shards 5 -o "$DEMO/readings"
"$TALLY" gen inferences --shards 4 -o "$DEMO/inferences"
wc -c "$DEMO"/readings/* "$DEMO"/inferences/*

echo
echo "== load per smart plug: count, mean, min and max of the load readings (property 1)"
tally "run aggregate --where 'property==1' --group-by house_id,household_id,plug_id \\
    --agg 'count,avg(value),min(value),max(value)' -m 10 -r 2 --overwrite \\
    -o $DEMO/plug-load $DEMO/readings/readings_shard*.csv"
echo "-- $DEMO/plug-load/_columns, then the first rows:"
cat "$DEMO/plug-load/_columns"
rows "$DEMO/plug-load" 10

echo
echo "== wrong answers per producer of the image classifier"
tally "run aggregate --group-by producer_id \\
    --agg 'count_if(ground_truth!=inferred),count,ratio_if(ground_truth!=inferred)' \\
    --overwrite -o $DEMO/wrong-per-producer $DEMO/inferences/*.jsonl"
echo "-- $DEMO/wrong-per-producer/_columns, then the rows:"
cat "$DEMO/wrong-per-producer/_columns"
rows "$DEMO/wrong-per-producer" 20

echo
books=(tests/data/gutenberg/*.txt)
if [ -e "${books[0]}" ]; then
    echo "== the 10 most frequent words in ${#books[@]} Project Gutenberg books"
    tally "run wordcount --overwrite -o $DEMO/wordcount tests/data/gutenberg/*.txt"
    # Output rows are word<TAB>count: most frequent first, ties in byte order.
    find "$DEMO/wordcount" -type f ! -name '_*' ! -name '.*' -exec cat {} + |
        sort -t "$(printf '\t')" -k2,2nr -k1,1 | sed -n 1,10p
else
    echo "== skipping wordcount: no books in tests/data/gutenberg/"
fi
