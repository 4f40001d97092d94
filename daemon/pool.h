/*
 * pool.h - how many workers to fork: the one policy the master follows
 *
 * Kept apart from the master's process handling so that it is a plain
 * function of a few counts, and tested as one.
 */
#ifndef AIOSMTPD_POOL_H
#define AIOSMTPD_POOL_H

#include "conf.h"

/* At most this many forks per pass of the master's loop, so that a burst
 * of demand cannot stall the master for long. */
#define POOL_FORKS_PER_TICK 8

struct pool_counts {
	unsigned total; /* live workers, of any configuration */
	unsigned idle;	/* idle workers of the current configuration */
};

/*
 * pool_to_fork - workers to fork now
 *
 * Enough to have min workers, and spare idle ones while below max; never
 * more than max in all, nor more than POOL_FORKS_PER_TICK at once.
 */
unsigned pool_to_fork(const struct pool_conf *pc, struct pool_counts c);

#endif
