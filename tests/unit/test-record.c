/*
 * test-record.c - the Record handler's files, and the library's reader
 *
 * The writer (handlers/record.c) and the reader (controller/
 * record_parse.c) are tested against each other and against the format
 * as aiosmtpd(8) documents it, so that neither drifts alone.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
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
#include "record.h"
#include "record_parse.h"
#include "sbuf.h"
#include "spool.h"

static const char *const mail_options[] = {"SIZE=35", "BODY=8BITMIME"};
static const char *const rcpts[] = {"c@d", "e@f"};
static const char *const rcpt_options[] = {"NOTIFY=NEVER"};

static struct aiosmtpd_session session = {
	.id = "1BA992BD712B",
	.peer_family = AF_INET,
	.peer_addr = "127.0.0.1",
	.peer_port = 4000,
	.host_name = "client.example",
};

/* envelope_for - content of len octets (NULs allowed) in spool */
static void envelope_for(struct aiosmtpd_envelope *e, struct spool *spool,
			 const char *content, size_t len)
{
	memset(e, 0, sizeof(*e));
	e->mail_from = "a@b";
	e->mail_options = mail_options;
	e->n_mail_options = 2;
	e->rcpt_tos = rcpts;
	e->n_rcpt_tos = 2;
	e->rcpt_options = rcpt_options;
	e->n_rcpt_options = 1;
	spool_reset(spool);
	assert_int_equal(spool_write(spool, content, len), 0);
	e->content = spool_content(spool);
	e->content_size = spool_size(spool);
}

static void test_header(void **state)
{
	struct spool *spool = spool_new(NULL);
	struct aiosmtpd_envelope e;
	struct sbuf out;

	envelope_for(&e, spool, "x\r\n", 3);
	sbuf_init(&out, 256);
	record_header(&out, &session, &e);
	assert_string_equal(out.data, "aiosmtpd-record 1\n"
				      "session 1BA992BD712B\n"
				      "helo client.example\n"
				      "peer_address 127.0.0.1\n"
				      "peer_port 4000\n"
				      "mail_from a@b\n"
				      "mail_option SIZE=35\n"
				      "mail_option BODY=8BITMIME\n"
				      "rcpt_to c@d\n"
				      "rcpt_to e@f\n"
				      "rcpt_option NOTIFY=NEVER\n"
				      "size 3\n"
				      "\n");
	sbuf_free(&out);
	spool_free(&spool);
}

/* test_header_escapes - nothing in a value can break its line, and
 * UTF-8 is written as it is */
static void test_header_escapes(void **state)
{
	struct aiosmtpd_session s = session;
	struct spool *spool = spool_new(NULL);
	struct aiosmtpd_envelope e;
	struct sbuf out;

	s.host_name = NULL; /* no HELO: an empty value */
	s.auth_user = "us\ter";
	s.tls_version = "TLSv1.3";
	envelope_for(&e, spool, "", 0);
	e.mail_from = "<>";
	e.rcpt_tos =
		(const char *const[]){"p%c@x", "l\r\nf@x", "j\xc3\xb6rg@x\x7f"};
	e.n_rcpt_tos = 3;
	e.n_mail_options = e.n_rcpt_options = 0;
	sbuf_init(&out, 256);
	record_header(&out, &s, &e);
	assert_string_equal(out.data, "aiosmtpd-record 1\n"
				      "session 1BA992BD712B\n"
				      "helo \n"
				      "peer_address 127.0.0.1\n"
				      "peer_port 4000\n"
				      "tls TLSv1.3\n"
				      "auth_user us%09er\n"
				      "mail_from <>\n"
				      "rcpt_to p%25c@x\n"
				      "rcpt_to l%0D%0Af@x\n"
				      "rcpt_to j\xc3\xb6rg@x%7F\n"
				      "size 0\n"
				      "\n");
	sbuf_free(&out);
	spool_free(&spool);
}

static void test_names_sort(void **state)
{
	struct timespec a = {9, 999999999}, b = {10, 0};
	struct sbuf na, nb, nc;

	sbuf_init(&na, 64);
	sbuf_init(&nb, 64);
	sbuf_init(&nc, 64);
	record_name(&na, &a);
	record_name(&nb, &b);
	record_name(&nc, &b); /* the same nanosecond, later */
	assert_true(strcmp(na.data, nb.data) < 0);
	assert_true(strcmp(nb.data, nc.data) < 0);
	assert_int_equal(strncmp(na.data, "000000000009.999999999.P", 24), 0);
	assert_null(strchr(na.data, '/'));
	sbuf_free(&na);
	sbuf_free(&nb);
	sbuf_free(&nc);
}

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* list_sorted - the file names in dir, sorted, into names */
static size_t list_sorted(const char *dir, char names[][256], size_t max)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);
	size_t k = 0;

	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		if (list[i]->d_name[0] != '.' && k < max)
			snprintf(names[k++], 256, "%s", list[i]->d_name);
		free(list[i]);
	}
	free(list);
	return k;
}

/* test_handler_roundtrip - what the handler writes, the reader gives
 * back exactly, large binary content included; file names keep the
 * order of arrival */
static void test_handler_roundtrip(void **state)
{
	char root[] = "/tmp/test-record.XXXXXX", dir[128], path[512];
	char names[4][256];
	char *argv[] = {dir, NULL};
	struct spool *spool = spool_new(NULL);
	const char *error = NULL;
	struct aiosmtpd_envelope e;
	struct aiosmtpd_message *m;
	struct aiosmtpd_error err;
	size_t big = 3 * SPOOL_MEMORY_LIMIT + 7;
	char *content = xmalloc(big);
	void *ctx;

	for (size_t i = 0; i < big; i++)
		content[i] = (char)(i * 7 + i / 251); /* NULs, CRs, LFs */
	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/mail", root);
	ctx = handler_record.init(1, argv, &error);
	assert_non_null(ctx);
	envelope_for(&e, spool, "Subject: one\r\n\r\n.x\r\n", 20);
	assert_null(handler_record.handle_DATA(ctx, &session, &e));
	envelope_for(&e, spool, content, big);
	assert_null(handler_record.handle_DATA(ctx, &session, &e));

	snprintf(path, sizeof(path), "%s/tmp", dir);
	assert_int_equal(count_files(path), 0);
	snprintf(path, sizeof(path), "%s/new", dir);
	assert_int_equal(list_sorted(path, names, 4), 2);

	snprintf(path, sizeof(path), "%s/new/%s", dir, names[0]);
	m = aiosmtpd_record_read(path, &err);
	if (m == NULL)
		fail_msg("%s", err.text);
	assert_string_equal(m->content, "Subject: one\r\n\r\n.x\r\n");
	assert_int_equal(m->content_size, 20);
	assert_string_equal(m->file, path);
	aiosmtpd_record_free(&m);
	assert_null(m);

	snprintf(path, sizeof(path), "%s/new/%s", dir, names[1]);
	m = aiosmtpd_record_read(path, &err);
	assert_non_null(m);
	assert_int_equal(m->content_size, big);
	assert_memory_equal(m->content, content, big);
	assert_int_equal(m->content[big], '\0');
	assert_string_equal(m->mail_from, "a@b");
	assert_int_equal(m->n_mail_options, 2);
	assert_string_equal(m->mail_options[1], "BODY=8BITMIME");
	assert_int_equal(m->n_rcpt_tos, 2);
	assert_string_equal(m->rcpt_tos[0], "c@d");
	assert_string_equal(m->rcpt_tos[1], "e@f");
	assert_int_equal(m->n_rcpt_options, 1);
	assert_string_equal(m->rcpt_options[0], "NOTIFY=NEVER");
	assert_string_equal(m->peer_address, "127.0.0.1");
	assert_int_equal(m->peer_port, 4000);
	assert_string_equal(m->helo, "client.example");
	assert_string_equal(m->session, "1BA992BD712B");
	assert_null(m->tls);
	assert_null(m->auth_user);
	aiosmtpd_record_free(&m);

	handler_record.cleanup(ctx);
	free(content);
	spool_free(&spool);
	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	assert_int_equal(system(path), 0);
}

/* test_handler_failure - a Maildir that vanished: 451, nothing left */
static void test_handler_failure(void **state)
{
	char root[] = "/tmp/test-record.XXXXXX", dir[128], cmd[256];
	char *argv[] = {dir, NULL}, *two[] = {dir, dir, NULL};
	struct spool *spool = spool_new(NULL);
	const char *error = NULL;
	struct aiosmtpd_envelope e;
	void *ctx;

	assert_null(handler_record.init(0, argv, &error));
	assert_string_equal(
		error, "Record usage: DIR (a Maildir, created if missing)");
	assert_null(handler_record.init(2, two, &error));
	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/mail", root);
	ctx = handler_record.init(1, argv, &error);
	assert_non_null(ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	envelope_for(&e, spool, "x\r\n", 3);
	assert_string_equal(handler_record.handle_DATA(ctx, &session, &e),
			    "451 4.3.0 Error: local error in processing");
	handler_record.cleanup(ctx);
	spool_free(&spool);
}

static void test_handler_names(void **state)
{
	assert_ptr_equal(handler_find("Record"), &handler_record);
	assert_ptr_equal(handler_find("record"), &handler_record);
	assert_ptr_equal(handler_find("aiosmtpd.handlers.Record"),
			 &handler_record);
}

/* --- the reader ---------------------------------------------------------- */

struct parse_case {
	const char *file;
	const char *error; /* NULL: parses */
};

static const struct parse_case parses[] = {
	{"aiosmtpd-record 1\nmail_from a\nsize 2\n\nxy", NULL},
	/* keys the reader does not know are skipped */
	{"aiosmtpd-record 1\nmail_from a\nfuture stuff\nsize 0\n\n", NULL},
	{"aiosmtpd-record 1\nmail_from a\nsize 3\n\nxy",
	 "size 3, but 2 octets of content"},
	{"aiosmtpd-record 1\nmail_from a\nsize 1\n\nxy",
	 "size 1, but 2 octets of content"},
	{"aiosmtpd-record 2\nmail_from a\nsize 0\n\n",
	 "unsupported version: aiosmtpd-record 2"},
	{"From: x\nmail_from a\nsize 0\n\n",
	 "not a Record file (first line From: x)"},
	{"aiosmtpd-record 1\nmail_from a\nsize 0\n", "no end of the header"},
	{"aiosmtpd-record 1\nsize 0\n\n", "no mail_from"},
	{"aiosmtpd-record 1\nmail_from a\n\n", "no size"},
	{"aiosmtpd-record 1\nmail_from a\nmail_from b\nsize 0\n\n",
	 "'mail_from' appears twice"},
	{"aiosmtpd-record 1\nmail_from a%2\nsize 0\n\n",
	 "line 2: broken % escape"},
	{"aiosmtpd-record 1\nmail_from a%zz\nsize 0\n\n",
	 "line 2: broken % escape"},
	{"aiosmtpd-record 1\nmail_from\nsize 0\n\n", "line 2 has no value"},
	{"aiosmtpd-record 1\nmail_from a\npeer_port 65536\nsize 0\n\n",
	 "'peer_port' is not a valid number: 65536"},
	{"aiosmtpd-record 1\nmail_from a\nsize -1\n\n",
	 "'size' is not a valid number: -1"},
	{"aiosmtpd-record 1\nmail_from a\nsize 99999999999999999999\n\n",
	 "'size' is not a valid number: 99999999999999999999"},
	{"", "no end of the header"},
};

static void test_parse_table(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(parses); i++) {
		const char *file = parses[i].file;
		struct aiosmtpd_error err = {0};
		struct aiosmtpd_message *m;

		m = aiosmtpd_record_parse(xmemdup(file, strlen(file)),
					  strlen(file), "f", &err);
		if (parses[i].error == NULL) {
			if (m == NULL)
				fail_msg("case %zu: %s", i, err.text);
			aiosmtpd_record_free(&m);
			continue;
		}
		if (m != NULL)
			fail_msg("case %zu parsed", i);
		assert_int_equal(err.code, AIOSMTPD_ERROR_FORMAT);
		if (strcmp(err.text, parses[i].error) != 0)
			fail_msg("case %zu: %s", i, err.text);
	}
}

static void test_parse_values(void **state)
{
	const char *file = "aiosmtpd-record 1\n"
			   "mail_from %3Ca%25b%3e\n"
			   "rcpt_to x\n"
			   "rcpt_to y%0A\n"
			   "rcpt_option A=1\n"
			   "peer_port 65535\n"
			   "size 1\n\n\0";
	struct aiosmtpd_error err;
	struct aiosmtpd_message *m;
	size_t len = strlen(file) + 1;

	m = aiosmtpd_record_parse(xmemdup(file, len), len, "f", &err);
	assert_non_null(m);
	assert_string_equal(m->mail_from, "<a%b>");
	assert_int_equal(m->n_rcpt_tos, 2);
	assert_string_equal(m->rcpt_tos[1], "y\n");
	assert_int_equal(m->n_mail_options, 0);
	assert_int_equal(m->n_rcpt_options, 1);
	assert_string_equal(m->rcpt_options[0], "A=1");
	assert_int_equal(m->peer_port, 65535);
	assert_int_equal(m->content_size, 1);
	assert_int_equal(m->content[0], '\0');
	/* absent strings are empty, absent TLS and AUTH are NULL */
	assert_string_equal(m->helo, "");
	assert_string_equal(m->peer_address, "");
	assert_null(m->tls);
	aiosmtpd_record_free(&m);
}

static void test_read_missing(void **state)
{
	struct aiosmtpd_error err;

	assert_null(aiosmtpd_record_read("/nonexistent/x", &err));
	assert_int_equal(errno, ENOENT);
	assert_int_equal(err.code, AIOSMTPD_ERROR_SYSTEM);
	assert_non_null(strstr(err.text, "/nonexistent/x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_header_escapes),
		cmocka_unit_test(test_names_sort),
		cmocka_unit_test(test_handler_roundtrip),
		cmocka_unit_test(test_handler_failure),
		cmocka_unit_test(test_handler_names),
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_values),
		cmocka_unit_test(test_read_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
