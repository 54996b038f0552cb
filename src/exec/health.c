/* health.c - per-worker attempt statistics, the slow rule and probation (see health.h). */
#include "exec/health.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static void health_enter(health *h, health_worker *w, health_state s, uint64_t now);

void health_init(health *h, const health_rule *rule)
{
    memset(h, 0, sizeof *h);
    h->rule = *rule;
    if (h->rule.window < 1) h->rule.window = 1;
    if (h->rule.checks < 1) h->rule.checks = 1;
    if (h->rule.min_samples < 1) h->rule.min_samples = 1;
}

void health_free(health *h)
{
    for (size_t i = 0; i < h->nworkers; i++) free(h->workers[i].ring);
    free(h->workers);
    memset(h, 0, sizeof *h);
}

const health_worker *health_worker_find(const health *h, const char *name)
{
    for (size_t i = 0; i < h->nworkers; i++)
        if (strcmp(h->workers[i].name, name) == 0) return &h->workers[i];
    return NULL;
}

health_worker *health_worker_get(health *h, const char *name)
{
    health_worker *w = (health_worker *)health_worker_find(h, name);
    if (w) return w;
    if (h->nworkers == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 8;
        h->workers = xrealloc(h->workers, h->cap * sizeof *h->workers);
    }
    w = &h->workers[h->nworkers++];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->ring = xcalloc(h->rule.window, sizeof *w->ring);
    w->psi_cpu = w->psi_io = w->psi_memory = w->load1 = -1;
    w->chaos_slow = 1;
    return w;
}

int health_forget(health *h, const char *name, uint64_t now)
{
    health_worker *w = (health_worker *)health_worker_find(h, name);
    if (!w) return 0;
    int was = w->state == HEALTH_PROBATION;
    /* Gone (or a new process under its name): it is judged afresh when it comes back, and a
     * dead worker's probation no longer counts against the half of the cluster that may be on
     * probation. */
    if (was) health_enter(h, w, HEALTH_OK, now);
    w->nsamples = w->head = 0;
    w->violations = 0;
    w->score = 0;
    return was;
}

static int health_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const health_sample *health_at(const health *h, const health_worker *w, size_t i)
{
    return &w->ring[(w->head + h->rule.window - w->nsamples + i) % h->rule.window];
}

static int health_live(const health *h, const health_sample *s, uint64_t now)
{
    return now < s->ms || now - s->ms <= h->rule.window_ms;
}

/* The median cost of group g over every worker's live samples but `skip`'s, or 0. */
static double health_group_median(const health *h, const health_worker *skip, uint64_t g, uint64_t now)
{
    size_t n = 0, cap = 0;
    double *v = NULL;
    for (size_t i = 0; i < h->nworkers; i++) {
        const health_worker *w = &h->workers[i];
        if (w == skip) continue;
        for (size_t k = 0; k < w->nsamples; k++) {
            const health_sample *s = health_at(h, w, k);
            if (s->group != g || !health_live(h, s, now)) continue;
            if (n == cap) v = xrealloc(v, (cap = cap ? cap * 2 : 16) * sizeof *v);
            v[n++] = s->cost;
        }
    }
    double m = 0;
    if (n) {
        qsort(v, n, sizeof *v, health_cmp);
        m = v[(n - 1) / 2];
    }
    free(v);
    return m;
}

/* ---- Scores: every worker's at once ----------------------------------------------------------
 * One pass sorts every live sample by (group, cost); a sample's relative cost needs the median of
 * its group without its own worker's samples, computed once per (group, worker) by walking the
 * group's run; a worker's base is the p90 of the other healthy workers' relative costs, found by
 * walking the sorted union. O(W x N) for W workers and N samples, instead of a median per
 * sample per worker. */

typedef struct health_ref {
    uint64_t group;
    double cost, floor, rel, mib;
    uint32_t worker;
} health_ref;

static int health_cmp_ref(const void *a, const void *b)
{
    const health_ref *x = a, *y = b;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    return x->cost < y->cost ? -1 : x->cost > y->cost;
}

static int health_cmp_rel(const void *a, const void *b)
{
    const health_ref *x = a, *y = b;
    return x->rel < y->rel ? -1 : x->rel > y->rel;
}

/* Fills score[i] (0: not judged) and comparable[i] for every worker. */
static void health_scores(const health *h, uint64_t now, double *score, size_t *comparable)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nworkers; i++) n += h->workers[i].nsamples;
    health_ref *r = xcalloc(n + 1, sizeof *r);
    n = 0;
    for (size_t i = 0; i < h->nworkers; i++) {
        const health_worker *w = &h->workers[i];
        score[i] = 0;
        comparable[i] = 0;
        for (size_t k = 0; k < w->nsamples; k++) {
            const health_sample *sm = health_at(h, w, k);
            if (health_live(h, sm, now))
                r[n++] = (health_ref){.group = sm->group, .cost = sm->cost, .floor = sm->floor, .mib = sm->mib,
                                      .worker = (uint32_t)i};
        }
    }
    qsort(r, n, sizeof *r, health_cmp_ref);
    /* Per group run [a, b): for each worker in it, the median of the others' costs. A split
     * under half the group's median size (the tail of a file) is not compared at all: its fixed
     * cost per attempt makes it look slow per MiB on any worker. */
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a; b < n && r[b].group == r[a].group; b++) {}
        double *sizes = xcalloc(b - a, sizeof *sizes);
        for (size_t x = a; x < b; x++) sizes[x - a] = r[x].mib;
        qsort(sizes, b - a, sizeof *sizes, health_cmp);
        double small = sizes[(b - a - 1) / 2] / 2;
        free(sizes);
        for (size_t x = a; x < b; x++)
            if (r[x].mib > 0 && r[x].mib < small) r[x].rel = -1;
        for (size_t x = a; x < b; x++) {
            if (r[x].rel != 0) continue; /* its worker's median is done */
            uint32_t wk = r[x].worker;
            size_t others = 0;
            for (size_t y = a; y < b; y++) others += r[y].worker != wk;
            double m = 0;
            for (size_t y = a, seen = 0; y < b && others; y++) {
                if (r[y].worker == wk) continue;
                if (seen++ == (others - 1) / 2) {
                    m = r[y].cost;
                    break;
                }
            }
            for (size_t y = x; y < b; y++)
                if (r[y].worker == wk)
                    r[y].rel = others && m + r[y].floor > 0 ? (r[y].cost + r[y].floor) / (m + r[y].floor) : -1;
        }
    }
    /* Drop what had nothing to compare with, then sort by relative cost. */
    size_t m = 0;
    for (size_t x = 0; x < n; x++)
        if (r[x].rel > 0) r[m++] = r[x];
    qsort(r, m, sizeof *r, health_cmp_rel);
    size_t healthy = 0;
    for (size_t x = 0; x < m; x++) {
        comparable[r[x].worker]++;
        healthy += h->workers[r[x].worker].state == HEALTH_OK;
    }
    for (size_t i = 0; i < h->nworkers; i++) {
        if (comparable[i] < h->rule.min_samples) continue;
        /* Its own p90 and the p90 of the other healthy workers', nearest rank, one walk each. */
        size_t mine = comparable[i], rank = (size_t)ceil(0.9 * (double)mine), seen = 0;
        double p90 = 0, base = 1;
        for (size_t x = 0; x < m; x++)
            if (r[x].worker == i && ++seen == (rank ? rank : 1)) {
                p90 = r[x].rel;
                break;
            }
        size_t rest = healthy - (h->workers[i].state == HEALTH_OK ? mine : 0);
        if (rest) {
            size_t rrank = (size_t)ceil(0.9 * (double)rest);
            seen = 0;
            for (size_t x = 0; x < m; x++) {
                const health_ref *e = &r[x];
                if (e->worker == i || h->workers[e->worker].state != HEALTH_OK) continue;
                if (++seen == (rrank ? rrank : 1)) {
                    base = e->rel;
                    break;
                }
            }
        }
        if (base < 1) base = 1; /* the others' spread is at least "as fast as their median" */
        score[i] = p90 / base;
    }
    free(r);
}

static void health_enter(health *h, health_worker *w, health_state s, uint64_t now)
{
    w->state = s;
    w->since_ms = now;
    w->violations = 0;
    w->probes_good = 0;
    w->last_probe_ms = now;
    if (s == HEALTH_PROBATION) {
        w->entries++;
        h->entries++;
    } else {
        w->exits++;
        h->exits++;
        /* Its slow samples would put it straight back: judge it afresh from here. */
        w->nsamples = w->head = 0;
        w->score = 0;
    }
}

static void health_history_note(health *h, uint64_t sig, sched_phase phase, double ms)
{
    health_history *e = NULL;
    for (size_t i = 0; i < h->nhist && !e; i++)
        if (h->hist[i].sig == sig) e = &h->hist[i];
    if (!e) {
        /* When full, a signature takes the slot its hash names (cheap, and one job series
         * cannot push out all the others). */
        e = &h->hist[h->nhist < HEALTH_HISTORY ? h->nhist++ : (size_t)(sig % HEALTH_HISTORY)];
        memset(e, 0, sizeof *e);
        e->sig = sig;
    }
    e->ms[phase][e->n[phase] % 16] = ms;
    e->n[phase]++;
}

double health_history_ms(const health *h, uint64_t sig, sched_phase phase)
{
    for (size_t i = 0; i < h->nhist; i++) {
        const health_history *e = &h->hist[i];
        if (e->sig != sig || e->n[phase] == 0) continue;
        double v[16];
        size_t n = e->n[phase] < 16 ? e->n[phase] : 16;
        memcpy(v, e->ms[phase], n * sizeof *v);
        qsort(v, n, sizeof *v, health_cmp);
        return v[(n - 1) / 2];
    }
    return 0;
}

int health_note_attempt(health *h, const char *worker, uint64_t group, uint64_t sig, sched_phase phase, double ms,
                        double progress, int succeeded, uint64_t bytes, uint64_t now, health_event *ev)
{
    health_worker *w = health_worker_get(h, worker);
    double total = ms;
    if (!succeeded) {
        /* Superseded: it would have needed elapsed / progress; with almost no progress, the
         * elapsed time is all we know (a lower bound). */
        if (progress >= 0.05) total = ms / progress;
    }
    if (succeeded && w->state == HEALTH_OK) health_history_note(h, sig, phase, ms);
    double mib = (double)bytes / 1048576.0 + 1e-3;
    double cost = bytes ? total / mib : total, floor = bytes ? h->rule.floor_ms / mib : h->rule.floor_ms;
    w->ring[w->head] = (health_sample){.ms = now, .cost = cost, .floor = floor, .mib = bytes ? mib : 0, .group = group};
    w->head = (w->head + 1) % h->rule.window;
    if (w->nsamples < h->rule.window) w->nsamples++;
    w->fresh = 1;
    for (size_t i = 0; i < h->nworkers; i++) h->workers[i].rescore = 1; /* their medians moved */
    if (w->state != HEALTH_PROBATION) return 0;
    /* A probe: slow or not by the same rule, on this one sample. One that lost to its copy was
     * slow, whatever its elapsed time (a lower bound) says. */
    double m = health_group_median(h, w, group, now);
    if (m <= 0 && succeeded) return 0; /* nobody to compare with: no verdict */
    /* Hysteresis: back only when clearly not slow (half way from 1 to the factor), or a worker
     * that is slow now and then passes its probes on a good moment and goes straight back. */
    double rel = m > 0 ? (cost + floor) / (m + floor) : h->rule.factor + 1;
    if (!succeeded || rel > 1 + (h->rule.factor - 1) / 2) {
        w->probes_good = 0;
        w->score = rel;
        return 0;
    }
    w->probes_good++;
    if (w->probes_good < h->rule.probes_ok || now - w->since_ms < h->rule.min_probation_ms) return 0;
    health_enter(h, w, HEALTH_OK, now);
    if (ev) {
        *ev = (health_event){.worker = w->name, .to = HEALTH_OK, .score = rel};
        snprintf(ev->why, sizeof ev->why, "%u probes in a row ran at %.2fx the others' median", h->rule.probes_ok, rel);
    }
    return 1;
}

size_t health_check(health *h, uint64_t now, size_t nalive, health_event *ev, size_t max)
{
    size_t nev = 0, onprob = 0;
    double *score = xcalloc(h->nworkers + 1, sizeof *score);
    size_t *comparable = xcalloc(h->nworkers + 1, sizeof *comparable);
    health_scores(h, now, score, comparable);
    for (size_t i = 0; i < h->nworkers; i++) onprob += h->workers[i].state == HEALTH_PROBATION;
    for (size_t i = 0; i < h->nworkers; i++) {
        health_worker *w = &h->workers[i];
        if (!w->fresh || w->state != HEALTH_OK) continue;
        w->fresh = 0;
        w->rescore = 0;
        if (score[i] <= 0) continue; /* not judged: the count of violations stands */
        w->score = score[i];
        if (score[i] <= h->rule.factor) {
            w->violations = 0;
            continue;
        }
        /* A violation by twice the factor or more counts double: a worker that slow costs
         * every job it touches more than waiting for more evidence saves. */
        w->violations += score[i] >= 2 * h->rule.factor ? 2 : 1;
        /* Never more than half the cluster on probation, never the last healthy worker: a
         * cluster-wide slowdown is not one worker's fault. */
        size_t limit = nalive / 2 ? nalive / 2 : 1;
        if (!h->rule.enabled || w->violations < h->rule.checks || onprob >= limit || onprob + 1 >= nalive) continue;
        health_enter(h, w, HEALTH_PROBATION, now);
        onprob++;
        if (nev < max) {
            ev[nev] = (health_event){.worker = w->name, .to = HEALTH_PROBATION, .score = score[i]};
            snprintf(ev[nev].why, sizeof ev[nev].why,
                     "p90 attempt cost %.2fx the other workers' for %u checks in a row (rule: > %.2fx over its last %zu "
                     "attempts)", score[i], h->rule.checks, h->rule.factor, comparable[i]);
            nev++;
        }
    }
    free(score);
    free(comparable);
    return nev;
}

void health_refresh(health *h, uint64_t now)
{
    /* At most every 100 ms: scores move with samples, and the speculation estimates need the
     * news of a worker that just turned slow, not a recount at every attempt's end. */
    if (h->refreshed_ms && now >= h->refreshed_ms && now - h->refreshed_ms < 100) return;
    int any = 0;
    for (size_t i = 0; i < h->nworkers && !any; i++) any = h->workers[i].rescore && h->workers[i].state == HEALTH_OK;
    if (!any) return;
    h->refreshed_ms = now;
    double *score = xcalloc(h->nworkers + 1, sizeof *score);
    size_t *comparable = xcalloc(h->nworkers + 1, sizeof *comparable);
    health_scores(h, now, score, comparable);
    for (size_t i = 0; i < h->nworkers; i++) {
        health_worker *w = &h->workers[i];
        w->rescore = 0;
        if (w->state == HEALTH_OK && score[i] > 0) w->score = score[i];
    }
    free(score);
    free(comparable);
}

int health_probe_due(const health *h, const char *worker, uint64_t now)
{
    const health_worker *w = health_worker_find(h, worker);
    return w && w->state == HEALTH_PROBATION && now - w->last_probe_ms >= h->rule.probe_every_ms;
}

void health_probe_sent(health *h, const char *worker, uint64_t now)
{
    health_worker *w = (health_worker *)health_worker_find(h, worker);
    if (w) w->last_probe_ms = now;
}

int health_on_probation(const health *h, const char *worker)
{
    const health_worker *w = health_worker_find(h, worker);
    return w && w->state == HEALTH_PROBATION;
}

int health_suspect(const health *h, const char *worker)
{
    const health_worker *w = health_worker_find(h, worker);
    /* One violation by a wide margin: a single one by a little is what noise does. */
    return w && w->state == HEALTH_OK && w->violations > 0 && w->score >= 1.5 * h->rule.factor;
}

double health_slowness(const health *h, const char *worker)
{
    const health_worker *w = health_worker_find(h, worker);
    return w && w->score > 1 ? w->score : 1;
}

const char *health_state_name(health_state s)
{
    return s == HEALTH_PROBATION ? "probation" : "ok";
}
