/*
 * worker.h - a worker process: accept a connection, run one session
 *
 * Every worker waits on all listening sockets at once; whichever worker
 * accepts a connection serves it to the end, one session at a time, with
 * the handler in its own process.  It keeps its state (starting, idle,
 * busy) and counts on its line of the shared worker table, and wakes the
 * master through the status pipe only when the pool runs short of idle
 * workers, so a busy pool costs the master no wake-up per session.  It
 * leaves, always between sessions: after max_use sessions, after max_idle
 * seconds without one, when the master retires it (SIGHUP, after a
 * reload), when the master is gone, or when it is told to stop (SIGTERM:
 * open sessions get the shutdown grace period, a message being received
 * is finished).  A connection past max_connections_per_client is told 421
 * before the greeting; under stress a session gets stress_timeout.
 */
#ifndef AIOSMTPD_WORKER_H
#define AIOSMTPD_WORKER_H

#include <stddef.h>

#include "service.h"
#include "shared.h"

struct worker_env {
	const struct service *service;
	struct shared *shared; /* the pool's shared region (shared.h) */
	int line;	       /* this worker's line in its worker table */
	unsigned epoch;	       /* the configuration it runs */
	int status_fd;	  /* write end of the master's status pipe */
	int master_fd;	  /* read end of a pipe only the master writes to */
	int close_fds[2]; /* the master's ends, closed in the worker */
	unsigned generation;
};

/* worker_main - run a worker in a freshly forked child; never returns.
 * It starts with every signal blocked and sets its own mask. */
void worker_main(const struct worker_env *env) __attribute__((noreturn));

#endif
