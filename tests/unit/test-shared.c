/*
 * test-shared.c - per-client connection counts shared across processes
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "alloc.h"
#include "shared.h"

static void test_limit(void **state)
{
	struct shared *sh = shared_create();
	int slots[5];

	for (int i = 0; i < 5; i++) {
		slots[i] = shared_client_enter(sh, "192.0.2.1", 5);
		assert_true(slots[i] >= 0);
	}
	assert_int_equal(shared_client_enter(sh, "192.0.2.1", 5), -1);
	/* another client is not affected */
	assert_true(shared_client_enter(sh, "192.0.2.2", 5) >= 0);
	assert_int_equal(shared_client_count(sh, "192.0.2.1"), 5);
	shared_client_leave(sh, slots[0]);
	assert_int_equal(shared_client_count(sh, "192.0.2.1"), 4);
	assert_true(shared_client_enter(sh, "192.0.2.1", 5) >= 0);
	/* no limit: nothing counted */
	assert_int_equal(shared_client_enter(sh, "192.0.2.9", 0), -2);
	assert_int_equal(shared_client_count(sh, "192.0.2.9"), 0);
	shared_destroy(&sh);
	assert_null(sh);
}

/* test_across_processes - children count into the parent's table */
static void test_across_processes(void **state)
{
	struct shared *sh = shared_create();
	int status;

	for (int i = 0; i < 8; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(shared_client_enter(sh, "2001:db8::1", 100) >= 0
				      ? 0
				      : 1);
		assert_true(pid > 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(shared_client_count(sh, "2001:db8::1"), 8);
	shared_destroy(&sh);
}

/* test_many_clients - slots are reused once their clients are gone */
static void test_many_clients(void **state)
{
	struct shared *sh = shared_create();
	char addr[32];

	for (int round = 0; round < 3; round++) {
		int *slots = xmalloc(SHARED_CLIENTS * sizeof(*slots));

		for (int i = 0; i < SHARED_CLIENTS; i++) {
			snprintf(addr, sizeof(addr), "10.%d.%d.%d", round,
				 i / 256, i % 256);
			slots[i] = shared_client_enter(sh, addr, 1);
			assert_true(slots[i] >= 0);
		}
		/* full: the next address is let through, uncounted */
		assert_int_equal(shared_client_enter(sh, "10.99.0.1", 1), -2);
		for (int i = 0; i < SHARED_CLIENTS; i++)
			shared_client_leave(sh, slots[i]);
		free(slots);
	}
	shared_destroy(&sh);
}

static void test_stress(void **state)
{
	struct shared *sh = shared_create();

	assert_false(shared_stress(sh));
	shared_set_stress(sh, true);
	assert_true(shared_stress(sh));
	shared_destroy(&sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_across_processes),
		cmocka_unit_test(test_many_clients),
		cmocka_unit_test(test_stress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
