/*
 * sockstream.h - the protocol engine's byte stream over a socket
 *
 * Implements struct smtp_stream_ops on a non-blocking socket: reads wait in
 * ppoll() until the idle timer runs out (ETIMEDOUT), writes wait for room
 * under the same timeout.  While the daemon stops, reads between commands
 * also end at the stop deadline (ECANCELED), so a session is told 421 and
 * closed; reads inside a message are not cut short.
 *
 * Under stress (sockstream_stress()), a session that starts then gets the
 * shorter stress timeout throughout, and a session of any age waiting for
 * its next command is cut once it has been idle that long (ETIMEDOUT, with
 * stress_cut set), so slow and idle clients give their worker up first.
 */
#ifndef AIOSMTPD_SOCKSTREAM_H
#define AIOSMTPD_SOCKSTREAM_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "smtp_io.h"

struct sockstream {
	int fd;
	int64_t timeout_ms;
	int64_t deadline; /* monotonic ms when the idle timer runs out */
	/* The moment sessions must end, or -1 while the daemon runs. */
	int64_t (*stop_deadline)(void);
	const sigset_t *wait_mask; /* the signal mask inside ppoll() */
	/* Stress: NULL, or whether the pool is under stress now. */
	bool (*stressed)(void *ctx);
	void *stress_ctx;
	int64_t stress_ms;
	bool stress_short; /* set up under stress: timeout_ms is stress_ms */
	bool stress_cut;   /* the session timed out on a stress limit */
};

extern const struct smtp_stream_ops sockstream_ops;

void sockstream_init(struct sockstream *ss, int fd, unsigned timeout_sec,
		     int64_t (*stop_deadline)(void), const sigset_t *wait_mask);
/* sockstream_stress - apply stress_sec while stressed(ctx) is true; a
 * stream set up under stress gets it as its timeout from the start */
void sockstream_stress(struct sockstream *ss, bool (*stressed)(void *ctx),
		       void *ctx, unsigned stress_sec);
/* sockstream_now - monotonic milliseconds */
int64_t sockstream_now(void);
/*
 * sockstream_wait - wait until the socket is ready for events, at most
 * until deadline (monotonic ms) and, when interruptible, the stop
 * deadline.  Returns 0 when it is worth trying again (ready, or a signal
 * came), or -1 with errno ETIMEDOUT, ECANCELED or ppoll()'s.  The TLS
 * stream waits through it too.
 */
int sockstream_wait(struct sockstream *ss, short events, int64_t deadline,
		    bool interruptible);

#endif
