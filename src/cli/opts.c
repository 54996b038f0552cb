/* opts.c - parsing of the settings tables of the cluster commands. */
#include "cli/opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_opts_parse(const cli_opt *opts, size_t n, int argc, char **argv, char ***pos, size_t *npos,
                   struct err *e)
{
    *pos = xcalloc((size_t)argc + 1, sizeof **pos);
    *npos = 0;
    for (size_t k = 0; k < n; k++) {
        *opts[k].value = opts[k].def;
        const char *v = opts[k].env ? getenv(opts[k].env) : NULL;
        if (v && *v) *opts[k].value = v;
    }
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
        const char *name = a[1] == '-' ? a + 2 : NULL;
        const char *eq = name ? strchr(name, '=') : NULL;
        size_t nlen = name ? (eq ? (size_t)(eq - name) : strlen(name)) : 0;
        const cli_opt *o = NULL;
        for (size_t k = 0; k < n && !o; k++) {
            if (name ? (strlen(opts[k].name) == nlen && strncmp(opts[k].name, name, nlen) == 0)
                     : (opts[k].short_name && a[1] == opts[k].short_name && a[2] == 0))
                o = &opts[k];
        }
        if (!o) return err_set(e, -EINVAL, "unknown option '%s' (see --help)", a);
        if (!o->metavar) {
            if (eq) return err_set(e, -EINVAL, "option --%s takes no value", o->name);
            *o->value = "1";
        } else if (eq) {
            *o->value = eq + 1;
        } else {
            if (i + 1 >= argc) return err_set(e, -EINVAL, "option %s needs a value (%s)", a, o->metavar);
            *o->value = argv[++i];
        }
    }
    return 0;
}

void cli_opts_usage(FILE *out, const char *usage, const cli_opt *opts, size_t n)
{
    fprintf(out, "%s\n\noptions:\n", usage);
    for (size_t k = 0; k < n; k++) {
        char flag[80];
        snprintf(flag, sizeof flag, "%s%c%s--%s%s%s", opts[k].short_name ? "-" : "  ",
                 opts[k].short_name ? opts[k].short_name : ' ', opts[k].short_name ? ", " : "  ",
                 opts[k].name, opts[k].metavar ? " " : "", opts[k].metavar ? opts[k].metavar : "");
        fprintf(out, "  %-34s %s", flag, opts[k].help);
        if (opts[k].def) fprintf(out, " (default %s)", opts[k].def);
        if (opts[k].env) fprintf(out, " [env %s]", opts[k].env);
        fputc('\n', out);
    }
}
