/* opts.h - one settings table per command feeds its flags, environment variables and --help. */
#ifndef TALLY_OPTS_H
#define TALLY_OPTS_H

#include <stddef.h>
#include <stdio.h>

#include "common/util.h"

typedef struct cli_opt {
    const char *name;       /* long flag without dashes */
    char short_name;        /* 0 for none */
    const char *metavar;    /* NULL: a switch (value "1" when given) */
    const char *env;        /* environment variable that may set it, or NULL */
    const char *def;        /* default value, or NULL */
    const char *help;
    const char **value;     /* where the value goes (points into argv, env, or def) */
} cli_opt;

/* Applies defaults, then the environment, then argv[1..] (flags may appear anywhere; "--"
 * ends them). Positional arguments are collected into pos (caller frees the array).
 * Returns 0, 1 if --help was asked for, or -EINVAL with a message. */
int cli_opts_parse(const cli_opt *opts, size_t n, int argc, char **argv, char ***pos, size_t *npos,
                   struct err *e);
void cli_opts_usage(FILE *out, const char *usage, const cli_opt *opts, size_t n);

#endif
