/*
 * fuzz.h - what every fuzz target shares
 *
 * Each fuzz-<name>.c defines LLVMFuzzerTestOneInput().  run-fuzzers links
 * it with libFuzzer under AddressSanitizer and UBSan; make check links it
 * with replay.c and feeds it every file of corpus/<name>/, so each input
 * that once crashed stays a regression test.  A target checks properties
 * of its module and calls FUZZ_CHECK(), which aborts: a broken property
 * is a crash like any other.
 */
#ifndef AIOSMTPD_FUZZ_H
#define AIOSMTPD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr)                                                       \
	do {                                                                   \
		if (!(expr)) {                                                 \
			fprintf(stderr, "%s:%d: property broken: %s\n",        \
				__FILE__, __LINE__, #expr);                    \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
