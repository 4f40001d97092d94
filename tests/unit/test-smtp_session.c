/*
 * test-smtp_session.c - whole dialogues through the protocol engine
 *
 * Each case is a transcript (see dialogue.h) with the settings it needs.
 * The replies are aiosmtpd's (BEHAVIOR.md), checked against the running
 * reference by tests/integration/test_sidebyside.py; here they pin the
 * engine down without sockets, and every case also runs with the input
 * cut into 1-octet and 7-octet reads.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alloc.h"
#include "dialogue.h"
#include "spool.h"

#define GREETING "S: 220 mx.test ident"
#define EHLO_REPLY                                                             \
	"S: 250-mx.test", "S: 250-SIZE 33554432", "S: 250-8BITMIME",           \
		"S: 250 HELP"

struct dialogue {
	const char *name;
	void (*setup)(struct smtp_settings *set);
	const char *const *transcript;
	enum smtp_session_end end;
};

/* --- settings variants ----------------------------------------------------- */

static void lmtp(struct smtp_settings *set)
{
	set->lmtp = true;
}

static void utf8(struct smtp_settings *set)
{
	set->smtputf8 = true;
}

static void decode(struct smtp_settings *set)
{
	set->decode_data = true;
}

static void utf8_decode(struct smtp_settings *set)
{
	set->smtputf8 = true;
	set->decode_data = true;
}

static void small_limit(struct smtp_settings *set)
{
	set->data_size_limit = 20;
}

static void no_limit(struct smtp_settings *set)
{
	set->data_size_limit = 0;
}

static void call_limit_2(struct smtp_settings *set)
{
	static const struct smtp_call_limit limits[] = {{"NOOP", 1}};

	set->call_limit_enabled = true;
	set->call_limit_default = 2;
	set->call_limits = limits;
	set->n_call_limits = 1;
}

static void max_rcpt_2(struct smtp_settings *set)
{
	set->max_recipients = 2;
}

static void max_rcpt_2_lmtp(struct smtp_settings *set)
{
	set->max_recipients = 2;
	set->lmtp = true;
}

static void local_part_3(struct smtp_settings *set)
{
	set->local_part_limit = 3;
}

static void auth_required(struct smtp_settings *set)
{
	set->auth_required = true;
}

static void tls_offered(struct smtp_settings *set)
{
	set->tls_available = true;
}

static void require_starttls(struct smtp_settings *set)
{
	set->tls_available = true;
	set->require_starttls = true;
}

/* --- transcripts ------------------------------------------------------------ */

#define T(...)                                                                 \
	(const char *const[])                                                  \
	{                                                                      \
		__VA_ARGS__, NULL                                              \
	}

static const struct dialogue dialogues[] = {
	{"greeting and quit", NULL,
	 T(GREETING, "C: QUIT", "S: 221 Bye"), SMTP_END_QUIT},
	{"eof without quit", NULL, T(GREETING, "C: NOOP", "S: 250 OK"),
	 SMTP_END_EOF},
	{"helo", NULL,
	 T(GREETING, "C: HELO", "S: 501 Syntax: HELO hostname",
	   "C: HELO there", "S: 250 mx.test"),
	 SMTP_END_EOF},
	{"ehlo", NULL,
	 T(GREETING, "C: EHLO", "S: 501 Syntax: EHLO hostname",
	   "C: EHLO there", EHLO_REPLY),
	 SMTP_END_EOF},
	{"ehlo without size", no_limit,
	 T(GREETING, "C: EHLO there", "S: 250-mx.test", "S: 250-8BITMIME",
	   "S: 250 HELP"),
	 SMTP_END_EOF},
	{"ehlo with smtputf8, decode_data", utf8_decode,
	 T(GREETING, "C: EHLO x", "S: 250-mx.test", "S: 250-SIZE 33554432",
	   "S: 250-SMTPUTF8", "S: 250 HELP"),
	 SMTP_END_EOF},
	{"empty line and bad verb", NULL,
	 T(GREETING, "C: ", "S: 500 Error: bad syntax", "C: NO\xc3\xa9OP",
	   "S: 500 Error: bad syntax", "C: NOOP \xc3\xa9",
	   "S: 500 Error: strict ASCII mode"),
	 SMTP_END_EOF},
	{"non-ascii argument with smtputf8", utf8,
	 T(GREETING, "C: NOOP \xc3\xa9", "S: 250 OK"), SMTP_END_EOF},
	{"verb is case-insensitive, tab is not a separator", NULL,
	 T(GREETING, "C: nOoP", "S: 250 OK", "C: NOOP\tx",
	   "S: 500 Error: command \"NOOP\tX\" not recognized", "C:  NOOP",
	   "S: 500 Error: command \"\" not recognized"),
	 SMTP_END_EOF},
	{"five unknown commands", NULL,
	 T(GREETING, "C: FOO", "S: 500 Error: command \"FOO\" not recognized",
	   "C: BAR", "S: 500 Error: command \"BAR\" not recognized",
	   "C: LHLO x", "S: 500 Error: command \"LHLO\" not recognized",
	   "C: BAZ", "S: 500 Error: command \"BAZ\" not recognized",
	   "C: QUUX", "S: 502 5.5.1 Too many unrecognized commands, goodbye.",
	   "C: NOOP"),
	 SMTP_END_LIMIT},
	{"command line too long", NULL, NULL, SMTP_END_EOF},
	{"noop quit rset expn", NULL,
	 T(GREETING, "C: NOOP anything at all", "S: 250 OK", "C: RSET x",
	   "S: 501 Syntax: RSET", "C: RSET", "S: 250 OK", "C: EXPN a",
	   "S: 502 EXPN not implemented", "C: EXPN",
	   "S: 502 EXPN not implemented", "C: QUIT now", "S: 501 Syntax: QUIT",
	   "C: QUIT ", "S: 221 Bye"),
	 SMTP_END_QUIT},
	{"vrfy", NULL,
	 T(GREETING, "C: VRFY", "S: 501 Syntax: VRFY <address>",
	   "C: VRFY <anne@example.com>",
	   "S: 252 Cannot VRFY user, but will accept message and attempt "
	   "delivery",
	   "C: VRFY <anne@example.com.>",
	   "S: 502 Could not VRFY <anne@example.com.>", "C: VRFY a@",
	   "S: 500 Error: (IndexError) string index out of range"),
	 SMTP_END_EOF},
	{"help", NULL,
	 T(GREETING, "C: HELP",
	   "S: 250 Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP "
	   "QUIT RCPT RSET VRFY",
	   "C: HELP mail", "S: 250 Syntax: MAIL FROM: <address>",
	   "C: HELP STARTTLS",
	   "S: 501 Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP "
	   "QUIT RCPT RSET VRFY",
	   "C: EHLO x", EHLO_REPLY, "C: HELP RCPT",
	   "S: 250 Syntax: RCPT TO: <address> [SP <mail-parameters>]",
	   "C: HELP EXPN",
	   "S: 501 Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP "
	   "QUIT RCPT RSET VRFY"),
	 SMTP_END_EOF},
	{"help with tls", tls_offered,
	 T(GREETING, "C: HELP",
	   "S: 250 Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP "
	   "QUIT RCPT RSET STARTTLS VRFY",
	   "C: HELP STARTTLS", "S: 250 Syntax: STARTTLS"),
	 SMTP_END_EOF},
	{"sequence errors", NULL,
	 T(GREETING, "C: MAIL FROM:<a@b>", "S: 503 Error: send HELO first",
	   "C: RCPT TO:<a@b>", "S: 503 Error: send HELO first", "C: DATA",
	   "S: 503 Error: send HELO first", "C: HELO x", "S: 250 mx.test",
	   "C: RCPT TO:<a@b>", "S: 503 Error: need MAIL command", "C: DATA",
	   "S: 503 Error: need RCPT command", "C: MAIL FROM:<a@b>",
	   "S: 250 OK", "C: MAIL FROM:<a@b>",
	   "S: 503 Error: nested MAIL command", "C: DATA",
	   "S: 503 Error: need RCPT command", "C: RCPT TO:<c@d>", "S: 250 OK",
	   "C: DATA x", "S: 501 Syntax: DATA"),
	 SMTP_END_EOF},
	{"mail syntax after helo", NULL,
	 T(GREETING, "C: HELO x", "S: 250 mx.test", "C: MAIL",
	   "S: 501 Syntax: MAIL FROM: <address>", "C: MAIL TO:<a@b>",
	   "S: 501 Syntax: MAIL FROM: <address>", "C: MAIL FROM:",
	   "S: 501 Syntax: MAIL FROM: <address>", "C: MAIL FROM:<a@b> SIZE=1",
	   "S: 501 Syntax: MAIL FROM: <address>",
	   "C: MAIL FROM:<anne@example.com.>",
	   "S: 553 5.1.3 Error: malformed address", "C: MAIL FROM:<",
	   "S: 500 Error: (IndexError) string index out of range"),
	 SMTP_END_EOF},
	{"mail parameters after ehlo", NULL,
	 T(GREETING, "C: EHLO x", EHLO_REPLY, "C: MAIL FROM:",
	   "S: 501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
	   "C: MAIL FROM:<a@b> BODY=BINARY",
	   "S: 501 Error: BODY can only be one of 7BIT, 8BITMIME",
	   "C: MAIL FROM:<a@b> BODY",
	   "S: 501 Error: BODY can only be one of 7BIT, 8BITMIME",
	   "C: MAIL FROM:<a@b> SMTPUTF8=x",
	   "S: 501 Error: SMTPUTF8 takes no arguments",
	   "C: MAIL FROM:<a@b> SMTPUTF8", "S: 501 Error: SMTPUTF8 disabled",
	   "C: MAIL FROM:<a@b> SIZE=x",
	   "S: 501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
	   "C: MAIL FROM:<a@b> SIZE",
	   "S: 501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
	   "C: MAIL FROM:<a@b> SIZE=",
	   "S: 501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
	   "C: MAIL FROM:<a@b> SIZE=33554433",
	   "S: 552 Error: message size exceeds fixed maximum message size",
	   "C: MAIL FROM:<a@b> SIZE=99999999999999999999999",
	   "S: 552 Error: message size exceeds fixed maximum message size",
	   "C: MAIL FROM:<a@b> FOO=1",
	   "S: 555 MAIL FROM parameters not recognized or not implemented",
	   "C: MAIL FROM:<a@b> X-Y",
	   "S: 501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
	   "C: MAIL FROM:<a@b>SIZE=10 body=8bitmime", "S: 250 OK"),
	 SMTP_END_EOF},
	{"lenient addresses", NULL,
	 T(GREETING, "C: EHLO x", EHLO_REPLY, "C: MAIL FROM:<anne@example.com",
	   "S: 250 OK", "C: RCPT TO:<anne smith@example.com>", "S: 250 OK",
	   "C: RCPT TO:<.anne@example.com>", "S: 250 OK",
	   "C: RCPT TO:<anne@[]>", "S: 250 OK", "C: RCPT TO:<>", "S: 250 OK",
	   "C: RCPT TO:<a@b>x",
	   "S: 555 RCPT TO parameters not recognized or not implemented",
	   "C: RCPT TO:<a@b> NOTIFY=NEVER",
	   "S: 555 RCPT TO parameters not recognized or not implemented",
	   "C: RCPT TO:", 
	   "S: 501 Syntax: RCPT TO: <address> [SP <mail-parameters>]",
	   "C: RSET", "S: 250 OK", "C: MAIL FROM:<a@b>x",
	   "S: 555 MAIL FROM parameters not recognized or not implemented",
	   "C: MAIL FROM:<>", "S: 250 OK"),
	 SMTP_END_EOF},
	{"local part limit", local_part_3,
	 T(GREETING, "C: HELO x", "S: 250 mx.test", "C: MAIL FROM:<abcd@e>",
	   "S: 553 5.1.3 Error: malformed address", "C: MAIL FROM:<abc@e>",
	   "S: 250 OK", "C: VRFY abcd@e", "S: 502 Could not VRFY abcd@e"),
	 SMTP_END_EOF},
	{"message", NULL,
	 T(GREETING, "C: HELO x", "S: 250 mx.test", "C: MAIL FROM:<a@b>",
	   "S: 250 OK", "C: RCPT TO:<c@d>", "S: 250 OK", "C: DATA",
	   "S: 354 End data with <CR><LF>.<CR><LF>", "R: Subject: x\r\n\r\n",
	   "R: ..dot\r\n.\r\n", "S: 250 OK", "C: RCPT TO:<c@d>",
	   "S: 503 Error: need MAIL command"),
	 SMTP_END_EOF},
	{"smuggling is content", NULL,
	 T(GREETING, "C: HELO x", "S: 250 mx.test", "C: MAIL FROM:<a@b>",
	   "S: 250 OK", "C: RCPT TO:<c@d>", "S: 250 OK", "C: DATA",
	   "S: 354 End data with <CR><LF>.<CR><LF>",
	   "R: a\n.\r\nMAIL FROM:<x@y>\r\n\r.\r\nb\r\n.\n\r\n.\r\n",
	   "S: 250 OK"),
	 SMTP_END_EOF},
	{"too much data", small_limit,
	 T(GREETING, "C: HELO x", "S: 250 mx.test", "C: MAIL FROM:<a@b>",
	   "S: 250 OK", "C: RCPT TO:<c@d>", "S: 250 OK", "C: DATA",
	   "S: 354 End data with <CR><LF>.<CR><LF>",
	   "R: 0123456789\r\n0123456789\r\n.\r\n",
	   "S: 552 Error: Too much mail data", "C: DATA",
	   "S: 503 Error: need RCPT command"),
	 SMTP_END_EOF},
	{"line too long", NULL, NULL, SMTP_END_EOF},
	{"strict ascii data ends the transaction", decode,
	 T(GREETING, "C: HELO x", "S: 250 mx.test", "C: MAIL FROM:<a@b>",
	   "S: 250 OK", "C: RCPT TO:<c@d>", "S: 250 OK", "C: DATA",
	   "S: 354 End data with <CR><LF>.<CR><LF>", "R: caf\xc3\xa9\r\n.\r\n",
	   "S: 500 Error: strict ASCII mode", "C: RCPT TO:<c@d>",
	   "S: 503 Error: need MAIL command"),
	 SMTP_END_EOF},
	{"decode_data makes BODY unknown", decode,
	 T(GREETING, "C: EHLO x", "S: 250-mx.test", "S: 250-SIZE 33554432",
	   "S: 250 HELP", "C: MAIL FROM:<a@b> BODY=8BITMIME",
	   "S: 555 MAIL FROM parameters not recognized or not implemented"),
	 SMTP_END_EOF},
	{"smtputf8", utf8,
	 T(GREETING, "C: EHLO x", "S: 250-mx.test", "S: 250-SIZE 33554432",
	   "S: 250-8BITMIME", "S: 250-SMTPUTF8", "S: 250 HELP",
	   "C: MAIL FROM:<j\xc3\xb6rg@example.com> SMTPUTF8", "S: 250 OK",
	   "C: RCPT TO:<\xc3\xa9@\xc3\xa9.example>", "S: 250 OK"),
	 SMTP_END_EOF},
	{"call limit", call_limit_2,
	 T(GREETING, "C: NOOP", "S: 250 OK", "C: NOOP",
	   "S: 421 4.7.0 NOOP sent too many times", "C: RSET"),
	 SMTP_END_LIMIT},
	{"call limit counts unknown verbs", call_limit_2,
	 T(GREETING, "C: FOO", "S: 500 Error: command \"FOO\" not recognized",
	   "C: FOO", "S: 500 Error: command \"FOO\" not recognized", "C: FOO",
	   "S: 421 4.7.0 FOO sent too many times"),
	 SMTP_END_LIMIT},
	{"max recipients per message", max_rcpt_2,
	 T(GREETING, "C: HELO x", "S: 250 mx.test", "C: MAIL FROM:<a@b>",
	   "S: 250 OK", "C: RCPT TO:<c1@d>", "S: 250 OK", "C: RCPT TO:<c2@d>",
	   "S: 250 OK", "C: RCPT TO:<c3@d>",
	   "S: 452 4.5.3 Too many recipients",
	   /* syntax is still checked first */
	   "C: RCPT TO:", "S: 501 Syntax: RCPT TO: <address>",
	   "C: RCPT TO:<c4@d>", "S: 452 4.5.3 Too many recipients",
	   "C: DATA", "S: 354 End data with <CR><LF>.<CR><LF>",
	   "R: x\r\n.\r\n", "S: 250 OK",
	   /* the count is per message */
	   "C: MAIL FROM:<a@b>", "S: 250 OK", "C: RCPT TO:<c1@d>",
	   "S: 250 OK", "C: RCPT TO:<c2@d>", "S: 250 OK",
	   "C: RCPT TO:<c3@d>", "S: 452 4.5.3 Too many recipients",
	   "C: RSET", "S: 250 OK", "C: MAIL FROM:<a@b>", "S: 250 OK",
	   "C: RCPT TO:<c3@d>", "S: 250 OK"),
	 SMTP_END_EOF},
	{"max recipients on lmtp", max_rcpt_2_lmtp,
	 T(GREETING, "C: LHLO x", EHLO_REPLY, "C: MAIL FROM:<a@b>",
	   "S: 250 OK", "C: RCPT TO:<c1@d>", "S: 250 OK", "C: RCPT TO:<c2@d>",
	   "S: 250 OK", "C: RCPT TO:<c3@d>",
	   "S: 452 4.5.3 Too many recipients", "C: DATA",
	   "S: 354 End data with <CR><LF>.<CR><LF>", "R: x\r\n.\r\n",
	   "S: 250 OK", "S: 250 OK"),
	 SMTP_END_EOF},
	{"no recipient limit by default", NULL,
	 T(GREETING, "C: HELO x", "S: 250 mx.test", "C: MAIL FROM:<a@b>",
	   "S: 250 OK", "C: RCPT TO:<c1@d>", "S: 250 OK", "C: RCPT TO:<c2@d>",
	   "S: 250 OK", "C: RCPT TO:<c3@d>", "S: 250 OK"),
	 SMTP_END_EOF},
	{"auth before and after ehlo", NULL,
	 T(GREETING, "C: AUTH PLAIN", "S: 503 Error: send EHLO first",
	   "C: HELO x", "S: 250 mx.test", "C: AUTH PLAIN",
	   "S: 500 Error: command 'AUTH' not recognized", "C: EHLO x",
	   EHLO_REPLY, "C: AUTH PLAIN AAAA",
	   "S: 538 5.7.11 Encryption required for requested authentication "
	   "mechanism"),
	 SMTP_END_EOF},
	{"auth required", auth_required,
	 T(GREETING, "C: EHLO x", EHLO_REPLY, "C: MAIL FROM:<a@b>",
	   "S: 530 5.7.0 Authentication required", "C: HELP",
	   "S: 530 5.7.0 Authentication required", "C: VRFY a@b",
	   "S: 530 5.7.0 Authentication required", "C: NOOP", "S: 250 OK"),
	 SMTP_END_EOF},
	{"starttls without tls", NULL,
	 T(GREETING, "C: STARTTLS x", "S: 501 Syntax: STARTTLS",
	   "C: STARTTLS", "S: 454 TLS not available"),
	 SMTP_END_EOF},
	{"require starttls", require_starttls,
	 T(GREETING, "C: HELO x", "S: 530 Must issue a STARTTLS command first",
	   "C: EHLO x", "S: 250-mx.test", "S: 250-SIZE 33554432",
	   "S: 250-8BITMIME", "S: 250-STARTTLS", "S: 250 HELP",
	   "C: MAIL FROM:<a@b>", "S: 530 Must issue a STARTTLS command first",
	   "C: NOOP", "S: 250 OK", "C: QUIT", "S: 221 Bye"),
	 SMTP_END_QUIT},
	{"lmtp greetings", lmtp,
	 T(GREETING, "C: HELO x",
	   "S: 500 Error: command \"HELO\" not recognized", "C: EHLO x",
	   "S: 500 Error: command \"EHLO\" not recognized", "C: MAIL FROM:<a@b>",
	   "S: 503 Error: send HELO first", "C: LHLO",
	   "S: 501 Syntax: EHLO hostname", "C: LHLO x", EHLO_REPLY, "C: HELP",
	   "S: 250 Supported commands: AUTH DATA HELP LHLO MAIL NOOP QUIT "
	   "RCPT RSET VRFY",
	   "C: HELP HELO",
	   "S: 501 Supported commands: AUTH DATA HELP LHLO MAIL NOOP QUIT "
	   "RCPT RSET VRFY"),
	 SMTP_END_EOF},
	{"lmtp replies per recipient", lmtp,
	 T(GREETING, "C: LHLO x", EHLO_REPLY, "C: MAIL FROM:<a@b>", "S: 250 OK",
	   "C: RCPT TO:<c@d>", "S: 250 OK", "C: RCPT TO:<e@f>", "S: 250 OK",
	   "C: RCPT TO:<g@h>", "S: 250 OK", "C: DATA",
	   "S: 354 End data with <CR><LF>.<CR><LF>", "R: x\r\n.\r\n",
	   "S: 250 OK", "S: 250 OK", "S: 250 OK"),
	 SMTP_END_EOF},
};

/* The cases left NULL above are built at run time (long lines). */
static const char *const *build_long_lines(const char *name);

static void run_dialogue(void **state)
{
	const struct dialogue *d = *state;
	const char *const *t = d->transcript;
	static const size_t chunks[] = {0, 1, 7};
	struct smtp_settings set;

	if (t == NULL)
		t = build_long_lines(d->name);
	for (size_t i = 0; i < N_ELEMENTS(chunks); i++) {
		dialogue_settings(&set);
		if (d->setup != NULL)
			d->setup(&set);
		assert_int_equal(dialogue_run(&set, &(struct aiosmtpd_handler){0},
					      NULL, t, chunks[i]),
				 d->end);
	}
}

/* --- cases with long lines, built once ------------------------------------ */

static char *repeat(const char *prefix, char c, size_t total,
		    const char *suffix)
{
	size_t plen = strlen(prefix), slen = strlen(suffix);
	char *s = xmalloc(total + slen + 1);

	memcpy(s, prefix, plen);
	memset(s + plen, c, total - plen);
	memcpy(s + total, suffix, slen + 1);
	return s;
}

/* mail_of_length - "MAIL FROM:<a@b> SIZE=1" padded with zeros in the
 * SIZE value to exactly len octets */
static char *mail_of_length(size_t len)
{
	const char *head = "C: MAIL FROM:<a@b> SIZE=";
	char *s = repeat(head, '0', len + 3 - 1, "1");

	return s;
}

static const char *const *build_long_lines(const char *name)
{
	static const char *cmd[64], *data[32];

	if (strcmp(name, "command line too long") == 0) {
		const char *const t[] = {
			GREETING,
			repeat("C: NOOP ", 'x', 512 + 3, ""),
			"S: 250 OK",
			repeat("C: NOOP ", 'x', 513 + 3, ""),
			"S: 500 Command line too long",
			repeat("C: NOOP ", 'x', 1002 + 3, ""),
			"S: 500 Command line too long",
			repeat("C: NOOP ", 'x', 5000 + 3, ""),
			"S: 500 Command line too long",
			"C: EHLO x",
			EHLO_REPLY,
			mail_of_length(538),
			"S: 250 OK",
			"C: RSET",
			"S: 250 OK",
			mail_of_length(539),
			"S: 500 Command line too long",
			"C: EHLO x",
			EHLO_REPLY,
			mail_of_length(539),
			"S: 500 Command line too long",
			repeat("C: RCPT TO:<a@b>", ' ', 513 + 3, ""),
			"S: 500 Command line too long",
			"C: HELO x",
			"S: 250 mx.test",
			mail_of_length(513),
			"S: 500 Command line too long",
			NULL,
		};
		memcpy(cmd, t, sizeof(t));
		return cmd;
	}
	const char *const t[] = {
		GREETING,
		"C: HELO x",
		"S: 250 mx.test",
		"C: MAIL FROM:<a@b>",
		"S: 250 OK",
		"C: RCPT TO:<c@d>",
		"S: 250 OK",
		"C: DATA",
		"S: 354 End data with <CR><LF>.<CR><LF>",
		repeat("C: ", 'y', 999 + 3, ""),
		repeat("C: .", 'y', 999 + 3, ""),
		"C: .",
		"S: 250 OK",
		"C: MAIL FROM:<a@b>",
		"S: 250 OK",
		"C: RCPT TO:<c@d>",
		"S: 250 OK",
		"C: DATA",
		"S: 354 End data with <CR><LF>.<CR><LF>",
		repeat("C: ", 'y', 1000 + 3, ""),
		"C: .",
		"S: 500 Line too long (see RFC5321 4.5.3.1.6)",
		NULL,
	};
	memcpy(data, t, sizeof(t));
	return data;
}

/* --- a handler that answers for itself ------------------------------------ */

struct recorder {
	char calls[1024];
	const char *rcpt_reply;
	const char *data_reply;
	char content[256];
};

static void record(struct recorder *r, const char *what)
{
	strncat(r->calls, what, sizeof(r->calls) - strlen(r->calls) - 1);
	strncat(r->calls, ";", sizeof(r->calls) - strlen(r->calls) - 1);
}

static const char *rec_mail(void *ctx, struct aiosmtpd_session *s,
			    struct aiosmtpd_envelope *e, const char *address,
			    const char *const *options, size_t n)
{
	record(ctx, address);
	for (size_t i = 0; i < n; i++)
		record(ctx, options[i]);
	return NULL;
}

static const char *rec_rcpt(void *ctx, struct aiosmtpd_session *s,
			    struct aiosmtpd_envelope *e, const char *address,
			    const char *const *options, size_t n)
{
	struct recorder *r = ctx;

	record(r, address);
	return strcmp(address, "bad@d") == 0 ? r->rcpt_reply : NULL;
}

static const char *rec_data(void *ctx, struct aiosmtpd_session *s,
			    struct aiosmtpd_envelope *e)
{
	struct recorder *r = ctx;
	ssize_t n;

	assert_string_equal(e->mail_from, "a@b");
	assert_int_equal(e->n_rcpt_tos, 1);
	assert_string_equal(e->rcpt_tos[0], "c@d");
	assert_string_equal(s->host_name, "client.example");
	n = aiosmtpd_content_read(e->content, r->content,
				  sizeof(r->content) - 1);
	assert_true(n >= 0);
	r->content[n] = '\0';
	assert_int_equal((uint64_t)n, e->content_size);
	return r->data_reply;
}

static void close_hook(void *ctx, struct aiosmtpd_session *s)
{
	record(ctx, "close");
}

static const struct aiosmtpd_handler recorder_handler = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
	.handle_MAIL = rec_mail,
	.handle_RCPT = rec_rcpt,
	.handle_DATA = rec_data,
	.handle_CLOSE = close_hook,
};

static void test_hooks(void **state)
{
	struct recorder r = {.rcpt_reply = "550 5.7.1 Unable to relay",
			     .data_reply = "250 2.0.0 queued as X"};
	struct smtp_settings set;
	const char *const t[] = {
		GREETING,
		"C: EHLO client.example",
		EHLO_REPLY,
		"C: MAIL FROM:<a@b> BODY=8BITMIME",
		"S: 250 OK",
		"C: RCPT TO:<bad@d>",
		"S: 550 5.7.1 Unable to relay",
		"C: RCPT TO:<c@d>",
		"S: 250 OK",
		"C: DATA",
		"S: 354 End data with <CR><LF>.<CR><LF>",
		"R: Subject: hi\r\n\r\n..body\r\nbare\nlf\r\n.\r\n",
		"S: 250 2.0.0 queued as X",
		NULL,
	};

	dialogue_settings(&set);
	dialogue_run(&set, &recorder_handler, &r, t, 0);
	assert_string_equal(r.calls, "a@b;BODY=8BITMIME;bad@d;c@d;close;");
	assert_string_equal(r.content,
			    "Subject: hi\r\n\r\n.body\r\nbare\nlf\r\n");
}

/* test_lmtp_handler_replies - a handler's one reply per recipient is
 * passed through; a single reply is repeated */
static void test_lmtp_handler_replies(void **state)
{
	struct recorder r = {.data_reply = "250 2.0.0 ok"};
	struct smtp_settings set;
	const char *const t[] = {
		GREETING,
		"C: LHLO client.example",
		EHLO_REPLY,
		"C: MAIL FROM:<a@b>",
		"S: 250 OK",
		"C: RCPT TO:<c@d>",
		"S: 250 OK",
		"C: DATA",
		"S: 354 End data with <CR><LF>.<CR><LF>",
		"R: x\r\n.\r\n",
		"S: 250 2.0.0 ok",
		NULL,
	};

	dialogue_settings(&set);
	set.lmtp = true;
	dialogue_run(&set, &recorder_handler, &r, t, 0);
}

/* --- handle_PROXY -------------------------------------------------------- */

struct proxy_seen {
	bool answer;
	unsigned calls;
	char helo_saw[64];
};

static bool proxy_hook(void *ctx, struct aiosmtpd_session *s,
		       const struct aiosmtpd_proxy_data *proxy)
{
	struct proxy_seen *ps = ctx;

	assert_ptr_equal(s->proxy, proxy);
	assert_string_equal(proxy->src_addr, "192.0.2.1");
	ps->calls++;
	return ps->answer;
}

static const char *proxy_helo(void *ctx, struct aiosmtpd_session *s,
			      struct aiosmtpd_envelope *e, const char *name)
{
	struct proxy_seen *ps = ctx;

	snprintf(ps->helo_saw, sizeof(ps->helo_saw), "%s:%u",
		 s->proxy != NULL ? s->proxy->proxy_addr : "none",
		 s->proxy != NULL ? s->proxy->proxy_port : 0);
	return NULL;
}

/* proxy_session - the PROXY step, then "HELO x" if it let the session
 * through; returns that, with what the server sent in out */
static bool proxy_session(const struct aiosmtpd_handler *h,
			  struct proxy_seen *ps, struct sbuf *out)
{
	struct aiosmtpd_proxy_data pd = {
		.version = 1, .command = 1, .family = 1, .protocol = 1,
		.src_addr = "192.0.2.1", .dst_addr = "192.0.2.2",
		.src_port = 4000, .dst_port = 25,
		.proxy_addr = "127.0.0.1", .proxy_port = 5555};
	struct aiosmtpd_session peer = {.id = "T", .peer_addr = "192.0.2.1"};
	struct smtp_settings set;
	struct memstream ms;
	struct spool *spool = spool_new(NULL);
	struct smtp_io *io;
	struct smtp_session *s;
	bool ok;

	dialogue_settings(&set);
	memstream_init(&ms, "HELO x\r\n", 8, 0);
	io = smtp_io_new(&memstream_ops, &ms);
	s = smtp_session_new(&set, h, ps, io, spool, &peer);
	ok = smtp_session_proxy(s, &pd);
	if (ok)
		smtp_session_run(s);
	smtp_session_free(&s);
	smtp_io_free(&io);
	spool_free(&spool);
	sbuf_append(out, ms.out.data, ms.out.len);
	memstream_free(&ms);
	return ok;
}

/* test_proxy_hook - aiosmtpd's TestHandlerAcceptReject: a true answer
 * lets the session go on, a false one ends it before the greeting; with
 * no hook every header is taken; later hooks see the header too */
static void test_proxy_hook(void **state)
{
	const struct aiosmtpd_handler with = {
		.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
		.handle_PROXY = proxy_hook,
		.handle_HELO = proxy_helo,
	};
	const struct aiosmtpd_handler without = {
		.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
		.handle_HELO = proxy_helo,
	};
	struct proxy_seen ps = {.answer = true};
	struct sbuf out;

	sbuf_init(&out, 128);
	assert_true(proxy_session(&with, &ps, &out));
	assert_int_equal(ps.calls, 1);
	assert_string_equal(out.data, "220 mx.test ident\r\n250 mx.test\r\n");
	assert_string_equal(ps.helo_saw, "127.0.0.1:5555");

	sbuf_reset(&out);
	ps = (struct proxy_seen){.answer = false};
	assert_false(proxy_session(&with, &ps, &out));
	assert_int_equal(ps.calls, 1);
	assert_int_equal(out.len, 0);
	assert_string_equal(ps.helo_saw, "");

	sbuf_reset(&out);
	ps = (struct proxy_seen){.answer = false};
	assert_true(proxy_session(&without, &ps, &out));
	assert_string_equal(out.data, "220 mx.test ident\r\n250 mx.test\r\n");
	assert_string_equal(ps.helo_saw, "127.0.0.1:5555");
	sbuf_free(&out);
}

/* test_pipelining_one_write - a pipelined group costs one write */
static void test_pipelining_one_write(void **state)
{
	const char in[] = "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
			  "RCPT TO:<e@f>\r\nDATA\r\n";
	struct aiosmtpd_session peer = {.id = "T", .peer_addr = ""};
	struct smtp_settings set;
	struct memstream ms;
	struct smtp_io *io;
	struct spool *spool = spool_new(NULL);
	struct smtp_session *s;

	dialogue_settings(&set);
	memstream_init(&ms, in, sizeof(in) - 1, 0);
	io = smtp_io_new(&memstream_ops, &ms);
	s = smtp_session_new(&set, &(struct aiosmtpd_handler){0}, NULL, io,
			     spool, &peer);
	assert_int_equal(smtp_session_run(s), SMTP_END_EOF);
	/* The greeting is flushed before the first read; everything the
	 * pipelined commands produced goes out in one more write. */
	assert_int_equal(ms.writes, 2);
	/* recognised commands restart the idle timer, one each */
	assert_int_equal(ms.timer_restarts, 5);
	smtp_session_free(&s);
	smtp_io_free(&io);
	spool_free(&spool);
	memstream_free(&ms);
}

/* test_timeout_and_errors - how a failed read ends the session */
static void test_timeout_and_errors(void **state)
{
	static const int errs[] = {ETIMEDOUT, ECANCELED, ECONNRESET};
	static const enum smtp_session_end ends[] = {
		SMTP_END_TIMEOUT, SMTP_END_SHUTDOWN, SMTP_END_ERROR};
	struct aiosmtpd_session peer = {.id = "T", .peer_addr = ""};

	for (size_t i = 0; i < N_ELEMENTS(errs); i++) {
		struct smtp_settings set;
		struct memstream ms;
		struct spool *spool = spool_new(NULL);
		struct smtp_io *io;
		struct smtp_session *s;

		dialogue_settings(&set);
		memstream_init(&ms, "NOOP\r\n", 6, 0);
		ms.fail_read_errno = errs[i];
		io = smtp_io_new(&memstream_ops, &ms);
		s = smtp_session_new(&set, &(struct aiosmtpd_handler){0}, NULL,
				     io, spool, &peer);
		assert_int_equal(smtp_session_run(s), ends[i]);
		if (errs[i] == ECANCELED)
			assert_non_null(strstr(ms.out.data,
					       "250 OK\r\n421 4.3.2 Service "
					       "shutting down\r\n"));
		smtp_session_free(&s);
		smtp_io_free(&io);
		spool_free(&spool);
		memstream_free(&ms);
	}
}

int main(void)
{
	struct CMUnitTest tests[N_ELEMENTS(dialogues) + 8];
	size_t n = 0;

	for (size_t i = 0; i < N_ELEMENTS(dialogues); i++) {
		tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(
			run_dialogue, (void *)&dialogues[i]);
		tests[n++].name = dialogues[i].name;
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_hooks);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
		test_lmtp_handler_replies);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
		test_pipelining_one_write);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
		test_timeout_and_errors);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_proxy_hook);
	return _cmocka_run_group_tests("smtp_session", tests, n, NULL, NULL);
}
