/* executor.c - `tally __executor LIVE_FILE LOG_LEVEL`: the hidden command a worker or `tally run`
 * starts once per slot (cluster/execpool.c). It checks its two arguments, then is the executor
 * of cluster/taskproc.h until the process that started it goes away. */
#include <stdio.h>

#include "cli/cli.h"
#include "cluster/taskproc.h"
#include "common/log.h"

int cli_executor(int argc, char **argv)
{
    log_level lvl = LOG_INFO;
    if (argc != 3 || log_parse_level(argv[2], &lvl) != 0) {
        fprintf(stderr, "usage: tally __executor LIVE_FILE LOG_LEVEL (internal: started by tally worker)\n");
        return EXITCODE_USAGE;
    }
    log_set_level(lvl);
    return taskproc_serve(argv[1]);
}
