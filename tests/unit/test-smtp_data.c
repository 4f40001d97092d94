/*
 * test-smtp_data.c - the DATA reader, table-driven, with every input cut
 * at every position so state carried between blocks is exercised
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "smtp_data.h"
#include "sbuf.h"

struct data_case {
	const char *name;
	const char *input;
	uint64_t limit;
	enum smtp_data_status status;
	const char *content; /* what the sink receives, when NOMINAL */
	const char *rest;    /* input left after the final dot */
};

static const struct data_case cases[] = {
	{"empty message", ".\r\n", 0, SMTP_DATA_NOMINAL, "", ""},
	{"one line", "hello\r\n.\r\n", 0, SMTP_DATA_NOMINAL, "hello\r\n", ""},
	{"dots removed", "..a\r\n.b\r\n...\r\n.\r\n", 0, SMTP_DATA_NOMINAL,
	 ".a\r\nb\r\n..\r\n", ""},
	{"dot with trailing space", ". \r\n.\r\n", 0, SMTP_DATA_NOMINAL,
	 " \r\n", ""},
	{"dot then bare CR", ".\rx\r\n.\r\n", 0, SMTP_DATA_NOMINAL, "\rx\r\n",
	 ""},
	{"bare LF dot is content", "a\n.\r\nb\r\n.\r\n", 0, SMTP_DATA_NOMINAL,
	 "a\n.\r\nb\r\n", ""},
	{"LF dot LF is content", "a\r\n.\nb\r\n.\r\n", 0, SMTP_DATA_NOMINAL,
	 "a\r\n\nb\r\n", ""},
	{"CR dot CR LF is content", "a\r.\r\nb\r\n.\r\n", 0,
	 SMTP_DATA_NOMINAL, "a\r.\r\nb\r\n", ""},
	{"CR CR LF", "a\r\r\n.\r\n", 0, SMTP_DATA_NOMINAL, "a\r\r\n", ""},
	{"pipelined command after the dot", "x\r\n.\r\nQUIT\r\n", 0,
	 SMTP_DATA_NOMINAL, "x\r\n", "QUIT\r\n"},
	{"limit exactly met", "12345678\r\n.\r\n", 10, SMTP_DATA_NOMINAL,
	 "12345678\r\n", ""},
	{"limit passed by one", "123456789\r\n.\r\n", 10, SMTP_DATA_TOO_MUCH,
	 NULL, ""},
	{"stuffed dots count", ".2345678\r\n..\r\n.\r\n", 12,
	 SMTP_DATA_TOO_MUCH, NULL, ""},
	{"too much, then a long line", "123456789\r\n", 10, SMTP_DATA_TOO_MUCH,
	 NULL, NULL}, /* completed at run time with a long line */
	{"a long line first wins", NULL, 10, SMTP_DATA_TOO_LONG, NULL, ""},
	{"999 octets", NULL, 0, SMTP_DATA_NOMINAL, NULL, ""},
	{"1000 octets", NULL, 0, SMTP_DATA_TOO_LONG, NULL, ""},
	{"998 octets and a dot", NULL, 0, SMTP_DATA_NOMINAL, NULL, ""},
	{"999 octets and a dot", NULL, 0, SMTP_DATA_TOO_LONG, NULL, ""},
	{"1000 octets, too much first", NULL, 5, SMTP_DATA_TOO_MUCH, NULL,
	 ""},
	{"1002 octets, too long first", NULL, 5, SMTP_DATA_TOO_LONG, NULL,
	 ""},
	{"long line ending in a dot is not the end", NULL, 0,
	 SMTP_DATA_TOO_LONG, NULL, ""},
};

/* long_input - the inputs too long to write out */
static char *long_input(const struct data_case *c)
{
	struct sbuf sb;
	char line[2000];

	sbuf_init(&sb, 4096);
	memset(line, 'y', sizeof(line));
	if (strcmp(c->name, "too much, then a long line") == 0) {
		sbuf_puts(&sb, c->input);
		sbuf_append(&sb, line, 1500);
		sbuf_puts(&sb, "\r\n.\r\n");
	} else if (strcmp(c->name, "a long line first wins") == 0) {
		sbuf_append(&sb, line, 1002);
		sbuf_puts(&sb, "\r\n0123456789\r\n.\r\n");
	} else if (strncmp(c->name, "99", 2) == 0 ||
		   strncmp(c->name, "100", 3) == 0) {
		/* "N octets[ and a dot][, ...]": a line of N octets */
		if (strstr(c->name, "and a dot") != NULL)
			sbuf_puts(&sb, ".");
		sbuf_append(&sb, line, (size_t)atoi(c->name));
		sbuf_puts(&sb, "\r\n.\r\n");
	} else {
		sbuf_append(&sb, line, 1100);
		sbuf_puts(&sb, ".\r\n.\r\n");
	}
	return sbuf_detach(&sb);
}

static void collect(void *ctx, const char *data, size_t len)
{
	sbuf_append(ctx, data, len);
}

/* run - feed input cut at the given positions; returns the consumed
 * length */
static size_t run(const char *input, size_t len, uint64_t limit,
		  const size_t *cuts, size_t n_cuts,
		  struct smtp_data_reader *rd, struct sbuf *out)
{
	size_t pos = 0, used;
	bool done = false;

	smtp_data_begin(rd, limit, collect, out);
	for (size_t i = 0; i <= n_cuts && !done; i++) {
		size_t end = i < n_cuts ? cuts[i] : len;

		while (pos < end && !done) {
			used = smtp_data_feed(rd, input + pos, end - pos, &done);
			assert_true(used > 0 || end == pos);
			pos += used;
			if (!done)
				assert_int_equal(pos, end);
		}
	}
	assert_true(done);
	return pos;
}

static void check(const struct data_case *c, const char *input, size_t len,
		  const size_t *cuts, size_t n_cuts)
{
	struct smtp_data_reader rd;
	struct sbuf out;
	size_t consumed;

	sbuf_init(&out, 256);
	consumed = run(input, len, c->limit, cuts, n_cuts, &rd, &out);
	assert_int_equal(rd.status, c->status);
	if (c->rest != NULL)
		assert_string_equal(input + consumed, c->rest);
	if (c->content != NULL) {
		assert_int_equal(out.len, strlen(c->content));
		assert_memory_equal(out.data, c->content, out.len);
		assert_int_equal(rd.content, out.len);
	}
	sbuf_free(&out);
}

static void test_cases(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const struct data_case *c = &cases[i];
		char *input = c->rest == NULL || c->input == NULL
				      ? long_input(c)
				      : xstrdup(c->input);
		size_t len = strlen(input);

		print_message("case: %s\n", c->name);
		check(c, input, len, NULL, 0);
		for (size_t cut = 1; cut < len; cut++)
			check(c, input, len, &cut, 1);
		free(input);
	}
}

/* test_byte_by_byte - every octet in its own block */
static void test_byte_by_byte(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const struct data_case *c = &cases[i];
		char *input = c->rest == NULL || c->input == NULL
				      ? long_input(c)
				      : xstrdup(c->input);
		size_t len = strlen(input);
		size_t *cuts = xmalloc(len * sizeof(*cuts));

		for (size_t k = 0; k < len; k++)
			cuts[k] = k + 1;
		check(c, input, len, cuts, len - 1);
		free(cuts);
		free(input);
	}
}

/* test_counted - the size aiosmtpd counts: every line but the final dot,
 * with its CRLF and any stuffed dot */
static void test_counted(void **state)
{
	const char *input = "ab\r\n..c\r\n.\r\n";
	struct smtp_data_reader rd;
	struct sbuf out;

	sbuf_init(&out, 64);
	run(input, strlen(input), 0, NULL, 0, &rd, &out);
	assert_int_equal(rd.counted, 4 + 5);
	assert_int_equal(rd.content, 4 + 4);
	sbuf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_counted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
