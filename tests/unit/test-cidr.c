/*
 * test-cidr.c - networks for allow-lists, table-driven
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "cidr.h"

struct match_case {
	const char *net;
	const char *addr;
	bool match;
};

static const struct match_case matches[] = {
	{"127.0.0.1", "127.0.0.1", true},
	{"127.0.0.1", "127.0.0.2", false},
	{"127.0.0.0/8", "127.255.1.2", true},
	{"127.0.0.0/8", "128.0.0.1", false},
	{"192.0.2.7/24", "192.0.2.200", true}, /* host bits ignored */
	{"192.0.2.0/25", "192.0.2.128", false},
	{"192.0.2.0/31", "192.0.2.1", true},
	{"0.0.0.0/0", "203.0.113.9", true},
	{"0.0.0.0/0", "::1", false},
	{"::1", "::1", true},
	{"::1/128", "::2", false},
	{"2001:db8::/32", "2001:db8:ffff::1", true},
	{"2001:db8::/33", "2001:db8:8000::1", false},
	{"2001:db8::/33", "2001:db8:7fff::1", true},
	{"::/0", "2001:db8::1", true},
	{"::/0", "10.0.0.1", false},
	/* An IPv4 client on a dual-stack socket. */
	{"10.0.0.0/8", "::ffff:10.1.2.3", true},
	{"10.0.0.0/8", "::ffff:11.1.2.3", false},
	{"::ffff:0:0/96", "::ffff:10.1.2.3", true},
	{"10.0.0.0/8", "not an address", false},
	{"10.0.0.0/8", "", false},
};

static void test_match(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(matches); i++) {
		struct cidr c;

		print_message("%s ~ %s\n", matches[i].net, matches[i].addr);
		assert_int_equal(cidr_parse(matches[i].net, &c), 0);
		assert_int_equal(cidr_match(&c, matches[i].addr),
				 matches[i].match);
	}
}

static void test_parse_errors(void **state)
{
	static const char *const bad[] = {
		"",
		"/8",
		"10.0.0.0/",
		"10.0.0.0/33",
		"::/129",
		"10.0.0.0/-1",
		"10.0.0.0/+8",
		"10.0.0.0/8x",
		"10.0.0/8",
		"localhost",
		"10.0.0.1 ",
		"[::1]",
		"10.0.0.0/0008",
	};
	struct cidr c;

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		print_message("'%s'\n", bad[i]);
		assert_int_equal(cidr_parse(bad[i], &c), -1);
	}
}

static void test_format_and_any(void **state)
{
	struct cidr list[2];
	char text[CIDR_TEXT_SIZE];

	assert_int_equal(cidr_parse("2001:db8::/32", &list[0]), 0);
	assert_int_equal(cidr_parse("192.0.2.1", &list[1]), 0);
	cidr_format(&list[0], text, sizeof(text));
	assert_string_equal(text, "2001:db8::/32");
	cidr_format(&list[1], text, sizeof(text));
	assert_string_equal(text, "192.0.2.1/32");
	assert_true(cidr_match_any(list, 2, "192.0.2.1"));
	assert_true(cidr_match_any(list, 2, "2001:db8::5"));
	assert_false(cidr_match_any(list, 2, "192.0.2.2"));
	assert_false(cidr_match_any(list, 0, "192.0.2.1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_format_and_any),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
