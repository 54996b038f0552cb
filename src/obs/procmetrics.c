/* procmetrics.c - the standard Prometheus process metrics, read from /proc (procmetrics.h). */
#include "obs/procmetrics.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Fields of /proc/PID/stat counted from 1 (proc(5)); the ones after the command name are
 * found at index field - 3 once the text is cut after the name's last ')'. */
#define PROCMETRICS_STARTTIME 22
#define PROCMETRICS_VSIZE 23
#define PROCMETRICS_RSS 24

int procmetrics_parse_stat(const char *stat, uint64_t page_size, uint64_t ticks, uint64_t btime_s, procmetrics *out)
{
    const char *p = strrchr(stat, ')');
    if (!p || ticks == 0) return -EINVAL;
    p++;
    uint64_t starttime = 0, vsize = 0, rss = 0;
    for (int field = 3; field <= PROCMETRICS_RSS; field++) {
        while (*p == ' ') p++;
        if (!*p || *p == '\n') return -EINVAL;
        const char *end = p;
        while (*end && *end != ' ' && *end != '\n') end++;
        if (field == PROCMETRICS_STARTTIME || field == PROCMETRICS_VSIZE || field == PROCMETRICS_RSS) {
            char num[32];
            if ((size_t)(end - p) >= sizeof num) return -EINVAL;
            memcpy(num, p, (size_t)(end - p));
            num[end - p] = '\0';
            uint64_t v;
            if (util_parse_u64(num, 0, UINT64_MAX, &v) != 0) return -EINVAL;
            if (field == PROCMETRICS_STARTTIME) starttime = v;
            else if (field == PROCMETRICS_VSIZE) vsize = v;
            else rss = v;
        }
        p = end;
    }
    out->resident_bytes = rss * page_size;
    out->virtual_bytes = vsize;
    out->start_time_s = (double)btime_s + (double)starttime / (double)ticks;
    return 0;
}

/* Reads a small /proc file whole into buf (NUL-terminated); 0 or a negative errno. */
static int procmetrics_slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f) return -errno;
    size_t n = fread(buf, 1, cap - 1, f);
    int rc = ferror(f) ? -EIO : 0;
    fclose(f);
    buf[n] = '\0';
    return rc;
}

/* The boot time, from the "btime" line of /proc/stat. */
static int procmetrics_btime(uint64_t *out)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f) return -errno;
    char line[256];
    int rc = -ENOENT;
    while (rc != 0 && fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            line[strcspn(line, "\n")] = '\0';
            rc = util_parse_u64(line + 6, 0, UINT64_MAX, out) ? -EINVAL : 0;
        }
    fclose(f);
    return rc;
}

int procmetrics_read(procmetrics *out)
{
    memset(out, 0, sizeof *out);
    out->open_fds = -1;
    out->max_fds = -1;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int64_t n = 0;
        for (struct dirent *de; (de = readdir(d));)
            if (de->d_name[0] != '.') n++;
        closedir(d);
        out->open_fds = n - 1; /* not the descriptor the listing itself used */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) out->max_fds = (int64_t)rl.rlim_cur;
    /* The command name is at most 64 bytes; the whole line is well under 1 KiB. */
    char stat[2048];
    uint64_t btime = 0;
    long page = sysconf(_SC_PAGESIZE), ticks = sysconf(_SC_CLK_TCK);
    int rc = procmetrics_slurp("/proc/self/stat", stat, sizeof stat);
    if (rc == 0) rc = procmetrics_btime(&btime);
    if (rc == 0 && (page <= 0 || ticks <= 0)) rc = -EINVAL;
    if (rc == 0) rc = procmetrics_parse_stat(stat, (uint64_t)page, (uint64_t)ticks, btime, out);
    if (rc != 0) {
        out->resident_bytes = out->virtual_bytes = 0;
        out->start_time_s = 0;
    }
    return rc;
}

void procmetrics_write(struct buf *b)
{
    procmetrics m;
    if (procmetrics_read(&m) == 0)
        buf_appendf(b,
                    "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                    "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %" PRIu64 "\n"
                    "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                    "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %" PRIu64 "\n"
                    "# HELP process_start_time_seconds Start time of the process since the epoch in seconds.\n"
                    "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
                    m.resident_bytes, m.virtual_bytes, m.start_time_s);
    if (m.open_fds >= 0)
        buf_appendf(b, "# HELP process_open_fds Number of open file descriptors.\n"
                       "# TYPE process_open_fds gauge\nprocess_open_fds %" PRId64 "\n", m.open_fds);
    if (m.max_fds >= 0)
        buf_appendf(b, "# HELP process_max_fds Maximum number of open file descriptors.\n"
                       "# TYPE process_max_fds gauge\nprocess_max_fds %" PRId64 "\n", m.max_fds);
}
