/*
 * status.h - the record a worker writes to the master's status pipe
 *
 * One fixed-size record per event, written with a single write(2): far
 * below PIPE_BUF, so records from different workers never interleave.  The
 * master trusts them for counting only; the generation tells a reused pid
 * from the worker the master forked.
 */
#ifndef AIOSMTPD_STATUS_H
#define AIOSMTPD_STATUS_H

#include <sys/types.h>

enum worker_state {
	WORKER_IDLE,	/* waiting for a connection */
	WORKER_BUSY,	/* serving a session */
	WORKER_EXITING, /* leaving after the current state */
};

struct worker_status {
	pid_t pid;
	unsigned generation; /* the master's fork counter for this worker */
	int state;	     /* enum worker_state */
	unsigned sessions;   /* sessions served so far */
	unsigned messages;   /* messages accepted so far */
};

#endif
