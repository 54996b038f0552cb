/* log.h - the one logging facility: levels checked before formatting, ids carried per thread. */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 } log_level;

extern int log_min_level;

/* Sets the threshold; lines below it cost one comparison. */
void log_set_level(log_level level);
/* The name of the current threshold ("warn"), as log_parse_level() reads it. */
const char *log_level_name(void);
/* Parses "debug|info|warn|error|off"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, log_level *out);
/* Sets the name printed at the start of every line ("tally", "worker w1", ...). */
void log_set_process(const char *name);
/* Sets this thread's context, e.g. "job=j3 task=m0004 attempt=a17"; NULL clears it.
 * The string is copied. */
void log_set_context(const char *ctx);

void log_write(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG(level, ...)                                                                      \
    do {                                                                                     \
        if ((int)(level) >= log_min_level) log_write((level), __VA_ARGS__);                  \
    } while (0)
#define log_debug(...) LOG(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) LOG(LOG_INFO, __VA_ARGS__)
#define log_warn(...) LOG(LOG_WARN, __VA_ARGS__)
#define log_error(...) LOG(LOG_ERROR, __VA_ARGS__)

#endif
