/*
 * test-smtp_auth.c - AUTH framing and STARTTLS through the engine's seams
 *
 * A fake SASL back end (PLAIN, LOGIN and a server-first X-ECHO) and the
 * dialogue module's fake TLS stand in for Cyrus and OpenSSL, so every
 * reply of BEHAVIOR.md's AUTH and STARTTLS sections is pinned down without
 * sockets; tests/integration runs the same rows with the real libraries.
 * Every dialogue also runs with the input cut into 1- and 7-octet reads.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "alloc.h"
#include "dialogue.h"
#include "smtp_auth.h"

#define GREETING "S: 220 mx.test ident"
#define EHLO_START "S: 250-mx.test", "S: 250-SIZE 33554432", "S: 250-8BITMIME"
#define MECHS "S: 250-AUTH LOGIN PLAIN X-ECHO"
/* "\0alice\0secret" and "\0alice\0wrong" */
#define PLAIN_OK "AGFsaWNlAHNlY3JldA=="
#define PLAIN_BAD "AGFsaWNlAHdyb25n"
#define OK_235 "S: 235 2.7.0 Authentication successful"
#define BAD_535 "S: 535 5.7.8 Authentication credentials invalid"

/* --- base64 --------------------------------------------------------------- */

struct b64_case {
	const char *text;
	const char *decoded; /* NULL: invalid, as Python's validate=True */
	size_t len;
};

static const struct b64_case b64_cases[] = {
	{"", "", 0},
	{"AA==", "\0", 1},
	{"AB==", "\0", 1}, /* Python ignores the unused bits too */
	{"dGVzdA==", "test", 4},
	{"dGVzdDE=", "test1", 5},
	{"dGVzdDEy", "test12", 6},
	{PLAIN_OK, "\0alice\0secret", 13},
	{"=", NULL, 0},
	{"AA", NULL, 0},
	{"AAA", NULL, 0},
	{"A", NULL, 0},
	{"dGVzdA", NULL, 0},
	{"dGVzdA==\r", NULL, 0},
	{" dGVzdA==", NULL, 0},
	{"AB=C", NULL, 0},
	{"AAA=AAAA", NULL, 0},
	{"====", NULL, 0},
	{"AA==AA==", NULL, 0},
	{"dGV*dA==", NULL, 0},
	{"dGV-dA==", NULL, 0},
};

static void test_base64_decode(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(b64_cases); i++) {
		const struct b64_case *c = &b64_cases[i];
		char out[64];
		size_t len = 99;
		int r = smtp_base64_decode(c->text, strlen(c->text), out, &len);

		if (c->decoded == NULL) {
			if (r != -1)
				fail_msg("\"%s\" decoded", c->text);
			continue;
		}
		if (r != 0)
			fail_msg("\"%s\" not decoded", c->text);
		assert_int_equal(len, c->len);
		assert_memory_equal(out, c->decoded, len);
	}
}

static void test_base64_encode(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(b64_cases); i++) {
		const struct b64_case *c = &b64_cases[i];
		char out[64];

		if (c->decoded == NULL || strcmp(c->text, "AB==") == 0)
			continue;
		assert_true(smtp_base64_encoded_len(c->len) <= sizeof(out));
		assert_int_equal(smtp_base64_encode(c->decoded, c->len, out),
				 strlen(c->text));
		assert_string_equal(out, c->text);
	}
}

/* --- a fake SASL back end ------------------------------------------------- */

struct fake_auth {
	const char *mechanisms;
	char mechanism[16];
	char login_user[32];
	unsigned failed_calls;
	unsigned last_failures;
};

static enum smtp_auth_status check_plain(const char *p, size_t len)
{
	static const char good[] = "\0alice\0secret";

	return len == sizeof(good) - 1 && memcmp(p, good, len) == 0
		       ? SMTP_AUTH_OK
		       : SMTP_AUTH_BADAUTH;
}

static enum smtp_auth_status
fake_step(void *ctx, const char *response, size_t len,
	  const char **challenge_r, size_t *challenge_len_r)
{
	struct fake_auth *fa = ctx;

	if (strcmp(fa->mechanism, "PLAIN") == 0)
		return check_plain(response, len);
	if (strcmp(fa->mechanism, "X-ECHO") == 0)
		return len == 5 && memcmp(response, "nonce", 5) == 0
			       ? SMTP_AUTH_OK
			       : SMTP_AUTH_BADAUTH;
	if (fa->login_user[0] == '\0') {
		snprintf(fa->login_user, sizeof(fa->login_user), "%.*s",
			 (int)len, response);
		*challenge_r = "Password:";
		*challenge_len_r = 9;
		return SMTP_AUTH_CONTINUE;
	}
	return strcmp(fa->login_user, "alice") == 0 && len == 6 &&
			       memcmp(response, "secret", 6) == 0
		       ? SMTP_AUTH_OK
		       : SMTP_AUTH_BADAUTH;
}

static enum smtp_auth_status
fake_start(void *ctx, const char *mechanism, const char *response,
	   size_t len, const char **challenge_r, size_t *challenge_len_r)
{
	struct fake_auth *fa = ctx;

	snprintf(fa->mechanism, sizeof(fa->mechanism), "%s", mechanism);
	fa->login_user[0] = '\0';
	*challenge_r = "";
	*challenge_len_r = 0;
	if (strcmp(mechanism, "X-ECHO") == 0) {
		if (response != NULL)
			return SMTP_AUTH_BADPROT;
		*challenge_r = "nonce";
		*challenge_len_r = 5;
		return SMTP_AUTH_CONTINUE;
	}
	if (strcmp(mechanism, "X-TEMP") == 0)
		return SMTP_AUTH_TEMPFAIL;
	if (response == NULL && strcmp(mechanism, "LOGIN") == 0) {
		*challenge_r = "Username:";
		*challenge_len_r = 9;
		return SMTP_AUTH_CONTINUE;
	}
	if (response == NULL)
		return SMTP_AUTH_CONTINUE;
	return fake_step(ctx, response, len, challenge_r, challenge_len_r);
}

static const char *fake_mechanisms(void *ctx)
{
	struct fake_auth *fa = ctx;

	return fa->mechanisms;
}

static const char *fake_user(void *ctx)
{
	return "alice@test";
}

static void fake_failed(void *ctx, unsigned failures)
{
	struct fake_auth *fa = ctx;

	fa->failed_calls++;
	fa->last_failures = failures;
}

static const struct smtp_auth_ops fake_ops = {
	.mechanisms = fake_mechanisms,
	.start = fake_start,
	.step = fake_step,
	.user = fake_user,
	.failed = fake_failed,
};

/* --- settings and clients ------------------------------------------------- */

static const struct aiosmtpd_session tls_peer = {
	.id = "TEST",
	.peer_family = AF_INET,
	.peer_addr = "127.0.0.1",
	.peer_port = 4000,
	.tls_version = "TLSv1.3",
	.tls_cipher = "TEST_CIPHER",
	.tls_bits = 256,
};

static void tls_offered(struct smtp_settings *set)
{
	set->tls_available = true;
}

static void require_starttls(struct smtp_settings *set)
{
	set->tls_available = true;
	set->require_starttls = true;
}

static void auth_plaintext(struct smtp_settings *set)
{
	set->auth_require_tls = false;
}

static void auth_required(struct smtp_settings *set)
{
	set->auth_required = true;
}

static void starttls_auth_plaintext(struct smtp_settings *set)
{
	set->tls_available = true;
	set->auth_require_tls = false;
	set->auth_required = true;
}

static void no_limit(struct smtp_settings *set)
{
	set->auth_max_failures = 0;
}

struct dialogue {
	const char *name;
	void (*setup)(struct smtp_settings *set);
	const struct aiosmtpd_session *peer; /* NULL: plaintext */
	const char *const *transcript;
	enum smtp_session_end end;
};

#define T(...)                                                                 \
	(const char *const[])                                                  \
	{                                                                      \
		__VA_ARGS__, NULL                                              \
	}

static const struct dialogue dialogues[] = {
	/* AUTH, BEHAVIOR.md's table in order */
	{"no auth offered in plaintext", NULL, NULL,
	 T(GREETING, "C: EHLO x", EHLO_START, "S: 250 HELP",
	   "C: AUTH PLAIN " PLAIN_OK,
	   "S: 538 5.7.11 Encryption required for requested authentication "
	   "mechanism"),
	 SMTP_END_EOF},
	{"auth before ehlo and after helo", NULL, &tls_peer,
	 T(GREETING, "C: AUTH PLAIN " PLAIN_OK,
	   "S: 503 Error: send EHLO first", "C: HELO x", "S: 250 mx.test",
	   "C: AUTH PLAIN " PLAIN_OK,
	   "S: 500 Error: command 'AUTH' not recognized"),
	 SMTP_END_EOF},
	{"auth over implicit tls", NULL, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH PLAIN " PLAIN_OK, OK_235, "C: AUTH PLAIN " PLAIN_OK,
	   "S: 503 Already authenticated"),
	 SMTP_END_EOF},
	{"auth argument errors", NULL, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH", "S: 501 Not enough value", "C: AUTH PLAIN a b",
	   "S: 501 Too many values", "C: AUTH plain " PLAIN_OK,
	   "S: 504 5.5.4 Unrecognized authentication type",
	   "C: AUTH CRAM-MD5",
	   "S: 504 5.5.4 Unrecognized authentication type",
	   "C: AUTH  PLAIN \t " PLAIN_OK "  ", OK_235),
	 SMTP_END_EOF},
	{"plain with a challenge", NULL, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH PLAIN", "S: 334 ", "C: " PLAIN_OK, OK_235),
	 SMTP_END_EOF},
	{"plain errors", NULL, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH PLAIN =", "S: 501 5.5.2 Can't split auth value",
	   "C: AUTH PLAIN dGVzdA==", "S: 501 5.5.2 Can't split auth value",
	   "C: AUTH PLAIN !!!!", "S: 501 5.5.2 Can't decode base64",
	   "C: AUTH PLAIN", "S: 334 ", "C: ",
	   "S: 501 5.5.2 Can't split auth value", "C: AUTH PLAIN",
	   "S: 334 ", "C: =", "S: 501 5.5.2 Can't decode base64",
	   "C: AUTH PLAIN", "S: 334 ", "C: *", "S: 501 5.7.0 Auth aborted",
	   "C: AUTH PLAIN " PLAIN_OK, OK_235),
	 SMTP_END_EOF},
	{"login", NULL, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6", "C: YWxpY2U=",
	   "S: 334 UGFzc3dvcmQ6", "C: c2VjcmV0", OK_235),
	 SMTP_END_EOF},
	{"login with initial response, abort, bad base64", NULL, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH LOGIN YWxpY2U=", "S: 334 UGFzc3dvcmQ6", "C: *",
	   "S: 501 5.7.0 Auth aborted", "C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6",
	   "C: YWxp Y2U=", "S: 501 5.5.2 Can't decode base64",
	   "C: AUTH LOGIN YWxpY2U=", "S: 334 UGFzc3dvcmQ6", "C:  c2VjcmV0 ",
	   OK_235),
	 SMTP_END_EOF},
	{"server-first mechanism", NULL, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH X-ECHO bm9uY2U=",
	   "S: 501 5.5.2 Malformed authentication data", "C: AUTH X-ECHO",
	   "S: 334 bm9uY2U=", "C: bm9uY2U=", OK_235),
	 SMTP_END_EOF},
	{"wrong credentials, then the limit", NULL, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH PLAIN " PLAIN_BAD, BAD_535, "C: AUTH LOGIN YWxpY2U=",
	   "S: 334 UGFzc3dvcmQ6", "C: d3Jvbmc=", BAD_535,
	   "C: AUTH PLAIN " PLAIN_BAD,
	   "S: 421 4.7.0 Too many authentication failures",
	   "C: AUTH PLAIN " PLAIN_OK),
	 SMTP_END_LIMIT},
	{"no failure limit", no_limit, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH PLAIN " PLAIN_BAD, BAD_535, "C: AUTH PLAIN " PLAIN_BAD,
	   BAD_535, "C: AUTH PLAIN " PLAIN_BAD, BAD_535,
	   "C: AUTH PLAIN " PLAIN_BAD, BAD_535, "C: AUTH PLAIN " PLAIN_OK,
	   OK_235),
	 SMTP_END_EOF},
	{"auth required", auth_required, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: MAIL FROM:<a@b>", "S: 530 5.7.0 Authentication required",
	   "C: AUTH PLAIN " PLAIN_OK, OK_235, "C: MAIL FROM:<a@b>",
	   "S: 250 OK"),
	 SMTP_END_EOF},
	{"auth allowed in plaintext", auth_plaintext, NULL,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH PLAIN " PLAIN_OK, OK_235),
	 SMTP_END_EOF},
	{"answer line too long", NULL, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH PLAIN", "S: 334 ", NULL /* filled in */),
	 SMTP_END_EOF},

	/* STARTTLS */
	{"starttls injection", tls_offered, NULL,
	 T(GREETING, "C: EHLO x", EHLO_START, "S: 250-STARTTLS", "S: 250 HELP",
	   "R: STARTTLS\r\nNOOP\r\n", "S: 220 Ready to start TLS", "T: ok",
	   "C: QUIT", "S: 221 Bye"),
	 SMTP_END_QUIT},
	{"starttls starts over", tls_offered, NULL,
	 T(GREETING, "C: EHLO x", EHLO_START, "S: 250-STARTTLS", "S: 250 HELP",
	   "C: MAIL FROM:<a@b>", "S: 250 OK", "C: STARTTLS",
	   "S: 220 Ready to start TLS", "T: ok", "C: RCPT TO:<c@d>",
	   "S: 503 Error: send HELO first", "C: EHLO x", EHLO_START, MECHS,
	   "S: 250 HELP", "C: RCPT TO:<c@d>", "S: 503 Error: need MAIL command",
	   "C: STARTTLS", "S: 554 5.5.1 Error: TLS already active",
	   "C: STARTTLS x", "S: 501 Syntax: STARTTLS"),
	 SMTP_END_EOF},
	{"starttls handshake fails", tls_offered, NULL,
	 T(GREETING, "C: STARTTLS", "S: 220 Ready to start TLS", "T: fail",
	   "C: NOOP"),
	 SMTP_END_TLS},
	{"require starttls", require_starttls, NULL,
	 T(GREETING, "C: MAIL FROM:<a@b>",
	   "S: 530 Must issue a STARTTLS command first", "C: AUTH PLAIN",
	   "S: 530 Must issue a STARTTLS command first", "C: STARTTLS",
	   "S: 220 Ready to start TLS", "T: ok", "C: HELO x", "S: 250 mx.test",
	   "C: MAIL FROM:<a@b>", "S: 250 OK"),
	 SMTP_END_EOF},
	{"starttls forgets plaintext auth", starttls_auth_plaintext, NULL,
	 T(GREETING, "C: EHLO x", EHLO_START, "S: 250-STARTTLS", MECHS,
	   "S: 250 HELP", "C: AUTH PLAIN " PLAIN_OK, OK_235, "C: STARTTLS",
	   "S: 220 Ready to start TLS", "T: ok", "C: EHLO x", EHLO_START,
	   MECHS, "S: 250 HELP", "C: MAIL FROM:<a@b>",
	   "S: 530 5.7.0 Authentication required", "C: AUTH PLAIN " PLAIN_OK,
	   OK_235, "C: MAIL FROM:<a@b>", "S: 250 OK"),
	 SMTP_END_EOF},
	{"starttls over implicit tls", tls_offered, &tls_peer,
	 T(GREETING, "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: MAIL FROM:<a@b>", "S: 250 OK", "C: STARTTLS",
	   "S: 554 5.5.1 Error: TLS already active", "C: RCPT TO:<c@d>",
	   "S: 250 OK"),
	 SMTP_END_EOF},
	{"starttls after auth over starttls", tls_offered, NULL,
	 T(GREETING, "C: STARTTLS", "S: 220 Ready to start TLS", "T: ok",
	   "C: EHLO x", EHLO_START, MECHS, "S: 250 HELP",
	   "C: AUTH PLAIN " PLAIN_OK, OK_235),
	 SMTP_END_EOF},
};

/* answer_too_long - the dialogue whose last line is 12289 octets */
static const char *const *answer_too_long(const struct dialogue *d)
{
	static const char *t[16];
	static char *line;
	size_t n = 0;

	if (line == NULL) {
		line = xmalloc(3 + SMTP_AUTH_LINE_MAX + 2);
		memcpy(line, "C: ", 3);
		memset(line + 3, 'A', SMTP_AUTH_LINE_MAX + 1);
		line[3 + SMTP_AUTH_LINE_MAX + 1] = '\0';
	}
	for (; d->transcript[n] != NULL; n++)
		t[n] = d->transcript[n];
	t[n++] = line;
	t[n++] = "S: 500 5.5.6 Authentication Exchange line is too long";
	t[n++] = "C: AUTH PLAIN " PLAIN_OK;
	t[n++] = OK_235;
	t[n] = NULL;
	return t;
}

static void run_dialogue(void **state)
{
	const struct dialogue *d = *state;
	static const size_t chunks[] = {0, 1, 7};
	const char *const *t = d->transcript;
	struct smtp_settings set;

	if (strcmp(d->name, "answer line too long") == 0)
		t = answer_too_long(d);
	for (size_t i = 0; i < N_ELEMENTS(chunks); i++) {
		struct fake_auth fa = {.mechanisms = "LOGIN PLAIN X-ECHO"};
		struct dialogue_seams seams = {
			.auth = &fake_ops, .auth_ctx = &fa, .peer = d->peer};
		struct aiosmtpd_handler none = {0};

		dialogue_settings(&set);
		if (d->setup != NULL)
			d->setup(&set);
		assert_int_equal(dialogue_run_seams(&set, &none, NULL, t,
						    chunks[i], &seams),
				 d->end);
	}
}

/* test_failed_hook - the back end hears of every wrong credential, with
 * the running count, so it can slow the client down */
static void test_failed_hook(void **state)
{
	struct fake_auth fa = {.mechanisms = "PLAIN"};
	struct dialogue_seams seams = {
		.auth = &fake_ops, .auth_ctx = &fa, .peer = &tls_peer};
	struct smtp_settings set;
	const char *const t[] = {
		GREETING,
		"C: EHLO x",
		EHLO_START,
		"S: 250-AUTH PLAIN",
		"S: 250 HELP",
		"C: AUTH PLAIN " PLAIN_BAD,
		BAD_535,
		"C: AUTH PLAIN",
		"S: 334 ",
		"C: *",
		"S: 501 5.7.0 Auth aborted",
		"C: AUTH PLAIN " PLAIN_BAD,
		BAD_535,
		NULL,
	};

	dialogue_settings(&set);
	dialogue_run_seams(&set, &(struct aiosmtpd_handler){0}, NULL, t, 0,
			   &seams);
	assert_int_equal(fa.failed_calls, 2);
	assert_int_equal(fa.last_failures, 2);
}

/* test_temporary_failure - our side failing is a 454, not a 535 */
static void test_temporary_failure(void **state)
{
	struct fake_auth fa = {.mechanisms = "PLAIN X-TEMP"};
	struct dialogue_seams seams = {
		.auth = &fake_ops, .auth_ctx = &fa, .peer = &tls_peer};
	struct smtp_settings set;
	const char *const t[] = {
		GREETING,
		"C: EHLO x",
		EHLO_START,
		"S: 250-AUTH PLAIN X-TEMP",
		"S: 250 HELP",
		"C: AUTH X-TEMP",
		"S: 454 4.7.0 Temporary authentication failure",
		NULL,
	};

	dialogue_settings(&set);
	dialogue_run_seams(&set, &(struct aiosmtpd_handler){0}, NULL, t, 0,
			   &seams);
	assert_int_equal(fa.failed_calls, 0);
}

/* --- what handlers see ---------------------------------------------------- */

struct seen {
	char content[512];
	char tls[64];
	char user[64];
};

static const char *seen_data(void *ctx, struct aiosmtpd_session *s,
			     struct aiosmtpd_envelope *e)
{
	struct seen *seen = ctx;
	ssize_t n = aiosmtpd_content_read(e->content, seen->content,
					  sizeof(seen->content) - 1);

	assert_true(n >= 0);
	seen->content[n] = '\0';
	snprintf(seen->tls, sizeof(seen->tls), "%s %s %d",
		 s->tls_version != NULL ? s->tls_version : "-",
		 s->tls_cipher != NULL ? s->tls_cipher : "-", s->tls_bits);
	snprintf(seen->user, sizeof(seen->user), "%s",
		 s->auth_user != NULL ? s->auth_user : "-");
	return NULL;
}

static const struct aiosmtpd_handler seen_handler = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
	.handle_DATA = seen_data,
};

/* message - a transcript that authenticates (or not) and sends "Hi" */
static void message(const struct aiosmtpd_session *peer, bool tls, bool auth,
		    struct seen *seen)
{
	struct fake_auth fa = {.mechanisms = "PLAIN"};
	struct dialogue_seams seams = {
		.auth = &fake_ops, .auth_ctx = &fa, .peer = peer};
	struct smtp_settings set;
	const char *t[32];
	size_t n = 0;

	dialogue_settings(&set);
	set.tls_available = true;
	set.auth_require_tls = false;
	t[n++] = GREETING;
	if (tls) {
		t[n++] = "C: STARTTLS";
		t[n++] = "S: 220 Ready to start TLS";
		t[n++] = "T: ok";
	}
	t[n++] = "C: EHLO client.example";
	t[n++] = "S: 250-mx.test";
	t[n++] = "S: 250-SIZE 33554432";
	t[n++] = "S: 250-8BITMIME";
	if (!tls && peer == NULL)
		t[n++] = "S: 250-STARTTLS";
	t[n++] = "S: 250-AUTH PLAIN";
	t[n++] = "S: 250 HELP";
	if (auth) {
		t[n++] = "C: AUTH PLAIN " PLAIN_OK;
		t[n++] = OK_235;
	}
	t[n++] = "C: MAIL FROM:<a@b>";
	t[n++] = "S: 250 OK";
	t[n++] = "C: RCPT TO:<c@d>";
	t[n++] = "S: 250 OK";
	t[n++] = "C: DATA";
	t[n++] = "S: 354 End data with <CR><LF>.<CR><LF>";
	t[n++] = "R: Subject: x\r\n\r\nHi\r\n.\r\n";
	t[n++] = "S: 250 OK";
	t[n] = NULL;
	dialogue_run_seams(&set, &seen_handler, seen, t, 0, &seams);
}

/* test_handlers_see_tls_and_user - the session's TLS state and the
 * authenticated name reach handle_DATA (the handlers that deliver write
 * them into the Received field); the content stays as the client sent
 * it, as aiosmtpd keeps it */
static void test_handlers_see_tls_and_user(void **state)
{
	struct seen seen;

	message(NULL, true, true, &seen);
	assert_string_equal(seen.content, "Subject: x\r\n\r\nHi\r\n");
	assert_string_equal(seen.tls, "TLSv1.3 TEST_CIPHER 256");
	assert_string_equal(seen.user, "alice@test");

	message(NULL, false, true, &seen);
	assert_string_equal(seen.tls, "- - 0");
	assert_string_equal(seen.user, "alice@test");

	message(&tls_peer, false, true, &seen);
	assert_string_equal(seen.tls, "TLSv1.3 TEST_CIPHER 256");

	message(NULL, true, false, &seen);
	assert_string_equal(seen.content, "Subject: x\r\n\r\nHi\r\n");
	assert_string_equal(seen.tls, "TLSv1.3 TEST_CIPHER 256");
	assert_string_equal(seen.user, "-");
}

int main(void)
{
	struct CMUnitTest tests[N_ELEMENTS(dialogues) + 5];
	size_t n = 0;

	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_base64_decode);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_base64_encode);
	for (size_t i = 0; i < N_ELEMENTS(dialogues); i++) {
		tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(
			run_dialogue, (void *)&dialogues[i]);
		tests[n++].name = dialogues[i].name;
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_failed_hook);
	tests[n++] =
		(struct CMUnitTest)cmocka_unit_test(test_temporary_failure);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
		test_handlers_see_tls_and_user);
	return _cmocka_run_group_tests("smtp_auth", tests, n, NULL, NULL);
}
