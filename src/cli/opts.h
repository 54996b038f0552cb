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

/* The two settings of every client of a coordinator (submit, status, cancel), described once;
 * `var` is the command's own variable. */
#define CLI_OPT_COORDINATOR(var)                                                                           \
    {"coordinator", 0, "HOST:PORT", "TALLY_COORDINATOR", "127.0.0.1:7070", "the coordinator's address", &(var)}
#define CLI_OPT_TOKEN_FILE(var)                                                                            \
    {"token-file", 0, "FILE", "TALLY_TOKEN_FILE", NULL, "file holding the cluster's token (required)", &(var)}

/* Applies defaults, then the environment, then argv[1..] (flags may appear anywhere; "--"
 * ends them). Positional arguments are collected into pos (caller frees the array; it is
 * allocated whatever the result). Returns 0, 1 if --help or -h was asked for, or -EINVAL with
 * a message naming the option (unknown, missing or unwanted value). */
int cli_opts_parse(const cli_opt *opts, size_t n, int argc, char **argv, char ***pos, size_t *npos,
                   struct err *e);
/* For a command that hands the rest of its arguments to another parser (`submit` passes the
 * job's to tally run's): applies defaults and the environment, then takes the table's options
 * out of argv[1..] wherever they appear and leaves everything else, --help included, in order;
 * *argc becomes 1 + what is left, and argv[*argc] is NULL. Returns 0 or -EINVAL. */
int cli_opts_take(const cli_opt *opts, size_t n, int *argc, char **argv, struct err *e);
/* Prints `usage` (one or more lines), then the table as "options:" and a line for -h/--help.
 * `title` heads the list ("options" if NULL). */
void cli_opts_usage(FILE *out, const char *usage, const cli_opt *opts, size_t n);
void cli_opts_list(FILE *out, const char *title, const cli_opt *opts, size_t n);

#endif
