/*
 * test-received.c - the Received and Return-Path trace headers
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <cmocka.h>

#include "alloc.h"
#include "received.h"
#include "sbuf.h"

struct protocol_case {
	bool lmtp, extended;
	const char *tls, *auth;
	const char *name;
};

static const struct protocol_case protocols[] = {
	{false, false, NULL, NULL, "SMTP"},
	{false, true, NULL, NULL, "ESMTP"},
	{false, true, NULL, "anne", "ESMTPA"},
	{false, true, "TLSv1.3", NULL, "ESMTPS"},
	{false, true, "TLSv1.3", "anne", "ESMTPSA"},
	{true, true, NULL, NULL, "LMTP"},
	{true, true, "TLSv1.3", "anne", "LMTPSA"},
};

static void test_protocol(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(protocols); i++) {
		const struct protocol_case *p = &protocols[i];
		struct aiosmtpd_session s = {.lmtp = p->lmtp,
					     .extended_smtp = p->extended,
					     .tls_version = p->tls,
					     .auth_user = p->auth};

		assert_string_equal(received_protocol(&s), p->name);
	}
}

struct header_case {
	int family;
	const char *addr;
	const char *helo;
	size_t n_rcpt;
	const char *tls;
	const char *auth;
	const char *want;
};

static const struct header_case headers[] = {
	{AF_INET, "127.0.0.1", "client.example", 1, NULL, NULL,
	 "Received: from client.example ([127.0.0.1])\n"
	 "\tby mx.example (aiosmtpd-c) with ESMTP id 0123456789AB\n"
	 "\tfor <anne@example.com>; Thu, 01 Jan 1970 00:00:00 +0000\n"},
	{AF_INET6, "::1", "a(b) c\rd", 2, NULL, NULL,
	 "Received: from a?b??c?d ([IPv6:::1])\n"
	 "\tby mx.example (aiosmtpd-c) with ESMTP id 0123456789AB; "
	 "Thu, 01 Jan 1970 00:00:00 +0000\n"},
	{AF_UNIX, "", "local", 2, "TLSv1.3", NULL,
	 "Received: from local (unix socket)\n"
	 "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256 bits))\n"
	 "\tby mx.example (aiosmtpd-c) with ESMTPS id 0123456789AB; "
	 "Thu, 01 Jan 1970 00:00:00 +0000\n"},
	{AF_INET, "127.0.0.1", "client.example", 1, "TLSv1.3",
	 "anne@example.com",
	 "Received: from client.example ([127.0.0.1])\n"
	 "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256 bits))\n"
	 "\t(authenticated as anne@example.com)\n"
	 "\tby mx.example (aiosmtpd-c) with ESMTPSA id 0123456789AB\n"
	 "\tfor <anne@example.com>; Thu, 01 Jan 1970 00:00:00 +0000\n"},
	{AF_INET, "127.0.0.1", "client.example", 2, NULL, "b(o)b\r\nX: y",
	 "Received: from client.example ([127.0.0.1])\n"
	 "\t(authenticated as b?o?b??X:?y)\n"
	 "\tby mx.example (aiosmtpd-c) with ESMTPA id 0123456789AB; "
	 "Thu, 01 Jan 1970 00:00:00 +0000\n"},
};

static void test_header(void **state)
{
	static const char *const rcpts[] = {"anne@example.com",
					    "bob@example.com"};

	setenv("TZ", "UTC", 1);
	tzset();
	for (size_t i = 0; i < N_ELEMENTS(headers); i++) {
		const struct header_case *h = &headers[i];
		struct aiosmtpd_session s = {
			.id = "0123456789AB",
			.peer_family = h->family,
			.peer_addr = h->addr,
			.host_name = h->helo,
			.extended_smtp = true,
			.tls_version = h->tls,
			.tls_cipher = "TLS_AES_256_GCM_SHA384",
			.tls_bits = 256,
			.auth_user = h->auth,
			.local_name = "mx.example",
		};
		struct aiosmtpd_envelope e = {.mail_from = "a@b",
					      .rcpt_tos = rcpts,
					      .n_rcpt_tos = h->n_rcpt};
		struct sbuf sb;

		sbuf_init(&sb, 256);
		received_header(&sb, &s, &e, 0, "\n");
		assert_string_equal(sb.data, h->want);
		sbuf_free(&sb);
	}
}

static void test_return_path(void **state)
{
	struct aiosmtpd_envelope e = {.mail_from = "<>"};
	struct sbuf sb;

	sbuf_init(&sb, 64);
	received_return_path(&sb, &e, "\r\n");
	assert_string_equal(sb.data, "Return-Path: <>\r\n");
	sbuf_reset(&sb);
	e.mail_from = "anne\r@example.com";
	received_return_path(&sb, &e, "\n");
	assert_string_equal(sb.data, "Return-Path: <anne?@example.com>\n");
	sbuf_reset(&sb);
	e.mail_from = "j\xc3\xb6rg@example.com";
	e.smtp_utf8 = true;
	received_return_path(&sb, &e, "\n");
	assert_string_equal(sb.data,
			    "Return-Path: <j\xc3\xb6rg@example.com>\n");
	sbuf_free(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_protocol),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_return_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
