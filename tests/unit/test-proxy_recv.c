/*
 * test-proxy_recv.c - the header is taken off a real socket, exactly
 *
 * A socket pair stands for the connection; a child process plays the
 * proxy where the header must arrive in pieces or is larger than the
 * socket buffer.  After the header, every octet the client sent must
 * still be in the socket.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "alloc.h"
#include "proxy_recv.h"
#include "sockstream.h"

#define V1 "PROXY TCP4 192.0.2.1 198.51.100.1 15221 25\r\n"
#define V2_LOCAL "\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00"
#define V2_LOCAL_LEN 16
/* The start of a TLS ClientHello: what SMTPS sends right after. */
#define CLIENT_HELLO "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
#define CLIENT_HELLO_LEN 11

static struct proxy_recv pr;
static int fds[2];
static pid_t child = -1;

static int setup(void **state)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	child = -1;
	return 0;
}

static int teardown(void **state)
{
	int status;

	close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
	}
	return 0;
}

static void send_all(const void *p, size_t len)
{
	assert_int_equal(write(fds[1], p, len), (ssize_t)len);
}

/* rest - everything left in the socket after the header */
static size_t rest(char *buf, size_t size)
{
	ssize_t n = recv(fds[0], buf, size, 0);

	return n < 0 ? 0 : (size_t)n;
}

/* read_exact - n octets that are still on their way (5 s at most) */
static void read_exact(char *buf, size_t n)
{
	struct timeval tv = {.tv_sec = 5};
	ssize_t got;

	assert_int_equal(fcntl(fds[0], F_SETFL, 0), 0);
	assert_int_equal(
		setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
		0);
	while (n > 0) {
		got = recv(fds[0], buf, n, 0);
		assert_true(got > 0);
		buf += got;
		n -= (size_t)got;
	}
}

static int read_header(int64_t ms, const char **error)
{
	*error = NULL;
	return proxy_recv_header(&pr, fds[0], sockstream_now() + ms, NULL, NULL,
				 error);
}

/* play - a child writes the octets in pieces of chunk octets, pausing
 * between them, then closes its end */
static void play(const unsigned char *p, size_t len, size_t chunk)
{
	struct timespec pause = {0, 2 * 1000 * 1000};

	child = fork();
	assert_true(child >= 0);
	if (child > 0) {
		close(fds[1]);
		fds[1] = -1;
		return;
	}
	close(fds[0]);
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;

		if (write(fds[1], p + off, n) != (ssize_t)n)
			_exit(1);
		nanosleep(&pause, NULL);
	}
	_exit(0);
}

static void test_v1_then_smtp(void **state)
{
	const char *error;
	char buf[64];

	send_all(V1 "EHLO client\r\n", sizeof(V1 "EHLO client\r\n") - 1);
	assert_int_equal(read_header(1000, &error), 0);
	assert_int_equal(pr.hdr.length, sizeof(V1) - 1);
	assert_string_equal(pr.hdr.data.src_addr, "192.0.2.1");
	assert_int_equal(rest(buf, sizeof(buf)), 13);
	assert_memory_equal(buf, "EHLO client\r\n", 13);
}

/* test_v2_then_client_hello - the ClientHello that follows must reach
 * SSL_accept() whole */
static void test_v2_then_client_hello(void **state)
{
	const char *error;
	char buf[64];

	send_all(V2_LOCAL CLIENT_HELLO, V2_LOCAL_LEN + CLIENT_HELLO_LEN);
	assert_int_equal(read_header(1000, &error), 0);
	assert_int_equal(pr.hdr.length, V2_LOCAL_LEN);
	assert_int_equal(pr.hdr.data.command, 0);
	assert_int_equal(rest(buf, sizeof(buf)), CLIENT_HELLO_LEN);
	assert_memory_equal(buf, CLIENT_HELLO, CLIENT_HELLO_LEN);
}

/* test_header_alone - nothing after the header: the client waits for
 * the greeting, and so must not the reader */
static void test_header_alone(void **state)
{
	const char *error;

	send_all("PROXY UNKNOWN\r\n", 15);
	assert_int_equal(read_header(1000, &error), 0);
	assert_int_equal(pr.hdr.length, 15);
}

/* test_hiccup - TestWithController.test_hiccup: one octet at a time */
static void test_hiccup(void **state)
{
	static const char line[] = V1 "QUIT\r\n";
	const char *error;
	char buf[16];

	play((const unsigned char *)line, sizeof(line) - 1, 1);
	assert_int_equal(read_header(5000, &error), 0);
	assert_int_equal(pr.hdr.length, sizeof(V1) - 1);
	assert_int_equal(pr.hdr.data.src_port, 15221);
	/* The rest arrives, and only it is left. */
	read_exact(buf, 6);
	assert_memory_equal(buf, "QUIT\r\n", 6);
	assert_int_equal(recv(fds[0], buf, sizeof(buf), 0), 0);
}

/* test_longest_v2 - 64 KiB of header, more than the socket holds at
 * once, then one client octet */
static void test_longest_v2(void **state)
{
	size_t len = PROXY_PROTOCOL_V2_MAX + 1;
	unsigned char *p = xcalloc(1, len);
	const char *error;
	char c;

	memcpy(p, V2_LOCAL, 12);
	p[12] = 0x21;
	p[13] = 0x11;
	p[14] = p[15] = 0xff;
	p[16 + 12] = 0x04; /* a NOOP TLV after the INET addresses */
	p[16 + 13] = (unsigned char)((65535 - 15) >> 8);
	p[16 + 14] = (unsigned char)(65535 - 15);
	p[len - 1] = 'Q';
	play(p, len, 4096);
	assert_int_equal(read_header(10000, &error), 0);
	assert_int_equal(pr.hdr.length, PROXY_PROTOCOL_V2_MAX);
	read_exact(&c, 1);
	assert_int_equal(c, 'Q');
	free(p);
}

/* test_timeout - TestWithController.test_incomplete: a header without
 * its last octet never completes */
static void test_timeout(void **state)
{
	const char *error;

	send_all(V1, sizeof(V1) - 2);
	assert_int_equal(read_header(100, &error), -1);
	assert_string_equal(error, "PROXY header timeout");
}

/* test_silence - TestWithController.test_timeout: nothing at all */
static void test_silence(void **state)
{
	const char *error;

	assert_int_equal(read_header(100, &error), -1);
	assert_string_equal(error, "PROXY header timeout");
}

/* test_cut - TestModule.test_get_cut_v1/v2: the proxy hangs up */
static void test_cut(void **state)
{
	const char *error;

	send_all(V1, 20);
	close(fds[1]);
	fds[1] = -1;
	assert_int_equal(read_header(1000, &error), -1);
	assert_string_equal(error, "connection closed during the PROXY header");
}

static void test_invalid(void **state)
{
	const char *error;

	send_all("HELO example.org\r\n", 18);
	assert_int_equal(read_header(1000, &error), -1);
	assert_string_equal(error, "PROXY unrecognized signature");
}

/* test_too_long - no line end within 107 octets, while more keeps
 * coming: refused without reading further */
static void test_too_long(void **state)
{
	char line[300];
	const char *error;

	memset(line, '*', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	send_all(line, sizeof(line));
	assert_int_equal(read_header(1000, &error), -1);
	assert_string_equal(error, "PROXYv1 header too long");
	assert_true(pr.have <= PROXY_PROTOCOL_V1_MAX);
}

static int64_t stopping(void)
{
	return 0; /* the stop deadline has long passed */
}

static void test_stop(void **state)
{
	const char *error;

	send_all(V1, 10);
	assert_int_equal(proxy_recv_header(&pr, fds[0], sockstream_now() + 5000,
					   NULL, stopping, &error),
			 -1);
	assert_string_equal(error, "daemon stopping");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_v1_then_smtp, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_v2_then_client_hello,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_alone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hiccup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_longest_v2, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
