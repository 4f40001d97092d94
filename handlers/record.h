/*
 * record.h - the Record handler's file format
 *
 * "-c Record DIR" keeps each message in the Maildir DIR as one file that
 * holds the envelope and the content exactly as received, for a test
 * harness in any language to read back (aiosmtpd has no such handler;
 * its Mailbox rewrites the message).  The format is documented in
 * aiosmtpd(8) under RECORD FORMAT:
 *
 *	aiosmtpd-record 1
 *	session 1BA992BD712B
 *	helo client.example
 *	peer_address 127.0.0.1
 *	peer_port 52718
 *	mail_from me@example.com
 *	mail_option SIZE=35
 *	rcpt_to you@example.com
 *	size 35
 *	(an empty line, then exactly size octets of content)
 *
 * Header lines end with LF; a value is the rest of the line after the
 * first space, with '%', control characters and DEL written as %XX.
 * File names sort in the order the messages arrived.
 */
#ifndef AIOSMTPD_RECORD_H
#define AIOSMTPD_RECORD_H

#include <stdint.h>
#include <time.h>

#include "aiosmtpd/handler.h"
#include "maildir.h"
#include "sbuf.h"

/* The first line of every file: the format's name and version. */
#define RECORD_MAGIC "aiosmtpd-record 1"

/*
 * record_header - the header of a message's file, up to and including
 * the empty line that ends it, appended to out
 */
void record_header(struct sbuf *out, const struct aiosmtpd_session *session,
		   const struct aiosmtpd_envelope *envelope);

/*
 * record_name - a file name that sorts after every name this process
 * made before, and by time against other processes' names
 *
 * Seconds and nanoseconds of when, zero-padded, then the process id and
 * a counter of this process, so that names made in the same nanosecond
 * still differ.
 */
void record_name(struct sbuf *out, const struct timespec *when);

/*
 * record_write - the whole file (header, then content) through out;
 * a maildir_writer_fn whose ctx is a struct record_message
 */
struct record_message {
	const struct aiosmtpd_session *session;
	const struct aiosmtpd_envelope *envelope;
};
int record_write(void *ctx, maildir_out_fn *out, void *out_ctx);

#endif
