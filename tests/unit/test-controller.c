/*
 * test-controller.c - libaiosmtpd against the daemon just built
 *
 * Each test starts real daemons through the library (AIOSMTPD_DAEMON
 * names the binary; make check sets it), talks SMTP or LMTP to them over
 * loopback, and checks what the library hands back and what it leaves
 * behind: every test ends with no daemon process and an empty TMPDIR,
 * which main() points at a directory of its own.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "aiosmtpd/controller.h"

#define WAIT_MS 10000
#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[] = "/tmp/test-controller.XXXXXX";

/* --- a small SMTP client ------------------------------------------------- */

struct conn {
	int fd;
	char buf[8192];
	size_t len;
	char last[1024]; /* the last reply, lines joined by LF */
};

static void conn_open(struct conn *c, const char *host, unsigned port)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct timeval tv = {10, 0};
	socklen_t len;

	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		len = sizeof(*sin);
	} else {
		assert_int_equal(inet_pton(AF_INET6, host, &sin6->sin6_addr),
				 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		len = sizeof(*sin6);
	}
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&ss, len) < 0)
		fail_msg("connect(%s:%u) failed: %s", host, port,
			 strerror(errno));
}

static void conn_close(struct conn *c)
{
	close(c->fd);
}

/* conn_line - one line without its CRLF */
static void conn_line(struct conn *c, char *line, size_t size)
{
	char *nl;
	ssize_t n;

	while ((nl = memchr(c->buf, '\n', c->len)) == NULL) {
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n <= 0)
			fail_msg("the server closed or timed out");
		c->len += (size_t)n;
	}
	snprintf(line, size, "%.*s", (int)(nl - c->buf), c->buf);
	if (strlen(line) > 0 && line[strlen(line) - 1] == '\r')
		line[strlen(line) - 1] = '\0';
	c->len -= (size_t)(nl + 1 - c->buf);
	memmove(c->buf, nl + 1, c->len);
}

/* conn_reply - a whole reply into c->last; returns its code */
static int conn_reply(struct conn *c)
{
	char line[1024];

	c->last[0] = '\0';
	do {
		conn_line(c, line, sizeof(line));
		snprintf(c->last + strlen(c->last),
			 sizeof(c->last) - strlen(c->last), "%s\n", line);
	} while (line[3] == '-');
	return atoi(line);
}

static void conn_send(struct conn *c, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

		assert_true(n > 0);
		data += n;
		len -= (size_t)n;
	}
}

static int conn_cmd(struct conn *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	strcat(line, "\r\n");
	conn_send(c, line, strlen(line));
	return conn_reply(c);
}

/* conn_data - DATA, the content dot-stuffed, the final dot (after a CRLF
 * of its own when the content does not end with one); the reply */
static int conn_data(struct conn *c, const char *content, size_t len)
{
	size_t start = 0;

	assert_int_equal(conn_cmd(c, "DATA"), 354);
	for (size_t i = 0; i <= len; i++) {
		bool line_start = i == 0 || (content[i - 1] == '\n' && i >= 2 &&
					     content[i - 2] == '\r');

		if (i < len && line_start && content[i] == '.') {
			conn_send(c, content + start, i - start);
			conn_send(c, ".", 1);
			start = i;
		}
	}
	conn_send(c, content + start, len - start);
	if (len >= 2 && memcmp(content + len - 2, "\r\n", 2) == 0)
		conn_send(c, ".\r\n", 3);
	else
		conn_send(c, "\r\n.\r\n", 5);
	return conn_reply(c);
}

/* send_one - a whole session: greeting, EHLO, one message, QUIT; the
 * reply code after the final dot */
static int send_one(const struct aiosmtpd_controller *ctl, const char *from,
		    const char *to, const char *content)
{
	struct conn c;
	int code;

	conn_open(&c, aiosmtpd_controller_host(ctl),
		  aiosmtpd_controller_port(ctl));
	assert_int_equal(conn_reply(&c), 220);
	assert_int_equal(conn_cmd(&c, "EHLO client.test"), 250);
	assert_int_equal(conn_cmd(&c, "MAIL FROM:<%s>", from), 250);
	assert_int_equal(conn_cmd(&c, "RCPT TO:<%s>", to), 250);
	code = conn_data(&c, content, strlen(content));
	conn_cmd(&c, "QUIT");
	conn_close(&c);
	return code;
}

/* --- what is left behind ------------------------------------------------- */

static size_t entries_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/* group_gone - no process is left in the group, within a few seconds
 * (for the cases where init, not the watchdog, reaps the last ones) */
static bool group_gone(pid_t pgid)
{
	const struct timespec pause = {0, 20 * 1000000L};

	for (int i = 0; i < 500; i++) {
		if (kill(-pgid, 0) < 0 && errno == ESRCH)
			return true;
		nanosleep(&pause, NULL);
	}
	return false;
}

static bool path_gone(const char *path)
{
	struct stat st;

	return stat(path, &st) < 0 && errno == ENOENT;
}

/* stop_and_check - stop; the daemon's group and directory are gone */
static void stop_and_check(struct aiosmtpd_controller **ctl, int want)
{
	pid_t pid = aiosmtpd_controller_pid(*ctl);
	char dir[512];
	struct aiosmtpd_error err = {0};

	snprintf(dir, sizeof(dir), "%s", aiosmtpd_controller_directory(*ctl));
	if (aiosmtpd_controller_stop(ctl, &err) != want)
		fail_msg("stop: %s", err.text);
	assert_null(*ctl);
	assert_true(group_gone(pid));
	assert_true(path_gone(dir));
}

static struct aiosmtpd_controller *start(const struct aiosmtpd_options *o)
{
	struct aiosmtpd_error err = {0};
	struct aiosmtpd_controller *ctl = aiosmtpd_controller_start(o, &err);

	if (ctl == NULL)
		fail_msg("start: %s", err.text);
	return ctl;
}

/* --- tests --------------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct aiosmtpd_controller *ctl = start(NULL);
	const struct aiosmtpd_message *m;
	struct aiosmtpd_error err;
	char path[600];

	assert_string_equal(aiosmtpd_controller_host(ctl), "127.0.0.1");
	assert_int_not_equal(aiosmtpd_controller_port(ctl), 0);
	assert_true(aiosmtpd_controller_pid(ctl) > 0);
	snprintf(path, sizeof(path), "%s/aiosmtpd.conf",
		 aiosmtpd_controller_directory(ctl));
	assert_false(path_gone(path));
	assert_int_equal(strncmp(aiosmtpd_controller_directory(ctl), tmpdir,
				 strlen(tmpdir)),
			 0);

	assert_int_equal(aiosmtpd_controller_count(ctl, &err), 0);
	assert_null(aiosmtpd_controller_message(ctl, 0));
	assert_int_equal(send_one(ctl, "a@example.com", "b@example.com",
				  "Subject: hi\r\n\r\n.dot\r\nbare\nlf\r\n"),
			 250);
	assert_int_equal(aiosmtpd_controller_wait(ctl, 1, WAIT_MS, &err), 0);
	m = aiosmtpd_controller_message(ctl, 0);
	assert_non_null(m);
	assert_string_equal(m->mail_from, "a@example.com");
	assert_int_equal(m->n_rcpt_tos, 1);
	assert_string_equal(m->rcpt_tos[0], "b@example.com");
	assert_string_equal(m->content,
			    "Subject: hi\r\n\r\n.dot\r\nbare\nlf\r\n");
	assert_string_equal(m->helo, "client.test");
	assert_string_equal(m->peer_address, "127.0.0.1");
	assert_int_not_equal(m->peer_port, 0);
	assert_int_equal(m->n_mail_options, 0);

	assert_int_equal(aiosmtpd_controller_clear(ctl, &err), 0);
	assert_int_equal(aiosmtpd_controller_count(ctl, &err), 0);
	assert_null(aiosmtpd_controller_message(ctl, 0));
	assert_int_equal(
		send_one(ctl, "c@example.com", "d@example.com", "x\r\n"), 250);
	assert_int_equal(aiosmtpd_controller_wait(ctl, 1, WAIT_MS, &err), 0);
	assert_int_equal(aiosmtpd_controller_count(ctl, &err), 1);
	assert_string_equal(aiosmtpd_controller_message(ctl, 0)->mail_from,
			    "c@example.com");
	stop_and_check(&ctl, 0);
	assert_int_equal(aiosmtpd_controller_stop(&ctl, NULL), 0);
}

/* test_order - messages keep their index and their arrival order */
static void test_order(void **state)
{
	struct aiosmtpd_controller *ctl = start(NULL);
	struct aiosmtpd_error err;
	const struct aiosmtpd_message *first;
	char from[64];

	for (int i = 0; i < 10; i++) {
		snprintf(from, sizeof(from), "s%d@example.com", i);
		assert_int_equal(send_one(ctl, from, "r@example.com", "x\r\n"),
				 250);
		if (i == 4) {
			assert_int_equal(
				aiosmtpd_controller_wait(ctl, 5, WAIT_MS, &err),
				0);
		}
	}
	first = aiosmtpd_controller_message(ctl, 0);
	assert_int_equal(aiosmtpd_controller_wait(ctl, 10, WAIT_MS, &err), 0);
	assert_ptr_equal(aiosmtpd_controller_message(ctl, 0), first);
	for (int i = 0; i < 10; i++) {
		snprintf(from, sizeof(from), "s%d@example.com", i);
		assert_string_equal(
			aiosmtpd_controller_message(ctl, (size_t)i)->mail_from,
			from);
	}
	stop_and_check(&ctl, 0);
}

static void test_wait_timeout(void **state)
{
	struct aiosmtpd_controller *ctl = start(NULL);
	struct aiosmtpd_error err = {0};

	assert_int_equal(aiosmtpd_controller_wait(ctl, 1, 200, &err), -1);
	assert_int_equal(err.code, AIOSMTPD_ERROR_TIMEOUT);
	assert_string_equal(err.text, "0 of 1 messages arrived within 200 ms");
	assert_int_equal(aiosmtpd_controller_wait(ctl, 0, 0, &err), 0);
	stop_and_check(&ctl, 0);
}

static void test_option_errors(void **state)
{
	static const struct aiosmtpd_user nameless[] = {{NULL, "pw"}};
	const struct {
		struct aiosmtpd_options o;
		const char *text;
	} cases[] = {
		{{.port = 65536}, "port must be 0 to 65535"},
		{{.tls_cert = "/c"}, "tls_cert and tls_key go together"},
		{{.tls_implicit = true},
		 "tls_implicit and require_starttls need tls_cert"},
		{{.tls_cert = "/c",
		  .tls_key = "/k",
		  .tls_implicit = true,
		  .require_starttls = true},
		 "require_starttls is for STARTTLS, not tls_implicit"},
		{{.auth_required = true},
		 "auth_required and auth_require_tls need auth_users"},
		{{.handler_args = (const char *const[]){"x", NULL}},
		 "handler_args need a handler"},
		{{.auth_users = nameless, .n_auth_users = 1},
		 "every auth user needs a name and a password"},
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct aiosmtpd_error err = {0};

		assert_null(aiosmtpd_controller_start(&cases[i].o, &err));
		assert_int_equal(err.code, AIOSMTPD_ERROR_USAGE);
		assert_string_equal(err.text, cases[i].text);
	}
	assert_int_equal(entries_in(tmpdir), 0);
}

static void test_no_daemon(void **state)
{
	struct aiosmtpd_options o = {.daemon = "/nonexistent/aiosmtpd"};
	struct aiosmtpd_error err = {0};

	assert_null(aiosmtpd_controller_start(&o, &err));
	assert_int_equal(err.code, AIOSMTPD_ERROR_USAGE);
	assert_non_null(strstr(err.text, "/nonexistent/aiosmtpd"));
	assert_int_equal(entries_in(tmpdir), 0);
	/* NULL for the error is fine */
	assert_null(aiosmtpd_controller_start(&o, NULL));
	assert_int_equal(entries_in(tmpdir), 0);
}

/* test_daemon_refuses - the daemon's own words come back */
static void test_daemon_refuses(void **state)
{
	struct aiosmtpd_options o = {.config = "tiemout = 5;"};
	struct aiosmtpd_error err = {0};

	assert_null(aiosmtpd_controller_start(&o, &err));
	assert_int_equal(err.code, AIOSMTPD_ERROR_DAEMON);
	assert_non_null(strstr(err.text, "exited with status 78"));
	assert_non_null(strstr(err.text, "unknown setting 'tiemout'"));
	assert_int_equal(entries_in(tmpdir), 0);
}

/* test_start_timeout - a "daemon" that never gets ready is stopped, and
 * so is what it started */
static void test_start_timeout(void **state)
{
	char dir[] = "/tmp/test-controller-bin.XXXXXX", script[128];
	char pidfile[128], cmd[300];
	struct aiosmtpd_options o = {.daemon = script, .start_timeout_ms = 300};
	struct aiosmtpd_error err = {0};
	int pid = 0;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/never-ready", dir);
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	assert_non_null(f = fopen(script, "w"));
	fprintf(f, "#!/bin/sh\necho $$ > %s\nsleep 60 & sleep 60\n", pidfile);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(script, 0700), 0);

	assert_null(aiosmtpd_controller_start(&o, &err));
	assert_int_equal(err.code, AIOSMTPD_ERROR_TIMEOUT);
	assert_non_null(strstr(err.text, "was not ready within 300 ms"));
	assert_non_null(f = fopen(pidfile, "r"));
	assert_int_equal(fscanf(f, "%d", &pid), 1);
	fclose(f);
	assert_true(group_gone(pid)); /* the shell and both sleeps */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* test_options - size limit, SMTPUTF8, a fixed port, another handler */
static void test_options(void **state)
{
	struct aiosmtpd_options o = {.data_size_limit = 100,
				     .smtputf8 = true,
				     .hostname = "mx.test"};
	struct aiosmtpd_controller *ctl = start(&o);
	struct aiosmtpd_error err;
	struct conn c;
	char big[201];

	conn_open(&c, "127.0.0.1", aiosmtpd_controller_port(ctl));
	assert_int_equal(conn_reply(&c), 220);
	assert_non_null(strstr(c.last, "mx.test"));
	assert_int_equal(conn_cmd(&c, "EHLO x"), 250);
	assert_non_null(strstr(c.last, "250-SIZE 100\n"));
	assert_non_null(strstr(c.last, "SMTPUTF8"));
	assert_int_equal(conn_cmd(&c, "MAIL FROM:<j\xc3\xb6rg@x> SMTPUTF8"),
			 250);
	assert_int_equal(conn_cmd(&c, "RCPT TO:<y@x>"), 250);
	memset(big, 'a', 200);
	big[200] = '\0';
	assert_int_equal(conn_data(&c, big, 200), 552);
	assert_int_equal(conn_cmd(&c, "MAIL FROM:<j\xc3\xb6rg@x> SMTPUTF8"),
			 250);
	assert_int_equal(conn_cmd(&c, "RCPT TO:<y@x>"), 250);
	assert_int_equal(conn_data(&c, "small\r\n", 7), 250);
	conn_close(&c);
	assert_int_equal(aiosmtpd_controller_wait(ctl, 1, WAIT_MS, &err), 0);
	assert_string_equal(aiosmtpd_controller_message(ctl, 0)->mail_from,
			    "j\xc3\xb6rg@x");
	assert_string_equal(
		aiosmtpd_controller_message(ctl, 0)->mail_options[0],
		"SMTPUTF8");
	assert_int_equal(aiosmtpd_controller_count(ctl, &err), 1);
	stop_and_check(&ctl, 0);
}

/* free_port - a port nobody listens on right now */
static unsigned free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* test_fixed_port_and_handler - the port asked for; Mailbox with its
 * argument stores the mail, and nothing is recorded */
static void test_fixed_port_and_handler(void **state)
{
	char dir[] = "/tmp/test-controller-mbox.XXXXXX", path[128];
	const char *args[] = {path, NULL};
	struct aiosmtpd_options o = {.port = free_port(),
				     .handler = "Mailbox",
				     .handler_args = args};
	struct aiosmtpd_controller *ctl;
	struct aiosmtpd_error err;
	char cmd[200];

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/Maildir", dir);
	ctl = start(&o);
	assert_int_equal(aiosmtpd_controller_port(ctl), o.port);
	assert_int_equal(send_one(ctl, "a@x", "b@x", "x\r\n"), 250);
	assert_int_equal(aiosmtpd_controller_count(ctl, &err), 0);
	stop_and_check(&ctl, 0);
	snprintf(cmd, sizeof(cmd), "%s/new", path);
	assert_int_equal(entries_in(cmd), 1);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_lmtp(void **state)
{
	struct aiosmtpd_options o = {.lmtp = true};
	struct aiosmtpd_controller *ctl = start(&o);
	const struct aiosmtpd_message *m;
	struct aiosmtpd_error err;
	struct conn c;

	conn_open(&c, "127.0.0.1", aiosmtpd_controller_port(ctl));
	assert_int_equal(conn_reply(&c), 220);
	assert_int_equal(conn_cmd(&c, "EHLO x"), 500);
	assert_int_equal(conn_cmd(&c, "LHLO lmtp.client"), 250);
	assert_int_equal(conn_cmd(&c, "MAIL FROM:<>"), 250);
	assert_int_equal(conn_cmd(&c, "RCPT TO:<one@x>"), 250);
	assert_int_equal(conn_cmd(&c, "RCPT TO:<two@x>"), 250);
	assert_int_equal(conn_data(&c, "x\r\n", 3), 250);
	assert_int_equal(conn_reply(&c), 250); /* one per recipient */
	conn_close(&c);
	assert_int_equal(aiosmtpd_controller_wait(ctl, 1, WAIT_MS, &err), 0);
	m = aiosmtpd_controller_message(ctl, 0);
	assert_string_equal(m->mail_from, "<>");
	assert_string_equal(m->helo, "lmtp.client");
	assert_int_equal(m->n_rcpt_tos, 2);
	assert_string_equal(m->rcpt_tos[1], "two@x");
	stop_and_check(&ctl, 0);
}

/* test_ipv6 - "::1", where the host has it */
static void test_ipv6(void **state)
{
	struct aiosmtpd_options o = {.host = "::1"};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
				    .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	struct aiosmtpd_controller *ctl;
	struct aiosmtpd_error err;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	bool have = fd >= 0 &&
		    bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;

	if (fd >= 0)
		close(fd);
	if (!have)
		skip();
	ctl = start(&o);
	assert_string_equal(aiosmtpd_controller_host(ctl), "::1");
	assert_int_equal(send_one(ctl, "a@x", "b@x", "x\r\n"), 250);
	assert_int_equal(aiosmtpd_controller_wait(ctl, 1, WAIT_MS, &err), 0);
	assert_string_equal(aiosmtpd_controller_message(ctl, 0)->peer_address,
			    "::1");
	stop_and_check(&ctl, 0);
}

/* test_tls_and_auth - handed to the daemon; one without TLS or AUTH
 * refuses them with its own words, one with them must work */
static void test_tls_and_auth(void **state)
{
	static const struct aiosmtpd_user users[] = {{"alice", "s3cret"}};
	struct aiosmtpd_options tls = {.tls_cert = "/nonexistent/cert.pem",
				       .tls_key = "/nonexistent/key.pem"};
	struct aiosmtpd_options auth = {.auth_users = users, .n_auth_users = 1};
	struct aiosmtpd_controller *ctl;
	struct aiosmtpd_error err = {0};
	struct conn c;

	/* No daemon accepts a certificate that is not there: one without
	 * TLS refuses the setting, one with TLS the file. */
	assert_null(aiosmtpd_controller_start(&tls, &err));
	assert_int_equal(err.code, AIOSMTPD_ERROR_DAEMON);
	if (strstr(err.text, "unknown setting 'tls'") == NULL &&
	    strstr(err.text, "/nonexistent/cert.pem") == NULL)
		fail_msg("%s", err.text);
	assert_int_equal(entries_in(tmpdir), 0);

	ctl = aiosmtpd_controller_start(&auth, &err);
	if (ctl == NULL && err.code == AIOSMTPD_ERROR_SYSTEM &&
	    strstr(err.text, "saslpasswd2") != NULL)
		skip(); /* not installed */
	if (ctl == NULL) {
		assert_int_equal(err.code, AIOSMTPD_ERROR_DAEMON);
		assert_non_null(strstr(err.text, "unknown setting 'auth'"));
		assert_int_equal(entries_in(tmpdir), 0);
		return;
	}
	conn_open(&c, "127.0.0.1", aiosmtpd_controller_port(ctl));
	assert_int_equal(conn_reply(&c), 220);
	assert_int_equal(conn_cmd(&c, "EHLO x"), 250);
	/* "\0alice\0s3cret" */
	assert_int_equal(conn_cmd(&c, "AUTH PLAIN AGFsaWNlAHMzY3JldA=="), 235);
	assert_int_equal(conn_cmd(&c, "MAIL FROM:<a@x>"), 250);
	assert_int_equal(conn_cmd(&c, "RCPT TO:<b@x>"), 250);
	assert_int_equal(conn_data(&c, "x\r\n", 3), 250);
	conn_close(&c);
	assert_int_equal(aiosmtpd_controller_wait(ctl, 1, WAIT_MS, &err), 0);
	assert_non_null(aiosmtpd_controller_message(ctl, 0)->auth_user);
	stop_and_check(&ctl, 0);
}

/* test_daemon_dies - a wait learns it at once; stop says so and still
 * cleans up */
static void test_daemon_dies(void **state)
{
	struct aiosmtpd_controller *ctl = start(NULL);
	struct aiosmtpd_error err = {0};

	assert_int_equal(kill(aiosmtpd_controller_pid(ctl), SIGKILL), 0);
	assert_int_equal(aiosmtpd_controller_wait(ctl, 1, 60000, &err), -1);
	assert_int_equal(err.code, AIOSMTPD_ERROR_DAEMON);
	assert_non_null(strstr(err.text, "killed by signal 9 while running"));
	stop_and_check(&ctl, -1);
}

/* test_watchdog_dies - the daemon goes with it (PR_SET_PDEATHSIG) and
 * the library removes the directory itself */
static void test_watchdog_dies(void **state)
{
	struct aiosmtpd_controller *ctl = start(NULL);
	pid_t pid = aiosmtpd_controller_pid(ctl);
	char path[64], line[512];
	long watchdog = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	/* pid (comm) state ppid ... */
	assert_int_equal(sscanf(strrchr(line, ')') + 2, "%*c %ld", &watchdog),
			 1);
	assert_true(watchdog > 1);
	assert_int_equal(kill((pid_t)watchdog, SIGKILL), 0);
	assert_true(group_gone(pid));
	stop_and_check(&ctl, -1);
}

/* run_child - fork; the child runs fn and exits as fn says; returns the
 * first line the child wrote to the pipe */
static pid_t run_child(void (*fn)(int out), char *line, size_t size)
{
	int p[2];
	pid_t pid;
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	/* The child's exit must not write our buffered output again. */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		fn(p[1]);
		_exit(99); /* fn does not return */
	}
	close(p[1]);
	n = read(p[0], line, size - 1);
	close(p[0]);
	assert_true(n > 0);
	line[n] = '\0';
	return pid;
}

static void start_and_tell(int out)
{
	struct aiosmtpd_controller *ctl = aiosmtpd_controller_start(NULL, NULL);
	char line[600];

	if (ctl == NULL)
		_exit(2);
	snprintf(line, sizeof(line), "%d %s\n",
		 (int)aiosmtpd_controller_pid(ctl),
		 aiosmtpd_controller_directory(ctl));
	if (write(out, line, strlen(line)) < 0)
		_exit(3);
}

static void child_exits(int out)
{
	start_and_tell(out);
	exit(0); /* the atexit handler stops it */
}

static void child_is_killed(int out)
{
	start_and_tell(out);
	for (;;)
		pause();
}

static void check_gone_after(pid_t child, const char *line, int want)
{
	char dir[600];
	int status, daemon;

	assert_int_equal(sscanf(line, "%d %599s", &daemon, dir), 2);
	assert_int_equal(waitpid(child, &status, 0), child);
	if (want < 0)
		assert_true(WIFSIGNALED(status));
	else
		assert_int_equal(WEXITSTATUS(status), want);
	assert_true(group_gone(daemon));
	for (int i = 0; i < 500 && !path_gone(dir); i++)
		usleep(20000);
	assert_true(path_gone(dir));
	assert_int_equal(entries_in(tmpdir), 0);
}

/* test_exit_and_kill - a test process that exits without stopping, or is
 * killed with SIGKILL, leaves nothing behind */
static void test_exit_and_kill(void **state)
{
	char line[700];
	pid_t child;

	child = run_child(child_exits, line, sizeof(line));
	check_gone_after(child, line, 0);
	child = run_child(child_is_killed, line, sizeof(line));
	assert_int_equal(kill(child, SIGKILL), 0);
	check_gone_after(child, line, -1);
}

/* test_many - controllers are independent of each other */
static void test_many(void **state)
{
	struct aiosmtpd_controller *ctl[5];
	struct aiosmtpd_error err;
	char to[32];

	for (size_t i = 0; i < N_ELEMENTS(ctl); i++)
		ctl[i] = start(NULL);
	for (size_t i = 0; i < N_ELEMENTS(ctl); i++) {
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(aiosmtpd_controller_port(ctl[i]),
					     aiosmtpd_controller_port(ctl[j]));
		snprintf(to, sizeof(to), "to%zu@x", i);
		assert_int_equal(send_one(ctl[i], "a@x", to, "x\r\n"), 250);
	}
	/* stopping one leaves the others running */
	stop_and_check(&ctl[0], 0);
	for (size_t i = 1; i < N_ELEMENTS(ctl); i++) {
		snprintf(to, sizeof(to), "to%zu@x", i);
		assert_int_equal(
			aiosmtpd_controller_wait(ctl[i], 1, WAIT_MS, &err), 0);
		assert_int_equal(aiosmtpd_controller_count(ctl[i], &err), 1);
		assert_string_equal(
			aiosmtpd_controller_message(ctl[i], 0)->rcpt_tos[0],
			to);
	}
	for (size_t i = 1; i < N_ELEMENTS(ctl); i++)
		stop_and_check(&ctl[i], 0);
}

/* nothing_left - after every test: TMPDIR is empty */
static int nothing_left(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	int left = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		fprintf(stderr, "left behind: %s/%s\n", tmpdir, de->d_name);
		left = -1;
	}
	if (d != NULL)
		closedir(d);
	return left;
}

static int cleanup_tmpdir(void **state)
{
	return rmdir(tmpdir);
}

#define TEST(f) cmocka_unit_test_teardown(f, nothing_left)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_defaults),
		TEST(test_order),
		TEST(test_wait_timeout),
		TEST(test_option_errors),
		TEST(test_no_daemon),
		TEST(test_daemon_refuses),
		TEST(test_start_timeout),
		TEST(test_options),
		TEST(test_fixed_port_and_handler),
		TEST(test_lmtp),
		TEST(test_ipv6),
		TEST(test_tls_and_auth),
		TEST(test_daemon_dies),
		TEST(test_watchdog_dies),
		TEST(test_exit_and_kill),
		TEST(test_many),
	};

	/* Everything the library makes goes here, so that a test can see
	 * that nothing is left. */
	if (mkdtemp(tmpdir) == NULL || setenv("TMPDIR", tmpdir, 1) < 0) {
		perror("test-controller: TMPDIR");
		return 1;
	}
	if (getenv("AIOSMTPD_DAEMON") == NULL)
		setenv("AIOSMTPD_DAEMON", "./aiosmtpd", 1);
	return cmocka_run_group_tests(tests, NULL, cleanup_tmpdir);
}
