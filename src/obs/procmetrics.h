/* procmetrics.h - the standard Prometheus process metrics of this process (resident and virtual
 * memory, start time, file descriptors), read from /proc. CPU time and peak RSS come from
 * getrusage() in http_respond_metrics(); these complete the set Prometheus' client libraries
 * export, so that dashboards written for any process work on tally's too. */
#ifndef TALLY_PROCMETRICS_H
#define TALLY_PROCMETRICS_H

#include <stdint.h>

#include "common/util.h"

typedef struct procmetrics {
    uint64_t resident_bytes;  /* /proc/self/stat rss (pages) x page size */
    uint64_t virtual_bytes;   /* vsize */
    double start_time_s;      /* seconds since the epoch: boot time + starttime ticks / CLK_TCK */
    int64_t open_fds;         /* entries of /proc/self/fd; -1 if unreadable */
    int64_t max_fds;          /* RLIMIT_NOFILE's soft limit; -1 if unlimited or unknown */
} procmetrics;

/* Parses the text of /proc/PID/stat into out's memory and start time: the command name
 * (field 2) may hold spaces and parentheses, so fields are counted from its last ')'.
 * btime_s is the boot time (/proc/stat "btime"), ticks sysconf(_SC_CLK_TCK). Returns 0, or
 * -EINVAL if the text has too few fields or a field is not a number. */
int procmetrics_parse_stat(const char *stat, uint64_t page_size, uint64_t ticks, uint64_t btime_s, procmetrics *out);

/* Reads this process' figures. Returns 0, or a negative errno if /proc/self/stat or the boot
 * time cannot be read (out's memory and start time are then 0; the fd counts are still set). */
int procmetrics_read(procmetrics *out);

/* Appends the metrics (HELP, TYPE and a sample each, Prometheus text format) to b; a figure
 * that could not be read is left out rather than reported as 0. */
void procmetrics_write(struct buf *b);

#endif
