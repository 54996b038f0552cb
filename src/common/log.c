/* log.c - writes timestamped log lines to stderr, one write() per line so threads never mix. */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int log_min_level = LOG_WARN;
static char log_process[64] = "tally";
static _Thread_local char log_context[160];

void log_set_level(log_level level) { log_min_level = (int)level; }

static const char *const log_names[] = {"debug", "info", "warn", "error", "off"};

const char *log_level_name(void)
{
    return log_names[log_min_level < 0 ? 0 : log_min_level > LOG_OFF ? LOG_OFF : log_min_level];
}

int log_parse_level(const char *s, log_level *out)
{
    const char *const *names = log_names;
    for (int i = 0; i < 5; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void log_set_process(const char *name) { snprintf(log_process, sizeof log_process, "%s", name); }

void log_set_context(const char *ctx)
{
    snprintf(log_context, sizeof log_context, "%s", ctx ? ctx : "");
}

void log_write(log_level level, const char *fmt, ...)
{
    static const char *tags[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), log_process, tags[level]);
    if (log_context[0] && n < (int)sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s ", log_context);
    if (n < (int)sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    if (n >= (int)sizeof line - 1) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
