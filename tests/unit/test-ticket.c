/*
 * test-ticket.c - TLS session tickets under the shared, renewed keys
 *
 * A server context with the ticket keys and a client context shake hands
 * in memory (a BIO pair), so a ticket can be taken and offered again
 * after the keys have been renewed, or from a context built later, as a
 * reload builds one.  Time is what ticket_keys_rotate() is told.
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

#include <openssl/ssl.h>

#include "sockstream.h"
#include "testcert.h"
#include "ticket.h"

static char dir[64], cert[128], key[128];
/* The master's clock as the last test told it to ticket_keys_rotate(). */
static int64_t clock_ms;

static int setup(void **state)
{
	strcpy(dir, "/tmp/test-ticket.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	testcert_make(cert, key);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* server_context - as tls.c builds one: certificate, key, ticket keys */
static SSL_CTX *server_context(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM),
			 1);
	assert_int_equal(ticket_keys_attach(ctx), 0);
	return ctx;
}

static SSL_CTX *client_context(int version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	SSL_CTX_set_min_proto_version(ctx, version);
	SSL_CTX_set_max_proto_version(ctx, version);
	return ctx;
}

/*
 * connect_once - one connection offering session (or none): the
 * handshake, one octet each way (which carries TLS 1.3 tickets), and
 * the client's session afterwards in *session_r.  Returns whether the
 * session was resumed.
 */
static bool connect_once(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *session,
			 SSL_SESSION **session_r)
{
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	BIO *sb, *cb;
	bool s_done = false, c_done = false, reused;
	char octet = 'x';

	assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	if (session != NULL)
		assert_int_equal(SSL_set_session(c, session), 1);
	for (int i = 0; i < 100 && !(s_done && c_done); i++) {
		c_done = c_done || SSL_do_handshake(c) == 1;
		s_done = s_done || SSL_do_handshake(s) == 1;
	}
	assert_true(s_done && c_done);
	assert_int_equal(SSL_write(s, &octet, 1), 1);
	assert_int_equal(SSL_read(c, &octet, 1), 1);
	assert_int_equal(SSL_write(c, &octet, 1), 1);
	assert_int_equal(SSL_read(s, &octet, 1), 1);
	reused = SSL_session_reused(c);
	assert_int_equal(reused, SSL_session_reused(s));
	*session_r = SSL_get1_session(c);
	assert_non_null(*session_r);
	/* Without close_notify OpenSSL would mark the session unusable. */
	(void)SSL_shutdown(c);
	(void)SSL_shutdown(s);
	SSL_free(s);
	SSL_free(c);
	return reused;
}

/* offer - the ticket of session as first received: a TLS 1.3 client
 * writes a renewed ticket into the session it resumed, so each attempt
 * starts from a copy */
static SSL_SESSION *offer(const unsigned char *der, long len)
{
	SSL_SESSION *copy = d2i_SSL_SESSION(NULL, &der, len);

	assert_non_null(copy);
	return copy;
}

/* resumes - does the ticket in der resume on sctx? */
static bool resumes(SSL_CTX *sctx, SSL_CTX *cctx, const unsigned char *der,
		    long len)
{
	SSL_SESSION *session = offer(der, len), *after;
	bool resumed = connect_once(sctx, cctx, session, &after);

	SSL_SESSION_free(after);
	SSL_SESSION_free(session);
	return resumed;
}

static void ticket_lifecycle(int version)
{
	SSL_CTX *sctx = server_context(), *cctx = client_context(version);
	SSL_CTX *reloaded;
	SSL_SESSION *first;
	unsigned char *der = NULL;
	long len;
	/* No earlier than the newer key was made, by either clock. */
	int64_t t = clock_ms > sockstream_now() ? clock_ms : sockstream_now();

	assert_false(connect_once(sctx, cctx, NULL, &first));
	assert_true((len = i2d_SSL_SESSION(first, &der)) > 0);
	SSL_SESSION_free(first);
	assert_true(resumes(sctx, cctx, der, len));

	/* A context built later, as a reload builds one, opens it too. */
	reloaded = server_context();
	assert_true(resumes(reloaded, cctx, der, len));

	/* Not yet a period: the keys stay. */
	ticket_keys_rotate(t + TICKET_PERIOD * 1000LL - 60000);
	assert_true(resumes(sctx, cctx, der, len));

	/* One new key: the ticket's key is the older one now, which still
	 * opens it. */
	ticket_keys_rotate(t + TICKET_PERIOD * 1000LL);
	assert_true(resumes(sctx, cctx, der, len));

	/* Two new keys: the ticket's key is gone; a full handshake. */
	clock_ms = t + 2 * TICKET_PERIOD * 1000LL;
	ticket_keys_rotate(clock_ms);
	assert_false(resumes(reloaded, cctx, der, len));
	assert_false(resumes(sctx, cctx, der, len));
	OPENSSL_free(der);
	SSL_CTX_free(reloaded);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

static void test_tls13(void **state)
{
	ticket_lifecycle(TLS1_3_VERSION);
}

static void test_tls12(void **state)
{
	ticket_lifecycle(TLS1_2_VERSION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls13),
		cmocka_unit_test(test_tls12),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
