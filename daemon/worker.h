/*
 * worker.h - a worker process: accept a connection, run one session
 *
 * Every worker waits on all listening sockets at once; whichever worker
 * accepts a connection serves it to the end, one session at a time, with
 * the handler in its own process.  It tells the master when it becomes
 * busy and idle again, and leaves when the master asks it to (SIGTERM:
 * open sessions are given the shutdown grace period, a message being
 * received is finished) or when the master is gone.
 */
#ifndef AIOSMTPD_WORKER_H
#define AIOSMTPD_WORKER_H

#include <stddef.h>

#include "aiosmtpd/handler.h"
#include "listener.h"

struct worker_env {
	struct listener *listeners;
	size_t n_listeners;
	const struct aiosmtpd_handler *handler;
	void *handler_ctx;
	int status_fd;	   /* write end of the master's status pipe */
	int master_fd;	   /* read end of a pipe only the master writes to */
	int close_fds[2];  /* the master's ends, closed in the worker */
	unsigned generation;
	unsigned shutdown_timeout; /* seconds sessions get when stopping */
};

/* worker_main - run a worker in a freshly forked child; never returns */
void worker_main(const struct worker_env *env) __attribute__((noreturn));

#endif
