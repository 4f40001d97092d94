/*
 * test-pyfmt.c - Python's formatting, with expected values taken from
 * Python 3.11 (bytes.decode(errors="replace"), repr(), splitlines())
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "alloc.h"
#include "pyfmt.h"

#define FFFD "\xef\xbf\xbd"

struct decode_case {
	const char *in;
	size_t len;
	const char *out;
};

static const struct decode_case decodes[] = {
	{"abc", 3, "abc"},
	{"\xff", 1, FFFD},
	{"caf\xc3\xa9", 5, "caf\xc3\xa9"},
	{"\xe2\x82", 2, FFFD},
	{"\xe2\x82" "a", 3, FFFD "a"},
	{"\xe0\x80\x80", 3, FFFD FFFD FFFD},
	{"\xed\xa0\x80", 3, FFFD FFFD FFFD},
	{"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},
	{"\xf0\x9f\x98", 3, FFFD},
	{"\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD},
	{"\xc0\xaf", 2, FFFD FFFD},
	{"a\x80" "b", 3, "a" FFFD "b"},
};

static void test_decode_replace(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(decodes); i++) {
		struct sbuf sb;

		sbuf_init(&sb, 16);
		pyfmt_decode_replace(&sb, decodes[i].in, decodes[i].len);
		assert_string_equal(sb.data, decodes[i].out);
		sbuf_free(&sb);
	}
}

struct repr_case {
	const char *in;
	const char *out;
};

static const struct repr_case reprs[] = {
	{"SIZE=10", "'SIZE=10'"},
	{"A'B", "\"A'B\""},
	{"A\"B", "'A\"B'"},
	{"A'\"B", "'A\\'\"B'"},
	{"\\", "'\\\\'"},
	{"\x01\t", "'\\x01\\t'"},
	{"\xc3\xa9", "'\xc3\xa9'"},
	{"\x80", "'\\udc80'"},
	{"\xe2\x80\x80", "'\\u2000'"},
	{"\xc2\xa0", "'\\xa0'"},
	{"\xc2\xad", "'\\xad'"},
	{"\x7f", "'\\x7f'"},
};

static void test_repr(void **state)
{
	const char *const list[] = {"SIZE=1", "BODY=8BITMIME"};
	struct sbuf sb;

	for (size_t i = 0; i < N_ELEMENTS(reprs); i++) {
		sbuf_init(&sb, 16);
		pyfmt_repr_str(&sb, reprs[i].in, strlen(reprs[i].in));
		assert_string_equal(sb.data, reprs[i].out);
		sbuf_free(&sb);
	}
	sbuf_init(&sb, 16);
	pyfmt_repr_list(&sb, list, 2);
	assert_string_equal(sb.data, "['SIZE=1', 'BODY=8BITMIME']");
	sbuf_free(&sb);
}

static void test_peer(void **state)
{
	struct sbuf sb;

	sbuf_init(&sb, 16);
	pyfmt_peer(&sb, AF_INET, "127.0.0.1", 25);
	pyfmt_peer(&sb, AF_INET6, "::1", 40000);
	pyfmt_peer(&sb, AF_UNIX, "", 0);
	assert_string_equal(sb.data, "('127.0.0.1', 25)('::1', 40000, 0, 0)''");
	sbuf_free(&sb);
}

static int join_line(void *ctx, const char *line, size_t len)
{
	sbuf_append(ctx, line, len);
	sbuf_putc(ctx, '|');
	return 0;
}

/* split - splitlines() over the input cut at position cut */
static void split(const char *in, size_t cut, bool text, struct sbuf *out)
{
	struct pyfmt_lines pl;
	size_t len = strlen(in);

	pyfmt_lines_init(&pl, text);
	pyfmt_lines_feed(&pl, in, cut, join_line, out);
	pyfmt_lines_feed(&pl, in + cut, len - cut, join_line, out);
	pyfmt_lines_finish(&pl, join_line, out);
	pyfmt_lines_free(&pl);
}

static void test_splitlines(void **state)
{
	const char *in = "a\r\nb\rc\nd\r\n\re\x0b" "f\x1cg\xc2\x85h";

	for (size_t cut = 0; cut <= strlen(in); cut++) {
		struct sbuf bytes, text;

		sbuf_init(&bytes, 64);
		sbuf_init(&text, 64);
		split(in, cut, false, &bytes);
		assert_string_equal(bytes.data,
				    "a|b|c|d||e\x0b" "f\x1cg\xc2\x85h|");
		/* str.splitlines(); the UTF-8 U+0085 is only found within
		 * one block */
		split(in, cut == 17 ? 0 : cut, true, &text);
		assert_string_equal(text.data, "a|b|c|d||e|f|g|h|");
		sbuf_free(&bytes);
		sbuf_free(&text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_replace),
		cmocka_unit_test(test_repr),
		cmocka_unit_test(test_peer),
		cmocka_unit_test(test_splitlines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
