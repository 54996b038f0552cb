#!/usr/bin/env bash
# report.sh - `tally report`: exact nearest-rank percentiles and improvements of hand-made results
# CSVs, the CDF plots (PNG and SVG, legends of awkward file names), and a clear error naming the
# file and line for every kind of bad input.
. "$(dirname "$0")/lib.sh"

HEADER=iteration,start,total_ms,map_ms,reduce_ms,slowest_attempt_ms,attempts,speculative_attempts,killed_attempts,slowest_worker
ODD="odd 'q' \"x\" & <y>.csv" # quotes and XML characters: the gnuplot script and the SVG must cope

# The baseline: 10 iterations, rows not in order. total_ms is 10..100, so nearest rank gives
# p50=50 p90=90 p95=100 p99=100 where interpolation (numpy's default) gives 55, 91, 95.5, 99.1.
"$PYTHON" - "$T" "$HEADER" "$ODD" <<'EOF'
import sys
t, header, odd = sys.argv[1:]
tot = [30, 10, 100, 20, 50, 40, 90, 60, 80, 70]
mp = [3, 1, 10, 2, 5, 4, 9, 6, 8, 7]
rd = [12, 11, 19, 13, 15, 14, 18, 16, 17, 20]
sl = [25, 8, 95, 18, 45, 36, 85, 55, 75, 65]
with open(f"{t}/base.csv", "w") as f:
    f.write(header + "\n")
    for i in range(10):
        f.write(f"{i + 1},2026-12-04T02:30:{i:02d}.123Z,{tot[i]},{mp[i]},{rd[i]},{sl[i]},3,0,0,w{i % 3}\n")
# 20 iterations with CRLF lines, the columns in another order, an extra column, a quoted worker
# name holding a comma and a quote, a byte-order mark and blank lines.
with open(f"{t}/new.csv", "w", newline="") as f:
    f.write("\ufeffslowest_worker,reduce_ms,host,total_ms,iteration,map_ms,slowest_attempt_ms,start\r\n")
    for i in range(20):
        f.write(f"\"w,\"\"{i}\",15,h,{(20 - i) * 4},{i + 1},6,{i + 1},2026-12-04T02:31:00.000Z\r\n")
        if i == 9:
            f.write("\r\n")
    f.write("\r\n")
# One iteration, no slowest_attempt_ms column, zeros.
with open(f"{t}/{odd}", "w") as f:
    f.write("iteration,total_ms,map_ms,reduce_ms\n1,55,0,0\n")
EOF

step "three files: exact percentiles.csv and comparison.csv"
tally_try report "$T/base.csv" "$T/new.csv" "$T/$ODD" -o "$T/rep"
assert_eq "$RC" 0 "exit of tally report"
cat >"$T/want-percentiles.csv" <<'EOF'
file,measure,n,avg,p50,p90,p95,p99,max
base.csv,total_ms,10,55.0,50,90,100,100,100
base.csv,map_ms,10,5.5,5,9,10,10,10
base.csv,reduce_ms,10,15.5,15,19,20,20,20
base.csv,slowest_attempt_ms,10,50.7,45,85,95,95,95
new.csv,total_ms,20,42.0,40,72,76,80,80
new.csv,map_ms,20,6.0,6,6,6,6,6
new.csv,reduce_ms,20,15.0,15,15,15,15,15
new.csv,slowest_attempt_ms,20,10.5,10,18,19,20,20
"odd 'q' ""x"" & <y>.csv",total_ms,1,55.0,55,55,55,55,55
"odd 'q' ""x"" & <y>.csv",map_ms,1,0.0,0,0,0,0,0
"odd 'q' ""x"" & <y>.csv",reduce_ms,1,0.0,0,0,0,0,0
EOF
diff -u "$T/want-percentiles.csv" "$T/rep/percentiles.csv" || fail "percentiles.csv differs (above)"
# Improvements (baseline - other) / baseline x 100, e.g. total_ms avg (55 - 42) / 55 = 23.6,
# map_ms avg (5.5 - 6) / 5.5 = -9.1 (slower), p90 (9 - 6) / 9 = 33.3; the odd file has no
# slowest_attempt_ms: empty cells.
cat >"$T/want-comparison.csv" <<'EOF'
measure,stat,base.csv,new.csv,improvement_new.csv_%,"odd 'q' ""x"" & <y>.csv","improvement_odd 'q' ""x"" & <y>.csv_%"
total_ms,avg,55.0,42.0,23.6,55.0,0.0
total_ms,p50,50,40,20.0,55,-10.0
total_ms,p90,90,72,20.0,55,38.9
total_ms,p95,100,76,24.0,55,45.0
total_ms,p99,100,80,20.0,55,45.0
total_ms,max,100,80,20.0,55,45.0
map_ms,avg,5.5,6.0,-9.1,0.0,100.0
map_ms,p50,5,6,-20.0,0,100.0
map_ms,p90,9,6,33.3,0,100.0
map_ms,p95,10,6,40.0,0,100.0
map_ms,p99,10,6,40.0,0,100.0
map_ms,max,10,6,40.0,0,100.0
reduce_ms,avg,15.5,15.0,3.2,0.0,100.0
reduce_ms,p50,15,15,0.0,0,100.0
reduce_ms,p90,19,15,21.1,0,100.0
reduce_ms,p95,20,15,25.0,0,100.0
reduce_ms,p99,20,15,25.0,0,100.0
reduce_ms,max,20,15,25.0,0,100.0
slowest_attempt_ms,avg,50.7,10.5,79.3,,
slowest_attempt_ms,p50,45,10,77.8,,
slowest_attempt_ms,p90,85,18,78.8,,
slowest_attempt_ms,p95,95,19,80.0,,
slowest_attempt_ms,p99,95,20,78.9,,
slowest_attempt_ms,max,95,20,78.9,,
EOF
diff -u "$T/want-comparison.csv" "$T/rep/comparison.csv" || fail "comparison.csv differs (above)"

step "the tables on stdout"
grep -qE '^base\.csv +total_ms +10 +55\.0 +50 +90 +100 +100 +100$' "$T/stdout" ||
    fail "stdout has no aligned percentile row for base.csv total_ms: $(head -5 "$T/stdout")"
grep -qE '^total_ms +p95 +100 +76 +\+24\.0% +55 +\+45\.0%$' "$T/stdout" ||
    fail "stdout has no comparison row for total_ms p95: $(grep -m 3 p95 "$T/stdout")"
grep -qE '^map_ms +avg +5\.5 +6\.0 +-9\.1%' "$T/stdout" || fail "stdout does not show map_ms avg as 9.1% slower"

step "the CDF plots: PNG and SVG with every legend name; their data files are gone"
for m in total map reduce; do
    png=$T/rep/cdf_$m.png
    [ -f "$png" ] || fail "no $png"
    assert_eq "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" 89504e470d0a1a0a "magic bytes of $png"
    [ "$(wc -c <"$png")" -gt 10000 ] || fail "$png is only $(wc -c <"$png") bytes"
    "$PYTHON" - "$T/rep/cdf_$m.svg" "${m}_ms" base.csv new.csv "$ODD" <<'EOF' || fail "cdf_$m.svg is not right (above)"
import sys
import xml.etree.ElementTree as ET
path, measure, *names = sys.argv[1:]
root = ET.parse(path).getroot()
assert root.tag.endswith("svg"), f"{path}: root element {root.tag}"
text = "".join(root.itertext())
for want in names + [measure, "time (ms)", "fraction of iterations"]:
    assert want in text, f"{path} does not show {want!r}"
EOF
done
! compgen -G "$T/rep/cdf_data_*" >/dev/null || fail "data files left in the report dir: $(ls "$T/rep")"

step "one file: no comparison.csv (an earlier one is removed); --no-plots draws nothing"
tally_try report "$T/base.csv" -o "$T/rep" --no-plots
assert_eq "$RC" 0 "exit of a one-file report"
[ ! -e "$T/rep/comparison.csv" ] || fail "comparison.csv of the earlier report left beside a one-file report"
! compgen -G "$T/rep/cdf_*" >/dev/null || fail "plots of the earlier report left beside --no-plots: $(ls "$T/rep")"
assert_eq "$(sed -n 2p "$T/rep/percentiles.csv")" "base.csv,total_ms,10,55.0,50,90,100,100,100" "one-file percentiles"
assert_eq "$(wc -l <"$T/rep/percentiles.csv")" 5 "lines of a one-file percentiles.csv"
tally_try report "$T/base.csv" -o "$T/noplots" --no-plots
assert_eq "$RC" 0 "exit with --no-plots"
! compgen -G "$T/noplots/cdf_*" >/dev/null || fail "--no-plots drew: $(ls "$T/noplots")"

step "two files of one base name are named by their paths; a 1 MB field is just a field"
mkdir -p "$T/a" "$T/b"
cp "$T/base.csv" "$T/a/results.csv"
{
    echo "$HEADER"
    printf '1,2026-12-04T02:30:00.000Z,7,3,4,5,1,0,0,'
    head -c 1048576 /dev/zero | tr '\0' w
    echo
} >"$T/b/results.csv"
cd "$T"
tally_try report a/results.csv b/results.csv -o "$T/same" --no-plots
cd "$ROOT"
assert_eq "$RC" 0 "exit of a report on two results.csv"
assert_eq "$(head -1 "$T/same/comparison.csv")" "measure,stat,a/results.csv,b/results.csv,improvement_b/results.csv_%" \
    "comparison header of two files named results.csv"
assert_eq "$(grep -m 1 '^b/results.csv,total_ms' "$T/same/percentiles.csv")" "b/results.csv,total_ms,1,7.0,7,7,7,7,7" \
    "percentiles of the file with a 1 MB field"

step "bad input: exit 1 and a message naming the file and the line"
printf '' >"$T/empty.csv"
printf 'total_ms,map_ms,reduce_ms\r\n' >"$T/header-only.csv"
printf 'iteration,total_ms,map_ms\n1,2,3\n' >"$T/no-reduce.csv"
printf 'total_ms,map_ms,reduce_ms\n1,2,3\n4,five,6\n' >"$T/word.csv"
printf 'total_ms,map_ms,reduce_ms\r\n1,2,3\r\n4,5,-6\r\n' >"$T/negative.csv"
printf 'total_ms,map_ms,reduce_ms\n1,2,3\n1,2,3\n1,2\n' >"$T/short.csv"
printf 'total_ms,map_ms,reduce_ms\n1,2,3,4\n' >"$T/long.csv"
printf 'total_ms,map_ms,reduce_ms\n1.5,2,3\n' >"$T/decimal.csv"
printf 'total_ms,map_ms,reduce_ms\n1,,3\n' >"$T/blank-value.csv"
printf 'total_ms,map_ms,reduce_ms\n1,2,18446744073709551616\n' >"$T/huge.csv"
printf 'total_ms,map_ms,reduce_ms,slowest_worker\n1,2,3,"w1\n' >"$T/quote.csv"
printf 'total_ms,map_ms,reduce_ms,slowest_attempt_ms\n1,2,3,x\n' >"$T/optional.csv"
while IFS='|' read -r file where what; do
    tally_try report "$T/base.csv" "$T/$file" -o "$T/bad"
    assert_eq "$RC" 1 "exit of a report on $file"
    assert_stderr_has "tally report: $T/$file: $where" "$what"
done <<'EOF'
empty.csv|line 1: |empty
header-only.csv|line 1: |no rows
no-reduce.csv|line 1: |no column reduce_ms
word.csv|line 3: |column map_ms: 'five' is not a whole number
negative.csv|line 3: |column reduce_ms: '-6' is negative
short.csv|line 4: |2 fields, but the header has 3
long.csv|line 2: |4 fields, but the header has 3
decimal.csv|line 2: |column total_ms: '1.5' is not a whole number
blank-value.csv|line 2: |column map_ms: '' is empty
huge.csv|line 2: |column reduce_ms: '18446744073709551616' is too large
quote.csv|line 2: |field 4: a quote that is never closed
optional.csv|line 2: |column slowest_attempt_ms: 'x'
EOF
[ ! -e "$T/bad" ] || fail "a report on bad input created its directory"

step "usage errors: exit 2"
tally_try report "$T/base.csv"
assert_eq "$RC" 2 "exit without -o"
assert_stderr_has "-o DIR"
tally_try report -o "$T/x"
assert_eq "$RC" 2 "exit without a FILE"
tally_try report --bogus "$T/base.csv" -o "$T/x"
assert_eq "$RC" 2 "exit with an unknown option"
assert_stderr_has "--bogus"
tally_try report "$T/base.csv" "$T/missing.csv" -o "$T/x"
assert_eq "$RC" 2 "exit with a missing FILE"
assert_stderr_has "$T/missing.csv" "No such file"
touch "$T/plainfile"
tally_try report "$T/base.csv" -o "$T/plainfile/sub"
assert_eq "$RC" 2 "exit with an uncreatable DIR"
assert_stderr_has "$T/plainfile/sub"

step "no gnuplot: exit 1 naming the package, the CSV files written; a failing gnuplot: its exit status"
TALLY_GNUPLOT=/nonexistent/gnuplot tally_try report "$T/base.csv" "$T/new.csv" -o "$T/nognuplot"
assert_eq "$RC" 1 "exit without gnuplot"
assert_stderr_has "/nonexistent/gnuplot not found" "gnuplot-nox"
[ -s "$T/nognuplot/percentiles.csv" ] && [ -s "$T/nognuplot/comparison.csv" ] ||
    fail "the CSV files are not written when gnuplot is missing"
! compgen -G "$T/nognuplot/cdf_*" >/dev/null || fail "files left when gnuplot is missing: $(ls "$T/nognuplot")"
tally_try report "$T/base.csv" -o "$T/gpfails" --gnuplot false
assert_eq "$RC" 1 "exit when gnuplot fails"
assert_stderr_has "false failed drawing the CDF plots" "exit status 1"

step "the usage lists report; --help explains nearest rank"
tally_try --help
grep -q '^  report FILE.csv' "$T/stdout" || fail "tally --help does not list report"
tally_try report --help
assert_eq "$RC" 0 "exit of tally report --help"
grep -q 'nearest-rank' "$T/stdout" && grep -q 'ceil(p/100 x n)' "$T/stdout" || fail "report --help does not define the percentiles"

echo "PASS report"
