/*
 * smtp_io.c - buffered line input and reply output over a byte stream
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "sbuf.h"
#include "smtp_io.h"

/* Replies queued past this size are written even without a read, so a
 * client that pipelines without reading cannot grow our memory. */
#define OUTPUT_HIGH_WATER (64 * 1024)

struct smtp_io {
	const struct smtp_stream_ops *ops;
	void *ctx;
	char *in;
	size_t start; /* first unconsumed input byte */
	size_t end;   /* one past the last buffered input byte */
	struct sbuf out;
	int error;
};

struct smtp_io *smtp_io_new(const struct smtp_stream_ops *ops, void *ctx)
{
	struct smtp_io *io = xcalloc(1, sizeof(*io));

	io->ops = ops;
	io->ctx = ctx;
	io->in = xmalloc(SMTP_IO_INPUT_SIZE);
	sbuf_init(&io->out, 1024);
	return io;
}

void smtp_io_free(struct smtp_io **iop)
{
	struct smtp_io *io = *iop;

	if (io == NULL)
		return;
	free(io->in);
	sbuf_free(&io->out);
	free(io);
	*iop = NULL;
}

void smtp_io_set_stream(struct smtp_io *io, const struct smtp_stream_ops *ops,
			void *ctx)
{
	io->ops = ops;
	io->ctx = ctx;
}

void smtp_io_discard_input(struct smtp_io *io)
{
	io->start = io->end = 0;
}

size_t smtp_io_buffered(const struct smtp_io *io)
{
	return io->end - io->start;
}

int smtp_io_errno(const struct smtp_io *io)
{
	return io->error;
}

int smtp_io_flush(struct smtp_io *io)
{
	if (io->out.len == 0)
		return 0;
	if (io->ops->write(io->ctx, io->out.data, io->out.len) < 0) {
		io->error = errno;
		sbuf_reset(&io->out);
		return -1;
	}
	sbuf_reset(&io->out);
	return 0;
}

/* fill - flush replies, then read more input after what is buffered */
static enum smtp_io_status fill(struct smtp_io *io, bool interruptible)
{
	ssize_t n;

	if (io->start > 0 && io->end == SMTP_IO_INPUT_SIZE) {
		memmove(io->in, io->in + io->start, io->end - io->start);
		io->end -= io->start;
		io->start = 0;
	} else if (io->start == io->end) {
		io->start = io->end = 0;
	}
	ASSERT(io->end < SMTP_IO_INPUT_SIZE);
	if (smtp_io_flush(io) < 0)
		return SMTP_IO_ERROR;
	n = io->ops->read(io->ctx, io->in + io->end,
			  SMTP_IO_INPUT_SIZE - io->end, interruptible);
	if (n < 0) {
		io->error = errno;
		return SMTP_IO_ERROR;
	}
	if (n == 0)
		return SMTP_IO_EOF;
	io->end += (size_t)n;
	return SMTP_IO_OK;
}

/* skip_long_line - drop input up to and including the next LF */
static enum smtp_io_status skip_long_line(struct smtp_io *io)
{
	enum smtp_io_status status;
	char *lf;

	for (;;) {
		lf = memchr(io->in + io->start, '\n', io->end - io->start);
		if (lf != NULL) {
			io->start = (size_t)(lf - io->in) + 1;
			return SMTP_IO_TOO_LONG;
		}
		io->start = io->end = 0;
		if ((status = fill(io, true)) != SMTP_IO_OK)
			return status;
	}
}

enum smtp_io_status smtp_io_read_line(struct smtp_io *io, size_t max,
				      const char **line_r, size_t *len_r)
{
	enum smtp_io_status status;
	size_t scanned = 0;
	char *lf;

	ASSERT(max < SMTP_IO_INPUT_SIZE - 1);
	for (;;) {
		char *from = io->in + io->start + scanned;
		size_t avail = io->end - io->start;

		lf = memchr(from, '\n', avail - scanned);
		if (lf != NULL)
			break;
		scanned = avail;
		if (avail > max)
			return skip_long_line(io);
		if ((status = fill(io, true)) != SMTP_IO_OK)
			return status;
	}

	size_t len = (size_t)(lf - (io->in + io->start));

	if (len > max) {
		io->start += len + 1;
		return SMTP_IO_TOO_LONG;
	}
	*line_r = io->in + io->start;
	*len_r = len;
	io->start += len + 1;
	return SMTP_IO_OK;
}

enum smtp_io_status smtp_io_peek(struct smtp_io *io, const char **data_r,
				 size_t *len_r)
{
	enum smtp_io_status status;

	if (io->start == io->end) {
		if ((status = fill(io, false)) != SMTP_IO_OK)
			return status;
	}
	*data_r = io->in + io->start;
	*len_r = io->end - io->start;
	return SMTP_IO_OK;
}

void smtp_io_consume(struct smtp_io *io, size_t n)
{
	ASSERT(n <= io->end - io->start);
	io->start += n;
}

void smtp_io_restart_timer(struct smtp_io *io)
{
	if (io->ops->restart_timer != NULL)
		io->ops->restart_timer(io->ctx);
}

static void queued(struct smtp_io *io)
{
	sbuf_append(&io->out, "\r\n", 2);
	if (io->out.len > OUTPUT_HIGH_WATER)
		(void)smtp_io_flush(io);
}

void smtp_io_reply(struct smtp_io *io, const char *text, size_t len)
{
	sbuf_append(&io->out, text, len);
	queued(io);
}

void smtp_io_replys(struct smtp_io *io, const char *text)
{
	smtp_io_reply(io, text, strlen(text));
}

void smtp_io_replyf(struct smtp_io *io, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sbuf_vprintf(&io->out, fmt, ap);
	va_end(ap);
	queued(io);
}
