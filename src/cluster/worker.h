/* worker.h - `tally worker`: runs attempts for a coordinator and serves their map outputs. */
#ifndef TALLY_WORKER_H
#define TALLY_WORKER_H

int worker_main(int argc, char **argv);

#endif
