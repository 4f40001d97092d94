/*
 * memstream.h - a byte stream over memory, for driving the protocol
 * engine without a socket (unit tests and fuzz targets)
 *
 * Reads hand out the input at most chunk octets at a time, then end of
 * file (or fail_read_errno); everything written collects in out.  The
 * counters let a test see how the engine used the stream.
 */
#ifndef AIOSMTPD_TEST_MEMSTREAM_H
#define AIOSMTPD_TEST_MEMSTREAM_H

#include <stddef.h>

#include "sbuf.h"
#include "smtp_io.h"

struct memstream {
	const char *in;
	size_t in_len;
	size_t pos;
	size_t chunk; /* 0: everything at once */
	struct sbuf out;
	unsigned writes;
	unsigned reads;
	unsigned timer_restarts;
	int fail_read_errno; /* at end of input: 0 for EOF, else this errno */
};

extern const struct smtp_stream_ops memstream_ops;

/* memstream_init - a stream that reads in[0..len); in is not copied */
void memstream_init(struct memstream *ms, const char *in, size_t len,
		    size_t chunk);
void memstream_free(struct memstream *ms);

#endif
