/*
 * test-pool.c - the worker pool policy, table-driven
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alloc.h"
#include "pool.h"

/* the fields pool_to_fork() reads; the others do not matter here */
#define PC(lo, hi, sp)                                                  \
	{.min = (lo), .max = (hi), .spare = (sp), .max_use = 1, .max_idle = 1}

struct pool_case {
	struct pool_conf pc;
	unsigned total, idle;
	unsigned forks;
};

static const struct pool_case cases[] = {
	/* at start: min, or spare if that is more */
	{PC(2, 20, 2), 0, 0, 2},
	{PC(2, 20, 5), 0, 0, 5},
	{PC(4, 20, 2), 0, 0, 4},
	/* settled */
	{PC(2, 20, 2), 2, 2, 0},
	/* busy workers: keep spare idle ones */
	{PC(2, 20, 2), 2, 0, 2},
	{PC(2, 20, 2), 16, 1, 1},
	/* never above max */
	{PC(2, 20, 2), 19, 0, 1},
	{PC(2, 20, 2), 20, 0, 0},
	{PC(1, 3, 5), 2, 0, 1},
	/* bounded per pass */
	{PC(100, 200, 2), 0, 0, POOL_FORKS_PER_TICK},
	/* a fixed pool (-w 3): min = max = 3, spare 0 */
	{PC(3, 3, 0), 1, 0, 2},
	{PC(3, 3, 0), 3, 0, 0},
	/* after a reload: old workers count towards max, not towards idle */
	{PC(2, 4, 2), 3, 0, 1},
};

static void test_cases(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const struct pool_case *c = &cases[i];
		struct pool_counts counts = {c->total, c->idle};

		if (pool_to_fork(&c->pc, counts) != c->forks)
			fail_msg("case %zu: %u forks, expected %u", i,
				 pool_to_fork(&c->pc, counts), c->forks);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
