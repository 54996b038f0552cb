/* coord.h - the coordinator: queues jobs, assigns attempts to workers through the shared
 * scheduler, detects dead workers, commits job output. `tally coordinator` (cli/coordinator.c)
 * turns its command line into a coord_config and calls coord_run(); `tally submit|status|cancel`
 * talk to it over HTTP (cluster/client.h). */
#ifndef TALLY_COORD_H
#define TALLY_COORD_H

#include <stdint.h>

/* What a coordinator runs with. The strings are the caller's and must outlive coord_run(). */
typedef struct coord_config {
    char host[128];               /* --listen: the address to serve the API on */
    uint16_t port;                /* 0: any free port */
    const char *token_file;       /* the file holding the shared secret */
    const char *log_level;        /* the level's name, for the executor that describes jobs */
    uint64_t heartbeat_ms;        /* what workers are told to keep to */
    uint64_t worker_timeout_ms;   /* silence after which a worker is dead */
    const char *state_dir;        /* the jobs' journal (cluster/state.h), or NULL */
    const char *zookeeper;        /* ZooKeeper's address for the election and the state, or NULL */
    const char *advertise;        /* HOST:PORT others reach us on; NULL: the listen address */
    uint64_t zk_session_ms;       /* with zookeeper: 1000 to 600000, else coord_run() fails */
    uint64_t inline_map_output;   /* map outputs up to this size come with reports; 0: off */
    uint64_t fail_after_tasks;    /* failure injection: SIGKILL itself once this many tasks succeeded; 0: off */
    /* Tail latency: speculative copies (sched_spec) and the slow rule (health_rule). */
    int speculation;              /* start copies of stragglers at all */
    double speculation_cap;       /* share of the healthy slots copies may hold */
    double speculation_factor;    /* copy when the time left exceeds this times a fresh run's */
    uint64_t speculation_min_ms;  /* never copy an attempt younger than this */
    int probation;                /* put slow workers on probation at all */
    double slow_factor;           /* the slow rule: p90 cost above this times the others'... */
    uint32_t slow_checks;         /* ...for this many checks in a row... */
    uint32_t slow_window;         /* ...over this many recent attempts... */
    double slow_floor_ms;         /* ...each counted this much longer on both sides */
    uint64_t slow_check_ms;       /* how often the rule runs while jobs run */
    uint64_t probation_ms;        /* shortest probation */
    uint64_t probe_every_ms;      /* one probe attempt this often to a worker on probation */
} coord_config;

/* Runs a coordinator until SIGINT or SIGTERM: serves the API on cfg's address, prints
 * "coordinator listening on HOST:PORT" on stdout once it does, and leads (alone, or once elected
 * through ZooKeeper). Returns the exit code: 0 after a signal, EXITCODE_FAILED if it cannot start
 * (the token file, its executor, the state, the address; the message on stderr) or cannot take
 * over from an earlier leader. The log level is the caller's to set. */
int coord_run(const coord_config *cfg);

#endif
