/*
 * master.h - the master process: workers, signals, the status pipe
 *
 * The master binds nothing itself here (main() has bound the listeners);
 * it forks the workers, replaces any that die, keeps count of busy and
 * idle ones from their status records, and on SIGTERM or SIGINT stops:
 * workers finish what they are doing within the shutdown grace period,
 * then the master exits.  A second SIGTERM or SIGINT kills the workers.
 */
#ifndef AIOSMTPD_MASTER_H
#define AIOSMTPD_MASTER_H

#include <stddef.h>

#include "aiosmtpd/handler.h"
#include "listener.h"

struct master_opts {
	struct listener *listeners;
	size_t n_listeners;
	const struct aiosmtpd_handler *handler;
	void *handler_ctx;
	unsigned workers;	   /* how many to keep running */
	unsigned shutdown_timeout; /* seconds sessions get when stopping */
};

/* master_run - serve until stopped; returns the exit status */
int master_run(const struct master_opts *opts);

#endif
