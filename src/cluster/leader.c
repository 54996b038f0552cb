/* leader.c - calls that follow the leading coordinator (see leader.h). */
#include "cluster/leader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/state.h"
#include "common/log.h"
#include "net/http.h"

int leader_init(leader *l, const char *spec, struct err *e)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    if (!spec || !*spec || strlen(spec) >= sizeof l->spec) return err_set(e, -EINVAL, "--coordinator: empty or too long");
    snprintf(l->spec, sizeof l->spec, "%s", spec);
    if (strncmp(spec, "zk://", 5) == 0) {
        l->zk = 1;
        return 0;
    }
    char *copy = xstrdup(spec), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        if (!*t) continue;
        l->addrs = xrealloc(l->addrs, (l->n + 1) * sizeof *l->addrs);
        l->addrs[l->n++] = xstrdup(t);
    }
    free(copy);
    if (l->n == 0) return err_set(e, -EINVAL, "--coordinator '%s': no address", spec);
    snprintf(l->current, sizeof l->current, "%s", l->addrs[0]);
    return 0;
}

void leader_free(leader *l)
{
    state_close(l->zks);
    for (size_t i = 0; i < l->n; i++) free(l->addrs[i]);
    free(l->addrs);
    pthread_mutex_destroy(&l->lock);
    memset(l, 0, sizeof *l);
}

void leader_current(leader *l, char *buf, size_t cap)
{
    pthread_mutex_lock(&l->lock);
    snprintf(buf, cap, "%s", l->current[0] ? l->current : l->spec);
    pthread_mutex_unlock(&l->lock);
}

/* Moves on from `tried`: to the hinted leader, else to the next candidate. */
static void leader_move(leader *l, const char *tried, const char *hint)
{
    char found[160] = "";
    pthread_mutex_lock(&l->lock);
    if ((!hint || !*hint) && l->zk) {
        struct err e = {0};
        if (!l->zks && state_zk_reader(&l->zks, l->spec, &e) != 0) log_debug("%s", e.msg);
        if (l->zks && state_zk_leader(l->zks, found, sizeof found) != 0 && state_zk_healthy(l->zks) != 0) {
            state_close(l->zks); /* expired: a new session next time */
            l->zks = NULL;
        }
        hint = found;
    }
    if (strcmp(l->current, tried) == 0) {
        if (hint && *hint) snprintf(l->current, sizeof l->current, "%s", hint);
        else if (l->n) snprintf(l->current, sizeof l->current, "%s", l->addrs[l->cur = (l->cur + 1) % l->n]);
    }
    pthread_mutex_unlock(&l->lock);
}

static int leader_round(leader *l, const char *method, const char *path, const char *token, const char *body,
                        long timeout_ms, int *status, char **out, struct err *e);

int leader_call(leader *l, const char *method, const char *path, const char *token, const char *body, long timeout_ms,
                int *status, char **out, struct err *e)
{
    uint64_t deadline = time_mono_ms() + l->patience_ms;
    for (;;) {
        int rc = leader_round(l, method, path, token, body, timeout_ms, status, out, e);
        int lost = rc == 0 ? *status == 421 : rc != -EINVAL;
        /* Only with several coordinators is there a leader to wait for. */
        if (!lost || (!l->zk && l->n < 2) || time_mono_ms() >= deadline) return rc;
        free(*out); /* this round's answer (a 421): the next round starts afresh */
        *out = NULL;
        usleep(100000);
    }
}

static int leader_round(leader *l, const char *method, const char *path, const char *token, const char *body,
                        long timeout_ms, int *status, char **out, struct err *e)
{
    size_t tries = l->zk ? 3 : 2 * l->n + 1;
    char tried[8][160];
    int rc = -ENOENT;
    *out = NULL;
    for (size_t t = 0; t < tries; t++) {
        char addr[160];
        pthread_mutex_lock(&l->lock);
        snprintf(addr, sizeof addr, "%s", l->current);
        pthread_mutex_unlock(&l->lock);
        if (!addr[0]) {
            leader_move(l, "", NULL);
            pthread_mutex_lock(&l->lock);
            snprintf(addr, sizeof addr, "%s", l->current);
            pthread_mutex_unlock(&l->lock);
            if (!addr[0]) {
                rc = err_set(e, -ECONNREFUSED, "ZooKeeper %s names no leading coordinator now", l->spec);
                continue;
            }
        }
        free(*out);
        *out = NULL;
        err_clear(e);
        rc = http_call(addr, method, path, token, body, timeout_ms, status, out, e);
        if (rc == -EINVAL) return rc;
        if (rc == 0 && *status != 421) return 0;
        char hint[160] = "";
        if (rc == 0 && *out) {
            json_t *j = json_loads(*out, 0, NULL);
            const char *h = json_string_value(json_object_get(j, "leader"));
            if (h && strlen(h) < sizeof hint && strcmp(h, addr) != 0) snprintf(hint, sizeof hint, "%s", h);
            json_decref(j);
        }
        /* A hint naming one already tried in this call is stale (the leader it names died
         * and ZooKeeper has not noticed yet): go round the list instead. */
        snprintf(tried[t % 8], sizeof tried[0], "%s", addr);
        for (size_t k = 0; k <= t && k < 8 && hint[0]; k++)
            if (strcmp(tried[k], hint) == 0) hint[0] = '\0';
        leader_move(l, addr, hint);
    }
    return rc;
}
