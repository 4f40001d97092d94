/*
 * status.h - the record a worker writes to the master's status pipe
 *
 * One fixed-size record, written with a single write(2): far below
 * PIPE_BUF, so records from different workers never interleave.  The
 * worker's state and counts live in the shared worker table (shared.h);
 * a record only wakes the master when a worker took a connection and saw
 * fewer ready workers than workers.spare.  The generation tells a reused
 * pid from the worker the master forked.
 */
#ifndef AIOSMTPD_STATUS_H
#define AIOSMTPD_STATUS_H

#include <sys/types.h>

struct worker_status {
	pid_t pid;
	unsigned generation; /* the master's fork counter for this worker */
	int state;	     /* enum worker_state (shared.h) */
	unsigned ready;	     /* workers ready for a connection, as it saw */
};

#endif
