/* claim.h - directories owned by one live process: a job's OUT/_temporary and its work dir.
 *
 * A claim is a directory holding an owner file, `_owner`, on which the owning process holds an
 * exclusive flock() for as long as it owns the directory. The kernel drops the lock when the
 * owner exits however it exits (SIGKILL included), so a claim can always be told apart:
 *
 *   absent   no such directory: claim_acquire() creates it, atomically (a staging directory
 *            with the locked owner file is renamed into place, so nobody ever sees a claim
 *            without its owner, and of two processes racing for one path exactly one wins)
 *   live     the owner file is locked: another process owns it (claim_acquire() says who)
 *   stale    the owner file exists but nobody holds its lock: the owner died. claim_acquire()
 *            takes it over by taking the lock, so of two processes finding it stale one wins
 *   foreign  the directory exists without an owner file: not made by a claim (left by an
 *            older tally, or by hand); never taken over silently
 *
 * Staging directories are named CLAIM_STAGING_PREFIX... beside the claimed path; code that
 * lists a directory containing claims skips those names.
 */
#ifndef TALLY_CLAIM_H
#define TALLY_CLAIM_H

#include <stddef.h>

#include "common/util.h"

#define CLAIM_OWNER_FILE "_owner"
#define CLAIM_STAGING_PREFIX ".tally-claim-"

typedef struct claim {
    char *path;    /* the claimed directory */
    int fd;        /* the locked owner file, while path is set */
    int took_over; /* it existed, stale: what the dead owner left is still inside */
    char previous[256]; /* when took_over: the dead owner's text (its last claim_set_owner) */
} claim;

/* Claims `path` for this process with `owner` (one line saying who: pid, host, job) as its
 * owner text. Returns 0 with *c filled; -EBUSY if a live process owns it (e->msg names the
 * holder); -EEXIST if it exists but is not a claim (foreign); another negative code with a
 * message on an I/O error. */
int claim_acquire(claim *c, const char *path, const char *owner, struct err *e);
/* Claims a new directory "<parent>/<prefix>XXXXXXXX" (a fresh random name; parent is created if
 * need be), as mkdtemp() would but owned: claim_reap_stale(parent, prefix) can tell whether
 * its process still lives. */
int claim_fresh(claim *c, const char *parent, const char *prefix, const char *owner, struct err *e);
/* Rewrites the owner text of a held claim (a took-over claim gets its new owner's). */
int claim_set_owner(claim *c, const char *owner);
/* Removes the claimed directory with everything in it, then drops the lock; c may be a
 * zeroed claim that was never acquired (a claim without a path holds nothing). */
void claim_release(claim *c);
/* Drops the lock without removing anything (the directory is someone else's to remove). */
void claim_drop(claim *c);

/* Reads the owner text of the claim at `path` into buf (empty if there is none). Returns 1 if
 * a live process holds it, 0 if it is stale or absent, -EEXIST if it is foreign. */
int claim_probe(const char *path, char *buf, size_t cap);

/* Removes every stale claim in `dir` whose name starts with `prefix` (work directories of
 * processes that were killed). Returns how many were removed. */
int claim_reap_stale(const char *dir, const char *prefix);

/* The owner text this process uses: "pid=N host=H" plus `what` (e.g. "job=wordcount"). */
char *claim_owner_text(const char *what);

#endif
