/* report.h - `tally report`: tail-latency percentiles, comparisons and CDF plots of results CSVs.
 *
 * The input is what `tally run/submit --iterations N --results FILE.csv` writes: a header, then
 * one row per iteration with its times in whole milliseconds (total_ms, map_ms, reduce_ms and,
 * when present, slowest_attempt_ms; columns are found by name, others are ignored). The output
 * directory gets percentiles.csv, comparison.csv (two or more files) and cdf_{total,map,reduce}
 * .png/.svg drawn by gnuplot; `tally report --help` and the README describe them.
 */
#ifndef TALLY_REPORT_H
#define TALLY_REPORT_H

#include <stddef.h>
#include <stdint.h>

/* Runs `tally report FILE.csv... -o DIR`; argv[0] is "report". Messages go to stderr, the
 * tables and --help to stdout. Returns the exit code: 0 done, 1 a malformed FILE (the message
 * names its line) or a failed plot, 2 a usage error (also a FILE that cannot be opened or a DIR
 * that cannot be created). */
int report_main(int argc, char **argv);

/* The nearest rank of the p-th percentile of n values: ceil(p/100 * n), 1-based, computed in
 * integers so that e.g. p=90, n=10 is exactly rank 9. Requires n >= 1 and 0 < p <= 100. */
size_t report_rank(size_t n, unsigned p);
/* The p-th percentile of n >= 1 values sorted ascending: the value at report_rank(n, p). */
uint64_t report_percentile(const uint64_t *sorted, size_t n, unsigned p);

#endif
