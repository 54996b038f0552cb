/* jobspec.c - construction and argument lookup of job specifications. */
#include "exec/jobspec.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void jobspec_init(jobspec *s)
{
    memset(s, 0, sizeof *s);
    s->reduces = 1;
    s->workers = (uint32_t)util_ncpus();
    s->sort_buffer = JOBSPEC_DEFAULT_SORT_BUFFER;
    s->max_record = JOBSPEC_DEFAULT_MAX_RECORD;
    s->split_size = JOBSPEC_DEFAULT_SPLIT_SIZE;
    s->max_attempts = JOBSPEC_DEFAULT_MAX_ATTEMPTS;
    s->max_skipped_ratio = JOBSPEC_DEFAULT_MAX_SKIPPED_RATIO;
}

void jobspec_free(jobspec *s)
{
    free(s->job);
    for (size_t i = 0; i < s->nargs; i++) {
        free(s->arg_names[i]);
        free(s->arg_values[i]);
    }
    free(s->arg_names);
    free(s->arg_values);
    for (size_t i = 0; i < s->ninputs; i++) free(s->inputs[i]);
    free(s->inputs);
    free(s->cwd);
    free(s->out);
    free(s->work_dir);
    memset(s, 0, sizeof *s);
}

void jobspec_set_arg(jobspec *s, const char *name, const char *value)
{
    for (size_t i = 0; i < s->nargs; i++) {
        if (strcmp(s->arg_names[i], name) == 0) {
            free(s->arg_values[i]);
            s->arg_values[i] = xstrdup(value);
            return;
        }
    }
    s->arg_names = xrealloc(s->arg_names, (s->nargs + 1) * sizeof *s->arg_names);
    s->arg_values = xrealloc(s->arg_values, (s->nargs + 1) * sizeof *s->arg_values);
    s->arg_names[s->nargs] = xstrdup(name);
    s->arg_values[s->nargs] = xstrdup(value);
    s->nargs++;
}

const char *jobspec_arg(const jobspec *s, const char *name)
{
    for (size_t i = 0; i < s->nargs; i++)
        if (strcmp(s->arg_names[i], name) == 0) return s->arg_values[i];
    return NULL;
}

void jobspec_add_input(jobspec *s, const char *path)
{
    s->inputs = xrealloc(s->inputs, (s->ninputs + 1) * sizeof *s->inputs);
    s->inputs[s->ninputs++] = xstrdup(path);
}
