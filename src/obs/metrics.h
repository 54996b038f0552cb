/* metrics.h - the Prometheus text format's histograms, for the coordinator's /metrics (and any
 * other component's): counts kept per bucket as values are observed, written cumulatively as
 * NAME_bucket{LABELS,le="..."}, NAME_sum and NAME_count lines.
 *
 * What each component counts, and the HELP and TYPE lines of its metrics, stay with the data
 * (coord.c, worker.c): they are read under the component's own lock. docs/metrics.md lists
 * every metric. */
#ifndef TALLY_METRICS_H
#define TALLY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* Buckets a histogram may have, the last one (+Inf) included. */
#define METRICS_HIST_MAX 16

/* One histogram's counts per bucket, not cumulative: n[k] counts the values in
 * (bounds[k-1], bounds[k]], n[nbounds] those above the last bound (+Inf). Its bounds, ascending,
 * are the caller's, the same at every call; zero-initialised is empty. */
typedef struct metrics_hist {
    uint64_t n[METRICS_HIST_MAX];
    uint64_t count;
    double sum;
} metrics_hist;

/* Counts v. Requires nbounds < METRICS_HIST_MAX. */
void metrics_hist_observe(metrics_hist *h, const double *bounds, size_t nbounds, double v);

/* Appends h to b as NAME_bucket{LABELS,le="B"} lines (cumulative, bounds printed with %g, then
 * le="+Inf"), NAME_sum{LABELS} (6 decimals) and NAME_count{LABELS}. LABELS is one or more
 * name="value" pairs, already escaped. */
void metrics_hist_write(struct buf *b, const char *name, const char *labels, const metrics_hist *h,
                        const double *bounds, size_t nbounds);

#endif
