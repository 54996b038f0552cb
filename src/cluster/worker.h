/* worker.h - a worker: runs attempts for a coordinator and serves their map outputs. `tally
 * worker` (cli/worker.c) turns its command line into a worker_config and calls worker_run(). */
#ifndef TALLY_WORKER_H
#define TALLY_WORKER_H

#include <stdint.h>

/* The longest address a worker is reached on (HOST:PORT), its terminating NUL included. */
#define WORKER_ADDRESS_MAX 160

/* What a worker runs with. The strings are the caller's and must outlive the process (attempt
 * threads still finishing after worker_run() returns may read them). */
typedef struct worker_config {
    const char *coordinator;      /* the coordinators: HOST:PORT[,...] or zk://... (cluster/leader.h) */
    const char *listen;           /* HOST:PORT of the shuffle and metrics server (port 0: any free) */
    const char *advertise;        /* HOST:PORT others reach it on (shorter than WORKER_ADDRESS_MAX); NULL:
                                   * the listen address, with the host name for 0.0.0.0 */
    const char *token_file;       /* the file holding the shared secret */
    const char *name;             /* NULL: the host name and the pid */
    const char *work_dir;         /* where tally-worker-NAME goes; NULL: $TMPDIR or /tmp */
    const char *log_level;        /* the level's name, for the executors */
    const char *argv0;            /* the executors' binary if /proc/self/exe cannot be read */
    uint32_t slots;               /* attempts at once, one executor each */
    /* Failure injection. */
    int fail_after_set;           /* fail when task fail_after + 1 starts... */
    uint64_t fail_after;
    const char *fail_mode;        /* ...by "crash", "hang" or "exit" */
    double chaos_crash;           /* probability of dying at a task start */
    double chaos_delay;           /* probability of sleeping before a task... */
    uint64_t chaos_max_delay_ms;  /* ...for at most this long */
    int chaos_seeded;             /* the chaos choices follow chaos_seed, else a random seed */
    uint64_t chaos_seed;
    double chaos_slow;            /* every attempt takes this many times as long (1: off) */
} worker_config;

/* Runs a worker until SIGINT or SIGTERM, or until the coordinator refuses its token: claims its
 * work dir, starts one executor per slot and the shuffle server, prints "worker NAME listening
 * on ADDRESS" on stdout, then heartbeats. Returns the exit code: 0 after a signal,
 * EXITCODE_UNREACHABLE when the token was refused, EXITCODE_USAGE for a bad --listen or
 * --coordinator, TALLY_FAULT_DROP_ASSIGNMENTS or a work dir another worker holds,
 * EXITCODE_FAILED when it cannot start (the message on stderr). The log level is the caller's
 * to set. */
int worker_run(const worker_config *cfg);

#endif
