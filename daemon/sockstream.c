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

/* STRESS_LOOK_MS - how often an idle session looks whether the pool
 * has come under stress */
#define STRESS_LOOK_MS 1000

/* idle_limit - while the engine waits for a command, the end of the
 * stress allowance if the pool is under stress, else deadline; *poll_ms
 * caps the wait so that stress starting later is noticed */
static int64_t idle_limit(struct sockstream *ss, int64_t deadline,
			  int64_t *poll_ms)
{
	int64_t idle_since = ss->deadline - ss->timeout_ms;
	int64_t cut = idle_since + ss->stress_ms;

	if (ss->stressed == NULL || cut >= deadline)
		return deadline;
	*poll_ms = STRESS_LOOK_MS;
	if (!ss->stressed(ss->stress_ctx))
		return deadline;
	return cut;
}

int sockstream_wait(struct sockstream *ss, short events, int64_t deadline,
		    bool interruptible)
{
	int64_t now = sockstream_now(), limit = deadline, poll_ms = -1;
	int64_t stop = interruptible ? ss->stop_deadline() : -1;

	if (stop >= 0 && now >= stop) {
		errno = ECANCELED;
		return -1;
	}
	if (interruptible)
		limit = idle_limit(ss, deadline, &poll_ms);
	if (now >= limit) {
		ss->stress_cut = limit < deadline || ss->stress_short;
		errno = ETIMEDOUT;
		return -1;
	}
	if (stop >= 0 && stop < limit)
		limit = stop;
	if (poll_ms > 0 && limit - now > poll_ms)
		limit = now + poll_ms;
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
	ss->stressed = NULL;
	ss->stress_short = false;
	ss->stress_cut = false;
	sock_restart_timer(ss);
}

void sockstream_stress(struct sockstream *ss, bool (*stressed)(void *ctx),
		       void *ctx, unsigned stress_sec)
{
	ss->stressed = stressed;
	ss->stress_ctx = ctx;
	ss->stress_ms = (int64_t)stress_sec * 1000;
	if (stressed(ctx) && ss->stress_ms < ss->timeout_ms) {
		ss->timeout_ms = ss->stress_ms;
		ss->stress_short = true;
		sock_restart_timer(ss);
	}
}
