/* counters.c - counter sets: creation, merging and JSON rendering. */
#include "exec/counters.h"

#include <stdlib.h>
#include <string.h>

static const char *counters_names[CNT_NBUILTIN] = {
#define COUNTERS_NAME(id, name) name,
    COUNTERS_BUILTIN(COUNTERS_NAME)
#undef COUNTERS_NAME
};

const char *counters_name(enum counter_id id) { return counters_names[id]; }

void counters_init(counters *c) { memset(c, 0, sizeof *c); }

void counters_free(counters *c)
{
    for (size_t i = 0; i < c->nuser; i++) free(c->user[i].name);
    free(c->user);
    memset(c, 0, sizeof *c);
}

void counters_add_user(counters *c, const char *name, int64_t delta)
{
    for (int i = 0; i < CNT_NBUILTIN; i++)
        if (strcmp(counters_names[i], name) == 0) return;
    for (size_t i = 0; i < c->nuser; i++) {
        if (strcmp(c->user[i].name, name) == 0) {
            c->user[i].value += delta;
            return;
        }
    }
    if (c->nuser == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->user = xrealloc(c->user, c->cap * sizeof *c->user);
    }
    c->user[c->nuser++] = (counter_user){.name = xstrdup(name), .value = delta};
}

void counters_merge(counters *dst, const counters *src)
{
    for (int i = 0; i < CNT_NBUILTIN; i++) dst->v[i] += src->v[i];
    for (size_t i = 0; i < src->nuser; i++) counters_add_user(dst, src->user[i].name, src->user[i].value);
}

static int counters_cmp_user(const void *a, const void *b)
{
    return strcmp(((const counter_user *)a)->name, ((const counter_user *)b)->name);
}

static void counters_json_str(struct buf *out, const char *s)
{
    buf_putc(out, '"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') buf_appendf(out, "\\%c", ch);
        else if (ch < 0x20) buf_appendf(out, "\\u%04x", ch);
        else buf_putc(out, (char)ch);
    }
    buf_putc(out, '"');
}

void counters_to_json(const counters *c, struct buf *out)
{
    buf_putc(out, '{');
    for (int i = 0; i < CNT_NBUILTIN; i++)
        buf_appendf(out, "%s\"%s\":%lld", i ? "," : "", counters_names[i], (long long)c->v[i]);
    counter_user *sorted = xmalloc((c->nuser ? c->nuser : 1) * sizeof *sorted);
    if (c->nuser) memcpy(sorted, c->user, c->nuser * sizeof *sorted);
    qsort(sorted, c->nuser, sizeof *sorted, counters_cmp_user);
    for (size_t i = 0; i < c->nuser; i++) {
        buf_putc(out, ',');
        counters_json_str(out, sorted[i].name);
        buf_appendf(out, ":%lld", (long long)sorted[i].value);
    }
    free(sorted);
    buf_putc(out, '}');
}
