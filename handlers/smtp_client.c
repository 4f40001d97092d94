/*
 * smtp_client.c - a blocking SMTP and LMTP client for forwarding
 *
 * The socket is blocking with SO_RCVTIMEO and SO_SNDTIMEO, so every read
 * and write, TLS or not, gives up after the configured timeout without a
 * poll loop of our own.  Input goes through smtp_io, the server's own
 * line reader; commands and content are collected in an output buffer
 * that is written before each reply is read.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "alloc.h"
#include "log.h"
#include "smtp_client.h"
#include "smtp_io.h"

/* Longest reply line we accept; RFC 5321 allows 512. */
#define REPLY_LINE_MAX 4096
/* Most lines in one reply (an EHLO reply is the longest). */
#define REPLY_LINES_MAX 100
/* Output is written once this much has been collected. */
#define OUT_FLUSH (64 * 1024)
/* How long QUIT waits for its reply before the close. */
#define QUIT_TIMEOUT 2

#define REPLY_UNREACHABLE "451 4.4.1 Next hop not reachable, try again later"
#define REPLY_TIMEOUT "451 4.4.2 Next hop timed out, try again later"
#define REPLY_LOST "451 4.4.2 Next hop connection lost, try again later"
#define REPLY_GARBLED "451 4.4.2 Next hop protocol error, try again later"
#define REPLY_TLS "451 4.7.5 TLS with the next hop failed, try again later"
#define REPLY_NO_TLS "451 4.7.4 Next hop does not offer STARTTLS"

struct smtp_client {
	const struct smtp_client_conf *conf;
	const char *log_id;
	int fd;
	SSL *ssl;
	struct smtp_io *io;
	struct sbuf out;
	struct sbuf ehlo; /* the EHLO/LHLO reply, for smtp_client_offers() */
	bool usable;
	bool bol; /* content: at the start of a line */
	bool cr;  /* content: a CR waits to see whether LF follows */
};

/* The TLS client context of one next hop, shared by its connections. */
struct smtp_client_tls_state {
	SSL_CTX *ctx;
	SSL_SESSION *session; /* the last one the next hop gave us */
};

/* --- configuration ------------------------------------------------------- */

/* checks_certificate - is the next hop's certificate and name checked? */
static bool checks_certificate(const struct smtp_client_conf *conf)
{
	return conf->tls == SMTP_CLIENT_TLS_REQUIRED && conf->tls_verify;
}

void smtp_client_conf_init(struct smtp_client_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->connect_timeout = 30;
	conf->timeout = 300;
	conf->tls = SMTP_CLIENT_TLS_NO;
	conf->tls_verify = true;
}

static void tls_state_free(struct smtp_client_tls_state **tlsp)
{
	struct smtp_client_tls_state *tls = *tlsp;

	if (tls == NULL)
		return;
	SSL_SESSION_free(tls->session);
	SSL_CTX_free(tls->ctx);
	free(tls);
	*tlsp = NULL;
}

void smtp_client_conf_free(struct smtp_client_conf *conf)
{
	XFREE(conf->target);
	XFREE(conf->tls_ca);
	tls_state_free(&conf->tls_state);
}

static int parse_seconds(const char *value, unsigned *r)
{
	char *end;
	long v = strtol(value, &end, 10);

	if (*value == '\0' || *end != '\0' || v < 1 || v > 86400)
		return -1;
	*r = (unsigned)v;
	return 0;
}

static int parse_tls(const char *value, enum smtp_client_tls *r)
{
	if (strcmp(value, "no") == 0)
		*r = SMTP_CLIENT_TLS_NO;
	else if (strcmp(value, "may") == 0)
		*r = SMTP_CLIENT_TLS_MAY;
	else if (strcmp(value, "required") == 0)
		*r = SMTP_CLIENT_TLS_REQUIRED;
	else
		return -1;
	return 0;
}

static int parse_bool(const char *value, bool *r)
{
	if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
		*r = true;
	else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0)
		*r = false;
	else
		return -1;
	return 0;
}

int smtp_client_conf_set(struct smtp_client_conf *conf, const char *option,
			 const char **error_r)
{
	const char *eq = strchr(option, '='), *v;
	size_t klen;

	if (eq == NULL) {
		*error_r = "options are written key=value";
		return -1;
	}
	klen = (size_t)(eq - option);
	v = eq + 1;
#define KEY(name) (klen == strlen(name) && strncmp(option, name, klen) == 0)
	if (KEY("timeout")) {
		if (parse_seconds(v, &conf->timeout) < 0)
			goto bad_seconds;
	} else if (KEY("connect_timeout")) {
		if (parse_seconds(v, &conf->connect_timeout) < 0)
			goto bad_seconds;
	} else if (KEY("starttls")) {
		if (parse_tls(v, &conf->tls) < 0) {
			*error_r = "starttls must be no, may or required";
			return -1;
		}
	} else if (KEY("tls_verify")) {
		if (parse_bool(v, &conf->tls_verify) < 0) {
			*error_r = "tls_verify must be yes or no";
			return -1;
		}
	} else if (KEY("tls_ca")) {
		free(conf->tls_ca);
		conf->tls_ca = xstrdup(v);
	} else {
		*error_r = "unknown option (known: timeout, connect_timeout, "
			   "starttls, tls_verify, tls_ca)";
		return -1;
	}
#undef KEY
	return 0;
bad_seconds:
	*error_r = "timeouts are seconds from 1 to 86400";
	return -1;
}

/* --- replies ------------------------------------------------------------- */

void smtp_reply_init(struct smtp_reply *reply)
{
	reply->code = 0;
	sbuf_init(&reply->text, 128);
}

void smtp_reply_free(struct smtp_reply *reply)
{
	sbuf_free(&reply->text);
}

void smtp_reply_set(struct smtp_reply *reply, const char *line)
{
	sbuf_reset(&reply->text);
	sbuf_puts(&reply->text, line);
	reply->code = atoi(line);
}

/* fail - the connection is over: make up the reply and say why */
static int fail(struct smtp_client *c, struct smtp_reply *reply,
		const char *text, const char *why)
{
	log_warning("%s next hop %s: %s", c->log_id, c->conf->target, why);
	c->usable = false;
	smtp_reply_set(reply, text);
	return reply->code;
}

/* --- the byte stream ----------------------------------------------------- */

static ssize_t stream_read(void *ctx, void *buf, size_t len, bool interruptible)
{
	struct smtp_client *c = ctx;
	ssize_t n;
	int ret, err;

	(void)interruptible;
	if (c->ssl == NULL) {
		do {
			n = recv(c->fd, buf, len, 0);
		} while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			errno = ETIMEDOUT;
		return n;
	}
	ERR_clear_error();
	ret = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
	if (ret > 0)
		return ret;
	err = SSL_get_error(c->ssl, ret);
	if (err == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (err == SSL_ERROR_SYSCALL &&
	    (errno == EAGAIN || errno == EWOULDBLOCK))
		errno = ETIMEDOUT;
	else if (err != SSL_ERROR_SYSCALL || errno == 0)
		errno = EPROTO;
	return -1;
}

static int stream_write(void *ctx, const void *buf, size_t len)
{
	struct smtp_client *c = ctx;
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			n = SSL_write(c->ssl, p,
				      len > INT32_MAX ? INT32_MAX : (int)len);
			if (n <= 0 &&
			    SSL_get_error(c->ssl, (int)n) != SSL_ERROR_SYSCALL)
				errno = EPROTO;
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				errno = ETIMEDOUT;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static const struct smtp_stream_ops client_ops = {
	.read = stream_read,
	.write = stream_write,
};

/* flush - write the collected output; false after a failure */
static bool flush(struct smtp_client *c)
{
	int ret = 0;

	if (c->out.len > 0 && c->usable)
		ret = stream_write(c, c->out.data, c->out.len);
	sbuf_reset(&c->out);
	if (ret < 0 && c->usable) {
		log_warning("%s next hop %s: write failed: %m", c->log_id,
			    c->conf->target);
		c->usable = false;
	}
	return c->usable;
}

/* --- connecting ---------------------------------------------------------- */

static void set_timeouts(int fd, unsigned seconds)
{
	struct timeval tv = {.tv_sec = seconds};

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* connect_within - connect(2) that gives up after the connect timeout;
 * the socket is left blocking */
static int connect_within(int fd, const struct sockaddr *sa, socklen_t len,
			  unsigned seconds)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	int flags = fcntl(fd, F_GETFL), err = 0, ret;
	socklen_t elen = sizeof(err);

	(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS)
			return -1;
		do {
			ret = poll(&pfd, 1, (int)seconds * 1000);
		} while (ret < 0 && errno == EINTR);
		if (ret == 0)
			errno = ETIMEDOUT;
		if (ret <= 0)
			return -1;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			return -1;
		if (err != 0) {
			errno = err;
			return -1;
		}
	}
	return fcntl(fd, F_SETFL, flags);
}

static int connect_unix(const char *path, unsigned seconds)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect_within(fd, (struct sockaddr *)&sun, sizeof(sun), seconds) <
	    0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* split_host_port - "host:port" or "[v6]:port" into its parts */
static int split_host_port(const char *target, char *host, size_t size,
			   const char **port_r)
{
	const char *colon = strrchr(target, ':');
	size_t len;

	if (colon == NULL || colon[1] == '\0')
		return -1;
	if (target[0] == '[') {
		if (colon == target || colon[-1] != ']')
			return -1;
		target++;
		len = (size_t)(colon - 1 - target);
	} else {
		len = (size_t)(colon - target);
	}
	if (len == 0 || len >= size)
		return -1;
	memcpy(host, target, len);
	host[len] = '\0';
	*port_r = colon + 1;
	return 0;
}

int smtp_client_check_target(const char *target, const char **error_r)
{
	const char *port;
	char host[256], *end;
	long n;

	if (strncmp(target, "unix:", 5) == 0 ? target[5] == '/'
					     : target[0] == '/')
		return 0;
	if (strncmp(target, "inet:", 5) == 0)
		target += 5;
	if (split_host_port(target, host, sizeof(host), &port) < 0 ||
	    (n = strtol(port, &end, 10)) < 1 || n > 65535 || *end != '\0') {
		*error_r = "the target must be unix:/path, /path, host:port "
			   "or [ipv6]:port";
		return -1;
	}
	return 0;
}

static int connect_inet(const char *target, unsigned seconds,
			const char **why_r)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	const char *port;
	char host[256];
	int fd = -1, ret, saved = 0;

	if (strncmp(target, "inet:", 5) == 0)
		target += 5;
	if (split_host_port(target, host, sizeof(host), &port) < 0) {
		*why_r = "not host:port";
		return -1;
	}
	if ((ret = getaddrinfo(host, port, &hints, &res)) != 0) {
		*why_r = gai_strerror(ret);
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect_within(fd, ai->ai_addr, ai->ai_addrlen, seconds) ==
		    0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		errno = saved;
		*why_r = NULL;
		return -1;
	}
	/* Writes are whole commands or large blocks already, and Nagle
	 * would hold the tail of a block (the final dot, the last TLS
	 * record) until the next hop's delayed ACK came. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	return fd;
}

/* open_socket - the connected socket, or -1 with *why_r (NULL: errno) */
static int open_socket(const struct smtp_client_conf *conf, const char **why_r)
{
	const char *t = conf->target;

	*why_r = NULL;
	if (strncmp(t, "unix:", 5) == 0)
		return connect_unix(t + 5, conf->connect_timeout);
	if (t[0] == '/')
		return connect_unix(t, conf->connect_timeout);
	return connect_inet(t, conf->connect_timeout, why_r);
}

/* --- replies from the wire ----------------------------------------------- */

/* reply_line - one line of a reply: its code and whether more follow */
static bool reply_line(const char *line, size_t len, int *code_r, bool *more_r)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9')
		return false;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return false;
	*code_r =
		(line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*more_r = len > 3 && line[3] == '-';
	return true;
}

static int read_error(struct smtp_client *c, struct smtp_reply *reply,
		      enum smtp_io_status st)
{
	if (st == SMTP_IO_EOF)
		return fail(c, reply, REPLY_LOST, "connection closed");
	if (st == SMTP_IO_TOO_LONG)
		return fail(c, reply, REPLY_GARBLED, "reply line too long");
	errno = smtp_io_errno(c->io);
	if (errno == ETIMEDOUT)
		return fail(c, reply, REPLY_TIMEOUT, "no reply in time");
	log_warning("%s next hop %s: read failed: %m", c->log_id,
		    c->conf->target);
	return fail(c, reply, REPLY_LOST, "connection lost");
}

int smtp_client_read_reply(struct smtp_client *c, struct smtp_reply *reply)
{
	enum smtp_io_status st;
	const char *line;
	size_t len;
	int code = 0, first = 0;
	bool more = true;

	sbuf_reset(&reply->text);
	if (!flush(c))
		return fail(c, reply, REPLY_LOST, "connection lost");
	for (int n = 0; more; n++) {
		st = smtp_io_read_line(c->io, REPLY_LINE_MAX, &line, &len);
		if (st != SMTP_IO_OK)
			return read_error(c, reply, st);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (!reply_line(line, len, &code, &more) ||
		    (n > 0 && code != first) || n >= REPLY_LINES_MAX)
			return fail(c, reply, REPLY_GARBLED, "bad reply");
		first = code;
		if (n > 0)
			sbuf_puts(&reply->text, "\r\n");
		sbuf_append(&reply->text, line, len);
	}
	reply->code = code;
	if (code == 421)
		c->usable = false; /* the next hop closes after a 421 */
	return code;
}

int smtp_client_command(struct smtp_client *c, struct smtp_reply *reply,
			const char *fmt, ...)
{
	va_list ap;

	if (!c->usable)
		return fail(c, reply, REPLY_LOST, "connection unusable");
	va_start(ap, fmt);
	sbuf_vprintf(&c->out, fmt, ap);
	va_end(ap);
	sbuf_puts(&c->out, "\r\n");
	return smtp_client_read_reply(c, reply);
}

bool smtp_client_usable(const struct smtp_client *c)
{
	return c->usable;
}

bool smtp_client_offers(const struct smtp_client *c, const char *keyword)
{
	size_t klen = strlen(keyword);

	/* Each line is "250-KEYWORD params" or "250 KEYWORD params"; the
	 * first one is the greeting name, never a keyword. */
	for (const char *p = strstr(c->ehlo.data, "\r\n"); p != NULL;
	     p = strstr(p, "\r\n")) {
		p += 2;
		if (strlen(p) >= 4 + klen &&
		    strncasecmp(p + 4, keyword, klen) == 0 &&
		    (p[4 + klen] == '\0' || p[4 + klen] == ' ' ||
		     p[4 + klen] == '\r'))
			return true;
	}
	return false;
}

/* --- TLS ----------------------------------------------------------------- */

/* remember_session - OpenSSL hands over each session (TLS 1.3: each
 * ticket) the next hop gives; the newest is the one to resume */
static int remember_session(SSL *ssl, SSL_SESSION *session)
{
	struct smtp_client_tls_state *tls =
		SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	SSL_SESSION_free(tls->session);
	tls->session = session;
	return 1; /* the reference is ours now */
}

/* load_cas - the CAs that vouch for the next hop; 0, or -1 with the
 * reason in error */
static int load_cas(SSL_CTX *ctx, const char *file, char *error, size_t size)
{
	const char *reason;
	FILE *fp;

	ERR_clear_error();
	if (file == NULL) {
		if (SSL_CTX_set_default_verify_paths(ctx) == 1)
			return 0;
		file = "(the system's)";
	} else {
		/* OpenSSL says no more than "system lib" of a file that
		 * cannot be opened. */
		if ((fp = fopen(file, "r")) == NULL) {
			snprintf(error, size, "tls_ca %s: %s", file,
				 strerror(errno));
			return -1;
		}
		fclose(fp);
		if (SSL_CTX_load_verify_locations(ctx, file, NULL) == 1)
			return 0;
	}
	reason = ERR_reason_error_string(ERR_peek_error());
	snprintf(error, size,
		 "tls_ca %s: no CA certificate could be loaded (%s)", file,
		 reason != NULL ? reason : "unknown error");
	ERR_clear_error();
	return -1;
}

int smtp_client_conf_ready(struct smtp_client_conf *conf, const char **error_r)
{
	static char error[512];
	struct smtp_client_tls_state *tls;
	SSL_CTX *ctx;

	tls_state_free(&conf->tls_state);
	if (conf->tls == SMTP_CLIENT_TLS_NO)
		return 0;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		*error_r = "cannot make a TLS client context";
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (checks_certificate(conf)) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (load_cas(ctx, conf->tls_ca, error, sizeof(error)) < 0) {
			SSL_CTX_free(ctx);
			*error_r = error;
			return -1;
		}
	}
	tls = xcalloc(1, sizeof(*tls));
	tls->ctx = ctx;
	SSL_CTX_set_app_data(ctx, tls);
	/* Sessions go to remember_session() alone; OpenSSL's own client
	 * cache is never looked up anyway. */
	SSL_CTX_set_session_cache_mode(
		ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, remember_session);
	conf->tls_state = tls;
	return 0;
}

static int tls_fail(struct smtp_client *c, struct smtp_reply *reply,
		    const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	log_warning("%s next hop %s: %s %s", c->log_id, c->conf->target, what,
		    buf);
	ERR_clear_error();
	return fail(c, reply, REPLY_TLS, "TLS failed");
}

/* tls_connection - the TLS object for this connection, from the next
 * hop's context, resuming its last session */
static int tls_connection(struct smtp_client *c, const char *host)
{
	const struct smtp_client_conf *conf = c->conf;
	struct smtp_client_tls_state *tls = conf->tls_state;

	if (tls == NULL || (c->ssl = SSL_new(tls->ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	if (tls->session != NULL && SSL_SESSION_is_resumable(tls->session))
		(void)SSL_set_session(c->ssl, tls->session);
	if (host != NULL) {
		(void)SSL_set_tlsext_host_name(c->ssl, host);
		if (checks_certificate(conf) &&
		    SSL_set1_host(c->ssl, host) != 1)
			return -1;
	}
	return 0;
}

/* starttls - STARTTLS, the handshake, and EHLO/LHLO again */
static int starttls(struct smtp_client *c, const char *helo,
		    struct smtp_reply *reply)
{
	const char *port;
	char host[256];
	bool have_host;

	if (smtp_client_command(c, reply, "STARTTLS") != 220)
		return -1;
	have_host = strncmp(c->conf->target, "unix:", 5) != 0 &&
		    c->conf->target[0] != '/' &&
		    split_host_port(c->conf->target, host, sizeof(host),
				    &port) == 0;
	if (tls_connection(c, have_host ? host : NULL) < 0) {
		tls_fail(c, reply, "TLS set-up failed:");
		return -1;
	}
	ERR_clear_error();
	if (SSL_connect(c->ssl) != 1) {
		/* Do not offer that session again. */
		SSL_SESSION_free(c->conf->tls_state->session);
		c->conf->tls_state->session = NULL;
		tls_fail(c, reply, "TLS handshake failed:");
		return -1;
	}
	log_debug("%s next hop %s: %s%s", c->log_id, c->conf->target,
		  SSL_get_version(c->ssl),
		  SSL_session_reused(c->ssl) ? ", session resumed" : "");
	/* RFC 3207: nothing the server sent before the handshake counts. */
	smtp_io_discard_input(c->io);
	if (smtp_client_command(c, reply, "%s %s",
				c->conf->lmtp ? "LHLO" : "EHLO", helo) != 250)
		return -1;
	sbuf_reset(&c->ehlo);
	sbuf_append(&c->ehlo, reply->text.data, reply->text.len);
	return 0;
}

/* greet - the greeting, EHLO/LHLO and STARTTLS; 0, or -1 with the
 * refusal in reply */
static int greet(struct smtp_client *c, const char *helo,
		 struct smtp_reply *reply)
{
	if (smtp_client_read_reply(c, reply) != 220)
		return -1;
	if (smtp_client_command(c, reply, "%s %s",
				c->conf->lmtp ? "LHLO" : "EHLO", helo) != 250)
		return -1;
	sbuf_append(&c->ehlo, reply->text.data, reply->text.len);
	if (c->conf->tls == SMTP_CLIENT_TLS_NO)
		return 0;
	if (smtp_client_offers(c, "STARTTLS"))
		return starttls(c, helo, reply);
	if (c->conf->tls == SMTP_CLIENT_TLS_MAY)
		return 0;
	fail(c, reply, REPLY_NO_TLS, "STARTTLS not offered");
	return -1;
}

struct smtp_client *smtp_client_connect(const struct smtp_client_conf *conf,
					const char *helo, const char *log_id,
					struct smtp_reply *reply)
{
	struct smtp_client *c;
	const char *why;
	int fd;

	if ((fd = open_socket(conf, &why)) < 0) {
		if (why != NULL)
			log_warning("%s next hop %s: %s", log_id, conf->target,
				    why);
		else
			log_warning("%s connect(%s) failed: %m", log_id,
				    conf->target);
		smtp_reply_set(reply, REPLY_UNREACHABLE);
		return NULL;
	}
	set_timeouts(fd, conf->timeout);
	c = xcalloc(1, sizeof(*c));
	c->conf = conf;
	c->log_id = log_id;
	c->fd = fd;
	c->usable = true;
	c->bol = true;
	c->io = smtp_io_new(&client_ops, c);
	sbuf_init(&c->out, 1024);
	sbuf_init(&c->ehlo, 256);
	if (greet(c, helo, reply) < 0) {
		if (reply->code / 100 == 2 || reply->code == 354)
			fail(c, reply, REPLY_GARBLED, "unexpected reply");
		smtp_client_quit(&c);
		return NULL;
	}
	return c;
}

/* --- content ------------------------------------------------------------- */

/* line_end - the first CR or LF in [p, end), or end; *lf caches the
 * next LF so that text without one is not searched again and again */
static const char *line_end(const char *p, const char *end, const char **lf)
{
	const char *cr;

	if (*lf == NULL || *lf < p) {
		*lf = memchr(p, '\n', (size_t)(end - p));
		if (*lf == NULL)
			*lf = end;
	}
	cr = memchr(p, '\r', (size_t)(*lf - p));
	return cr != NULL ? cr : *lf;
}

void smtp_client_data(struct smtp_client *c, const char *data, size_t len)
{
	const char *p = data, *end = data + len, *lf = NULL, *eol;

	while (p < end) {
		if (c->cr) {
			/* A CR ends a line whether or not LF follows. */
			sbuf_append(&c->out, "\r\n", 2);
			c->cr = false;
			c->bol = true;
			if (*p == '\n')
				p++;
			continue;
		}
		if (*p == '\r') {
			c->cr = true;
			p++;
			continue;
		}
		if (*p == '\n') {
			sbuf_append(&c->out, "\r\n", 2);
			c->bol = true;
			p++;
			continue;
		}
		if (c->bol && *p == '.')
			sbuf_putc(&c->out, '.');
		/* The rest of the line, up to its CR or LF, in one copy. */
		eol = line_end(p, end, &lf);
		sbuf_append(&c->out, p, (size_t)(eol - p));
		c->bol = false;
		p = eol;
	}
	if (c->out.len >= OUT_FLUSH)
		(void)flush(c);
}

void smtp_client_data_end(struct smtp_client *c)
{
	if (c->cr || !c->bol)
		sbuf_puts(&c->out, "\r\n");
	sbuf_puts(&c->out, ".\r\n");
	c->cr = false;
	c->bol = true;
}

/* --- closing ------------------------------------------------------------- */

void smtp_client_free(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;

	if (c == NULL)
		return;
	if (c->ssl != NULL) {
		if (c->usable)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	close(c->fd);
	smtp_io_free(&c->io);
	sbuf_free(&c->out);
	sbuf_free(&c->ehlo);
	free(c);
	*cp = NULL;
}

void smtp_client_quit(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;
	struct smtp_reply reply;

	if (c == NULL)
		return;
	if (c->usable) {
		/* The message is settled; do not let a slow goodbye hold
		 * the worker. */
		set_timeouts(c->fd, QUIT_TIMEOUT);
		smtp_reply_init(&reply);
		(void)smtp_client_command(c, &reply, "QUIT");
		smtp_reply_free(&reply);
	}
	smtp_client_free(cp);
}
