#!/usr/bin/env bash
# badinput.sh - input that is empty, binary, huge or malformed never crashes tally: it is
# processed, or skipped and counted in records_skipped, or (--strict) fails the job with the file
# and byte offset named; a damaged .gz file fails the job, naming it.
. "$(dirname "$0")/lib.sh"

step "an empty file: R empty parts and _SUCCESS"
checked_job 3 --expect input_records=0 --expect output_records=0 --expect input_files=1 -- \
    wordcount -r 3 -o "$T/empty" "$DATA/edge/empty.txt"
for i in 0 1 2; do
    [ ! -s "$T/empty/part-0000$i" ] || fail "part-0000$i of an empty input is not empty"
done
checked_job 2 --expect input_records=0 --expect map_tasks=5 -- grep -e . -m 5 -r 2 -o "$T/empty2" "$DATA/edge/empty.txt"
checked_job 1 --key-fields 1 --columns 2 --expect input_records=0 -- \
    aggregate --group-by a --agg count -o "$T/empty3" --format csv "$DATA/edge/empty.txt"
printf 'a,b\n' >"$T/header-only.csv"
checked_job 1 --key-fields 1 --columns 2 --expect input_records=0 --expect output_records=0 -- \
    aggregate --group-by a --agg count -o "$T/empty4" "$T/header-only.csv"

step "binary data: 1 MB from /dev/urandom"
head -c 1048576 /dev/urandom >"$T/random.bin"
ref wordcount --stats "$T/stats.json" "$T/random.bin" >"$T/ref-bin.txt"
checked_job 2 --expect input_records="$(lines_in "$T/random.bin")" --expect map_tasks=3 -- \
    wordcount -m 3 -r 2 -o "$T/bin" "$T/random.bin"
compare "$T/bin" "$T/ref-bin.txt"
ref grep -e '[a-z]{3}' "$T/random.bin" >"$T/ref-bingrep.txt"
checked_job 1 -- grep -e '[a-z]{3}' -m 3 -o "$T/bingrep" "$T/random.bin"
compare "$T/bingrep" "$T/ref-bingrep.txt"
# Read as JSON Lines every random line is a bad record. The default --max-skipped-ratio (0.1)
# refuses such a job, naming the first skipped record; with 1 the job runs and counts them all.
job_fails 1 aggregate --format jsonl --group-by a --agg count -m 2 -o "$T/binjson-refused" "$T/random.bin"
assert_failed_output "$T/binjson-refused"
assert_stderr_has "--max-skipped-ratio" "$T/random.bin: offset "
checked_job 1 --key-fields 1 --columns 2 --expect output_records=0 -- \
    aggregate --format jsonl --group-by a --agg count -m 2 --max-skipped-ratio 1 -o "$T/binjson" "$T/random.bin"
[ "$(counter "$T/binjson" records_skipped)" = "$(counter "$T/binjson" input_records)" ] ||
    fail "every random line read as JSON must be skipped"
# Read as CSV under a header that names the field, random records are mostly bad too; read
# whole, it reads the records the reference reads. Cut into splits, random quotes may mislead
# the scan for CSV split edges: then the job fails naming the file; otherwise it reads the same
# records, once each. It never crashes or double-counts. (Keys of random bytes come out escaped,
# so the counts are compared, not the output.)
{ printf 'a,b\n'; cat "$T/random.bin"; } >"$T/random.csv"
ref aggregate --group-by a --agg count --stats "$T/bincsv.json" "$T/random.csv" >/dev/null
bin_records=$(stat_of "$T/bincsv.json" input_records)
bin_skipped=$(stat_of "$T/bincsv.json" records_skipped)
checked_job 1 --key-fields 1 --columns 2 --expect input_records="$bin_records" --expect records_skipped="$bin_skipped" -- \
    aggregate --group-by a --agg count -m 1 --max-skipped-ratio 1 -o "$T/bincsv" "$T/random.csv"
bin_out=$(counter "$T/bincsv" output_records)
for m in 2 5; do
    job_try aggregate --group-by a --agg count -m $m --max-skipped-ratio 1 -o "$T/bincsv-$m" "$T/random.csv"
    assert_workdir_clean
    if [ "$RC" = 0 ]; then
        check_out "$T/bincsv-$m" 1 --key-fields 1 --columns 2 --expect input_records="$bin_records" \
            --expect records_skipped="$bin_skipped" --expect output_records="$bin_out"
    else
        assert_eq "$RC" 1 "exit of a random CSV in $m splits"
        assert_stderr_has "$T/random.csv: offset" "split edges"
        assert_failed_output "$T/bincsv-$m"
    fi
done

step "a damaged .gz file fails the job at once, naming the file: cut short, a bad CRC, not gzip"
mkdir -p "$T/gz"
cp "${BOOKS[0]}" "$T/gz/book.txt"
gzip -c "$T/gz/book.txt" >"$T/gz/ok.txt.gz"
gz_size=$(wc -c <"$T/gz/ok.txt.gz")
head -c $((gz_size / 2)) "$T/gz/ok.txt.gz" >"$T/gz/cut.txt.gz"
head -c $((gz_size - 4)) "$T/gz/ok.txt.gz" >"$T/gz/notrailer.txt.gz"
"$PYTHON" -c '
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[-7] ^= 0x40  # a bit of the CRC-32 in the trailer
open(sys.argv[2], "wb").write(d)' "$T/gz/ok.txt.gz" "$T/gz/crc.txt.gz"
cp "$T/gz/book.txt" "$T/gz/text.txt.gz"
gzip -c "$DATA/edge/crlf.csv" | head -c 20 >"$T/gz/header.csv.gz"
for bad in cut notrailer crc text; do
    for strict in "" --strict; do
        job_fails 1 wordcount $strict -m 3 -o "$T/gzbad" "$T/gz/$bad.txt.gz"
        assert_failed_output "$T/gzbad"
        assert_stderr_has "$T/gz/$bad.txt.gz: "
        # Data errors are fatal: the one attempt, not --max-attempts of them.
        attempts=$(grep -c 'task=m00000 attempt=a[0-9]* failed' "$T/stderr" || true)
        assert_eq "$attempts" 1 "failed attempts of the map reading $bad.txt.gz"
    done
done
job_fails 1 wordcount -o "$T/gzbad" "$T/gz/cut.txt.gz"
assert_stderr_has "uncompressed offset" "ends early"
job_fails 1 wordcount -o "$T/gzbad" "$T/gz/crc.txt.gz"
assert_stderr_has "incorrect data check"
job_fails 1 wordcount -o "$T/gzbad" "$T/gz/text.txt.gz"
assert_stderr_has "not in gzip format"
# A damaged file among good ones fails the whole job; so does a CSV whose header is cut off.
job_fails 1 wordcount -m 2 -o "$T/gzbad" "$T/gz/book.txt" "$T/gz/ok.txt.gz" "$T/gz/cut.txt.gz"
assert_failed_output "$T/gzbad"
assert_stderr_has "$T/gz/cut.txt.gz: "
job_fails 1 aggregate --group-by k --agg count -o "$T/gzbad" "$T/gz/header.csv.gz"
assert_failed_output "$T/gzbad"
assert_stderr_has "$T/gz/header.csv.gz: "

step "concatenated gzip members (cat a.gz b.gz) are one valid stream"
cat "$T/gz/ok.txt.gz" "$T/gz/ok.txt.gz" >"$T/gz/twice.txt.gz"
ref wordcount "$T/gz/book.txt" "$T/gz/book.txt" >"$T/ref-twice.txt"
checked_job 1 --expect input_records="$(lines_in "$T/gz/book.txt" "$T/gz/book.txt")" -- \
    wordcount -o "$T/twice" "$T/gz/twice.txt.gz"
compare "$T/twice" "$T/ref-twice.txt"

step "a 3 MB line with --max-record 1M is skipped and counted"
{
    echo "hello world"
    head -c 3145728 /dev/zero | tr '\0' 'a'
    echo
    echo "bye world"
} >"$T/longline.txt"
printf '%s\n' "hello	1" "world	2" "bye	1" >"$T/want-long.txt"
# One record of three is skipped, more than the default --max-skipped-ratio allows.
job_fails 1 wordcount --max-record 1M -o "$T/long-refused" "$T/longline.txt"
assert_failed_output "$T/long-refused"
assert_stderr_has "$T/longline.txt: offset 12: record longer than --max-record"
for m in 1 4; do
    checked_job 1 --expect records_skipped=1 -- wordcount --max-record 1M --max-skipped-ratio 1 -m $m -o "$T/long-$m" "$T/longline.txt"
    compare "$T/long-$m" "$T/want-long.txt"
done
ref grep -e . --max-record 1M "$T/longline.txt" >"$T/ref-long.txt"
checked_job 2 --expect records_skipped=1 -- grep -e . --max-record 1M --max-skipped-ratio 1 -m 2 -r 2 -o "$T/long-grep" "$T/longline.txt"
compare "$T/long-grep" "$T/ref-long.txt"

step "a 5 MB line within the default --max-record is one record"
{
    echo "short line"
    head -c 5242880 /dev/zero | tr '\0' 'b'
    echo " tail"
} >"$T/bigline.txt"
checked_job 1 --expect records_skipped=0 --expect input_records=2 -- wordcount -m 3 -o "$T/big" "$T/bigline.txt"
"$PYTHON" -c 'import sys; sys.exit(b"b" * 5242880 + b"\t1" not in open(sys.argv[1], "rb").read().split(b"\n"))' "$T/big/part-00000" ||
    fail "the 5 MB word is missing from the output"
ref wordcount "$T/bigline.txt" >"$T/ref-big.txt"
compare "$T/big" "$T/ref-big.txt"

# malformed FILE GROUP AGG: skipped records counted; --strict fails naming file and offset.
malformed() {
    local file=$1 group=$2 agg=$3
    step "malformed $(basename "$file"): skipped and counted"
    ref aggregate --group-by "$group" --agg "$agg" --stats "$T/stats.json" "$file" >"$T/ref-mal.txt"
    local skipped
    skipped=$(stat_of "$T/stats.json" records_skipped)
    [ "$skipped" -gt 0 ] || fail "test bug: $file has nothing to skip"
    for m in 1 3; do
        checked_job 2 --key-fields 1 --columns 3 --expect records_skipped="$skipped" -- \
            aggregate --group-by "$group" --agg "$agg" --max-skipped-ratio 1 -m $m -r 2 -o "$T/mal-$m" "$file"
        compare "$T/mal-$m" "$T/ref-mal.txt" --key-fields 1
        rm -rf "$T/mal-$m"
    done
    step "malformed $(basename "$file") with --strict: exit 1, file and offset named"
    job_fails 1 aggregate --group-by "$group" --agg "$agg" --strict -m 1 -o "$T/strict" "$file"
    assert_failed_output "$T/strict"
    assert_stderr_has "$file"
    local offsets
    offsets=$("$PYTHON" -c 'import json,sys; print(" ".join(str(o) for _, o in json.load(open(sys.argv[1]))["skipped"]))' "$T/stats.json")
    local o named=0
    for o in $offsets; do
        grep -qE "(^|[^0-9])$o([^0-9]|\$)" "$T/stderr" && named=1
    done
    [ $named = 1 ] || fail "--strict message names none of the bad records' offsets ($offsets)"
    rm -rf "$T/strict"
}
malformed "$DATA/edge/malformed.csv" name 'count,sum(value)'
malformed "$DATA/edge/malformed.jsonl" user 'count,max(n)'

step "--strict on clean input succeeds"
checked_job 1 --key-fields 1 --columns 2 --expect records_skipped=0 -- \
    aggregate --strict --group-by k --agg 'sum(v)' -o "$T/clean" "$DATA/edge/crlf.csv"

step "a CSV header that does not parse fails the job at once (one attempt), naming the file"
printf '"a,b\nx,y\n' >"$T/badheader.csv"
job_fails 1 aggregate --group-by a --agg count -o "$T/badheader" "$T/badheader.csv"
assert_stderr_has "badheader.csv" "CSV header"
# Fatal at once: no map is tried twice. (Which map fails first depends on timing: with two
# maps either may end the job before the other has run, so count per map, not map 0's.)
fails=$(grep -o 'task=m[0-9]* attempt=a[0-9]* failed' "$T/stderr" | cut -d' ' -f1 | sort | uniq -c | sort -rn)
[ -n "$fails" ] || fail "no failed attempt logged for the bad CSV header"
assert_eq "$(echo "$fails" | head -n 1 | awk '{ print $1 }')" 1 "most failed attempts of one map with a bad CSV header"
assert_failed_output "$T/badheader"

step "wordcount over every text edge file at once"
edge=("$DATA"/edge/*.txt)
ref wordcount "${edge[@]}" "$T/random.bin" >"$T/ref-edge.txt"
checked_job 3 --expect input_files=$((${#edge[@]} + 1)) -- wordcount -m 11 -r 3 -o "$T/edge" "${edge[@]}" "$T/random.bin"
compare "$T/edge" "$T/ref-edge.txt"
echo "badinput: all cases passed"
