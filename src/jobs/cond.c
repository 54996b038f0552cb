/* cond.c - parsing and evaluation of --where conditions and --agg lists, and partial aggregates. */
#include "jobs/cond.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/tally.h"

/* Deepest nesting of parentheses; it bounds the recursion of parsing and evaluation. */
#define COND_MAX_DEPTH 64
/* Longest piece of the text echoed in an error message (struct err holds 1024 bytes). */
#define COND_ECHO_MAX 200
/* No node: ends a list of children. */
#define COND_NONE SIZE_MAX
/* The first byte of every encoded partial, bumped whenever the layout changes. */
#define AGGSPEC_WIRE_VERSION 1

/* ---- Characters and errors --------------------------------------------------------------- */

static int cond_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int cond_is_digit(char c) { return c >= '0' && c <= '9'; }

/* Field names: ASCII letters and '_' start one, and so do bytes >= 0x80 so that UTF-8 names
 * work; digits, '.' and '-' may follow. */
static int cond_is_name_start(char c)
{
    unsigned char u = (unsigned char)c;
    return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_' || u >= 0x80;
}

static int cond_is_name_char(char c)
{
    return cond_is_name_start(c) || cond_is_digit(c) || c == '.' || c == '-';
}

/* Formats `<what>: <message> at offset N:`, then the text on a line of its own and a caret
 * under offset N on the next, so the user sees exactly where the text went wrong. A long text is cut to a window
 * around the offset; the caret column counts UTF-8 characters, not bytes. */
__attribute__((format(printf, 5, 6))) static int
cond_point_error(struct err *e, const char *what, const char *text, size_t off, const char *fmt,
                 ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    size_t len = strlen(text), from = 0, to = len;
    if (off > len) off = len;
    if (len > COND_ECHO_MAX) {
        from = off > COND_ECHO_MAX / 2 ? off - COND_ECHO_MAX / 2 : 0;
        while (from > 0 && ((unsigned char)text[from] & 0xC0) == 0x80) from--;
        to = from + COND_ECHO_MAX < len ? from + COND_ECHO_MAX : len;
        while (to < len && ((unsigned char)text[to] & 0xC0) == 0x80) to++;
        if (to < off) to = off;
    }

    struct buf b = {0};
    /* The text and the caret get lines of their own, so whatever prefix a caller puts before
     * the message cannot push the caret out of line. */
    buf_appendf(&b, "%s: %s at offset %zu:\n    ", what, msg, off);
    size_t line = b.len;
    buf_appendf(&b, "%s", from > 0 ? "..." : "");
    size_t caret = 4;
    for (size_t i = line; i < b.len; i++) caret += ((unsigned char)b.data[i] & 0xC0) != 0x80;
    for (size_t i = from; i < to; i++) {
        unsigned char ch = (unsigned char)text[i];
        /* Control characters would break the two-line picture; show them as spaces. */
        buf_putc(&b, ch < 0x20 || ch == 0x7f ? ' ' : (char)ch);
        if (i < off) caret += (ch & 0xC0) != 0x80;
    }
    buf_appendf(&b, "%s\n%*s^", to < len ? "..." : "", (int)caret, "");
    int rc = err_set(e, -EINVAL, "%s", b.data);
    buf_free(&b);
    return rc;
}

/* s[i] is a quote; returns the index just after its closing quote (before `end`), or SIZE_MAX.
 * Inside, the quote doubled or backslash-escaped is literal, and so is an escaped backslash. */
static size_t cond_string_end(const char *s, size_t i, size_t end)
{
    char q = s[i];
    for (i++; i < end; i++) {
        if (s[i] == '\\' && i + 1 < end && (s[i + 1] == q || s[i + 1] == '\\')) {
            i++;
        } else if (s[i] == q) {
            if (i + 1 < end && s[i + 1] == q) {
                i++;
                continue;
            }
            return i + 1;
        }
    }
    return SIZE_MAX;
}

/* The value of the quoted string s[i..j), j as returned by cond_string_end. */
static char *cond_string_value(const char *s, size_t i, size_t j, size_t *len)
{
    char q = s[i], *out = xmalloc(j - i), *w = out;
    for (size_t k = i + 1; k < j - 1; k++) {
        if ((s[k] == '\\' && (s[k + 1] == q || s[k + 1] == '\\')) || (s[k] == q && s[k + 1] == q))
            k++;
        *w++ = s[k];
    }
    *w = 0;
    *len = (size_t)(w - out);
    return out;
}

/* ---- Numbers and comparison -------------------------------------------------------------- */

/* 1 when s[0..n) is [+-]digits[.digits][(e|E)[+-]digits] with at least one mantissa digit;
 * *is_int says there was neither a '.' nor an exponent. strtod would also take hex, inf, nan
 * and leading spaces, none of which should make a string compare as a number. */
static int cond_number_syntax(const char *s, size_t n, int *is_int)
{
    size_t i = 0, digits = 0;
    int plain = 1;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    for (; i < n && cond_is_digit(s[i]); i++) digits++;
    if (i < n && s[i] == '.') {
        plain = 0;
        for (i++; i < n && cond_is_digit(s[i]); i++) digits++;
    }
    if (!digits) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        plain = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t e0 = i;
        while (i < n && cond_is_digit(s[i])) i++;
        if (i == e0) return 0;
    }
    if (i != n) return 0;
    *is_int = plain;
    return 1;
}

/* Exact powers of ten as doubles: 10^0 .. 10^22 are all representable. */
static const double cond_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The common case in one pass, without strtod: at most 18 significant digits and no exponent
 * letter, the value then being m (an integer) or m / 10^k for k <= 22 with m < 2^53 - one
 * correctly rounded IEEE division of two exact doubles, so the result is the one strtod gives
 * (Clinger's fast path). Returns 1 when it decided, 0 to leave the value to the slow path
 * (anything else that may still be a number, or not a number at all). */
static int cond_parse_fast(const char *s, size_t n, double *d, int64_t *iv, int *is_int)
{
    size_t i = 0, digits = 0, frac = 0;
    uint64_t m = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    for (; i < n && cond_is_digit(s[i]); i++, digits++) m = m * 10 + (uint64_t)(s[i] - '0');
    if (i < n && s[i] == '.') {
        for (i++; i < n && cond_is_digit(s[i]); i++, frac++) m = m * 10 + (uint64_t)(s[i] - '0');
        if (digits + frac == 0 || i != n || digits + frac > 18 || frac > 22 || m >= (1ull << 53))
            return 0;
        double x = (double)m / cond_pow10[frac];
        *d = neg ? -x : x;
        *is_int = 0;
        return 1;
    }
    if (digits == 0 || i != n || digits > 18) return 0;
    int64_t v = neg ? -(int64_t)m : (int64_t)m;
    *iv = v;
    *d = (double)v;
    *is_int = 1;
    return 1;
}

/* Parses a value as a number: 1 with *d (and *iv, *is_int for an integer that fits int64),
 * 0 when it is not a finite decimal number. Profiling the aggregate job showed strtod and
 * strtoll taking a quarter of map time, hence the fast path for plain decimals. */
static int cond_parse_value(const char *s, size_t n, double *d, int64_t *iv, int *is_int)
{
    char small[64], *tmp = small, *end;
    int ok = 0, plain;
    if (cond_parse_fast(s, n, d, iv, is_int)) return 1;
    if (!cond_number_syntax(s, n, &plain)) return 0;
    if (n >= sizeof small) tmp = xmalloc(n + 1); /* only very long numbers get here */
    memcpy(tmp, s, n);
    tmp[n] = 0;
    *is_int = 0;
    if (plain) {
        errno = 0;
        long long v = strtoll(tmp, &end, 10);
        if (errno == 0) {
            *iv = v;
            *d = (double)v;
            *is_int = 1;
            ok = 1;
            goto out;
        }
    }
    *d = strtod(tmp, &end);
    ok = isfinite(*d);
out:
    if (tmp != small) free(tmp);
    return ok;
}

int cond_number(const char *s, size_t n, double *out)
{
    int64_t iv;
    int is_int;
    return cond_parse_value(s, n, out, &iv, &is_int);
}

static int cond_compare_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

int cond_compare(const char *a, size_t alen, const char *b, size_t blen)
{
    double x, y;
    if (cond_number(a, alen, &x) && cond_number(b, blen, &y)) return (x > y) - (x < y);
    return cond_compare_bytes(a, alen, b, blen);
}

/* ---- Condition trees --------------------------------------------------------------------- */

typedef enum cond_op { COND_EQ, COND_NE, COND_LT, COND_LE, COND_GT, COND_GE } cond_op;

typedef enum cond_node_kind { COND_CMP, COND_AND, COND_OR } cond_node_kind;

/* One side of a comparison: a field name, or a literal with its number precomputed. */
struct cond_operand {
    char *text;
    size_t len;
    const void *ref; /* cond_bind's handle for a field */
    int is_field;
    int is_num;
    double num;
};

/* Nodes live in one array and refer to each other by index. `and` and `or` nodes have any
 * number of children (first, then next), so a long chain does not make a deep tree. */
struct cond_node {
    cond_node_kind kind;
    cond_op op;
    struct cond_operand lhs, rhs;
    size_t first, next;
};

struct cond {
    struct cond_node *nodes;
    size_t n, cap, root;
};

void cond_fields(const cond *c, void (*fn)(void *arg, const char *field, const char *other), void *arg)
{
    /* Nodes are created in the order the parser meets them, which is the order written. */
    for (size_t i = 0; c && i < c->n; i++) {
        const struct cond_node *nd = &c->nodes[i];
        if (nd->kind != COND_CMP) continue;
        int both = nd->lhs.is_field && nd->rhs.is_field;
        if (nd->lhs.is_field) fn(arg, nd->lhs.text, both ? nd->rhs.text : NULL);
        if (nd->rhs.is_field) fn(arg, nd->rhs.text, both ? nd->lhs.text : NULL);
    }
}

static size_t cond_node_new(cond *c, cond_node_kind kind)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->nodes = xrealloc(c->nodes, c->cap * sizeof *c->nodes);
    }
    struct cond_node *nd = &c->nodes[c->n];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    nd->first = nd->next = COND_NONE;
    return c->n++;
}

void cond_free(cond *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->nodes[i].lhs.text);
        free(c->nodes[i].rhs.text);
    }
    free(c->nodes);
    free(c);
}

void cond_bind(cond *c, cond_resolve_fn resolve, void *arg)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        struct cond_node *nd = &c->nodes[i];
        if (nd->kind != COND_CMP) continue;
        if (nd->lhs.is_field) nd->lhs.ref = resolve(arg, nd->lhs.text);
        if (nd->rhs.is_field) nd->rhs.ref = resolve(arg, nd->rhs.text);
    }
}

/* ---- Condition parser -------------------------------------------------------------------- */

typedef enum cond_tok_kind {
    TOK_END,
    TOK_FIELD,
    TOK_NUMBER,
    TOK_STRING,
    TOK_OP,
    TOK_LPAREN,
    TOK_RPAREN,
    TOK_AND,
    TOK_OR,
    TOK_OTHER, /* a character that starts no token */
} cond_tok_kind;

struct cond_token {
    cond_tok_kind kind;
    size_t off, len;
    cond_op op;
};

/* A recursive-descent parser over text[pos..end); offsets in messages are into the whole text
 * (a count_if condition is parsed in place inside its --agg list). */
struct cond_parser {
    const char *text, *what;
    size_t pos, end;
    struct err *e;
    cond *c;
    unsigned depth;
    struct cond_token tok; /* the current token */
};

static int cond_number_start(const char *s, size_t i, size_t end)
{
    if (i < end && (s[i] == '+' || s[i] == '-')) i++;
    if (i < end && s[i] == '.') i++;
    return i < end && cond_is_digit(s[i]);
}

/* Reads the next token into p->tok. */
static int cond_lex(struct cond_parser *p)
{
    const char *s = p->text;
    size_t i = p->pos, j;
    struct cond_token *t = &p->tok;
    while (i < p->end && cond_is_space(s[i])) i++;
    t->off = i;
    t->len = 1;
    char nx = i + 1 < p->end ? s[i + 1] : 0;
    if (i >= p->end) {
        t->kind = TOK_END;
        t->len = 0;
    } else if (s[i] == '(' || s[i] == ')') {
        t->kind = s[i] == '(' ? TOK_LPAREN : TOK_RPAREN;
    } else if (s[i] == '=' || (s[i] == '!' && nx == '=') || s[i] == '<' || s[i] == '>') {
        t->kind = TOK_OP;
        t->len = nx == '=' ? 2 : 1;
        switch (s[i]) {
        case '=': t->op = COND_EQ; break;
        case '!': t->op = COND_NE; break;
        case '<': t->op = nx == '=' ? COND_LE : COND_LT; break;
        default: t->op = nx == '=' ? COND_GE : COND_GT; break;
        }
    } else if (s[i] == '\'' || s[i] == '"') {
        j = cond_string_end(s, i, p->end);
        if (j == SIZE_MAX) return cond_point_error(p->e, p->what, s, i, "unterminated string");
        t->kind = TOK_STRING;
        t->len = j - i;
    } else if (cond_number_start(s, i, p->end)) {
        /* Take everything that could belong to a number, so "1x" or "1.2.3" is reported as a
         * bad number rather than as a number followed by something puzzling. */
        j = i + (s[i] == '+' || s[i] == '-');
        for (; j < p->end; j++) {
            int exp_sign = (s[j] == '+' || s[j] == '-') && (s[j - 1] == 'e' || s[j - 1] == 'E');
            if (!cond_is_name_char(s[j]) && !exp_sign) break;
        }
        int is_int;
        if (!cond_number_syntax(s + i, j - i, &is_int))
            return cond_point_error(p->e, p->what, s, i, "invalid number '%.*s'", (int)(j - i),
                                    s + i);
        t->kind = TOK_NUMBER;
        t->len = j - i;
    } else if (cond_is_name_start(s[i])) {
        for (j = i; j < p->end && cond_is_name_char(s[j]); j++) continue;
        t->len = j - i;
        t->kind = TOK_FIELD;
        if ((t->len == 3 && (!memcmp(s + i, "and", 3) || !memcmp(s + i, "AND", 3))))
            t->kind = TOK_AND;
        else if (t->len == 2 && (!memcmp(s + i, "or", 2) || !memcmp(s + i, "OR", 2)))
            t->kind = TOK_OR;
    } else {
        t->kind = TOK_OTHER;
    }
    p->pos = i + t->len;
    return 0;
}

static int cond_operand_from(struct cond_parser *p, struct cond_operand *o)
{
    const struct cond_token *t = &p->tok;
    switch (t->kind) {
    case TOK_FIELD:
        o->is_field = 1;
        o->text = xstrndup(p->text + t->off, t->len);
        o->len = t->len;
        return 0;
    case TOK_NUMBER:
        o->text = xstrndup(p->text + t->off, t->len);
        o->len = t->len;
        break;
    case TOK_STRING:
        o->text = cond_string_value(p->text, t->off, t->off + t->len, &o->len);
        break;
    default:
        return cond_point_error(p->e, p->what, p->text, t->off,
                                "expected a field name, a number or a quoted string");
    }
    o->is_num = cond_number(o->text, o->len, &o->num);
    return 0;
}

static int cond_parse_or(struct cond_parser *p, size_t *out);

static int cond_parse_comparison(struct cond_parser *p, size_t *out)
{
    size_t n = cond_node_new(p->c, COND_CMP), lhs_off = p->tok.off;
    struct cond_operand lhs = {0}, rhs = {0};
    int rc = cond_operand_from(p, &lhs);
    if (!rc) rc = cond_lex(p);
    if (!rc && p->tok.kind != TOK_OP)
        rc = cond_point_error(p->e, p->what, p->text, p->tok.off,
                              "expected a comparison operator");
    cond_op op = p->tok.op;
    if (!rc) rc = cond_lex(p);
    if (!rc) rc = cond_operand_from(p, &rhs);
    if (!rc) rc = cond_lex(p);
    if (!rc && !lhs.is_field && !rhs.is_field)
        rc = cond_point_error(p->e, p->what, p->text, lhs_off,
                              "a comparison needs a field name on one side");
    /* The node owns the operands from here on, so cond_free releases them even on error. */
    struct cond_node *nd = &p->c->nodes[n];
    nd->op = op;
    nd->lhs = lhs;
    nd->rhs = rhs;
    *out = n;
    return rc;
}

static int cond_parse_primary(struct cond_parser *p, size_t *out)
{
    if (p->tok.kind != TOK_LPAREN) return cond_parse_comparison(p, out);
    size_t open = p->tok.off;
    if (p->depth >= COND_MAX_DEPTH)
        return cond_point_error(p->e, p->what, p->text, open,
                                "too many nested parentheses (at most %d)", COND_MAX_DEPTH);
    int rc = cond_lex(p);
    p->depth++;
    if (!rc) rc = cond_parse_or(p, out);
    p->depth--;
    if (rc) return rc;
    if (p->tok.kind == TOK_END)
        return cond_point_error(p->e, p->what, p->text, open, "unclosed '('");
    if (p->tok.kind != TOK_RPAREN)
        return cond_point_error(p->e, p->what, p->text, p->tok.off, "expected 'and', 'or' or ')'");
    return cond_lex(p);
}

/* Parses `sub { sep sub }` into one node with the subs as children (or the lone sub). */
static int cond_parse_list(struct cond_parser *p, cond_tok_kind sep, cond_node_kind kind,
                           int (*sub)(struct cond_parser *, size_t *), size_t *out)
{
    size_t first = COND_NONE, last, next;
    int rc = sub(p, &first);
    if (rc || p->tok.kind != sep) {
        *out = first;
        return rc;
    }
    size_t n = cond_node_new(p->c, kind);
    p->c->nodes[n].first = last = first;
    *out = n;
    while (p->tok.kind == sep) {
        if ((rc = cond_lex(p)) || (rc = sub(p, &next))) return rc;
        p->c->nodes[last].next = next;
        last = next;
    }
    return 0;
}

static int cond_parse_and(struct cond_parser *p, size_t *out)
{
    return cond_parse_list(p, TOK_AND, COND_AND, cond_parse_primary, out);
}

static int cond_parse_or(struct cond_parser *p, size_t *out)
{
    return cond_parse_list(p, TOK_OR, COND_OR, cond_parse_and, out);
}

/* Parses the condition text[start..end); messages quote the whole text. */
static int cond_parse_range(const char *text, size_t start, size_t end, const char *what,
                            cond **out, struct err *e)
{
    struct cond_parser p = {.text = text, .what = what, .pos = start, .end = end, .e = e};
    p.c = xcalloc(1, sizeof *p.c);
    size_t root = COND_NONE;
    int rc = cond_lex(&p);
    if (!rc) rc = cond_parse_or(&p, &root);
    if (!rc && p.tok.kind == TOK_RPAREN)
        rc = cond_point_error(e, what, text, p.tok.off, "unmatched ')'");
    else if (!rc && p.tok.kind != TOK_END)
        rc = cond_point_error(e, what, text, p.tok.off,
                              "expected 'and', 'or' or the end of the condition");
    if (rc) {
        cond_free(p.c);
        return rc;
    }
    p.c->root = root;
    *out = p.c;
    return 0;
}

int cond_parse(const char *text, const char *what, cond **out, struct err *e)
{
    return cond_parse_range(text, 0, strlen(text), what, out, e);
}

/* ---- Condition evaluation ---------------------------------------------------------------- */

static int cond_operand_value(const struct cond_operand *o, cond_lookup_fn lookup, void *arg,
                              const char **val, size_t *len, int *is_num, double *num,
                              cond_failure *fail)
{
    if (!o->is_field) {
        *val = o->text;
        *len = o->len;
        *is_num = o->is_num;
        *num = o->num;
        return 0;
    }
    int rc = lookup(arg, o->text, o->ref, val, len);
    if (rc < 0) {
        fail->field = o->text;
        fail->val = NULL;
        fail->vlen = 0;
        return rc;
    }
    *is_num = cond_number(*val, *len, num);
    return 0;
}

static int cond_eval_cmp(const struct cond_node *nd, cond_lookup_fn lookup, void *arg,
                         int *match, cond_failure *fail)
{
    const char *a, *b;
    size_t alen, blen;
    int anum, bnum, c;
    double x, y;
    int rc = cond_operand_value(&nd->lhs, lookup, arg, &a, &alen, &anum, &x, fail);
    if (!rc) rc = cond_operand_value(&nd->rhs, lookup, arg, &b, &blen, &bnum, &y, fail);
    if (rc) return rc;
    c = anum && bnum ? (x > y) - (x < y) : cond_compare_bytes(a, alen, b, blen);
    switch (nd->op) {
    case COND_EQ: *match = c == 0; break;
    case COND_NE: *match = c != 0; break;
    case COND_LT: *match = c < 0; break;
    case COND_LE: *match = c <= 0; break;
    case COND_GT: *match = c > 0; break;
    default: *match = c >= 0; break;
    }
    return 0;
}

static int cond_eval_node(const cond *c, size_t i, cond_lookup_fn lookup, void *arg, int *match,
                          cond_failure *fail)
{
    const struct cond_node *nd = &c->nodes[i];
    if (nd->kind == COND_CMP) return cond_eval_cmp(nd, lookup, arg, match, fail);
    /* No short cut: every child is evaluated so that a missing field is always noticed. */
    int rc = 0, result = nd->kind == COND_AND;
    for (size_t k = nd->first; k != COND_NONE; k = c->nodes[k].next) {
        cond_failure later;
        int m, r = cond_eval_node(c, k, lookup, arg, &m, rc ? &later : fail);
        if (r < 0) {
            if (!rc) rc = r;
        } else if (nd->kind == COND_AND) {
            result = result && m;
        } else {
            result = result || m;
        }
    }
    if (rc) return rc;
    *match = result;
    return 0;
}

int cond_eval(const cond *c, cond_lookup_fn lookup, void *arg, int *match, cond_failure *fail)
{
    cond_failure dummy;
    return cond_eval_node(c, c->root, lookup, arg, match, fail ? fail : &dummy);
}

void cond_failure_text(int code, const cond_failure *f, char *out, size_t cap)
{
    const char *field = f && f->field ? f->field : "?";
    if (code == TALLY_ENOFIELD) {
        snprintf(out, cap, "missing field '%s'", field);
    } else if (code == TALLY_EBADREC) {
        snprintf(out, cap, "malformed record");
    } else if (code == AGGSPEC_ENOTNUM) {
        /* Quote a short, printable prefix of the value: enough to recognise it in the log. */
        char shown[48];
        size_t n = 0, vlen = f && f->val ? f->vlen : 0;
        for (; n < vlen && n < 40; n++) {
            unsigned char ch = (unsigned char)f->val[n];
            shown[n] = ch < 0x20 || ch == 0x7f || ch == '"' ? '?' : (char)ch;
        }
        shown[n] = 0;
        snprintf(out, cap, "field '%s' is not a number: \"%s%s\"", field, shown,
                 vlen > n ? "..." : "");
    } else {
        snprintf(out, cap, "cannot read field '%s' (error %d)", field, code);
    }
}

/* ---- Aggregate lists --------------------------------------------------------------------- */

static const struct {
    const char *name;
    aggspec_kind kind;
} aggspec_names[] = {
    {"count", AGGSPEC_COUNT}, {"count_if", AGGSPEC_COUNT_IF}, {"ratio_if", AGGSPEC_RATIO_IF},
    {"sum", AGGSPEC_SUM},     {"avg", AGGSPEC_AVG},           {"min", AGGSPEC_MIN},
    {"max", AGGSPEC_MAX},
};

#define AGGSPEC_EXPECTED                                                                       \
    "expected an aggregate: count, count_if(COND), ratio_if(COND), sum(F), avg(F), min(F) or " \
    "max(F)"

/* Index of the ')' matching the '(' at s[open], or SIZE_MAX; parentheses in strings do not
 * count. */
static size_t aggspec_close_paren(const char *s, size_t open, size_t end)
{
    size_t depth = 0;
    for (size_t i = open; i < end; i++) {
        if (s[i] == '\'' || s[i] == '"') {
            size_t j = cond_string_end(s, i, end);
            if (j == SIZE_MAX) return SIZE_MAX;
            i = j - 1;
        } else if (s[i] == '(') {
            depth++;
        } else if (s[i] == ')' && --depth == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static int aggspec_kind_of(const char *s, size_t n, aggspec_kind *kind)
{
    for (size_t i = 0; i < sizeof aggspec_names / sizeof aggspec_names[0]; i++) {
        if (strlen(aggspec_names[i].name) == n && strncasecmp(aggspec_names[i].name, s, n) == 0) {
            *kind = aggspec_names[i].kind;
            return 0;
        }
    }
    return -ENOENT;
}

/* Parses one entry, text[s..e) (the entry's parentheses are known to balance). */
static int aggspec_parse_item(const char *text, size_t s, size_t e, const char *what,
                              aggspec_item *it, struct err *err)
{
    while (s < e && cond_is_space(text[s])) s++;
    while (e > s && cond_is_space(text[e - 1])) e--;
    size_t j = s, k, close, fs, fe;
    while (j < e && (cond_is_name_char(text[j]) && text[j] != '.' && text[j] != '-')) j++;
    if (j == s) return cond_point_error(err, what, text, s, AGGSPEC_EXPECTED);
    if (aggspec_kind_of(text + s, j - s, &it->kind) < 0)
        return cond_point_error(err, what, text, s,
                                "unknown aggregate '%.*s' (known: count, count_if, ratio_if, "
                                "sum, avg, min, max)",
                                (int)(j - s), text + s);
    for (k = j; k < e && cond_is_space(text[k]); k++) continue;

    it->text = xstrndup(text + s, e - s); /* aggspec_free releases it even on error */
    if (it->kind == AGGSPEC_COUNT && k == e) return 0;
    if (it->kind == AGGSPEC_COUNT && text[k] != '(')
        return cond_point_error(err, what, text, k, "unexpected text after 'count'");
    if (k == e || text[k] != '(')
        return cond_point_error(err, what, text, k, "expected '(' after '%.*s'", (int)(j - s),
                                text + s);
    close = aggspec_close_paren(text, k, e);
    if (close == SIZE_MAX) return cond_point_error(err, what, text, k, "unclosed '('");
    for (size_t after = close + 1; after < e; after++)
        if (!cond_is_space(text[after]))
            return cond_point_error(err, what, text, after, "unexpected text after ')'");
    for (fs = k + 1; fs < close && cond_is_space(text[fs]); fs++) continue;
    for (fe = close; fe > fs && cond_is_space(text[fe - 1]); fe--) continue;

    switch (it->kind) {
    case AGGSPEC_COUNT:
        if (fs < fe)
            return cond_point_error(err, what, text, fs,
                                    "count takes no argument (count_if(COND) counts matches)");
        break;
    case AGGSPEC_COUNT_IF:
    case AGGSPEC_RATIO_IF: {
        int rc = cond_parse_range(text, k + 1, close, what, &it->cond, err);
        if (rc) return rc;
        break;
    }
    default: {
        if (fs == fe || !cond_is_name_start(text[fs]))
            return cond_point_error(err, what, text, fs, "expected a field name");
        size_t q = fs;
        while (q < fe && cond_is_name_char(text[q])) q++;
        if (q != fe) {
            while (cond_is_space(text[q])) q++; /* point at what follows, not at a space */
            return cond_point_error(err, what, text, q, "expected ')' after the field name");
        }
        it->field = xstrndup(text + fs, fe - fs);
        break;
    }
    }
    return 0;
}

int aggspec_parse(const char *text, const char *what, aggspec **out, struct err *e)
{
    size_t len = strlen(text), start = 0, depth = 0, open = 0;
    aggspec *a = xcalloc(1, sizeof *a);
    a->items = xcalloc(AGGSPEC_MAX_ITEMS, sizeof *a->items);
    int rc = 0;

    /* Split at commas outside parentheses and quotes; a comma inside count_if(...) belongs to
     * its condition. The text's end acts as a final comma. */
    for (size_t i = 0; i <= len && !rc; i++) {
        if (i < len && (text[i] == '\'' || text[i] == '"')) {
            size_t j = cond_string_end(text, i, len);
            if (j == SIZE_MAX) {
                rc = cond_point_error(e, what, text, i, "unterminated string");
                break;
            }
            i = j - 1;
        } else if (i < len && text[i] == '(') {
            if (depth++ == 0) open = i;
        } else if (i < len && text[i] == ')') {
            if (depth == 0)
                rc = cond_point_error(e, what, text, i, "unmatched ')'");
            else
                depth--;
        } else if (i == len || (text[i] == ',' && depth == 0)) {
            if (depth > 0) {
                rc = cond_point_error(e, what, text, open, "unclosed '('");
            } else if (a->n == AGGSPEC_MAX_ITEMS) {
                rc = cond_point_error(e, what, text, start, "too many aggregates (at most %d)",
                                      AGGSPEC_MAX_ITEMS);
            } else {
                /* The slot is counted even on failure so that aggspec_free releases what a
                 * half-parsed entry allocated. */
                rc = aggspec_parse_item(text, start, i, what, &a->items[a->n++], e);
                start = i + 1;
            }
        }
    }
    if (rc) {
        aggspec_free(a);
        return rc;
    }
    for (size_t i = 0; i < a->n; i++)
        for (size_t k = 0; k < i && a->items[i].field; k++)
            if (a->items[k].field && strcmp(a->items[k].field, a->items[i].field) == 0) {
                a->items[i].same = k + 1;
                break;
            }
    *out = a;
    return 0;
}

void aggspec_free(aggspec *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->items[i].text);
        free(a->items[i].field);
        cond_free(a->items[i].cond);
    }
    free(a->items);
    free(a);
}

void aggspec_bind(aggspec *a, cond_resolve_fn resolve, void *arg)
{
    for (size_t i = 0; i < a->n; i++) {
        aggspec_item *it = &a->items[i];
        cond_bind(it->cond, resolve, arg);
        if (it->field) it->ref = resolve(arg, it->field);
    }
}

int aggspec_parse_fields(const char *text, const char *what, char ***names, size_t *n,
                         struct err *e)
{
    size_t len = strlen(text), count = 0;
    char **out = xcalloc(AGGSPEC_MAX_ITEMS, sizeof *out);
    for (size_t start = 0; start <= len;) {
        const char *comma = memchr(text + start, ',', len - start);
        size_t end = comma ? (size_t)(comma - text) : len, s = start, t = end;
        while (s < t && cond_is_space(text[s])) s++;
        while (t > s && cond_is_space(text[t - 1])) t--;
        int rc = 0;
        if (s == t)
            rc = cond_point_error(e, what, text, s, "expected a field name");
        else if (count == AGGSPEC_MAX_ITEMS)
            rc = cond_point_error(e, what, text, s, "too many fields (at most %d)",
                                  AGGSPEC_MAX_ITEMS);
        if (rc) {
            aggspec_free_fields(out, count);
            return rc;
        }
        out[count++] = xstrndup(text + s, t - s);
        start = end + 1;
    }
    *names = out;
    *n = count;
    return 0;
}

void aggspec_free_fields(char **names, size_t n)
{
    if (!names) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* ---- Partial aggregates: arithmetic ------------------------------------------------------ */

/* Neumaier's compensated summation: *comp collects the low-order bits each addition loses, so
 * the sum barely depends on the order in which partials are combined. */
static void aggspec_neumaier(double *sum, double *comp, double x)
{
    double t = *sum + x;
    if (!isfinite(t)) {
        /* Overflow: the sum stays infinite (or NaN for inf - inf), and comp must stay finite
         * or sum + comp would turn inf into NaN. */
        *sum = t;
        return;
    }
    if (fabs(*sum) >= fabs(x))
        *comp += (*sum - t) + x;
    else
        *comp += (x - t) + *sum;
    *sum = t;
}

static void aggspec_i128_add(uint64_t *lo, int64_t *hi, uint64_t blo, int64_t bhi)
{
    uint64_t l = *lo + blo;
    *hi = (int64_t)((uint64_t)*hi + (uint64_t)bhi + (l < *lo));
    *lo = l;
}

static int aggspec_i128_fits(uint64_t lo, int64_t hi, int64_t *v)
{
    if (hi == 0 && lo <= (uint64_t)INT64_MAX) {
        *v = (int64_t)lo;
        return 1;
    }
    if (hi == -1 && lo > (uint64_t)INT64_MAX) {
        *v = -(int64_t)~lo - 1;
        return 1;
    }
    return 0;
}

/* Adds the 128-bit integer hi:lo to a compensated sum, in three parts that are each exact as
 * doubles, so that converting does not round twice. */
static void aggspec_add_i128(double *sum, double *comp, uint64_t lo, int64_t hi)
{
    int64_t v;
    if (aggspec_i128_fits(lo, hi, &v)) {
        aggspec_neumaier(sum, comp, (double)v);
        return;
    }
    aggspec_neumaier(sum, comp, (double)hi * 18446744073709551616.0);
    aggspec_neumaier(sum, comp, (double)(lo >> 32) * 4294967296.0);
    aggspec_neumaier(sum, comp, (double)(lo & 0xffffffffu));
}

static double aggspec_slot_sum(const aggspec_slot *s)
{
    if (!s->is_int) return s->sum + s->comp;
    double sum = 0, comp = 0;
    aggspec_add_i128(&sum, &comp, s->lo, s->hi);
    return sum + comp;
}

/* Switches a sum from exact integers to compensated doubles, once a real value arrives. */
static void aggspec_to_double(aggspec_slot *s)
{
    if (!s->is_int) return;
    double sum = 0, comp = 0;
    aggspec_add_i128(&sum, &comp, s->lo, s->hi);
    s->sum = sum;
    s->comp = comp;
    s->is_int = 0;
}

static void aggspec_slot_empty(aggspec_slot *s)
{
    memset(s, 0, sizeof *s);
    s->is_int = 1; /* vacuously: no value so far was a real */
}

void aggspec_init(const aggspec *a, aggspec_slot *slots)
{
    for (size_t i = 0; i < a->n; i++) aggspec_slot_empty(&slots[i]);
}

int aggspec_record(const aggspec *a, cond_lookup_fn lookup, void *arg, aggspec_slot *slots,
                   cond_failure *fail)
{
    cond_failure dummy;
    if (!fail) fail = &dummy;
    for (size_t i = 0; i < a->n; i++) {
        const aggspec_item *it = &a->items[i];
        aggspec_slot *s = &slots[i];
        const char *val;
        size_t vlen;
        int m, rc, is_int;
        double d;
        int64_t iv = 0;
        aggspec_slot_empty(s);
        switch (it->kind) {
        case AGGSPEC_COUNT:
            s->n = 1;
            break;
        case AGGSPEC_COUNT_IF:
        case AGGSPEC_RATIO_IF:
            if ((rc = cond_eval(it->cond, lookup, arg, &m, fail)) < 0) return rc;
            s->n = (uint64_t)m;
            s->total = 1;
            break;
        default:
            if (it->same) {
                /* Same field as an earlier entry: reuse its parse (n, is_int, the value). */
                const aggspec_slot *o = &slots[it->same - 1];
                s->n = 1;
                s->is_int = o->is_int;
                s->lo = o->lo;
                s->hi = o->hi;
                s->ival = o->ival;
                s->sum = o->sum;
                s->dval = o->dval;
                break;
            }
            if ((rc = lookup(arg, it->field, it->ref, &val, &vlen)) < 0) {
                fail->field = it->field;
                fail->val = NULL;
                fail->vlen = 0;
                return rc;
            }
            if (!cond_parse_value(val, vlen, &d, &iv, &is_int)) {
                fail->field = it->field;
                fail->val = val;
                fail->vlen = vlen;
                return AGGSPEC_ENOTNUM;
            }
            s->n = 1;
            s->is_int = is_int;
            if (is_int) {
                s->lo = (uint64_t)iv;
                s->hi = iv < 0 ? -1 : 0;
                s->ival = iv;
            } else {
                s->sum = d;
                s->dval = d;
            }
            break;
        }
    }
    return 0;
}

static void aggspec_merge_slot(aggspec_kind kind, aggspec_slot *a, const aggspec_slot *b)
{
    switch (kind) {
    case AGGSPEC_COUNT:
    case AGGSPEC_COUNT_IF:
    case AGGSPEC_RATIO_IF:
        a->n += b->n;
        a->total += b->total;
        break;
    case AGGSPEC_SUM:
    case AGGSPEC_AVG:
        if (!b->n) break;
        if (a->is_int && b->is_int) {
            aggspec_i128_add(&a->lo, &a->hi, b->lo, b->hi);
        } else {
            aggspec_to_double(a);
            if (b->is_int) {
                aggspec_add_i128(&a->sum, &a->comp, b->lo, b->hi);
            } else {
                aggspec_neumaier(&a->sum, &a->comp, b->sum);
                a->comp += b->comp;
            }
        }
        a->n += b->n;
        break;
    case AGGSPEC_MIN:
    case AGGSPEC_MAX:
        if (!b->n) break;
        if (!a->n) {
            *a = *b;
            break;
        }
        if (a->is_int && b->is_int) {
            if (kind == AGGSPEC_MIN ? b->ival < a->ival : b->ival > a->ival) a->ival = b->ival;
        } else {
            double x = a->is_int ? (double)a->ival : a->dval;
            double y = b->is_int ? (double)b->ival : b->dval;
            a->dval = (kind == AGGSPEC_MIN ? y < x : y > x) ? y : x;
            a->is_int = 0;
        }
        a->n += b->n;
        break;
    }
}

void aggspec_merge(const aggspec *a, aggspec_slot *into, const aggspec_slot *from)
{
    for (size_t i = 0; i < a->n; i++) aggspec_merge_slot(a->items[i].kind, &into[i], &from[i]);
}

/* ---- Partial aggregates: encoding -------------------------------------------------------- *
 *
 * version byte (AGGSPEC_WIRE_VERSION), varint entry count, then per entry:
 *   count, count_if:  varint n
 *   ratio_if:         varint n, varint total
 *   sum, avg:         varint n, byte is_int, then varint lo + zigzag varint hi (is_int)
 *                     or f64 sum + f64 comp
 *   min, max:         varint n, byte is_int, then zigzag varint ival (is_int) or f64 dval
 * Varints are LEB128 (7 bits a byte, least significant first); f64 is the IEEE-754 bit pattern,
 * little-endian. One entry takes at most 32 bytes. */

static unsigned char *aggspec_put_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

static unsigned char *aggspec_put_zigzag(unsigned char *p, int64_t v)
{
    return aggspec_put_varint(p, ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0));
}

static unsigned char *aggspec_put_f64(unsigned char *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    for (int i = 0; i < 8; i++) *p++ = (unsigned char)(bits >> (8 * i));
    return p;
}

struct aggspec_reader {
    const unsigned char *p, *end;
    int bad;
};

static uint64_t aggspec_get_varint(struct aggspec_reader *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) break;
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t aggspec_get_zigzag(struct aggspec_reader *r)
{
    uint64_t u = aggspec_get_varint(r);
    return u & 1 ? -(int64_t)(u >> 1) - 1 : (int64_t)(u >> 1);
}

static double aggspec_get_f64(struct aggspec_reader *r)
{
    uint64_t bits = 0;
    double d;
    if (r->end - r->p < 8) {
        r->bad = 1;
        return 0;
    }
    for (int i = 0; i < 8; i++) bits |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static int aggspec_get_flag(struct aggspec_reader *r)
{
    if (r->p >= r->end || *r->p > 1) {
        r->bad = 1;
        return 0;
    }
    return *r->p++;
}

size_t aggspec_encode(const aggspec *a, const aggspec_slot *slots, unsigned char *out)
{
    unsigned char *p = out;
    *p++ = AGGSPEC_WIRE_VERSION;
    p = aggspec_put_varint(p, a->n);
    for (size_t i = 0; i < a->n; i++) {
        const aggspec_slot *s = &slots[i];
        aggspec_kind kind = a->items[i].kind;
        p = aggspec_put_varint(p, s->n);
        if (kind == AGGSPEC_RATIO_IF) p = aggspec_put_varint(p, s->total);
        if (kind == AGGSPEC_COUNT || kind == AGGSPEC_COUNT_IF || kind == AGGSPEC_RATIO_IF)
            continue;
        *p++ = (unsigned char)(s->is_int ? 1 : 0);
        if (kind == AGGSPEC_SUM || kind == AGGSPEC_AVG) {
            if (s->is_int) {
                p = aggspec_put_varint(p, s->lo);
                p = aggspec_put_zigzag(p, s->hi);
            } else {
                p = aggspec_put_f64(p, s->sum);
                p = aggspec_put_f64(p, s->comp);
            }
        } else {
            p = s->is_int ? aggspec_put_zigzag(p, s->ival) : aggspec_put_f64(p, s->dval);
        }
    }
    return (size_t)(p - out);
}

int aggspec_decode_merge(const aggspec *a, aggspec_slot *into, const void *val, size_t len)
{
    struct aggspec_reader r = {val, (const unsigned char *)val + len, 0};
    if (len < 1 || *r.p++ != AGGSPEC_WIRE_VERSION) return -EBADMSG;
    if (aggspec_get_varint(&r) != a->n || r.bad) return -EBADMSG;
    for (size_t i = 0; i < a->n; i++) {
        aggspec_kind kind = a->items[i].kind;
        aggspec_slot s;
        aggspec_slot_empty(&s);
        s.n = aggspec_get_varint(&r);
        if (kind == AGGSPEC_RATIO_IF) s.total = aggspec_get_varint(&r);
        if (kind == AGGSPEC_SUM || kind == AGGSPEC_AVG || kind == AGGSPEC_MIN ||
            kind == AGGSPEC_MAX) {
            s.is_int = aggspec_get_flag(&r);
            if (kind == AGGSPEC_SUM || kind == AGGSPEC_AVG) {
                if (s.is_int) {
                    s.lo = aggspec_get_varint(&r);
                    s.hi = aggspec_get_zigzag(&r);
                } else {
                    s.sum = aggspec_get_f64(&r);
                    s.comp = aggspec_get_f64(&r);
                }
            } else if (s.is_int) {
                s.ival = aggspec_get_zigzag(&r);
            } else {
                s.dval = aggspec_get_f64(&r);
            }
        }
        if (r.bad) return -EBADMSG;
        aggspec_merge_slot(kind, &into[i], &s);
    }
    return r.p == r.end ? 0 : -EBADMSG;
}

/* ---- Partial aggregates: output ---------------------------------------------------------- */

size_t aggspec_format_double(double d, char *out)
{
    int n = 0;
    if (!isfinite(d)) return (size_t)sprintf(out, "%s", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
    /* Fewer than 10 digits would gain nothing but rounding surprises in exponent form; 17
     * always reads back exactly. */
    for (int prec = 10; prec <= 17; prec++) {
        n = snprintf(out, 32, "%.*g", prec, d);
        if (strtod(out, NULL) == d) break;
    }
    return (size_t)n;
}

static size_t aggspec_format_slot(aggspec_kind kind, const aggspec_slot *s, char *out)
{
    int64_t v;
    switch (kind) {
    case AGGSPEC_COUNT:
    case AGGSPEC_COUNT_IF:
        return (size_t)sprintf(out, "%" PRIu64, s->n);
    case AGGSPEC_RATIO_IF:
        return aggspec_format_double(s->total ? (double)s->n / (double)s->total : NAN, out);
    case AGGSPEC_SUM:
        if (s->is_int && aggspec_i128_fits(s->lo, s->hi, &v))
            return (size_t)sprintf(out, "%" PRId64, v);
        return aggspec_format_double(aggspec_slot_sum(s), out);
    case AGGSPEC_AVG:
        return aggspec_format_double(s->n ? aggspec_slot_sum(s) / (double)s->n : NAN, out);
    default:
        if (!s->n) return aggspec_format_double(NAN, out);
        if (s->is_int) return (size_t)sprintf(out, "%" PRId64, s->ival);
        return aggspec_format_double(s->dval, out);
    }
}

size_t aggspec_format(const aggspec *a, const aggspec_slot *slots, char *out)
{
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (i) out[len++] = '\t';
        len += aggspec_format_slot(a->items[i].kind, &slots[i], out + len);
    }
    return len;
}

size_t aggspec_escape(const char *s, size_t n, char *out)
{
    char *w = out;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        switch (c) {
        case '\t': c = 't'; break;
        case '\n': c = 'n'; break;
        case '\r': c = 'r'; break;
        case '\\': break;
        default: *w++ = c; continue;
        }
        *w++ = '\\';
        *w++ = c;
    }
    return (size_t)(w - out);
}

static void aggspec_append_escaped(struct buf *b, const char *s, int first)
{
    size_t n = strlen(s);
    if (!first) buf_putc(b, '\t');
    buf_reserve(b, 2 * n + 1);
    b->len += aggspec_escape(s, n, b->data + b->len);
    b->data[b->len] = 0;
}

char *aggspec_columns(const aggspec *a, char *const *group, size_t ngroup)
{
    struct buf b = {0};
    buf_append(&b, "", 0);
    for (size_t i = 0; i < ngroup; i++) aggspec_append_escaped(&b, group[i], i == 0);
    for (size_t i = 0; i < a->n; i++)
        aggspec_append_escaped(&b, a->items[i].text, ngroup == 0 && i == 0);
    return b.data;
}
