/* metrics.c - Prometheus histograms in the text format (metrics.h). */
#include "obs/metrics.h"

#include <assert.h>
#include <inttypes.h>

void metrics_hist_observe(metrics_hist *h, const double *bounds, size_t nbounds, double v)
{
    assert(nbounds < METRICS_HIST_MAX);
    size_t k = 0;
    while (k < nbounds && v > bounds[k]) k++;
    h->n[k]++;
    h->count++;
    h->sum += v;
}

void metrics_hist_write(struct buf *b, const char *name, const char *labels, const metrics_hist *h,
                        const double *bounds, size_t nbounds)
{
    uint64_t cum = 0;
    for (size_t k = 0; k < nbounds; k++) {
        cum += h->n[k];
        buf_appendf(b, "%s_bucket{%s,le=\"%g\"} %" PRIu64 "\n", name, labels, bounds[k], cum);
    }
    cum += h->n[nbounds];
    buf_appendf(b, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n%s_sum{%s} %.6f\n%s_count{%s} %" PRIu64 "\n", name, labels,
                cum, name, labels, h->sum, name, labels, h->count);
}
