/*
 * pool.c - how many workers to fork
 */
#include "config.h"

#include "pool.h"

unsigned pool_to_fork(const struct pool_conf *pc, struct pool_counts c)
{
	unsigned need = 0;

	if (c.total >= pc->max)
		return 0;
	if (c.total < pc->min)
		need = pc->min - c.total;
	/* Workers forked now start idle. */
	if (c.idle + need < pc->spare)
		need = pc->spare - c.idle;
	if (need > pc->max - c.total)
		need = pc->max - c.total;
	if (need > POOL_FORKS_PER_TICK)
		need = POOL_FORKS_PER_TICK;
	return need;
}
