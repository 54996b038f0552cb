/* state.c - the backend-neutral half of the coordinator's state store (see state.h). */
#include "cluster/state.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "common/log.h"

const double state_buckets[STATE_NBUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                              0.01,   0.025,   0.05,   0.1,   0.25,   1};

int state_load(state *s, state_replay_fn fn, void *arg, struct err *e)
{
    return s->ops->load(s, fn, arg, e);
}

int state_append(state *s, const char *job, const json_t *rec)
{
    char *line = json_dumps(rec, JSON_COMPACT);
    if (!line) return -ENOMEM;
    int rc = s->ops->append(s, job, line, strlen(line));
    if (rc == 0) s->pending++;
    free(line);
    return rc;
}

int state_sync(state *s, struct err *e)
{
    if (s->stale) return err_set(e, -ESTALE, "deposed: a newer coordinator epoch exists");
    if (s->pending == 0) return 0;
    uint64_t t0 = time_mono_ns();
    int rc = s->ops->sync(s, e);
    if (rc == 0) {
        s->pending = 0;
        state_observe(s, (double)(time_mono_ns() - t0) / 1e9);
    }
    return rc;
}

void state_forget(state *s, const char *job)
{
    s->ops->forget(s, job);
}

void state_close(state *s)
{
    if (s) s->ops->close(s);
}

void state_observe(state *s, double secs)
{
    size_t b = 0;
    while (b < STATE_NBUCKETS && secs > state_buckets[b]) b++;
    s->write_buckets[b]++;
    s->write_sum += secs;
    s->writes++;
}

void state_metrics(const state *s, struct buf *b)
{
    buf_appendf(b, "# HELP tally_state_write_seconds Latency of durable state writes (journal fdatasync or "
                   "ZooKeeper round trip).\n# TYPE tally_state_write_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t k = 0; k < STATE_NBUCKETS; k++) {
        cum += s->write_buckets[k];
        buf_appendf(b, "tally_state_write_seconds_bucket{backend=\"%s\",le=\"%g\"} %" PRIu64 "\n", s->ops->name,
                    state_buckets[k], cum);
    }
    cum += s->write_buckets[STATE_NBUCKETS];
    buf_appendf(b, "tally_state_write_seconds_bucket{backend=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", s->ops->name, cum);
    buf_appendf(b, "tally_state_write_seconds_sum{backend=\"%s\"} %.6f\n", s->ops->name, s->write_sum);
    buf_appendf(b, "tally_state_write_seconds_count{backend=\"%s\"} %" PRIu64 "\n", s->ops->name, s->writes);
}
