/*
 * test-sendmail.c - how a user tests code that sends mail with libaiosmtpd
 *
 * It uses only what "make install" installs, and is built the way a user
 * builds it:
 *
 *	cc test-sendmail.c sendmail.c \
 *	    $(pkg-config --cflags --libs aiosmtpd cmocka)
 *
 * The library runs the installed daemon, or the one AIOSMTPD_DAEMON
 * names.  "test-sendmail --hold" starts one server, prints its pid and
 * directory, and waits to be killed: tests/integration/test_controller.py
 * kills it with SIGKILL and checks that nothing is left.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <aiosmtpd/controller.h>

#include "sendmail.h"

#define WAIT_MS 30000

/* start - a server with the default options, or the test fails */
static struct aiosmtpd_controller *start(void)
{
	struct aiosmtpd_error err;
	struct aiosmtpd_controller *server;

	server = aiosmtpd_controller_start(NULL, &err);
	if (server == NULL)
		fail_msg("cannot start aiosmtpd: %s", err.text);
	return server;
}

static void send_or_fail(const struct aiosmtpd_controller *server,
			 const struct mail *m)
{
	char error[512];

	if (sendmail(aiosmtpd_controller_host(server),
		     aiosmtpd_controller_port(server), m, error,
		     sizeof(error)) < 0)
		fail_msg("sendmail: %s", error);
}

static void wait_or_fail(struct aiosmtpd_controller *server, size_t n)
{
	struct aiosmtpd_error err;

	if (aiosmtpd_controller_wait(server, n, WAIT_MS, &err) < 0)
		fail_msg("waiting for %zu messages: %s", n, err.text);
}

/* test_one_mail - the whole idea in a few lines */
static void test_one_mail(void **state __attribute__((unused)))
{
	const char *to[] = {"new.user@example.com"};
	struct mail m = {"welcome@example.org", to, 1, "Welcome",
			 "Hello,\n.and welcome.\n"};
	struct aiosmtpd_controller *server = start();
	const struct aiosmtpd_message *got;

	send_or_fail(server, &m);
	wait_or_fail(server, 1);
	got = aiosmtpd_controller_message(server, 0);
	assert_string_equal(got->mail_from, "welcome@example.org");
	assert_int_equal(got->n_rcpt_tos, 1);
	assert_string_equal(got->rcpt_tos[0], "new.user@example.com");
	assert_string_equal(got->content, "From: welcome@example.org\r\n"
					  "To: new.user@example.com\r\n"
					  "Subject: Welcome\r\n"
					  "\r\n"
					  "Hello,\r\n"
					  ".and welcome.\r\n");
	assert_int_equal(aiosmtpd_controller_stop(&server, NULL), 0);
}

/* --- a hundred messages -------------------------------------------------- */

#define N_MESSAGES 100

struct sample {
	char from[64];
	char to[3][64];
	const char *to_list[3];
	size_t n_to;
	char subject[64];
	char body[2048];
	char want[4096]; /* the content the server must have */
};

/* make_sample - message i, each different, with what SMTP makes hard:
 * leading dots, empty lines, a long line, UTF-8 */
static void make_sample(struct sample *s, int i)
{
	size_t len;

	snprintf(s->from, sizeof(s->from), "sender%d@example.org", i);
	s->n_to = (size_t)(i % 3) + 1;
	for (size_t r = 0; r < s->n_to; r++) {
		snprintf(s->to[r], sizeof(s->to[r]), "rcpt%d.%zu@example.com",
			 i, r);
		s->to_list[r] = s->to[r];
	}
	snprintf(s->subject, sizeof(s->subject), "Message %d", i);
	len = (size_t)snprintf(
		s->body, sizeof(s->body),
		"Line one of %d.\n.\n..two dots\n\nK\xc3\xb6ln\n", i);
	memset(s->body + len, 'a' + i % 26, (size_t)(i * 9));
	s->body[len + (size_t)(i * 9)] = '\0';
	strcat(s->body, "\nend\n");

	/* What sendmail() makes of it, worked out here on its own. */
	len = (size_t)snprintf(s->want, sizeof(s->want),
			       "From: %s\r\nTo: ", s->from);
	for (size_t r = 0; r < s->n_to; r++)
		len += (size_t)snprintf(s->want + len, sizeof(s->want) - len,
					"%s%s", r > 0 ? ", " : "", s->to[r]);
	len += (size_t)snprintf(s->want + len, sizeof(s->want) - len,
				"\r\nSubject: %s\r\n\r\n", s->subject);
	for (const char *p = s->body; *p != '\0'; p++) {
		if (*p == '\n')
			s->want[len++] = '\r';
		s->want[len++] = *p;
	}
	s->want[len] = '\0';
}

static void check_sample(const struct aiosmtpd_message *got,
			 const struct sample *s)
{
	assert_non_null(got);
	assert_string_equal(got->mail_from, s->from);
	assert_int_equal(got->n_rcpt_tos, s->n_to);
	for (size_t r = 0; r < s->n_to; r++)
		assert_string_equal(got->rcpt_tos[r], s->to[r]);
	assert_int_equal(got->content_size, strlen(s->want));
	assert_memory_equal(got->content, s->want, strlen(s->want));
	assert_string_equal(got->peer_address, "127.0.0.1");
	assert_string_equal(got->helo, "sendmail.example");
}

/* test_hundred_messages - each envelope and body read back exactly */
static void test_hundred_messages(void **state __attribute__((unused)))
{
	static struct sample samples[N_MESSAGES];
	struct aiosmtpd_controller *server = start();
	struct aiosmtpd_error err;

	for (int i = 0; i < N_MESSAGES; i++) {
		struct mail m;

		make_sample(&samples[i], i);
		m = (struct mail){samples[i].from, samples[i].to_list,
				  samples[i].n_to, samples[i].subject,
				  samples[i].body};
		send_or_fail(server, &m);
	}
	wait_or_fail(server, N_MESSAGES);
	assert_int_equal(aiosmtpd_controller_count(server, &err), N_MESSAGES);
	for (int i = 0; i < N_MESSAGES; i++)
		check_sample(aiosmtpd_controller_message(server, (size_t)i),
			     &samples[i]);
	assert_int_equal(aiosmtpd_controller_clear(server, &err), 0);
	assert_int_equal(aiosmtpd_controller_count(server, &err), 0);
	assert_int_equal(aiosmtpd_controller_stop(&server, &err), 0);
}

/* --- twenty servers at once ---------------------------------------------- */

#define N_SERVERS 20

static bool gone(pid_t group, const char *dir)
{
	const struct timespec pause = {0, 20 * 1000000L};
	struct stat st;

	for (int i = 0; i < 500; i++) {
		if (kill(-group, 0) < 0 && errno == ESRCH &&
		    stat(dir, &st) < 0 && errno == ENOENT)
			return true;
		nanosleep(&pause, NULL);
	}
	return false;
}

/* test_twenty_servers - distinct ports, independent message lists, and
 * nothing left once they are stopped */
static void test_twenty_servers(void **state __attribute__((unused)))
{
	struct aiosmtpd_controller *servers[N_SERVERS];
	struct aiosmtpd_error err;
	char dirs[N_SERVERS][512], to[N_SERVERS][64];
	pid_t pids[N_SERVERS];

	for (int i = 0; i < N_SERVERS; i++) {
		servers[i] = start();
		pids[i] = aiosmtpd_controller_pid(servers[i]);
		snprintf(dirs[i], sizeof(dirs[i]), "%s",
			 aiosmtpd_controller_directory(servers[i]));
		for (int j = 0; j < i; j++)
			assert_int_not_equal(
				aiosmtpd_controller_port(servers[i]),
				aiosmtpd_controller_port(servers[j]));
	}
	/* Server i gets i % 4 + 1 messages, all to its own address. */
	for (int i = 0; i < N_SERVERS; i++) {
		const char *list[] = {to[i]};
		struct mail m = {"a@example.org", list, 1, "x", "x\n"};

		snprintf(to[i], sizeof(to[i]), "server%d@example.com", i);
		for (int k = 0; k <= i % 4; k++)
			send_or_fail(servers[i], &m);
	}
	for (int i = 0; i < N_SERVERS; i++) {
		wait_or_fail(servers[i], (size_t)(i % 4 + 1));
		assert_int_equal(aiosmtpd_controller_count(servers[i], &err),
				 i % 4 + 1);
		for (int k = 0; k <= i % 4; k++)
			assert_string_equal(aiosmtpd_controller_message(
						    servers[i], (size_t)k)
						    ->rcpt_tos[0],
					    to[i]);
	}
	for (int i = 0; i < N_SERVERS; i++) {
		if (aiosmtpd_controller_stop(&servers[i], &err) < 0)
			fail_msg("stop: %s", err.text);
		if (!gone(pids[i], dirs[i]))
			fail_msg("server %d left something behind", i);
	}
}

/* hold - for the SIGKILL test: a server, its pid and directory on
 * stdout, then nothing until the end */
static int hold(void)
{
	struct aiosmtpd_controller *server;
	struct aiosmtpd_error err;

	if ((server = aiosmtpd_controller_start(NULL, &err)) == NULL) {
		fprintf(stderr, "%s\n", err.text);
		return 1;
	}
	printf("%d %s\n", (int)aiosmtpd_controller_pid(server),
	       aiosmtpd_controller_directory(server));
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char *argv[])
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_mail),
		cmocka_unit_test(test_hundred_messages),
		cmocka_unit_test(test_twenty_servers),
	};

	if (argc > 1 && strcmp(argv[1], "--hold") == 0)
		return hold();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
