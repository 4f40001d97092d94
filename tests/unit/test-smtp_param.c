/*
 * test-smtp_param.c - ESMTP parameters, table-driven
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "smtp_param.h"

struct param_case {
	const char *text;
	int result;
	const char *words; /* the words joined by '|' */
};

static const struct param_case cases[] = {
	{"", 0, ""},
	{"SIZE=10", 0, "SIZE=10"},
	{"size=10 body=8bitmime", 0, "SIZE=10|BODY=8BITMIME"},
	{"  SMTPUTF8\t X=1 ", 0, "SMTPUTF8|X=1"},
	{"A\x1c" "B", 0, "A|B"},
	{"SIZE=", -1, NULL},
	{"=1", -1, NULL},
	{"X-Y=1", -1, NULL},
	{"SIZE==", 0, "SIZE=="},
	{"AUTH=<>", 0, "AUTH=<>"},
};

static void test_cases(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct smtp_params p;
		char joined[128] = "";

		assert_int_equal(smtp_params_parse(cases[i].text,
						   strlen(cases[i].text), false,
						   &p),
				 cases[i].result);
		if (cases[i].result == 0) {
			for (size_t w = 0; w < p.n_words; w++) {
				if (w > 0)
					strcat(joined, "|");
				strcat(joined, p.words[w]);
			}
			assert_string_equal(joined, cases[i].words);
		}
		smtp_params_free(&p);
	}
}

static void test_take(void **state)
{
	const char *text = "BODY=7BIT SIZE=5 BODY=8BITMIME SMTPUTF8";
	const char *value = "unset";
	struct smtp_params p;

	assert_int_equal(smtp_params_parse(text, strlen(text), false, &p), 0);
	assert_int_equal(smtp_params_left(&p), 4);
	/* dict semantics: the last value given wins */
	assert_true(smtp_params_take(&p, "BODY", &value));
	assert_string_equal(value, "8BITMIME");
	assert_true(smtp_params_take(&p, "SMTPUTF8", &value));
	assert_null(value);
	assert_false(smtp_params_take(&p, "FOO", &value));
	assert_int_equal(smtp_params_left(&p), 1);
	assert_true(smtp_params_take(&p, "SIZE", &value));
	assert_int_equal(smtp_params_left(&p), 0);
	smtp_params_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_take),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
