/*
 * test-smtp_cmd.c - command line splitting, table-driven
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "smtp_cmd.h"

struct cmd_case {
	const char *line;
	bool utf8;
	enum smtp_cmd_result result;
	const char *verb;
	const char *arg; /* NULL: no argument */
	size_t line_len;
};

static const struct cmd_case cases[] = {
	{"NOOP", false, SMTP_CMD_OK, "NOOP", NULL, 4},
	{"noop", false, SMTP_CMD_OK, "NOOP", NULL, 4},
	{"NOOP\r", false, SMTP_CMD_OK, "NOOP", NULL, 4},
	{"NOOP\r\r", false, SMTP_CMD_OK, "NOOP", NULL, 4},
	{"MAIL FROM:<a@b>", false, SMTP_CMD_OK, "MAIL", "FROM:<a@b>", 15},
	{"mail   FROM:<a@b>  ", false, SMTP_CMD_OK, "MAIL", "FROM:<a@b>", 19},
	{"QUIT ", false, SMTP_CMD_OK, "QUIT", NULL, 5},
	{"QUIT  ", false, SMTP_CMD_OK, "QUIT", NULL, 6},
	{"QUIT \t\x0b\x0c", false, SMTP_CMD_OK, "QUIT", NULL, 8},
	{"NOOP\tx", false, SMTP_CMD_OK, "NOOP\tX", NULL, 6},
	{" NOOP", false, SMTP_CMD_OK, "", "NOOP", 5},
	{"", false, SMTP_CMD_EMPTY, NULL, NULL, 0},
	{"\r", false, SMTP_CMD_EMPTY, NULL, NULL, 0},
	{"NO\xffOP", false, SMTP_CMD_BAD_VERB, NULL, NULL, 5},
	{"NO\xffOP", true, SMTP_CMD_BAD_VERB, NULL, NULL, 5},
	{"NOOP \xc3\xa9", false, SMTP_CMD_NOT_ASCII, NULL, NULL, 7},
	{"NOOP \xc3\xa9", true, SMTP_CMD_OK, "NOOP", "\xc3\xa9", 7},
	/* \x1c is white space to str.strip(), not to bytes.strip() */
	{"NOOP \x1cx\x1c", false, SMTP_CMD_OK, "NOOP", "\x1cx\x1c", 8},
};

static void test_cases(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const struct cmd_case *c = &cases[i];
		char buf[64];
		struct smtp_cmd cmd;
		size_t len = strlen(c->line);

		memcpy(buf, c->line, len + 1);
		assert_int_equal(smtp_cmd_parse(buf, len, c->utf8, &cmd),
				 c->result);
		assert_int_equal(cmd.line_len, c->line_len);
		if (c->result != SMTP_CMD_OK)
			continue;
		assert_string_equal(cmd.verb, c->verb);
		if (c->arg == NULL)
			assert_null(cmd.arg);
		else
			assert_string_equal(cmd.arg, c->arg);
	}
}

struct strip_case {
	const char *in;
	bool utf8;
	const char *out;
};

static const struct strip_case strips[] = {
	{"  a b  ", false, "a b"},
	{"\x1c\x1d a \x1f", false, "a"},
	{"\xc2\xa0x\xe3\x80\x80", true, "x"},
	{"\xc2\xa0x\xe3\x80\x80", false, "\xc2\xa0x\xe3\x80\x80"},
	{"\xe2\x80\x8a\xe2\x80\xa8x\xe2\x81\x9f\xc2\x85", true, "x"},
	{"\xe2\x80\x8bx", true, "\xe2\x80\x8bx"}, /* U+200B is not space */
	{"\xe2\xc2\x85", true, "\xe2"},
	{"", false, ""},
	{"   ", false, ""},
};

static void test_pystrip(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(strips); i++) {
		const char *p = strips[i].in;
		size_t len = strlen(p);

		smtp_pystrip(&p, &len, strips[i].utf8);
		assert_int_equal(len, strlen(strips[i].out));
		assert_memory_equal(p, strips[i].out, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_pystrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
