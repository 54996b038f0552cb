/* coord.h - `tally coordinator`: queues jobs, assigns attempts to workers through the shared
 * scheduler, detects dead workers, commits job output; `tally submit|status|cancel` talk to it. */
#ifndef TALLY_COORD_H
#define TALLY_COORD_H

int coord_main(int argc, char **argv);
int coord_submit_main(int argc, char **argv);
int coord_status_main(int argc, char **argv);
int coord_cancel_main(int argc, char **argv);

#endif
