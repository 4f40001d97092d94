/*
 * test-tls.c - building and sharing the OpenSSL contexts
 *
 * Certificates are made with the openssl command line in a temporary
 * directory.  Broken files must fail the build with a message naming
 * them, which is what makes a SIGHUP with broken files keep the running
 * service (tests/integration/test_tls.py sends that SIGHUP).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "alloc.h"
#include "conf.h"
#include "testcert.h"
#include "tls.h"

static char dir[64];
static char cert1[128], key1[128], cert2[128], key2[128];

static int setup(void **state)
{
	strcpy(dir, "/tmp/test-tls.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cert1, sizeof(cert1), "%s/c1.pem", dir);
	snprintf(key1, sizeof(key1), "%s/k1.pem", dir);
	snprintf(cert2, sizeof(cert2), "%s/c2.pem", dir);
	snprintf(key2, sizeof(key2), "%s/k2.pem", dir);
	testcert_make(cert1, key1);
	testcert_make(cert2, key2);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* starttls_conf - one listener with STARTTLS and these files */
static void starttls_conf(struct conf *cfg, const char *cert,
			  const char *key)
{
	conf_init(cfg);
	conf_set_tls(cfg, TLS_MODE_STARTTLS, cert, key, false);
	conf_finish(cfg);
}

static void test_build_and_errors(void **state)
{
	struct tls_contexts *tls = NULL;
	struct conf a, b, c;
	char *error = NULL;

	starttls_conf(&a, cert1, key1);
	assert_int_equal(tls_contexts_new(&a, &tls, &error), 0);
	assert_non_null(tls_contexts_find(tls, &a.listeners[0]));
	tls_contexts_free(&tls);
	assert_null(tls);

	/* a key that does not match */
	starttls_conf(&b, cert1, key2);
	assert_int_equal(tls_contexts_new(&b, &tls, &error), -1);
	assert_null(tls);
	assert_non_null(strstr(error, "--tlscert: cannot load the key "));
	assert_non_null(strstr(error, "key values mismatch"));
	free(error);

	/* a missing file */
	starttls_conf(&c, "/nonexistent.pem", key1);
	assert_int_equal(tls_contexts_new(&c, &tls, &error), -1);
	assert_string_equal(error, "--tlscert: cannot read the certificate "
				   "/nonexistent.pem: No such file or "
				   "directory");
	free(error);
	conf_free(&a);
	conf_free(&b);
	conf_free(&c);
}

static void test_shared_and_plain(void **state)
{
	struct tls_contexts *tls = NULL;
	struct conf cfg;
	SSL_CTX *ctx;
	char *error = NULL;
	char path[] = "/tmp/test-tls-conf.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	assert_non_null(f);
	fprintf(f,
		"tls = { cert = \"%s\"; key = \"%s\"; };\n"
		"listeners = ( { address = \"a:1\"; tls = \"starttls\"; },\n"
		"  { address = \"a:2\"; tls = \"implicit\"; },\n"
		"  { address = \"a:3\"; },\n"
		"  { address = \"a:4\"; tls = { mode = \"implicit\";\n"
		"      min_version = \"TLSv1.3\"; }; },\n"
		"  { address = \"a:5\"; tls = { mode = \"starttls\";\n"
		"      ciphers = \"NO-SUCH-CIPHER\"; }; } );\n",
		cert1, key1);
	fclose(f);
	conf_init(&cfg);
	assert_int_equal(conf_load(&cfg, path, true, &error), 0);
	conf_finish(&cfg);
	/* the bad cipher list is named with its place */
	assert_int_equal(tls_contexts_new(&cfg, &tls, &error), -1);
	assert_non_null(strstr(error, ":8: bad ciphers \"NO-SUCH-CIPHER\""));
	free(error);
	free(cfg.listeners[4].session.tls.ciphers);
	cfg.listeners[4].session.tls.ciphers = NULL;
	assert_int_equal(tls_contexts_new(&cfg, &tls, &error), 0);
	/* one context for the same settings, another for TLS 1.3 only */
	assert_non_null(tls_contexts_find(tls, &cfg.listeners[0]));
	assert_ptr_equal(tls_contexts_find(tls, &cfg.listeners[0]),
			 tls_contexts_find(tls, &cfg.listeners[1]));
	assert_null(tls_contexts_find(tls, &cfg.listeners[2]));
	assert_non_null(tls_contexts_find(tls, &cfg.listeners[3]));
	assert_ptr_not_equal(tls_contexts_find(tls, &cfg.listeners[3]),
			     tls_contexts_find(tls, &cfg.listeners[0]));
	ctx = tls_contexts_find(tls, &cfg.listeners[3]);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
	ctx = tls_contexts_find(tls, &cfg.listeners[0]);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	tls_contexts_free(&tls);
	conf_free(&cfg);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_and_errors),
		cmocka_unit_test(test_shared_and_plain),
	};

	return cmocka_run_group_tests_name("tls", tests, setup, teardown);
}
