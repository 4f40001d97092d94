/*
 * smtp_data.h - the DATA reader: end of data, dot removal and limits
 *
 * An incremental, I/O-free parser for the text between "354" and the final
 * dot.  It follows aiosmtpd's rules after its smuggling fix:
 *
 *   - a line ends only at CRLF; a bare CR or LF is content, so "<LF>.<CR><LF>"
 *     never ends the data;
 *   - the data ends at a line that is exactly ".<CR><LF>";
 *   - a leading dot is removed from every other line that has one;
 *   - a line of more than 1001 octets with its CRLF (stuffed dot
 *     included) makes the message TOO_LONG; more than the size limit in
 *     total (counting every line but the final one, CRLF and stuffed dots
 *     included) makes it TOO_MUCH; whichever happens first wins (for a
 *     line of 1000 or 1001 octets before its CRLF, the size is counted
 *     first, as aiosmtpd counts it), and the content after it is dropped
 *     while the input is still read to the final dot.
 *
 * Content is handed to a sink in as few calls as the input allows: runs of
 * bytes are passed straight from the input buffer, never per line.
 */
#ifndef AIOSMTPD_SMTP_DATA_H
#define AIOSMTPD_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* aiosmtpd's line_length_limit: 998 octets + CRLF + a stuffed dot
 * (RFC 5321 4.5.3.1.6), the CRLF included. */
#define SMTP_DATA_LINE_LIMIT 1001

enum smtp_data_status {
	SMTP_DATA_NOMINAL,
	SMTP_DATA_TOO_LONG, /* "500 Line too long (see RFC5321 4.5.3.1.6)" */
	SMTP_DATA_TOO_MUCH, /* "552 Error: Too much mail data" */
};

typedef void smtp_data_sink_fn(void *ctx, const char *data, size_t len);

struct smtp_data_reader {
	/* read-only for callers */
	enum smtp_data_status status;
	uint64_t counted; /* octets counted against the size limit */
	uint64_t content; /* octets handed to the sink */
	/* private */
	uint64_t limit;
	size_t line_len; /* octets of the current line, CR of CRLF excluded */
	int state;
	smtp_data_sink_fn *sink;
	void *sink_ctx;
};

/* smtp_data_begin - start a message; limit 0 means no size limit. The sink
 * receives the content (it may be NULL to discard it). */
void smtp_data_begin(struct smtp_data_reader *rd, uint64_t limit,
		     smtp_data_sink_fn *sink, void *sink_ctx);

/*
 * smtp_data_feed - parse the next input bytes
 *
 * Returns the number of bytes consumed.  When the final ".<CR><LF>" has been
 * consumed, *done_r is set and the bytes after it are left unconsumed (they
 * are the next pipelined command).
 */
size_t smtp_data_feed(struct smtp_data_reader *rd, const char *buf,
		      size_t len, bool *done_r);

#endif
