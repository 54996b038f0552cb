/* leader.h - finding the leading coordinator and following it when it changes.
 *
 * `--coordinator` is one address, a comma-separated list of them, or zk://HOST:PORT[,...]/CHROOT
 * (the leader's address is read from ZooKeeper). A call goes to the coordinator believed to
 * lead; if it cannot be reached, or answers 421 (not the leader: its answer names the leader
 * when it knows), the call moves on: to the named leader, else to the next address or to what
 * ZooKeeper says now. Thread-safe. */
#ifndef TALLY_LEADER_H
#define TALLY_LEADER_H

#include <pthread.h>
#include <stddef.h>

#include "common/util.h"

typedef struct leader {
    pthread_mutex_t lock;
    char spec[1024];
    char **addrs;       /* the listed addresses (none for zk://) */
    size_t n, cur;
    int zk;
    char current[160];  /* where calls go now ("" until ZooKeeper has been asked) */
    struct state *zks;  /* zk://: the session that reads the leader's address (lazily opened) */
    unsigned patience_ms; /* how long a call keeps looking for a leader during a failover
                           * (0: one round; the callers that loop themselves, as workers do) */
} leader;

int leader_init(leader *l, const char *spec, struct err *e);
void leader_free(leader *l);
/* The address calls go to now, into buf. */
void leader_current(leader *l, char *buf, size_t cap);
/* http_call() to the leader, following it as above; the arguments are http_call's. */
int leader_call(leader *l, const char *method, const char *path, const char *token, const char *body, long timeout_ms,
                int *status, char **out, struct err *e);

#endif
