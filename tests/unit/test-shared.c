/*
 * test-shared.c - the region the master shares with its workers
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

/* The worker table: lines are reused after free, a worker's writes in
 * its own process are what the master reads, and only starting or idle
 * workers of the current epoch count as ready. */
static void test_worker_table(void **state)
{
	struct shared *sh = shared_create();
	struct shared_worker_view v;
	int a = shared_worker_claim(sh, 1), b = shared_worker_claim(sh, 1);
	pid_t pid;
	int status;

	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	assert_int_equal(shared_ready(sh, 1), 2);
	assert_int_equal(shared_ready(sh, 2), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shared_worker_set(sh, b, WORKER_BUSY, 7, 3, 42);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	shared_worker_read(sh, b, &v);
	assert_int_equal(v.state, WORKER_BUSY);
	assert_int_equal(v.epoch, 1);
	assert_int_equal(v.sessions, 7);
	assert_int_equal(v.messages, 3);
	assert_int_equal(v.client_slot, 42);
	assert_int_equal(shared_ready(sh, 1), 1);
	shared_worker_set(sh, a, WORKER_LEAVING, 0, 0, -1);
	assert_int_equal(shared_ready(sh, 1), 0);
	shared_worker_free(sh, a);
	/* a freed line is claimed again, clean */
	assert_int_equal(shared_worker_claim(sh, 2), a);
	shared_worker_read(sh, a, &v);
	assert_int_equal(v.state, WORKER_STARTING);
	assert_int_equal(v.sessions, 0);
	assert_int_equal(v.client_slot, -1);
	assert_int_equal(shared_ready(sh, 2), 1);
	shared_destroy(&sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_across_processes),
		cmocka_unit_test(test_many_clients),
		cmocka_unit_test(test_stress),
		cmocka_unit_test(test_worker_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
