/*
 * test-local.c - the Maildir handler: per-recipient Maildirs
 *
 * The hooks are called directly, as the session would call them, on
 * Maildirs under a temporary directory.
 */
#include "config.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "alloc.h"
#include "handler.h"
#include "sbuf.h"
#include "spool.h"

static struct aiosmtpd_session session = {
	.id = "0123456789AB",
	.peer_family = AF_INET,
	.peer_addr = "192.0.2.7",
	.peer_port = 4000,
	.host_name = "client.example",
	.extended_smtp = true,
	.local_name = "MX.Example",
};

static char root[64];

static int setup(void **state)
{
	strcpy(root, "/tmp/test-local.XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void *start(const char *template)
{
	char path[128], *argv[] = {path, NULL};
	const char *error = NULL;
	void *ctx;

	snprintf(path, sizeof(path), "%s/%s", root, template);
	ctx = handler_maildir.init(1, argv, &error);
	assert_non_null(ctx);
	return ctx;
}

/* the only file in root/sub/new, read whole; NULL when there is none */
static char *only_file(const char *sub, struct stat *st)
{
	char dir[160], path[512];
	struct dirent *de;
	struct sbuf sb;
	DIR *d;
	FILE *f;
	int c, n = 0;

	snprintf(dir, sizeof(dir), "%s/%s/new", root, sub);
	if ((d = opendir(dir)) == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	if (n == 0)
		return NULL;
	assert_int_equal(n, 1);
	assert_int_equal(stat(path, st), 0);
	assert_non_null(f = fopen(path, "r"));
	sbuf_init(&sb, 256);
	while ((c = fgetc(f)) != EOF)
		sbuf_putc(&sb, (char)c);
	fclose(f);
	return sbuf_detach(&sb);
}

static const char *data(void *ctx, const char *const *rcpts, size_t n,
			struct spool *spool)
{
	static const char content[] = "Subject: x\r\n\r\nbody\rline\n.\r\n";
	struct aiosmtpd_envelope e = {.mail_from = "Sender@x.org",
				      .rcpt_tos = rcpts,
				      .n_rcpt_tos = n};

	spool_reset(spool);
	assert_int_equal(spool_write(spool, content, strlen(content)), 0);
	e.content = spool_content(spool);
	e.content_size = spool_size(spool);
	return handler_maildir.handle_DATA(ctx, &session, &e);
}

static void test_init(void **state)
{
	char empty[] = "", bad[] = "/m/%x", *argv[] = {bad, NULL};
	const char *error = NULL;

	assert_null(handler_maildir.init(0, argv, &error));
	assert_string_equal(error, "Maildir usage: PATH (may hold %u, %d and "
				   "%%)");
	assert_null(handler_maildir.init(1, argv, &error));
	assert_string_equal(error, "Maildir: the path may hold only %u (local "
				   "part), %d (domain) and %%");
	argv[0] = empty;
	assert_null(handler_maildir.init(1, argv, &error));
}

struct rcpt_case {
	const char *address;
	bool ok;
};

static const struct rcpt_case rcpt_cases[] = {
	{"anne@example.com", true},
	{"postmaster", true}, /* the domain is ours */
	{"a b@example.com", true},
	{"../x@example.com", false},
	{"a/b@example.com", false},
	{".x@example.com", false},
	{"x@.example.com", false},
	{"x@a/b", false},
	{"@example.com", false},
	{"x@", false},
	{"a\x01@example.com", false},
};

static void test_rcpt(void **state)
{
	void *ctx = start("%d/%u");

	for (size_t i = 0; i < N_ELEMENTS(rcpt_cases); i++) {
		const char *r = handler_maildir.handle_RCPT(
			ctx, &session, NULL, rcpt_cases[i].address, NULL, 0);

		if (rcpt_cases[i].ok)
			assert_null(r);
		else
			assert_string_equal(r, "550 5.1.3 Recipient address "
					       "not deliverable here");
	}
	handler_maildir.cleanup(ctx);
}

static void test_deliver(void **state)
{
	static const char *const rcpts[] = {"anne@Example.COM",
					    "bob@example.com", "postmaster",
					    "Anne@example.com"};
	struct spool *spool = spool_new(NULL);
	void *ctx = start("%d/%u");
	struct stat st1, st2, st3;
	char *a, *b, *pm;
	const char *body;

	assert_null(data(ctx, rcpts, 4, spool));
	a = only_file("example.com/anne", &st1);
	b = only_file("example.com/bob", &st2);
	pm = only_file("mx.example/postmaster", &st3);
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(pm);
	/* one file; anne twice is one Maildir */
	assert_int_equal(st1.st_ino, st2.st_ino);
	assert_int_equal(st1.st_ino, st3.st_ino);
	assert_int_equal(st1.st_nlink, 3);
	assert_int_equal(st1.st_mode & 0777, 0600);
	assert_true(strncmp(a,
			    "Return-Path: <Sender@x.org>\n"
			    "Received: from client.example ([192.0.2.7])\n"
			    "\tby MX.Example (aiosmtpd-c) with ESMTP id "
			    "0123456789AB; ",
			    strlen("Return-Path: <Sender@x.org>\nReceived: "
				   "from client.example ([192.0.2.7])\n\tby "
				   "MX.Example (aiosmtpd-c) with ESMTP id "
				   "0123456789AB; ")) == 0);
	body = strstr(a, "\nSubject: x\n");
	assert_non_null(body);
	assert_string_equal(body, "\nSubject: x\n\nbody\nline\n.\n");
	free(a);
	free(b);
	free(pm);
	handler_maildir.cleanup(ctx);
	spool_free(&spool);
}

/* tapped - content through the Maildir tap in pieces of step octets, as
 * the session hands it over; the handler's reply */
static const char *tapped(void *ctx, const char *const *rcpts, size_t n,
			  struct spool *spool, const char *content,
			  size_t step, bool *streamed)
{
	struct aiosmtpd_envelope e = {.mail_from = "Sender@x.org",
				      .rcpt_tos = rcpts,
				      .n_rcpt_tos = n};
	size_t len = strlen(content);
	const char *p;
	size_t plen;

	spool_set_tap(spool, handler_tap(&handler_maildir), ctx);
	spool_begin(spool, &session, &e);
	for (size_t off = 0; off < len; off += step)
		assert_int_equal(spool_write(spool, content + off,
					     len - off < step ? len - off
							      : step),
				 0);
	/* streamed: the spool holds nothing to read back */
	spool_rewind(spool);
	*streamed = spool_next(spool, &p, &plen) < 0;
	e.content = spool_content(spool);
	e.content_size = spool_size(spool);
	return handler_maildir.handle_DATA(ctx, &session, &e);
}

/* check_stored - sub's one file holds the test content, line ends LF */
static void check_stored(const char *sub)
{
	struct stat st;
	char *a = only_file(sub, &st);

	assert_non_null(a);
	assert_string_equal(strstr(a, "\nSubject: x\n"),
			    "\nSubject: x\n\na\nb\nc\nd\n");
	free(a);
}

/* test_tap - one Maildir is written while the content arrives, with the
 * line ends of a CRLF split between pieces still made one LF; several
 * Maildirs are spooled */
static void test_tap(void **state)
{
	static const char content[] = "Subject: x\r\n\r\na\r\nb\rc\nd\r";
	static const char *const one[] = {"anne@example.com",
					  "Anne@Example.com"};
	static const char *const two[] = {"bob@example.com",
					  "carl@example.com"};
	static const size_t steps[] = {1, 2, 3, 100};
	struct spool *spool = spool_new(NULL);
	void *ctx = start("%u");
	bool streamed;

	assert_ptr_equal(handler_tap(&handler_maildir), &local_maildir_tap);
	for (size_t i = 0; i < N_ELEMENTS(steps); i++) {
		char path[256], cmd[300];

		assert_null(tapped(ctx, one, 2, spool, content, steps[i],
				   &streamed));
		assert_true(streamed);
		check_stored("anne");
		snprintf(path, sizeof(path), "%s/anne", root);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
		assert_int_equal(system(cmd), 0);
	}
	assert_null(tapped(ctx, two, 2, spool, content, 7, &streamed));
	assert_false(streamed);
	check_stored("carl");
	handler_maildir.cleanup(ctx);
	spool_free(&spool);
}

static void test_failure_takes_copies_back(void **state)
{
	static const char *const rcpts[] = {"anne@example.com",
					    "carol@example.org"};
	struct spool *spool = spool_new(NULL);
	void *ctx = start("%d/%u");
	char path[128];
	struct stat st;
	FILE *f;

	/* a file where example.org's directory should be */
	snprintf(path, sizeof(path), "%s/example.org", root);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);
	assert_string_equal(data(ctx, rcpts, 2, spool),
			    "451 4.3.0 Error: local error in processing");
	assert_null(only_file("example.com/anne", &st));

	/* LMTP: each recipient's own result, nothing taken back */
	session.lmtp = true;
	assert_string_equal(data(ctx, rcpts, 2, spool),
			    "250 OK\r\n451 4.3.0 Error: local error in "
			    "processing");
	session.lmtp = false;
	free(only_file("example.com/anne", &st));
	handler_maildir.cleanup(ctx);
	spool_free(&spool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test_setup_teardown(test_rcpt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_takes_copies_back,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
