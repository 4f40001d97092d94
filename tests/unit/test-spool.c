/*
 * test-spool.c - content in memory, then in an unlinked file
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "spool.h"

static void fill(struct spool *spool, size_t total, size_t step)
{
	char buf[4096];

	for (size_t off = 0; off < total; off += step) {
		size_t n = total - off < step ? total - off : step;

		for (size_t i = 0; i < n; i++)
			buf[i] = (char)('a' + (off + i) % 26);
		assert_int_equal(spool_write(spool, buf, n), 0);
	}
}

/* check_content - read back with spool_next() and spool_read() */
static void check_content(struct spool *spool, size_t total)
{
	const char *data;
	char buf[1000];
	size_t len, seen = 0;
	ssize_t n;

	assert_int_equal(spool_size(spool), total);
	spool_rewind(spool);
	while (spool_next(spool, &data, &len) > 0) {
		for (size_t i = 0; i < len; i++)
			assert_int_equal(data[i], 'a' + (seen + i) % 26);
		seen += len;
	}
	assert_int_equal(seen, total);
	spool_rewind(spool);
	seen = 0;
	while ((n = spool_read(spool, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(buf[i], 'a' + (seen + i) % 26);
		seen += (size_t)n;
	}
	assert_int_equal(n, 0);
	assert_int_equal(seen, total);
}

static void test_sizes(void **state)
{
	static const size_t sizes[] = {0, 1, SPOOL_MEMORY_LIMIT,
				       SPOOL_MEMORY_LIMIT + 1, 300000};
	struct spool *spool = spool_new(NULL);

	/* One spool for every size, as a worker reuses it. */
	for (size_t i = 0; i < N_ELEMENTS(sizes); i++) {
		spool_reset(spool);
		fill(spool, sizes[i], 4000);
		assert_false(spool_failed(spool));
		check_content(spool, sizes[i]);
	}
	/* and small again after a big one */
	spool_reset(spool);
	fill(spool, 100, 7);
	check_content(spool, 100);
	spool_free(&spool);
	assert_null(spool);
}

static void test_unusable_dir(void **state)
{
	struct spool *spool = spool_new("/nonexistent/dir");

	fill(spool, SPOOL_MEMORY_LIMIT, 4096);
	assert_int_equal(spool_write(spool, "x", 1), -1);
	assert_true(spool_failed(spool));
	assert_int_equal(spool_write(spool, "x", 1), -1);
	spool_reset(spool);
	assert_false(spool_failed(spool));
	spool_free(&spool);
}

/* --- taps ---------------------------------------------------------------- */

/* A tap that counts what it is given and fails on demand. */
struct counter {
	bool refuse;	 /* open returns NULL */
	size_t fail_at;	 /* write fails once this many octets are in */
	size_t octets;
	int opened, discarded;
};

static void *counter_open(void *ctx, const struct aiosmtpd_session *session,
			  const struct aiosmtpd_envelope *envelope)
{
	struct counter *c = ctx;

	if (c->refuse)
		return NULL;
	c->opened++;
	c->octets = 0;
	return c;
}

static int counter_write(void *state, const char *data, size_t len)
{
	struct counter *c = state;

	if (c->fail_at > 0 && c->octets + len >= c->fail_at) {
		errno = ENOSPC;
		return -1;
	}
	c->octets += len;
	return 0;
}

static void counter_discard(void *state)
{
	((struct counter *)state)->discarded++;
}

static const struct spool_tap counter_tap = {
	counter_open, counter_write, counter_discard};

static void test_tap(void **state)
{
	struct spool *spool = spool_new(NULL);
	struct counter c = {0};
	const char *data;
	size_t len;
	char buf[8];

	spool_set_tap(spool, &counter_tap, &c);
	spool_begin(spool, NULL, NULL);
	fill(spool, 300000, 4000);
	assert_int_equal(c.octets, 300000);
	assert_int_equal(spool_size(spool), 300000);
	/* nothing to read back: the tap has it */
	assert_int_equal(spool_next(spool, &data, &len), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(spool_read(spool, buf, sizeof(buf)), -1);
	/* taken over: no discard, and no more writes */
	assert_ptr_equal(spool_take_tap(spool), &c);
	assert_null(spool_take_tap(spool));
	assert_int_equal(spool_write(spool, "x", 1), -1);
	spool_reset(spool);
	assert_int_equal(c.discarded, 0);

	/* not taken: discarded by the next message, a reset or the end */
	spool_begin(spool, NULL, NULL);
	spool_begin(spool, NULL, NULL);
	assert_int_equal(c.discarded, 1);
	spool_reset(spool);
	spool_reset(spool);
	assert_int_equal(c.discarded, 2);

	/* a failing tap fails the spool with its errno */
	c.fail_at = 1000;
	spool_begin(spool, NULL, NULL);
	assert_int_equal(spool_write(spool, buf, 500), 0);
	assert_int_equal(spool_write(spool, buf, 500), -1);
	assert_true(spool_failed(spool));
	assert_int_equal(spool_errno(spool), ENOSPC);
	c.fail_at = 0;

	/* a tap that declines a message: spooled and readable as usual */
	c.refuse = true;
	spool_begin(spool, NULL, NULL);
	assert_int_equal(c.discarded, 3);
	assert_false(spool_failed(spool));
	fill(spool, 100000, 999);
	check_content(spool, 100000);
	assert_null(spool_take_tap(spool));

	/* and the end of the spool discards an open message */
	c.refuse = false;
	spool_begin(spool, NULL, NULL);
	spool_free(&spool);
	assert_int_equal(c.discarded, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_unusable_dir),
		cmocka_unit_test(test_tap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
