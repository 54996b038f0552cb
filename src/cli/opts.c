/* opts.c - parsing of the settings tables of the cluster commands and of the small ones. */
#include "cli/opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void cli_opts_defaults(const cli_opt *opts, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        *opts[k].value = opts[k].def;
        const char *v = opts[k].env ? getenv(opts[k].env) : NULL;
        if (v && *v) *opts[k].value = v;
    }
}

/* Matches argv[*i] (an argument starting with '-') against the table and stores its value.
 * Returns 1 if it was one of the table's options (*i moved past its value), 0 if not, or
 * -EINVAL with a message. */
static int cli_opts_match(const cli_opt *opts, size_t n, int argc, char **argv, int *i, struct err *e)
{
    const char *a = argv[*i];
    const char *name = a[1] == '-' ? a + 2 : NULL;
    const char *eq = name ? strchr(name, '=') : NULL;
    size_t nlen = name ? (eq ? (size_t)(eq - name) : strlen(name)) : 0;
    const cli_opt *o = NULL;
    for (size_t k = 0; k < n && !o; k++) {
        if (name ? (strlen(opts[k].name) == nlen && strncmp(opts[k].name, name, nlen) == 0)
                 : (opts[k].short_name && a[1] == opts[k].short_name && a[2] == 0))
            o = &opts[k];
    }
    if (!o) return 0;
    if (!o->metavar) {
        if (eq) return err_set(e, -EINVAL, "option --%s takes no value", o->name);
        *o->value = "1";
    } else if (eq) {
        *o->value = eq + 1;
    } else {
        if (*i + 1 >= argc) return err_set(e, -EINVAL, "option %s needs a value (%s)", a, o->metavar);
        *o->value = argv[++*i];
    }
    return 1;
}

int cli_opts_parse(const cli_opt *opts, size_t n, int argc, char **argv, char ***pos, size_t *npos,
                   struct err *e)
{
    *pos = xcalloc((size_t)argc + 1, sizeof **pos);
    *npos = 0;
    cli_opts_defaults(opts, n);
    int flags_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (flags_done || a[0] != '-' || a[1] == 0) {
            (*pos)[(*npos)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            flags_done = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
        int k = cli_opts_match(opts, n, argc, argv, &i, e);
        if (k < 0) return k;
        if (k == 0) return err_set(e, -EINVAL, "unknown option '%s' (see --help)", a);
    }
    return 0;
}

int cli_opts_take(const cli_opt *opts, size_t n, int *argc, char **argv, struct err *e)
{
    cli_opts_defaults(opts, n);
    int kept = 1;
    for (int i = 1; i < *argc; i++) {
        int k = argv[i][0] == '-' && argv[i][1] ? cli_opts_match(opts, n, *argc, argv, &i, e) : 0;
        if (k < 0) return k;
        if (k == 0) argv[kept++] = argv[i];
    }
    *argc = kept;
    argv[kept] = NULL;
    return 0;
}

void cli_opts_list(FILE *out, const char *title, const cli_opt *opts, size_t n)
{
    fprintf(out, "%s:\n", title ? title : "options");
    for (size_t k = 0; k < n; k++) {
        char flag[80];
        char shortf[8] = "    ";
        if (opts[k].short_name) snprintf(shortf, sizeof shortf, "-%c, ", opts[k].short_name);
        snprintf(flag, sizeof flag, "%s--%s%s%s", shortf, opts[k].name, opts[k].metavar ? " " : "",
                 opts[k].metavar ? opts[k].metavar : "");
        fprintf(out, "  %-34s %s", flag, opts[k].help);
        if (opts[k].def) fprintf(out, " (default %s)", opts[k].def);
        if (opts[k].env) fprintf(out, " [env %s]", opts[k].env);
        fputc('\n', out);
    }
    fprintf(out, "  %-34s %s\n", "-h, --help", "show this help");
}

void cli_opts_usage(FILE *out, const char *usage, const cli_opt *opts, size_t n)
{
    fprintf(out, "%s\n\n", usage);
    cli_opts_list(out, NULL, opts, n);
}
