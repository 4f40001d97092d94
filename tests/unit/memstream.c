/*
 * memstream.c - a byte stream over memory (see memstream.h)
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "memstream.h"

static ssize_t mem_read(void *ctx, void *buf, size_t len, bool interruptible)
{
	struct memstream *ms = ctx;
	size_t n = ms->in_len - ms->pos;

	(void)interruptible;
	ms->reads++;
	if (n == 0) {
		if (ms->fail_read_errno != 0) {
			errno = ms->fail_read_errno;
			return -1;
		}
		return 0;
	}
	if (ms->chunk != 0 && n > ms->chunk)
		n = ms->chunk;
	if (n > len)
		n = len;
	memcpy(buf, ms->in + ms->pos, n);
	ms->pos += n;
	return (ssize_t)n;
}

static int mem_write(void *ctx, const void *buf, size_t len)
{
	struct memstream *ms = ctx;

	ms->writes++;
	sbuf_append(&ms->out, buf, len);
	return 0;
}

static void mem_restart_timer(void *ctx)
{
	struct memstream *ms = ctx;

	ms->timer_restarts++;
}

const struct smtp_stream_ops memstream_ops = {
	.read = mem_read,
	.write = mem_write,
	.restart_timer = mem_restart_timer,
};

void memstream_init(struct memstream *ms, const char *in, size_t len,
		    size_t chunk)
{
	memset(ms, 0, sizeof(*ms));
	ms->in = in;
	ms->in_len = len;
	ms->chunk = chunk;
	sbuf_init(&ms->out, 1024);
}

void memstream_free(struct memstream *ms)
{
	sbuf_free(&ms->out);
}
