/*
 * test-smtp_io.c - buffered lines and replies over a memory stream
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "dialogue.h"
#include "smtp_io.h"

/* read_all - every line of in, with lines too long shown as "<LONG>" */
static void read_all(const char *in, size_t len, size_t chunk, size_t max,
		     struct sbuf *got)
{
	struct memstream ms;
	struct smtp_io *io;
	enum smtp_io_status st;
	const char *line;
	size_t n;

	memstream_init(&ms, in, len, chunk);
	io = smtp_io_new(&memstream_ops, &ms);
	while ((st = smtp_io_read_line(io, max, &line, &n)) != SMTP_IO_EOF) {
		if (st == SMTP_IO_TOO_LONG)
			sbuf_puts(got, "<LONG>|");
		else {
			assert_int_equal(st, SMTP_IO_OK);
			sbuf_append(got, line, n);
			sbuf_puts(got, "|");
		}
	}
	smtp_io_free(&io);
	memstream_free(&ms);
}

static void test_lines(void **state)
{
	static const size_t chunks[] = {0, 1, 2, 3, 5};
	const char *in = "a\r\nbb\n\nccc\r\r\npartial";

	for (size_t i = 0; i < N_ELEMENTS(chunks); i++) {
		struct sbuf got;

		sbuf_init(&got, 64);
		read_all(in, strlen(in), chunks[i], 10, &got);
		/* the partial last line is dropped at EOF */
		assert_string_equal(got.data, "a\r|bb||ccc\r\r|");
		sbuf_free(&got);
	}
}

/* test_limit - the LF must come within max + 1 octets */
static void test_limit(void **state)
{
	static const size_t chunks[] = {0, 1, 4};
	const char *in = "12345\n123456\n1234567890123\nok\n";

	for (size_t i = 0; i < N_ELEMENTS(chunks); i++) {
		struct sbuf got;

		sbuf_init(&got, 64);
		read_all(in, strlen(in), chunks[i], 5, &got);
		assert_string_equal(got.data, "12345|<LONG>|<LONG>|ok|");
		sbuf_free(&got);
	}
}

/* test_huge_line - a line far longer than the buffer is skipped */
static void test_huge_line(void **state)
{
	size_t len = 3 * SMTP_IO_INPUT_SIZE;
	char *in = xmalloc(len + 8);
	struct sbuf got;

	memset(in, 'x', len);
	memcpy(in + len, "\nNOOP\n", 7);
	sbuf_init(&got, 64);
	read_all(in, len + 6, 0, 1001, &got);
	assert_string_equal(got.data, "<LONG>|NOOP|");
	sbuf_free(&got);
	free(in);
}

/* test_flush_before_read - replies go out only when input runs dry */
static void test_flush_before_read(void **state)
{
	struct memstream ms;
	struct smtp_io *io;
	const char *line;
	size_t n;

	memstream_init(&ms, "A\nB\n", 4, 0);
	io = smtp_io_new(&memstream_ops, &ms);
	smtp_io_replys(io, "220 hi");
	assert_int_equal(ms.writes, 0);
	assert_int_equal(smtp_io_read_line(io, 100, &line, &n), SMTP_IO_OK);
	assert_int_equal(ms.writes, 1); /* flushed before the first read */
	smtp_io_replys(io, "250 A");
	assert_int_equal(smtp_io_read_line(io, 100, &line, &n), SMTP_IO_OK);
	assert_int_equal(ms.writes, 1); /* B was buffered: no flush */
	smtp_io_replyf(io, "250 %s", "B");
	assert_int_equal(smtp_io_read_line(io, 100, &line, &n), SMTP_IO_EOF);
	assert_int_equal(ms.writes, 2);
	assert_string_equal(ms.out.data, "220 hi\r\n250 A\r\n250 B\r\n");
	smtp_io_free(&io);
	memstream_free(&ms);
}

static void test_discard_and_errors(void **state)
{
	struct memstream ms;
	struct smtp_io *io;
	const char *line;
	size_t n;

	memstream_init(&ms, "STARTTLS\nNOOP\n", 14, 0);
	ms.fail_read_errno = ETIMEDOUT;
	io = smtp_io_new(&memstream_ops, &ms);
	assert_int_equal(smtp_io_read_line(io, 100, &line, &n), SMTP_IO_OK);
	assert_int_equal(smtp_io_buffered(io), 5);
	smtp_io_discard_input(io);
	assert_int_equal(smtp_io_buffered(io), 0);
	assert_int_equal(smtp_io_read_line(io, 100, &line, &n),
			 SMTP_IO_ERROR);
	assert_int_equal(smtp_io_errno(io), ETIMEDOUT);
	smtp_io_free(&io);
	memstream_free(&ms);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_huge_line),
		cmocka_unit_test(test_flush_before_read),
		cmocka_unit_test(test_discard_and_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
