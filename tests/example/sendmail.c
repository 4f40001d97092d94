/*
 * sendmail.c - a tiny SMTP client: the code the example test checks
 */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sendmail.h"

struct smtp {
	int fd;
	char buf[4096];
	size_t len;
	char *error;
	size_t error_size;
};

static int fail(struct smtp *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct smtp *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->error, s->error_size, fmt, ap);
	va_end(ap);
	return -1;
}

static int dial(struct smtp *s, const char *host, unsigned port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	struct timeval tv = {30, 0};
	char service[16];
	int ret;

	snprintf(service, sizeof(service), "%u", port);
	if ((ret = getaddrinfo(host, service, &hints, &ai)) != 0)
		return fail(s, "%s: %s", host, gai_strerror(ret));
	s->fd = socket(ai->ai_family, SOCK_STREAM, 0);
	ret = s->fd < 0 ? -1 : connect(s->fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (ret < 0)
		return fail(s, "cannot connect to %s:%u", host, port);
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* The body goes out in small writes: no waiting for ACKs. */
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	return 0;
}

static int put(struct smtp *s, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(s->fd, data, len, MSG_NOSIGNAL);

		if (n <= 0)
			return fail(s, "the server went away");
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* reply - read a whole reply; its code, or -1 */
static int reply(struct smtp *s)
{
	char *nl;
	int code;
	ssize_t n;

	for (;;) {
		while ((nl = memchr(s->buf, '\n', s->len)) == NULL) {
			n = recv(s->fd, s->buf + s->len,
				 sizeof(s->buf) - s->len, 0);
			if (n <= 0)
				return fail(s, "no reply from the server");
			s->len += (size_t)n;
		}
		code = atoi(s->buf);
		if (nl - s->buf < 4 || s->buf[3] != '-')
			break;
		s->len -= (size_t)(nl + 1 - s->buf);
		memmove(s->buf, nl + 1, s->len);
	}
	s->len -= (size_t)(nl + 1 - s->buf);
	memmove(s->buf, nl + 1, s->len);
	return code;
}

/* command - a line, then its reply, which must be want */
static int command(struct smtp *s, int want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int command(struct smtp *s, int want, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int code;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	strcat(line, "\r\n");
	if (put(s, line, strlen(line)) < 0 || (code = reply(s)) < 0)
		return -1;
	if (code != want)
		return fail(s, "%.*s: %d", (int)strlen(line) - 2, line, code);
	return 0;
}

/* put_body - every LF as CRLF, a leading dot doubled */
static int put_body(struct smtp *s, const char *body)
{
	const char *p = body, *nl;

	while (*p != '\0') {
		size_t len = (nl = strchr(p, '\n')) != NULL ? (size_t)(nl - p)
							    : strlen(p);

		if ((*p == '.' && put(s, ".", 1) < 0) || put(s, p, len) < 0 ||
		    put(s, "\r\n", 2) < 0)
			return -1;
		p += len + (nl != NULL);
	}
	return 0;
}

static int transaction(struct smtp *s, const struct mail *m)
{
	char head[2048];
	size_t len;

	if (reply(s) != 220 || command(s, 250, "EHLO sendmail.example") < 0 ||
	    command(s, 250, "MAIL FROM:<%s>", m->from) < 0)
		return -1;
	for (size_t i = 0; i < m->n_to; i++) {
		if (command(s, 250, "RCPT TO:<%s>", m->to[i]) < 0)
			return -1;
	}
	len = (size_t)snprintf(head, sizeof(head), "From: %s\r\nTo: ", m->from);
	for (size_t i = 0; i < m->n_to && len < sizeof(head); i++)
		len += (size_t)snprintf(head + len, sizeof(head) - len, "%s%s",
					i > 0 ? ", " : "", m->to[i]);
	if (len < sizeof(head))
		len += (size_t)snprintf(head + len, sizeof(head) - len,
					"\r\nSubject: %s\r\n\r\n", m->subject);
	if (len >= sizeof(head))
		return fail(s, "headers too long");
	if (command(s, 354, "DATA") < 0 || put(s, head, len) < 0 ||
	    put_body(s, m->body) < 0)
		return -1;
	return command(s, 250, ".") < 0 ? -1 : command(s, 221, "QUIT");
}

int sendmail(const char *host, unsigned port, const struct mail *m, char *error,
	     size_t error_size)
{
	struct smtp s = {.fd = -1, .error = error, .error_size = error_size};
	int ret;

	error[0] = '\0';
	ret = dial(&s, host, port) < 0 ? -1 : transaction(&s, m);
	if (s.fd >= 0)
		close(s.fd);
	return ret;
}
