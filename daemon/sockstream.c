/*
 * sockstream.c - the protocol engine's byte stream over a socket
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "sockstream.h"

int64_t sockstream_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* wait_for - ppoll() for events until ms have passed; 0 when ready or
 * interrupted (the caller looks again), -1 on error */
static int wait_for(struct sockstream *ss, short events, int64_t ms)
{
	struct pollfd pfd = {.fd = ss->fd, .events = events};
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000};

	if (ppoll(&pfd, 1, &ts, ss->wait_mask) < 0 && errno != EINTR)
		return -1;
	return 0;
}

int sockstream_wait(struct sockstream *ss, short events, int64_t deadline,
		    bool interruptible)
{
	int64_t now = sockstream_now(), limit = deadline;
	int64_t stop = interruptible ? ss->stop_deadline() : -1;

	if (stop >= 0 && now >= stop) {
		errno = ECANCELED;
		return -1;
	}
	if (now >= deadline) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (stop >= 0 && stop < limit)
		limit = stop;
	return wait_for(ss, events, limit - now);
}

static ssize_t sock_read(void *ctx, void *buf, size_t len, bool interruptible)
{
	struct sockstream *ss = ctx;
	ssize_t n;

	for (;;) {
		n = read(ss->fd, buf, len);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -1;
		if (sockstream_wait(ss, POLLIN, ss->deadline, interruptible) <
		    0)
			return -1;
	}
}

static int sock_write(void *ctx, const void *buf, size_t len)
{
	struct sockstream *ss = ctx;
	const char *p = buf;
	int64_t deadline = sockstream_now() + ss->timeout_ms;
	ssize_t n;

	while (len > 0) {
		n = write(ss->fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -1;
		if (sockstream_wait(ss, POLLOUT, deadline, false) < 0)
			return -1;
	}
	return 0;
}

static void sock_restart_timer(void *ctx)
{
	struct sockstream *ss = ctx;

	ss->deadline = sockstream_now() + ss->timeout_ms;
}

const struct smtp_stream_ops sockstream_ops = {
	.read = sock_read,
	.write = sock_write,
	.restart_timer = sock_restart_timer,
};

void sockstream_init(struct sockstream *ss, int fd, unsigned timeout_sec,
		     int64_t (*stop_deadline)(void), const sigset_t *wait_mask)
{
	ss->fd = fd;
	ss->timeout_ms = (int64_t)timeout_sec * 1000;
	ss->stop_deadline = stop_deadline;
	ss->wait_mask = wait_mask;
	sock_restart_timer(ss);
}
