/*
 * test-smtp_client.c - the forwarding client against a scripted server
 *
 * A child process plays the next hop on a UNIX socket: it greets, answers
 * each command by a fixed rule and records every octet it receives, so
 * the tests see exactly what went on the wire.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "alloc.h"
#include "sbuf.h"
#include "smtp_client.h"

enum behaviour {
	HOP_NORMAL,  /* 250 for everything, 354 for DATA */
	HOP_GARBLED, /* answers MAIL with nonsense */
	HOP_SILENT,  /* never answers MAIL */
	HOP_LMTP3,   /* three replies after the final dot */
};

struct hop {
	char dir[64];
	char sock[96];
	char capture[96];
	pid_t pid;
};

static void hop_write(int fd, const char *s)
{
	ssize_t n = write(fd, s, strlen(s));

	(void)n;
}

/* hop_answer - the reply to one line outside DATA */
static void hop_answer(int fd, const char *line, enum behaviour b,
		       bool *in_data)
{
	if (strncmp(line, "EHLO", 4) == 0 || strncmp(line, "LHLO", 4) == 0)
		hop_write(fd, "250-hop\r\n250-8BITMIME\r\n250 PIPELINING\r\n");
	else if (strncmp(line, "MAIL", 4) == 0 && b == HOP_GARBLED)
		hop_write(fd, "hello there\r\n");
	else if (strncmp(line, "MAIL", 4) == 0 && b == HOP_SILENT)
		pause();
	else if (strncmp(line, "DATA", 4) == 0) {
		hop_write(fd, "354 go\r\n");
		*in_data = true;
	} else if (strncmp(line, "QUIT", 4) == 0)
		hop_write(fd, "221 bye\r\n");
	else
		hop_write(fd, "250 ok\r\n");
}

/* hop_serve - the child: one connection, every octet recorded */
static void hop_serve(int lfd, const char *capture, enum behaviour b)
{
	FILE *out = fopen(capture, "w");
	int fd = accept(lfd, NULL, NULL);
	char buf[65536], line[4096];
	size_t ll = 0;
	bool in_data = false;
	ssize_t n;

	hop_write(fd, "220 hop ready\r\n");
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		fwrite(buf, 1, (size_t)n, out);
		fflush(out);
		for (ssize_t i = 0; i < n; i++) {
			if (ll < sizeof(line) - 1)
				line[ll++] = buf[i];
			if (buf[i] != '\n')
				continue;
			line[ll] = '\0';
			ll = 0;
			if (!in_data) {
				hop_answer(fd, line, b, &in_data);
			} else if (strcmp(line, ".\r\n") == 0) {
				in_data = false;
				hop_write(fd, b == HOP_LMTP3
						      ? "250 a\r\n550-b\r\n"
							"550 b2\r\n451 c\r\n"
						      : "250 queued\r\n");
			}
		}
	}
	fclose(out);
	_exit(0);
}

static void hop_start(struct hop *h, enum behaviour b)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int lfd;

	strcpy(h->dir, "/tmp/test-smtp_client.XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(h->sock, sizeof(h->sock), "%s/s", h->dir);
	snprintf(h->capture, sizeof(h->capture), "%s/c", h->dir);
	strcpy(sun.sun_path, h->sock);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	h->pid = fork();
	assert_true(h->pid >= 0);
	if (h->pid == 0)
		hop_serve(lfd, h->capture, b);
	close(lfd);
}

/* hop_stop - wait for the child and return what it received */
static char *hop_stop(struct hop *h)
{
	char cmd[160];
	FILE *f;
	struct sbuf sb;
	int c;

	kill(h->pid, SIGTERM);
	waitpid(h->pid, NULL, 0);
	sbuf_init(&sb, 1024);
	if ((f = fopen(h->capture, "r")) != NULL) {
		while ((c = fgetc(f)) != EOF)
			sbuf_putc(&sb, (char)c);
		fclose(f);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	assert_int_equal(system(cmd), 0);
	return sbuf_detach(&sb);
}

static void conf_for(struct smtp_client_conf *conf, const struct hop *h)
{
	smtp_client_conf_init(conf);
	conf->target = xstrdup(h->sock);
	conf->timeout = 1;
}

/* --- content on the wire ------------------------------------------------- */

struct data_case {
	const char *in;
	const char *wire; /* what follows "DATA\r\n", final dot included */
};

static const struct data_case datas[] = {
	{"", ".\r\n"},
	{"a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
	{"no end", "no end\r\n.\r\n"},
	{".x\r\n..y\r\n", "..x\r\n...y\r\n.\r\n"},
	/* bare LF and bare CR end lines, so the dot after them is stuffed */
	{"a\n.\r\nMAIL FROM:<e@x>\r\n", "a\r\n..\r\nMAIL FROM:<e@x>\r\n.\r\n"},
	{"a\r.\r\nb", "a\r\n..\r\nb\r\n.\r\n"},
	{"a\r", "a\r\n.\r\n"},
	{"\r\r\n\n", "\r\n\r\n\r\n.\r\n"},
	{"abc.def\r\nxyz\n.uvw\rend", "abc.def\r\nxyz\r\n..uvw\r\nend\r\n.\r\n"},
	{"..\r\n.", "...\r\n..\r\n.\r\n"},
};

/* Each case goes in whole, then in pieces of 1, 2 and 3 octets, so a
 * piece ends everywhere: between CR and LF, just before a dot. */
static const size_t pieces[] = {SIZE_MAX, 1, 2, 3};

static void data_in_pieces(struct smtp_client *c, const char *in, size_t len,
			   size_t piece)
{
	for (size_t j = 0; j < len; j += piece)
		smtp_client_data(c, in + j, len - j < piece ? len - j : piece);
}

static void test_data(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(datas); i++) {
		struct smtp_client_conf conf;
		struct smtp_reply reply;
		struct smtp_client *c;
		struct sbuf want;
		struct hop h;
		char *wire;

		hop_start(&h, HOP_NORMAL);
		conf_for(&conf, &h);
		smtp_reply_init(&reply);
		sbuf_init(&want, 256);
		sbuf_puts(&want, "EHLO us.example\r\n");
		c = smtp_client_connect(&conf, "us.example", "TEST", &reply);
		assert_non_null(c);
		assert_true(smtp_client_offers(c, "PIPELINING"));
		assert_false(smtp_client_offers(c, "PIPE"));
		for (size_t k = 0; k < N_ELEMENTS(pieces); k++) {
			assert_int_equal(
				smtp_client_command(c, &reply, "DATA"), 354);
			data_in_pieces(c, datas[i].in, strlen(datas[i].in),
				       pieces[k]);
			smtp_client_data_end(c);
			assert_int_equal(smtp_client_read_reply(c, &reply),
					 250);
			sbuf_printf(&want, "DATA\r\n%s", datas[i].wire);
		}
		smtp_client_quit(&c);
		wire = hop_stop(&h);
		sbuf_puts(&want, "QUIT\r\n");
		assert_string_equal(wire, want.data);
		free(wire);
		sbuf_free(&want);
		smtp_reply_free(&reply);
		smtp_client_conf_free(&conf);
	}
}

/* normalise - what smtp_client_data() is to send, one octet at a time */
static void normalise(struct sbuf *out, const char *in, size_t len)
{
	bool bol = true, cr = false;

	for (size_t i = 0; i < len; i++) {
		if (cr) {
			sbuf_puts(out, "\r\n");
			cr = false;
			bol = true;
			if (in[i] == '\n')
				continue;
		}
		if (in[i] == '\r' || in[i] == '\n') {
			if (in[i] == '\n')
				sbuf_puts(out, "\r\n");
			cr = in[i] == '\r';
			bol = in[i] == '\n';
			continue;
		}
		if (bol && in[i] == '.')
			sbuf_putc(out, '.');
		sbuf_putc(out, in[i]);
		bol = false;
	}
	if (cr || !bol)
		sbuf_puts(out, "\r\n");
	sbuf_puts(out, ".\r\n");
}

/* A large message of lines of every length, long runs without a line
 * end among them, in pieces of many sizes, against the octet-at-a-time
 * rule. */
static void test_data_large(void **state)
{
	static const char special[] = ".\r\n";
	size_t len = 300 * 1024, piece_sizes[] = {SIZE_MAX, 7, 4096, 65537};
	struct smtp_client_conf conf;
	struct smtp_reply reply;
	struct smtp_client *c;
	struct sbuf want;
	struct hop h;
	char *in = xmalloc(len), *wire;
	unsigned seed = 7;

	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245 + 12345;
		if (i > len / 2 && i < len / 2 + 100000)
			in[i] = 'x'; /* a long stretch without a line end */
		else if ((seed >> 16) % 4 != 0)
			in[i] = 'a';
		else
			in[i] = special[(seed >> 18) % 3];
	}
	hop_start(&h, HOP_NORMAL);
	conf_for(&conf, &h);
	smtp_reply_init(&reply);
	sbuf_init(&want, 1024);
	sbuf_puts(&want, "EHLO us\r\n");
	c = smtp_client_connect(&conf, "us", "TEST", &reply);
	assert_non_null(c);
	for (size_t k = 0; k < N_ELEMENTS(piece_sizes); k++) {
		assert_int_equal(smtp_client_command(c, &reply, "DATA"), 354);
		data_in_pieces(c, in, len, piece_sizes[k]);
		smtp_client_data_end(c);
		assert_int_equal(smtp_client_read_reply(c, &reply), 250);
		sbuf_puts(&want, "DATA\r\n");
		normalise(&want, in, len);
	}
	smtp_client_quit(&c);
	wire = hop_stop(&h);
	sbuf_puts(&want, "QUIT\r\n");
	assert_int_equal(strlen(wire), want.len);
	assert_memory_equal(wire, want.data, want.len);
	free(wire);
	free(in);
	sbuf_free(&want);
	smtp_reply_free(&reply);
	smtp_client_conf_free(&conf);
}

/* --- replies ------------------------------------------------------------- */

static void test_multiline_replies(void **state)
{
	struct smtp_client_conf conf;
	struct smtp_reply reply;
	struct smtp_client *c;
	struct hop h;

	hop_start(&h, HOP_LMTP3);
	conf_for(&conf, &h);
	conf.lmtp = true;
	smtp_reply_init(&reply);
	c = smtp_client_connect(&conf, "us", "TEST", &reply);
	assert_non_null(c);
	assert_int_equal(smtp_client_command(c, &reply, "DATA"), 354);
	smtp_client_data_end(c);
	assert_int_equal(smtp_client_read_reply(c, &reply), 250);
	assert_string_equal(reply.text.data, "250 a");
	assert_int_equal(smtp_client_read_reply(c, &reply), 550);
	assert_string_equal(reply.text.data, "550-b\r\n550 b2");
	assert_int_equal(smtp_client_read_reply(c, &reply), 451);
	assert_true(smtp_client_usable(c));
	smtp_client_quit(&c);
	free(hop_stop(&h));
	smtp_reply_free(&reply);
	smtp_client_conf_free(&conf);
}

static void test_failures(void **state)
{
	struct smtp_client_conf conf;
	struct smtp_reply reply;
	struct smtp_client *c;
	struct hop h;

	/* nothing listens: made-up 451 4.4.1 */
	smtp_client_conf_init(&conf);
	conf.target = xstrdup("unix:/nonexistent/socket");
	smtp_reply_init(&reply);
	assert_null(smtp_client_connect(&conf, "us", "TEST", &reply));
	assert_int_equal(reply.code, 451);
	assert_string_equal(reply.text.data, "451 4.4.1 Next hop not "
					     "reachable, try again later");
	smtp_client_conf_free(&conf);

	/* nonsense instead of a reply: 451 4.4.2, connection unusable */
	hop_start(&h, HOP_GARBLED);
	conf_for(&conf, &h);
	c = smtp_client_connect(&conf, "us", "TEST", &reply);
	assert_non_null(c);
	assert_int_equal(smtp_client_command(c, &reply, "MAIL FROM:<>"), 451);
	assert_string_equal(reply.text.data, "451 4.4.2 Next hop protocol "
					     "error, try again later");
	assert_false(smtp_client_usable(c));
	smtp_client_free(&c);
	free(hop_stop(&h));
	smtp_client_conf_free(&conf);

	/* no answer within the timeout */
	hop_start(&h, HOP_SILENT);
	conf_for(&conf, &h);
	c = smtp_client_connect(&conf, "us", "TEST", &reply);
	assert_non_null(c);
	assert_int_equal(smtp_client_command(c, &reply, "MAIL FROM:<>"), 451);
	assert_string_equal(reply.text.data, "451 4.4.2 Next hop timed out, "
					     "try again later");
	smtp_client_free(&c);
	free(hop_stop(&h));
	smtp_client_conf_free(&conf);
	smtp_reply_free(&reply);
}

static void test_options(void **state)
{
	struct smtp_client_conf conf;
	const char *error = NULL;

	smtp_client_conf_init(&conf);
	assert_int_equal(smtp_client_conf_set(&conf, "timeout=5", &error), 0);
	assert_int_equal(conf.timeout, 5);
	assert_int_equal(
		smtp_client_conf_set(&conf, "starttls=required", &error), 0);
	assert_int_equal(conf.tls, SMTP_CLIENT_TLS_REQUIRED);
	assert_int_equal(smtp_client_conf_set(&conf, "tls_verify=no", &error),
			 0);
	assert_false(conf.tls_verify);
	assert_int_equal(smtp_client_conf_set(&conf, "timeout=0", &error), -1);
	assert_string_equal(error, "timeouts are seconds from 1 to 86400");
	assert_int_equal(smtp_client_conf_set(&conf, "starttls=yes", &error),
			 -1);
	assert_int_equal(smtp_client_conf_set(&conf, "tiemout=1", &error), -1);
	assert_int_equal(smtp_client_conf_set(&conf, "timeout", &error), -1);
	assert_int_equal(smtp_client_check_target("unix:/run/lmtp", &error), 0);
	assert_int_equal(smtp_client_check_target("/run/lmtp", &error), 0);
	assert_int_equal(smtp_client_check_target("inet:h:24", &error), 0);
	assert_int_equal(smtp_client_check_target("[::1]:24", &error), 0);
	assert_int_equal(smtp_client_check_target("h:24", &error), 0);
	assert_int_equal(smtp_client_check_target("unix:run", &error), -1);
	assert_int_equal(smtp_client_check_target("h", &error), -1);
	assert_int_equal(smtp_client_check_target("h:0", &error), -1);
	assert_int_equal(smtp_client_check_target("h:24x", &error), -1);
	assert_int_equal(smtp_client_check_target("::1:24", &error), 0);
	smtp_client_conf_free(&conf);
}

/* conf_ready - the conf with these options, made ready */
static int conf_ready(struct smtp_client_conf *conf, const char *tls,
		      const char *verify, const char *ca, const char **error)
{
	smtp_client_conf_init(conf);
	assert_int_equal(smtp_client_conf_set(conf, tls, error), 0);
	assert_int_equal(smtp_client_conf_set(conf, verify, error), 0);
	if (ca != NULL)
		assert_int_equal(smtp_client_conf_set(conf, ca, error), 0);
	return smtp_client_conf_ready(conf, error);
}

static void test_tls_ready(void **state)
{
	struct smtp_client_conf conf;
	const char *error = NULL;

	assert_int_equal(conf_ready(&conf, "starttls=no", "tls_verify=yes",
				    "tls_ca=/nonexistent.pem", &error),
			 0);
	assert_null(conf.tls_state); /* no TLS: no context, no CAs read */
	smtp_client_conf_free(&conf);

	assert_int_equal(conf_ready(&conf, "starttls=required", "tls_verify=yes",
				    "tls_ca=/nonexistent.pem", &error),
			 -1);
	assert_string_equal(error,
			    "tls_ca /nonexistent.pem: No such file or directory");
	assert_null(conf.tls_state);
	smtp_client_conf_free(&conf);

	assert_int_equal(conf_ready(&conf, "starttls=required", "tls_verify=yes",
				    "tls_ca=/dev/null", &error),
			 -1);
	assert_string_equal(error, "tls_ca /dev/null: no CA certificate could "
				   "be loaded (no certificate or crl found)");
	smtp_client_conf_free(&conf);

	/* Without a check of the certificate the CAs are not needed. */
	assert_int_equal(conf_ready(&conf, "starttls=required", "tls_verify=no",
				    "tls_ca=/nonexistent.pem", &error),
			 0);
	assert_non_null(conf.tls_state);
	smtp_client_conf_free(&conf);
	assert_null(conf.tls_state);

	/* The system's CAs, and ready twice (a reload) keeps one context. */
	assert_int_equal(conf_ready(&conf, "starttls=required", "tls_verify=yes",
				    NULL, &error),
			 0);
	assert_int_equal(smtp_client_conf_ready(&conf, &error), 0);
	assert_non_null(conf.tls_state);
	smtp_client_conf_free(&conf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_data_large),
		cmocka_unit_test(test_multiline_replies),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_tls_ready),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
