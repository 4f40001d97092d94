/*
 * smtp_io.h - buffered line input and reply output over a byte stream
 *
 * The protocol engine never calls read(2) or write(2): it talks to a
 * struct smtp_stream_ops, which the daemon implements over a socket (later
 * over TLS) and the unit tests implement over memory.  This module adds the
 * buffering that makes a blocking server cheap and correct:
 *
 *   - input is read in large blocks; lines are handed out as pointers into
 *     the buffer, so a command costs no allocation and no extra copy;
 *   - replies are queued and written only when the engine must wait for
 *     input (RFC 2920: "send all pending responses whenever the input
 *     buffer empties"), so a pipelined group of commands costs one write;
 *   - an over-long command line is read to its end and dropped, never held.
 */
#ifndef AIOSMTPD_SMTP_IO_H
#define AIOSMTPD_SMTP_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct smtp_stream_ops {
	/*
	 * Reads at most len bytes into buf, waiting for at least one.
	 * Returns the count, 0 at end of stream, or -1 with errno set:
	 * ETIMEDOUT when the idle timer ran out, ECANCELED when the daemon
	 * is stopping and interruptible is true (the engine is between
	 * commands, not inside a message).
	 */
	ssize_t (*read)(void *ctx, void *buf, size_t len, bool interruptible);
	/* Writes all len bytes; 0, or -1 with errno set. */
	int (*write)(void *ctx, const void *buf, size_t len);
	/* Restarts the idle timer: a command was recognised, a data line or
	 * an AUTH answer arrived. */
	void (*restart_timer)(void *ctx);
};

enum smtp_io_status {
	SMTP_IO_OK,
	SMTP_IO_TOO_LONG, /* a line was longer than the limit; dropped */
	SMTP_IO_EOF,	  /* the peer closed (a partial line is dropped) */
	SMTP_IO_ERROR,	  /* read or write failed: see smtp_io_errno() */
};

/* Input buffer size; a command line limit must stay below it. */
#define SMTP_IO_INPUT_SIZE (64 * 1024)

struct smtp_io;

struct smtp_io *smtp_io_new(const struct smtp_stream_ops *ops, void *ctx);
void smtp_io_free(struct smtp_io **io);
/* smtp_io_set_stream - switch the stream under the buffers (STARTTLS) */
void smtp_io_set_stream(struct smtp_io *io, const struct smtp_stream_ops *ops,
			void *ctx);
/* smtp_io_discard_input - drop every buffered input byte: after STARTTLS
 * nothing sent in plaintext may be read as a command (RFC 3207 sec. 5) */
void smtp_io_discard_input(struct smtp_io *io);
/* smtp_io_buffered - input bytes received but not yet consumed */
size_t smtp_io_buffered(const struct smtp_io *io);

/*
 * smtp_io_read_line - read one line that ends in LF
 *
 * As asyncio's readuntil() in aiosmtpd: the LF must come within max + 1
 * octets, otherwise the line is read to its LF, dropped, and
 * SMTP_IO_TOO_LONG is returned.  On SMTP_IO_OK *line_r and *len_r hold the
 * line without its LF (a CR is left for the caller); the pointer is valid
 * until the next call on io.  Pending replies are flushed before blocking.
 */
enum smtp_io_status smtp_io_read_line(struct smtp_io *io, size_t max,
				      const char **line_r, size_t *len_r);

/*
 * smtp_io_peek - raw buffered input for the DATA reader
 *
 * Returns the buffered bytes, reading more first (and flushing replies)
 * when none are buffered.  Consume what was used with smtp_io_consume().
 */
enum smtp_io_status smtp_io_peek(struct smtp_io *io, const char **data_r,
				 size_t *len_r);
void smtp_io_consume(struct smtp_io *io, size_t n);
/* smtp_io_restart_timer - pass "activity seen" on to the stream */
void smtp_io_restart_timer(struct smtp_io *io);

/* smtp_io_reply - queue text (one or more lines without the final CRLF)
 * and a CRLF; nothing is written until a flush */
void smtp_io_reply(struct smtp_io *io, const char *text, size_t len);
void smtp_io_replys(struct smtp_io *io, const char *text);
void smtp_io_replyf(struct smtp_io *io, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* smtp_io_flush - write every queued reply; 0 or -1 */
int smtp_io_flush(struct smtp_io *io);
/* smtp_io_errno - errno of the read or write that failed */
int smtp_io_errno(const struct smtp_io *io);

#endif
