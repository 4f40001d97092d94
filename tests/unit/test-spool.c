/*
 * test-spool.c - content in memory, then in an unlinked file
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_unusable_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
