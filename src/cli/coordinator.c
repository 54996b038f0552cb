/* coordinator.c - `tally coordinator`: its settings table (flags, environment, defaults, --help)
 * into a coord_config, then the coordinator of cluster/coord.h. Bad settings are usage errors
 * (exit 2), found before anything starts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cluster/coord.h"
#include "cluster/wire.h"
#include "common/log.h"

static const char *coordinator_o_listen, *coordinator_o_token, *coordinator_o_hb, *coordinator_o_timeout,
    *coordinator_o_log, *coordinator_o_state, *coordinator_o_zk, *coordinator_o_adv, *coordinator_o_session,
    *coordinator_o_spec, *coordinator_o_spec_cap, *coordinator_o_spec_factor, *coordinator_o_spec_min,
    *coordinator_o_prob, *coordinator_o_slow_factor, *coordinator_o_slow_checks, *coordinator_o_slow_window,
    *coordinator_o_slow_check_ms, *coordinator_o_prob_ms, *coordinator_o_probe_ms, *coordinator_o_slow_floor,
    *coordinator_o_inline, *coordinator_o_fail_after;

static const cli_opt coordinator_opts[] = {
    {"listen", 0, "HOST:PORT", "TALLY_LISTEN", "127.0.0.1:7070", "address to serve the API on", &coordinator_o_listen},
    {"token-file", 0, "FILE", "TALLY_TOKEN_FILE", NULL, "file holding the shared secret (required)", &coordinator_o_token},
    {"heartbeat-ms", 0, "MS", "TALLY_HEARTBEAT_MS", "250", "worker heartbeat interval", &coordinator_o_hb},
    {"worker-timeout-ms", 0, "MS", "TALLY_WORKER_TIMEOUT_MS", "2000", "silence after which a worker is dead",
     &coordinator_o_timeout},
    {"state-dir", 0, "DIR", "TALLY_STATE_DIR", NULL,
     "keep a journal of the jobs in DIR: a coordinator restarted on DIR resumes them (default: none, jobs "
     "die with the coordinator)", &coordinator_o_state},
    {"zookeeper", 0, "HOST:PORT[,...][/CHROOT]", "TALLY_ZOOKEEPER", NULL,
     "elect the leader among several coordinators through ZooKeeper, and keep the jobs' state there",
     &coordinator_o_zk},
    {"advertise", 0, "HOST:PORT", "TALLY_ADVERTISE", NULL,
     "the address workers and clients reach this coordinator on (default: the --listen address)", &coordinator_o_adv},
    {"zk-session-ms", 0, "MS", "TALLY_ZK_SESSION_MS", "4000",
     "ZooKeeper session timeout: how soon a dead leader is replaced", &coordinator_o_session},
    {"speculation", 0, "on|off", "TALLY_SPECULATION", "on",
     "start a copy of an attempt whose estimated time left is well above a fresh run's (LATE); the first to "
     "finish commits", &coordinator_o_spec},
    {"speculation-cap", 0, "FRACTION", "TALLY_SPECULATION_CAP", "0.1",
     "share of the healthy slots speculative copies may hold at once (at least one copy)", &coordinator_o_spec_cap},
    {"speculation-factor", 0, "F", "TALLY_SPECULATION_FACTOR", "2",
     "copy when the time left exceeds F times a fresh run's estimate", &coordinator_o_spec_factor},
    {"speculation-min-ms", 0, "MS", "TALLY_SPECULATION_MIN_MS", "40",
     "never copy an attempt that has run less than this, nor one whose copy would save less than half of it",
     &coordinator_o_spec_min},
    {"probation", 0, "on|off", "TALLY_PROBATION", "on",
     "put slow workers on probation (no new attempts but probes; their running attempts migrate)", &coordinator_o_prob},
    {"slow-factor", 0, "F", "TALLY_SLOW_FACTOR", "2",
     "slow rule: a worker's p90 attempt cost above F times the other workers' p90...", &coordinator_o_slow_factor},
    {"slow-checks", 0, "K", "TALLY_SLOW_CHECKS", "3", "...for K checks in a row...", &coordinator_o_slow_checks},
    {"slow-window", 0, "N", "TALLY_SLOW_WINDOW", "20", "...over its last N attempts (of the last 10 minutes)",
     &coordinator_o_slow_window},
    {"slow-floor-ms", 0, "MS", "TALLY_SLOW_FLOOR_MS", "5",
     "...each attempt counted MS longer on both sides (a 5 ms attempt that took 10 is not slow)", &coordinator_o_slow_floor},
    {"slow-check-ms", 0, "MS", "TALLY_SLOW_CHECK_MS", "1000",
     "how often the slow rule runs while jobs run (and at every job end)", &coordinator_o_slow_check_ms},
    {"probation-ms", 0, "MS", "TALLY_PROBATION_MS", "2000",
     "shortest probation; it ends after 3 probes in a row that were not slow", &coordinator_o_prob_ms},
    {"probe-every-ms", 0, "MS", "TALLY_PROBE_EVERY_MS", "500", "a worker on probation gets one probe attempt this often",
     &coordinator_o_probe_ms},
    {"inline-map-output", 0, "SIZE", "TALLY_INLINE_MAP_OUTPUT", "64K",
     "a map output of at most SIZE comes with the map's report and goes to the reducers in their "
     "assignments, not through the shuffle (0: off; at most 1M)", &coordinator_o_inline},
    {"fail-after-tasks", 0, "N", "TALLY_FAIL_AFTER_TASKS", NULL,
     "failure injection: die (as if SIGKILLed) once N tasks have succeeded under this process",
     &coordinator_o_fail_after},
    {"log-level", 0, "LEVEL", "TALLY_LOG_LEVEL", "info", "debug, info, warn, error", &coordinator_o_log},
};

#define COORDINATOR_NOPTS (sizeof coordinator_opts / sizeof coordinator_opts[0])

/* The tail-latency settings into cfg (speculation, the slow rule), and --fail-after-tasks; 0 or
 * -EINVAL naming the flag. */
static int coordinator_parse_tail(coord_config *cfg, struct err *e)
{
    uint64_t checks = 0, window = 0;
    if (util_parse_switch(coordinator_o_spec, &cfg->speculation))
        return err_set(e, -EINVAL, "--speculation: expected on or off");
    if (util_parse_switch(coordinator_o_prob, &cfg->probation))
        return err_set(e, -EINVAL, "--probation: expected on or off");
    if (util_parse_double(coordinator_o_spec_cap, 0, 1, &cfg->speculation_cap))
        return err_set(e, -EINVAL, "--speculation-cap: expected a fraction from 0 to 1");
    if (util_parse_double(coordinator_o_spec_factor, 1, 1000, &cfg->speculation_factor))
        return err_set(e, -EINVAL, "--speculation-factor: expected a number from 1 to 1000");
    if (util_parse_u64(coordinator_o_spec_min, 0, 3600000, &cfg->speculation_min_ms))
        return err_set(e, -EINVAL, "--speculation-min-ms: expected milliseconds");
    if (util_parse_double(coordinator_o_slow_factor, 1.1, 1000, &cfg->slow_factor))
        return err_set(e, -EINVAL, "--slow-factor: expected a number from 1.1 to 1000");
    if (util_parse_double(coordinator_o_slow_floor, 0, 3600000, &cfg->slow_floor_ms))
        return err_set(e, -EINVAL, "--slow-floor-ms: expected milliseconds");
    if (util_parse_u64(coordinator_o_slow_checks, 1, 1000, &checks))
        return err_set(e, -EINVAL, "--slow-checks: expected 1 to 1000");
    if (util_parse_u64(coordinator_o_slow_window, 3, 10000, &window))
        return err_set(e, -EINVAL, "--slow-window: expected 3 to 10000");
    if (util_parse_u64(coordinator_o_slow_check_ms, 10, 3600000, &cfg->slow_check_ms))
        return err_set(e, -EINVAL, "--slow-check-ms: expected milliseconds (at least 10)");
    if (util_parse_u64(coordinator_o_prob_ms, 0, 86400000, &cfg->probation_ms))
        return err_set(e, -EINVAL, "--probation-ms: expected milliseconds");
    if (util_parse_u64(coordinator_o_probe_ms, 10, 3600000, &cfg->probe_every_ms))
        return err_set(e, -EINVAL, "--probe-every-ms: expected milliseconds (at least 10)");
    if (coordinator_o_fail_after && util_parse_u64(coordinator_o_fail_after, 1, UINT32_MAX, &cfg->fail_after_tasks))
        return err_set(e, -EINVAL, "--fail-after-tasks: expected a number of tasks, at least 1");
    cfg->slow_checks = (uint32_t)checks;
    cfg->slow_window = (uint32_t)window;
    return 0;
}

int cli_coordinator(int argc, char **argv)
{
    char **pos = NULL;
    size_t npos = 0;
    struct err e = {0};
    coord_config cfg = {0};
    int rc = cli_opts_parse(coordinator_opts, COORDINATOR_NOPTS, argc, argv, &pos, &npos, &e);
    if (rc == 1) {
        cli_opts_usage(stdout, "usage: tally coordinator --listen HOST:PORT --token-file FILE [options]", coordinator_opts,
                       COORDINATOR_NOPTS);
        free(pos);
        return EXITCODE_OK;
    }
    log_level lvl;
    uint64_t port = 0;
    const char *colon = coordinator_o_listen ? strrchr(coordinator_o_listen, ':') : NULL;
    if (rc == 0 && npos) rc = err_set(&e, -EINVAL, "unexpected argument '%s'", pos[0]);
    if (rc == 0 && log_parse_level(coordinator_o_log, &lvl)) rc = err_set(&e, -EINVAL, "--log-level: bad level");
    if (rc == 0 && !coordinator_o_token)
        rc = err_set(&e, -EINVAL, "--token-file is required (every request is authenticated)");
    if (rc == 0 && (util_parse_u64(coordinator_o_hb, 10, 60000, &cfg.heartbeat_ms) ||
                    util_parse_u64(coordinator_o_timeout, 50, 3600000, &cfg.worker_timeout_ms)))
        rc = err_set(&e, -EINVAL, "--heartbeat-ms and --worker-timeout-ms take milliseconds");
    if (rc == 0 && (!colon || (size_t)(colon - coordinator_o_listen) >= sizeof cfg.host ||
                    util_parse_u64(colon + 1, 0, 65535, &port)))
        rc = err_set(&e, -EINVAL, "--listen: expected HOST:PORT");
    if (rc == 0 &&
        (util_parse_size(coordinator_o_inline, &cfg.inline_map_output) || cfg.inline_map_output > WIRE_INLINE_MAX))
        rc = err_set(&e, -EINVAL, "--inline-map-output: expected a size from 0 to 1M, got '%s'", coordinator_o_inline);
    if (rc == 0) rc = coordinator_parse_tail(&cfg, &e);
    free(pos);
    if (rc) {
        fprintf(stderr, "tally coordinator: %s\n", e.msg);
        return EXITCODE_USAGE;
    }
    log_set_level(lvl);
    snprintf(cfg.host, sizeof cfg.host, "%.*s", (int)(colon - coordinator_o_listen), coordinator_o_listen);
    cfg.port = (uint16_t)port;
    cfg.token_file = coordinator_o_token;
    cfg.log_level = coordinator_o_log;
    cfg.state_dir = coordinator_o_state;
    cfg.zookeeper = coordinator_o_zk;
    cfg.advertise = coordinator_o_adv;
    /* Checked by coord_run() and only with --zookeeper, as it always was: 0 is out of range. */
    if (util_parse_u64(coordinator_o_session, 0, UINT64_MAX, &cfg.zk_session_ms) != 0) cfg.zk_session_ms = 0;
    return coord_run(&cfg);
}
