/*
 * tlsstream.c - the protocol engine's byte stream over TLS
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "alloc.h"
#include "tlsstream.h"

struct tlsstream {
	SSL *ssl;
	struct sockstream *ss;
	bool broken;	  /* a fatal error: no close_notify may follow */
	char reason[128]; /* why the last call failed */
};

enum tls_op { OP_ACCEPT, OP_READ, OP_WRITE };

static int call(struct tlsstream *ts, enum tls_op op, void *buf, int len)
{
	switch (op) {
	case OP_ACCEPT:
		return SSL_accept(ts->ssl);
	case OP_READ:
		return SSL_read(ts->ssl, buf, len);
	case OP_WRITE:
		return SSL_write(ts->ssl, buf, len);
	}
	return -1;
}

/* failed - what a fatal SSL error code means for the stream: -1 with
 * errno, or 0 for an end of stream */
static int failed(struct tlsstream *ts, int err)
{
	unsigned long e;

	if (err != SSL_ERROR_ZERO_RETURN)
		ts->broken = true;
	switch (err) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			return 0; /* the peer closed without close_notify */
		snprintf(ts->reason, sizeof(ts->reason), "%s",
			 strerror(errno));
		return -1;
	default:
		e = ERR_peek_last_error();
		snprintf(ts->reason, sizeof(ts->reason), "%s",
			 e != 0 ? ERR_reason_error_string(e) : "TLS error");
		if (ts->reason[0] == '\0')
			snprintf(ts->reason, sizeof(ts->reason), "TLS error");
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

/*
 * run - one SSL call to its end (Postfix's tls_bio() loop): on a
 * non-blocking socket WANT_READ and WANT_WRITE mean "wait and call
 * again", until the deadline
 */
static int run(struct tlsstream *ts, enum tls_op op, void *buf, int len,
	       int64_t deadline, bool interruptible)
{
	int ret, err;
	short events;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		ret = call(ts, op, buf, len);
		if (ret > 0)
			return ret;
		err = SSL_get_error(ts->ssl, ret);
		if (err == SSL_ERROR_WANT_READ)
			events = POLLIN;
		else if (err == SSL_ERROR_WANT_WRITE)
			events = POLLOUT;
		else
			return failed(ts, err);
		if (sockstream_wait(ts->ss, events, deadline, interruptible) <
		    0) {
			snprintf(ts->reason, sizeof(ts->reason), "%s",
				 errno == ETIMEDOUT   ? "timeout"
				 : errno == ECANCELED ? "stopping"
						      : strerror(errno));
			return -1;
		}
	}
}

static ssize_t tls_read(void *ctx, void *buf, size_t len, bool interruptible)
{
	struct tlsstream *ts = ctx;
	int n = len > INT_MAX ? INT_MAX : (int)len;

	return run(ts, OP_READ, buf, n, ts->ss->deadline, interruptible);
}

static int tls_write(void *ctx, const void *buf, size_t len)
{
	struct tlsstream *ts = ctx;
	int64_t deadline = sockstream_now() + ts->ss->timeout_ms;
	const char *p = buf;
	int n;

	while (len > 0) {
		n = run(ts, OP_WRITE, (void *)p, len > INT_MAX ? INT_MAX
							       : (int)len,
			deadline, false);
		if (n <= 0) {
			if (n == 0)
				errno = EPIPE;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void tls_restart_timer(void *ctx)
{
	struct tlsstream *ts = ctx;

	sockstream_ops.restart_timer(ts->ss);
}

const struct smtp_stream_ops tlsstream_ops = {
	.read = tls_read,
	.write = tls_write,
	.restart_timer = tls_restart_timer,
};

struct tlsstream *tlsstream_accept(SSL_CTX *ctx, struct sockstream *ss,
				   const char **error_r)
{
	static char reason[128];
	struct tlsstream *ts = xcalloc(1, sizeof(*ts));

	ts->ss = ss;
	if ((ts->ssl = SSL_new(ctx)) == NULL ||
	    SSL_set_fd(ts->ssl, ss->fd) != 1) {
		snprintf(reason, sizeof(reason), "SSL_new() failed");
		goto fail;
	}
	sockstream_ops.restart_timer(ss);
	if (run(ts, OP_ACCEPT, NULL, 0, ss->deadline, true) <= 0) {
		snprintf(reason, sizeof(reason), "%s",
			 ts->reason[0] != '\0' ? ts->reason
					       : "connection closed");
		goto fail;
	}
	return ts;
fail:
	ERR_clear_error();
	SSL_free(ts->ssl);
	free(ts);
	*error_r = reason;
	return NULL;
}

void tlsstream_state(const struct tlsstream *ts,
		     struct smtp_tls_state *state_r)
{
	state_r->version = SSL_get_version(ts->ssl);
	state_r->cipher = SSL_get_cipher_name(ts->ssl);
	state_r->bits = SSL_get_cipher_bits(ts->ssl, NULL);
}

void tlsstream_free(struct tlsstream **tsp)
{
	struct tlsstream *ts = *tsp;

	if (ts == NULL)
		return;
	/* One close_notify, no waiting: the session is over either way. */
	ERR_clear_error();
	if (!ts->broken)
		(void)SSL_shutdown(ts->ssl);
	ERR_clear_error();
	SSL_free(ts->ssl);
	free(ts);
	*tsp = NULL;
}
