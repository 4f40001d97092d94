/*
 * testcert.c - a self-signed certificate for the TLS unit tests
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "testcert.h"

void testcert_make(const char *cert, const char *key)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt "
		 "ec_paramgen_curve:prime256v1 -nodes -keyout %s -out %s "
		 "-days 1 -subj /CN=localhost >/dev/null 2>&1",
		 key, cert);
	assert_int_equal(system(cmd), 0);
}
