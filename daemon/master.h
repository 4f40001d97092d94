/*
 * master.h - the master process: the worker pool, signals, reloads
 *
 * main() builds the first service (bound sockets, started handlers); the
 * master then forks workers as pool.h's policy says, replaces those that
 * leave, counts busy and idle ones from their status records, and:
 *
 *   SIGHUP   reads the configuration again; if it is valid, makes it live
 *            (unchanged listeners keep their sockets), retires the old
 *            workers once their sessions end, and forks new ones; if not,
 *            logs why and keeps running the old one;
 *   SIGTERM, SIGINT  stops: workers finish within the shutdown grace
 *            period, then the master exits 0; a second one kills them;
 *   SIGUSR1  logs a summary of the pool.
 *
 * Under systemd it reports READY, RELOADING, STOPPING and a STATUS line.
 */
#ifndef AIOSMTPD_MASTER_H
#define AIOSMTPD_MASTER_H

#include <stdbool.h>

#include "conf.h"
#include "service.h"

struct master_opts {
	struct service *service; /* the first service; the master owns it */
	bool keep_user;		 /* -n */
	/* Reads the configuration again, command line applied; 0, or -1
	 * with *error_r (allocated). */
	int (*load)(struct conf *cfg, char **error_r);
};

/* master_run - serve until stopped; returns the exit status */
int master_run(const struct master_opts *opts);

#endif
