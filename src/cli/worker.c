/* worker.c - `tally worker`: its settings table (flags, environment, defaults, --help) into a
 * worker_config, then the worker of cluster/worker.h. Bad settings are usage errors (exit 2),
 * found before anything starts. Its statics are prefixed workercmd_, not to read as those of
 * cluster/worker.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cluster/worker.h"
#include "common/log.h"

static const char *workercmd_o_coord, *workercmd_o_listen, *workercmd_o_slots, *workercmd_o_workdir,
    *workercmd_o_name, *workercmd_o_token, *workercmd_o_fail_after, *workercmd_o_fail_mode, *workercmd_o_crash,
    *workercmd_o_delay, *workercmd_o_max_delay, *workercmd_o_seed, *workercmd_o_slow, *workercmd_o_log, *workercmd_o_adv;

static const cli_opt workercmd_opts[] = {
    {"coordinator", 0, "HOST:PORT", "TALLY_COORDINATOR", "127.0.0.1:7070", "coordinator address", &workercmd_o_coord},
    {"listen", 0, "HOST:PORT", "TALLY_LISTEN", "127.0.0.1:0", "shuffle/metrics address (port 0: any free)",
     &workercmd_o_listen},
    {"advertise", 0, "HOST:PORT", "TALLY_ADVERTISE", NULL,
     "the address the coordinator and reducers reach this worker on (default: the --listen address, "
     "with the host name for 0.0.0.0)", &workercmd_o_adv},
    {"slots", 0, "N", "TALLY_SLOTS", NULL, "parallel attempts (default: number of CPUs)", &workercmd_o_slots},
    {"work-dir", 0, "DIR", "TALLY_WORK_DIR", NULL,
     "the worker keeps its map outputs in DIR/tally-worker-NAME, removed at exit; DIR itself is never "
     "removed (default $TMPDIR or /tmp)", &workercmd_o_workdir},
    {"name", 0, "NAME", "TALLY_NAME", NULL, "worker name (default: host name and pid)", &workercmd_o_name},
    {"token-file", 0, "FILE", "TALLY_TOKEN_FILE", NULL, "file holding the shared secret (required)", &workercmd_o_token},
    {"fail-after-tasks", 0, "N", "TALLY_FAIL_AFTER_TASKS", NULL, "failure injection: fail when task N+1 starts",
     &workercmd_o_fail_after},
    {"fail-mode", 0, "MODE", "TALLY_FAIL_MODE", "crash", "crash, hang or exit", &workercmd_o_fail_mode},
    {"chaos-crash", 0, "P", "TALLY_CHAOS_CRASH", NULL, "die (as if SIGKILLed) at a task start with probability P",
     &workercmd_o_crash},
    {"chaos-delay", 0, "P", "TALLY_CHAOS_DELAY", NULL, "sleep before a task with probability P", &workercmd_o_delay},
    {"chaos-max-delay-ms", 0, "MS", "TALLY_CHAOS_MAX_DELAY_MS", "1000", "longest chaos sleep", &workercmd_o_max_delay},
    {"chaos-seed", 0, "S", "TALLY_CHAOS_SEED", NULL, "seed of the chaos choices (default: random)", &workercmd_o_seed},
    {"chaos-slow", 0, "FACTOR", "TALLY_CHAOS_SLOW", "1",
     "every attempt takes FACTOR (1..1000) times as long, its progress that much slower all along "
     "(1: off; POST /v1/chaos changes it)", &workercmd_o_slow},
    {"log-level", 0, "LEVEL", "TALLY_LOG_LEVEL", "info", "debug, info, warn, error", &workercmd_o_log},
};

#define WORKERCMD_NOPTS (sizeof workercmd_opts / sizeof workercmd_opts[0])

static int workercmd_factor(const char *s, double *out, struct err *e)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(isfinite(v) && v >= 1 && v <= 1000))
        return err_set(e, -EINVAL, "--chaos-slow: expected a factor from 1 to 1000 (1: off), got '%s'", s);
    *out = v;
    return 0;
}

static int workercmd_prob(const char *s, double *out, const char *what, struct err *e)
{
    if (!s) return 0;
    char *end;
    double v = strtod(s, &end);
    if (*end || v < 0 || v > 1) return err_set(e, -EINVAL, "--%s: expected a probability from 0 to 1, got '%s'", what, s);
    *out = v;
    return 0;
}

int cli_worker(int argc, char **argv)
{
    char **pos = NULL;
    size_t npos = 0;
    struct err e = {0};
    worker_config cfg = {0};
    int rc = cli_opts_parse(workercmd_opts, WORKERCMD_NOPTS, argc, argv, &pos, &npos, &e);
    if (rc == 1) {
        cli_opts_usage(stdout, "usage: tally worker --coordinator HOST:PORT --token-file FILE [options]", workercmd_opts,
                       WORKERCMD_NOPTS);
        free(pos);
        return EXITCODE_OK;
    }
    uint64_t v;
    log_level lvl;
    if (rc == 0 && npos) rc = err_set(&e, -EINVAL, "unexpected argument '%s'", pos[0]);
    if (rc == 0 && log_parse_level(workercmd_o_log, &lvl))
        rc = err_set(&e, -EINVAL, "--log-level: bad level '%s'", workercmd_o_log);
    if (rc == 0) log_set_level(lvl);
    if (rc == 0 && !workercmd_o_token)
        rc = err_set(&e, -EINVAL, "--token-file is required (every request is authenticated)");
    cfg.slots = (uint32_t)util_ncpus();
    if (rc == 0 && workercmd_o_slots) {
        if (util_parse_u64(workercmd_o_slots, 1, 256, &v)) rc = err_set(&e, -EINVAL, "--slots: expected 1..256");
        else cfg.slots = (uint32_t)v;
    }
    if (rc == 0 && workercmd_o_fail_after) {
        if (util_parse_u64(workercmd_o_fail_after, 0, UINT32_MAX, &cfg.fail_after))
            rc = err_set(&e, -EINVAL, "--fail-after-tasks: expected a number");
        cfg.fail_after_set = 1;
    }
    if (rc == 0 && strcmp(workercmd_o_fail_mode, "crash") && strcmp(workercmd_o_fail_mode, "hang") &&
        strcmp(workercmd_o_fail_mode, "exit"))
        rc = err_set(&e, -EINVAL, "--fail-mode: expected crash, hang or exit");
    if (rc == 0) rc = workercmd_prob(workercmd_o_crash, &cfg.chaos_crash, "chaos-crash", &e);
    if (rc == 0) rc = workercmd_prob(workercmd_o_delay, &cfg.chaos_delay, "chaos-delay", &e);
    if (rc == 0 && util_parse_u64(workercmd_o_max_delay, 0, 3600000, &cfg.chaos_max_delay_ms))
        rc = err_set(&e, -EINVAL, "--chaos-max-delay-ms: expected milliseconds");
    if (rc == 0) rc = workercmd_factor(workercmd_o_slow, &cfg.chaos_slow, &e);
    if (rc == 0 && workercmd_o_adv && (!strrchr(workercmd_o_adv, ':') || strlen(workercmd_o_adv) >= WORKER_ADDRESS_MAX))
        rc = err_set(&e, -EINVAL, "--advertise: expected HOST:PORT");
    free(pos);
    if (rc) {
        fprintf(stderr, "tally worker: %s\n", e.msg);
        return EXITCODE_USAGE;
    }
    cfg.coordinator = workercmd_o_coord;
    cfg.listen = workercmd_o_listen;
    cfg.advertise = workercmd_o_adv;
    cfg.token_file = workercmd_o_token;
    cfg.name = workercmd_o_name;
    cfg.work_dir = workercmd_o_workdir;
    cfg.log_level = workercmd_o_log;
    cfg.argv0 = argv[0];
    cfg.fail_mode = workercmd_o_fail_mode;
    cfg.chaos_seeded = workercmd_o_seed != NULL;
    cfg.chaos_seed = workercmd_o_seed ? strtoull(workercmd_o_seed, NULL, 10) : 0;
    return worker_run(&cfg);
}
