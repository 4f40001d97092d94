/*
 * test-maildir.c - the Mailbox file format and durable delivery
 *
 * The expected files were produced by Python 3.11's email package the way
 * aiosmtpd's Mailbox handler uses it (message_from_bytes, three headers
 * appended, BytesGenerator without header wrapping).
 */
#include "config.h"

#include <dirent.h>
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
#include "maildir.h"
#include "spool.h"
#include "sbuf.h"

struct render_case {
	const char *in;
	const char *out;
};

static const struct render_case renders[] = {
	{"Subject: foo \r\n\r\nbody\r\n",
	 "Subject: foo \nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nbody\n"},
	{"Subject:foo\r\n\r\nb\r\n",
	 "Subject: foo\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb\n"},
	{"Subject:   foo  \r\n\r\nb\r\n",
	 "Subject: foo  \nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb\n"},
	{"Subject: a\r\n  b \r\n\tc\r\n\r\nx\r\n",
	 "Subject: a\n  b\n\tc\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nx\n"},
	{"Subject: a\r\n \r\n b\r\n\r\nx\r\n",
	 "Subject: a\n b\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nx\n"},
	{"Subject:\r\n\r\nx\r\n",
	 "Subject: \nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nx\n"},
	{"Subject: a  b\r\n\r\nx\r\n",
	 "Subject: a  b\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nx\n"},
	{"From foo bar\r\nSubject: x\r\n\r\nb\r\n",
	 "Subject: x\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb\n"},
	{"hello\r\nSubject: x\r\n\r\nb\r\n",
	 "X-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nhello\nSubject: x\n\nb\n"},
	{" cont\r\nSubject: x\r\n\r\nb\r\n",
	 "Subject: x\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb\n"},
	{"Subject: x\r\n",
	 "Subject: x\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\n"},
	{"",
	 "X-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\n"},
	{"Subject: \xc3\xa9 x \r\n\r\nb\xff\r\n",
	 "Subject: \xc3\xa9 x \nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb\xff\n"},
	{"Subject: a\rb\r\n\r\nx\r\ny\rz\n",
	 "Subject: a\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb\n\nx\ny\nz\n"},
	{"Subject: x\r\nFrom y\r\nTo: z\r\n\r\nb\r\n",
	 "Subject: x\nTo: z\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb\n"},
	{":x\r\nSubject: y\r\n\r\nb\r\n",
	 "Subject: y\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb\n"},
	{"Subject: x\r\n\r\n\r\nb\r\n\r\n",
	 "Subject: x\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\n\nb\n\n"},
	{"Subject:\r\n foo\r\n\r\nb\r\n",
	 "Subject: \n foo\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb\n"},
	{"Subject: a\r\n  \r\n b\r\n\r\nx\r\n",
	 "Subject: a  \n b\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nx\n"},
	{"A: 1\r\nFrom x\r\n\r\nb\r\n",
	 "A: 1\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nFrom x\nb\n"},
	{"X-Foo : bar\r\n\r\nb\r\n",
	 "X-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nX-Foo : bar\n\nb\n"},
	{"Subject: a\x0b" "b\r\n\r\nx\r\n",
	 "Subject: a\nb\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nx\n"},
	{"Subject: \t tab\r\n\r\nb\r\n",
	 "Subject: tab\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb\n"},
	{"Subject: a\r\n\tb \r\n\r\nx\r\n",
	 "Subject: a\n\tb\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nx\n"},
	{"Subject: a \r\n\r\nb",
	 "Subject: a \nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb"},
	{"From: a@b\r\nTo: c@d\r\n\r\nHi\r\n.\r\n",
	 "From: a@b\nTo: c@d\nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nHi\n.\n"},
	{"Subject: \r\n\r\nb\r\n",
	 "Subject: \nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nb\n"},
	{"Subject: a \t\r\n b  \r\n\r\nx\r\n",
	 "Subject: a \t\n b  \nX-Peer: ('127.0.0.1', 4000)\nX-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\nx\n"},
};

static const char *const rcpts[] = {"c@d", "e@f"};
static const struct aiosmtpd_session session = {
	.id = "TEST",
	.peer_family = AF_INET,
	.peer_addr = "127.0.0.1",
	.peer_port = 4000,
};

static int collect(void *ctx, const char *data, size_t len)
{
	sbuf_append(ctx, data, len);
	return 0;
}

/* envelope_for - an envelope whose content is in, split over the spool's
 * memory and file when big is set */
static void envelope_for(struct aiosmtpd_envelope *e, struct spool *spool,
			 const char *in)
{
	memset(e, 0, sizeof(*e));
	e->mail_from = "a@b";
	e->rcpt_tos = rcpts;
	e->n_rcpt_tos = 2;
	spool_reset(spool);
	assert_int_equal(spool_write(spool, in, strlen(in)), 0);
	e->content = spool_content(spool);
	e->content_size = spool_size(spool);
}

static void test_render(void **state)
{
	struct spool *spool = spool_new(NULL);

	for (size_t i = 0; i < N_ELEMENTS(renders); i++) {
		struct aiosmtpd_envelope e;
		struct sbuf out;

		envelope_for(&e, spool, renders[i].in);
		sbuf_init(&out, 256);
		assert_int_equal(maildir_render(&session, &e, collect, &out),
				 0);
		if (strcmp(out.data, renders[i].out) != 0)
			fail_msg("case %zu:\n%s\nexpected:\n%s", i, out.data,
				 renders[i].out);
		sbuf_free(&out);
	}
	spool_free(&spool);
}

/* test_render_large - a body far past the spool's memory part keeps every
 * line, LF-terminated */
static void test_render_large(void **state)
{
	struct spool *spool = spool_new(NULL);
	struct aiosmtpd_envelope e;
	struct sbuf in, out, want;

	sbuf_init(&in, 1 << 20);
	sbuf_init(&want, 1 << 20);
	sbuf_puts(&in, "Subject: big\r\n\r\n");
	sbuf_puts(&want, "Subject: big\nX-Peer: ('127.0.0.1', 4000)\n"
			   "X-MailFrom: a@b\nX-RcptTo: c@d, e@f\n\n");
	for (int i = 0; i < 20000; i++) {
		sbuf_printf(&in, "line %d of the body\r\n", i);
		sbuf_printf(&want, "line %d of the body\n", i);
	}
	envelope_for(&e, spool, in.data);
	sbuf_init(&out, 1 << 20);
	assert_int_equal(maildir_render(&session, &e, collect, &out), 0);
	assert_int_equal(out.len, want.len);
	assert_memory_equal(out.data, want.data, want.len);
	sbuf_free(&in);
	sbuf_free(&out);
	sbuf_free(&want);
	spool_free(&spool);
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

static void test_deliver(void **state)
{
	char root[] = "/tmp/test-maildir.XXXXXX", dir[128], path[256];
	struct spool *spool = spool_new(NULL);
	const char *error = NULL;
	struct aiosmtpd_envelope e;
	struct stat st;
	char *name = NULL;

	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/a/b/Maildir", root);
	assert_int_equal(maildir_create(dir, &error), 0);
	snprintf(path, sizeof(path), "%s/cur", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	envelope_for(&e, spool, "Subject: x\r\n\r\nbody\r\n");
	assert_int_equal(maildir_deliver(dir, &session, &e, &name), 0);
	assert_non_null(strstr(name, ".M"));
	assert_null(strchr(name, '/'));
	snprintf(path, sizeof(path), "%s/new/%s", dir, name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/tmp", dir);
	assert_int_equal(count_files(path), 0);
	free(name);

	/* a second delivery gets a new name */
	assert_int_equal(maildir_deliver(dir, &session, &e, NULL), 0);
	snprintf(path, sizeof(path), "%s/new", dir);
	assert_int_equal(count_files(path), 2);

	/* a Maildir that vanished: the delivery fails, nothing is left */
	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	assert_int_equal(system(path), 0);
	assert_int_equal(maildir_deliver(dir, &session, &e, NULL), -1);
	spool_free(&spool);
}

/* --- the Mailbox tap: rendering while the content arrives ---------------- */

struct tapped {
	char root[64];
	char new_dir[160];
	char tmp_dir[160];
	void *ctx; /* the Mailbox handler's */
	struct spool *spool;
	struct aiosmtpd_envelope e;
	struct aiosmtpd_session session;
};

static void tapped_init(struct tapped *t)
{
	const char *error = NULL;
	char dir[96];
	char *argv[] = {dir, NULL};

	snprintf(t->root, sizeof(t->root), "/tmp/test-maildir.XXXXXX");
	assert_non_null(mkdtemp(t->root));
	snprintf(dir, sizeof(dir), "%s/Maildir", t->root);
	snprintf(t->new_dir, sizeof(t->new_dir), "%s/new", dir);
	snprintf(t->tmp_dir, sizeof(t->tmp_dir), "%s/tmp", dir);
	t->ctx = handler_mailbox.init(1, argv, &error);
	assert_non_null(t->ctx);
	assert_ptr_equal(handler_tap(&handler_mailbox), &maildir_mailbox_tap);
	assert_null(handler_tap(&handler_sink));
	t->spool = spool_new(NULL);
	spool_set_tap(t->spool, &maildir_mailbox_tap, t->ctx);
	t->session = session;
	memset(&t->e, 0, sizeof(t->e));
	t->e.mail_from = "a@b";
	t->e.rcpt_tos = rcpts;
	t->e.n_rcpt_tos = 2;
}

static void tapped_free(struct tapped *t)
{
	char cmd[128];

	spool_free(&t->spool);
	handler_mailbox.cleanup(t->ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->root);
	assert_int_equal(system(cmd), 0);
}

/* tapped_send - in through the tap in pieces of step octets; the
 * handler's reply */
static const char *tapped_send(struct tapped *t, const char *in, size_t len,
			       size_t step)
{
	const char *data;
	size_t n;

	spool_begin(t->spool, &t->session, &t->e);
	for (size_t off = 0; off < len; off += step) {
		n = len - off < step ? len - off : step;
		assert_int_equal(spool_write(t->spool, in + off, n), 0);
	}
	/* the content went to the tap: the spool cannot give it back */
	assert_int_equal(spool_size(t->spool), len);
	assert_int_equal(spool_next(t->spool, &data, &n), -1);
	t->e.content = spool_content(t->spool);
	return handler_mailbox.handle_DATA(t->ctx, &t->session, &t->e);
}

/* take_file - the one file in new/, removed after reading */
static void take_file(struct tapped *t, struct sbuf *out)
{
	DIR *d = opendir(t->new_dir);
	struct dirent *de;
	char path[512], buf[4096];
	size_t n, files = 0;
	FILE *f;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		files++;
		snprintf(path, sizeof(path), "%s/%s", t->new_dir, de->d_name);
		assert_non_null(f = fopen(path, "r"));
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			sbuf_append(out, buf, n);
		fclose(f);
		assert_int_equal(unlink(path), 0);
	}
	closedir(d);
	assert_int_equal(files, 1);
	assert_int_equal(count_files(t->tmp_dir), 0);
}

/* test_tap_render - the tapped file is the rendered file, however the
 * content is cut into pieces */
static void test_tap_render(void **state)
{
	static const size_t steps[] = {1, 2, 3, 7, 64, 100000};
	struct tapped t;
	struct sbuf out;

	tapped_init(&t);
	sbuf_init(&out, 256);
	for (size_t i = 0; i < N_ELEMENTS(renders); i++) {
		for (size_t k = 0; k < N_ELEMENTS(steps); k++) {
			sbuf_reset(&out);
			assert_null(tapped_send(&t, renders[i].in,
						strlen(renders[i].in),
						steps[k]));
			take_file(&t, &out);
			if (strcmp(out.data, renders[i].out) != 0)
				fail_msg("case %zu step %zu:\n%s\nexpected:"
					 "\n%s",
					 i, steps[k], out.data,
					 renders[i].out);
		}
	}
	sbuf_free(&out);
	tapped_free(&t);
}

/* test_tap_large - a large message through the tap, as the spool would
 * have rendered it */
static void test_tap_large(void **state)
{
	struct aiosmtpd_envelope e;
	struct spool *plain = spool_new(NULL);
	struct sbuf in, out, want;
	struct tapped t;

	tapped_init(&t);
	sbuf_init(&in, 1 << 21);
	sbuf_puts(&in, "From: a@b\r\nSubject: big\r\n\r\n");
	for (int i = 0; i < 40000; i++)
		sbuf_printf(&in, "line %d\r\r\nof the\rbody\n", i);
	envelope_for(&e, plain, in.data);
	sbuf_init(&want, 1 << 21);
	assert_int_equal(maildir_render(&session, &e, collect, &want), 0);
	sbuf_init(&out, 1 << 21);
	assert_null(tapped_send(&t, in.data, in.len, 65536 - 5));
	take_file(&t, &out);
	assert_int_equal(out.len, want.len);
	assert_memory_equal(out.data, want.data, want.len);
	sbuf_free(&in);
	sbuf_free(&out);
	sbuf_free(&want);
	spool_free(&plain);
	tapped_free(&t);
}

/* test_tap_discard - a message that does not reach handle_DATA leaves
 * no file behind, in tmp/ or in new/ */
static void test_tap_discard(void **state)
{
	static const char in[] = "Subject: gone\r\n\r\nbody\r\n";
	struct tapped t;
	size_t fds;

	tapped_init(&t);
	fds = count_files("/proc/self/fd");
	/* the next message discards the one before */
	spool_begin(t.spool, &t.session, &t.e);
	assert_int_equal(spool_write(t.spool, in, strlen(in)), 0);
	spool_begin(t.spool, &t.session, &t.e);
	assert_int_equal(spool_write(t.spool, in, strlen(in)), 0);
	/* as does a reset (a rejected message, a session's end) */
	spool_reset(t.spool);
	assert_int_equal(count_files(t.new_dir), 0);
	assert_int_equal(count_files(t.tmp_dir), 0);
	assert_int_equal(count_files("/proc/self/fd"), fds); /* closed */
	/* and the spool is still usable for the next one */
	assert_null(tapped_send(&t, in, strlen(in), 5));
	assert_int_equal(count_files(t.new_dir), 1);
	/* freeing the spool mid-message discards too */
	spool_begin(t.spool, &t.session, &t.e);
	assert_int_equal(spool_write(t.spool, in, strlen(in)), 0);
	spool_free(&t.spool);
	assert_int_equal(count_files(t.new_dir), 1);
	assert_int_equal(count_files(t.tmp_dir), 0);
	t.spool = spool_new(NULL);
	tapped_free(&t);
}

static void test_handler_args(void **state)
{
	const char *error = NULL;
	char a[] = "a", b[] = "b";
	char *none[] = {NULL}, *two[] = {a, b, NULL};

	assert_null(handler_mailbox.init(0, none, &error));
	assert_string_equal(error, "The directory for the maildir is required");
	assert_null(handler_mailbox.init(2, two, &error));
	assert_string_equal(error, "Too many arguments for Mailbox handler");
	assert_ptr_equal(handler_find("aiosmtpd.handlers.Mailbox"),
			 &handler_mailbox);
	assert_ptr_equal(handler_find("mailbox"), &handler_mailbox);
	assert_ptr_equal(handler_find("maildir"), &handler_maildir);
	assert_ptr_equal(handler_find("Sink"), &handler_sink);
	assert_ptr_equal(handler_find("lmtp"), &handler_lmtp);
	assert_ptr_equal(handler_find("aiosmtpd.handlers.Proxy"),
			 &handler_proxy);
	assert_ptr_equal(handler_find("smtp"), &handler_proxy);
	assert_null(handler_find("aiosmtpd.handlers.Proxyy"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_render_large),
		cmocka_unit_test(test_deliver),
		cmocka_unit_test(test_tap_render),
		cmocka_unit_test(test_tap_large),
		cmocka_unit_test(test_tap_discard),
		cmocka_unit_test(test_handler_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
