/* state.h - where a coordinator keeps the job state that must outlive it.
 *
 * The coordinator is event-sourced: every call that changes a job's scheduler state (the job
 * submitted with its plan, an attempt started, succeeded, failed or killed, a map output lost,
 * a job ended) is appended as one JSON record, and a coordinator that takes over replays the
 * records in order through the same scheduler calls, which rebuilds every job exactly (the same
 * attempt ids, the same pending queues). One interface, two backends:
 *
 *   journal  --state-dir DIR: a write-ahead file DIR/journal of framed records (journal.c);
 *            durable on state_sync() by fdatasync; the epoch is the journal's generation
 *   zk       --zookeeper: records are znodes under /tally/jobs/JOB (zkstate.c); the epoch is
 *            the version of /tally/epoch, and every write is fenced on it
 *
 * Records are grouped by job so that a job that leaves the history takes its records with it
 * (state_forget). Writes are buffered by state_append() and made durable, in order, by
 * state_sync(): a caller syncs before anything it decided becomes visible outside (an HTTP
 * answer, a rename in OUT), so a crash only ever loses decisions nobody acted on.
 *
 * Epoch (fencing): state_sync() fails with -ESTALE once a newer epoch exists (another
 * coordinator has taken over); the caller must stop at once and step down. */
#ifndef TALLY_STATE_H
#define TALLY_STATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

typedef struct state state;

/* Called for each record in the order written; `where` names it ("DIR/journal offset N",
 * "znode /tally/jobs/J/r-0000000003") for error messages. A non-zero return stops the load. */
typedef int (*state_replay_fn)(void *arg, const json_t *rec, const char *where, struct err *e);

typedef struct state_ops {
    const char *name;
    int (*load)(state *s, state_replay_fn fn, void *arg, struct err *e);
    int (*append)(state *s, const char *job, const char *line, size_t len);
    int (*sync)(state *s, struct err *e);
    void (*forget)(state *s, const char *job);
    void (*close)(state *s);
} state_ops;

/* The write latency histogram's buckets (seconds): shared by both backends' metrics. */
#define STATE_NBUCKETS 12
extern const double state_buckets[STATE_NBUCKETS];

struct state {
    const state_ops *ops;
    uint64_t epoch;                            /* this coordinator's term */
    uint64_t writes;                           /* state_sync() calls that wrote something */
    uint64_t write_buckets[STATE_NBUCKETS + 1];
    double write_sum;
    int pending;                               /* records appended since the last sync */
    int stale;                                 /* a newer epoch exists: refuses everything */
};

/* Opens (creating if need be) the journal in DIR, which this process then holds (a claim: a
 * second coordinator on the same DIR is refused, naming the first). The epoch is the previous
 * generation + 1, journaled at once. */
int state_open_journal(state **out, const char *dir, struct err *e);

/* Opens a ZooKeeper session (`spec`: HOST:PORT[,HOST:PORT...][/CHROOT], zk:// optional) and
 * joins the election as a candidate reachable at `advertise` (see zkstate.c for the layout). */
int state_open_zk(state **out, const char *spec, const char *advertise, uint64_t session_ms, struct err *e);
/* Follower: looks at the election again if something changed; *leader = 1 once this
 * candidate leads (a new epoch is taken and the leader's address published). */
int state_zk_campaign(state *s, int *leader, struct err *e);
/* 0 while the session is sound; -ESTALE once it expired, -ENOTCONN after being disconnected
 * for 2/3 of the session timeout (a leader must step down then: others may have elected). */
int state_zk_healthy(state *s);
/* The leader's address as published in ZooKeeper; the candidates as [{address, role, node}]. */
int state_zk_leader(state *s, char *addr, size_t cap);
json_t *state_zk_members(state *s);
/* For clients and workers: a session that only reads (state_zk_leader), kept by the caller
 * for as long as it follows the leader (one session per process, not one per lookup). */
int state_zk_reader(state **out, const char *spec, struct err *e);
int state_zk_parse(const char *spec, char *hosts, size_t hcap, char *chroot, size_t ccap, struct err *e);

/* Replays every record (see state_replay_fn). A torn last record (a write cut short by a
 * crash) is reported in the log and dropped; anything else that cannot be read is an error
 * naming where it is. */
int state_load(state *s, state_replay_fn fn, void *arg, struct err *e);
/* Appends a record of `job` (NULL: a record of no job, kept for ever); does not take rec.
 * -EFBIG: larger than the backend can store and read back (nothing appended). */
int state_append(state *s, const char *job, const json_t *rec);
/* Makes everything appended so far durable. -ESTALE: deposed (see above). */
int state_sync(state *s, struct err *e);
/* `job` is no longer needed: its records may be dropped. */
void state_forget(state *s, const char *job);
void state_close(state *s);

/* Backends: counts one write of `secs` seconds into the histogram. */
void state_observe(state *s, double secs);
/* The metrics of the state backend, appended in Prometheus text format. */
void state_metrics(const state *s, struct buf *b);

#endif
