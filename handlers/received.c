/*
 * received.c - trace headers: Received and Return-Path
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "received.h"

/* Longest client-supplied text copied into a header. */
#define TEXT_MAX 255

const char *received_protocol(const struct aiosmtpd_session *session)
{
	static const char *const names[2][4] = {
		{"ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA"},
		{"LMTP", "LMTPA", "LMTPS", "LMTPSA"},
	};
	int i = (session->auth_user != NULL ? 1 : 0) +
		(session->tls_version != NULL ? 2 : 0);

	if (!session->lmtp && !session->extended_smtp)
		return "SMTP";
	return names[session->lmtp ? 1 : 0][i];
}

/* put_text - text from the client, with anything that could end the
 * header or its comment replaced; 8-bit octets stay only in the
 * addresses of an SMTPUTF8 message (RFC 6532) */
static void put_text(struct sbuf *out, const char *text, bool utf8)
{
	size_t n = 0;

	for (const char *p = text; *p != '\0' && n < TEXT_MAX; p++, n++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || (c >= 0x7f && !(utf8 && c >= 0x80)) ||
		    c == '(' || c == ')' || c == '\\')
			c = '?';
		sbuf_putc(out, (char)c);
	}
}

/* put_from - "from HELO ([address])" as RFC 5321 writes TCP-info */
static void put_from(struct sbuf *out, const struct aiosmtpd_session *s)
{
	sbuf_puts(out, "Received: from ");
	put_text(out, s->host_name != NULL ? s->host_name : "unknown", false);
	if (s->peer_family == AF_INET6)
		sbuf_printf(out, " ([IPv6:%s])", s->peer_addr);
	else if (s->peer_family == AF_INET)
		sbuf_printf(out, " ([%s])", s->peer_addr);
	else
		sbuf_puts(out, " (unix socket)");
}

static void put_date(struct sbuf *out, time_t now)
{
	char date[64];
	struct tm tm;

	localtime_r(&now, &tm);
	/* The daemon never calls setlocale(), so day and month names are
	 * the C locale's, as RFC 5322 wants them. */
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	sbuf_puts(out, date);
}

void received_header(struct sbuf *out, const struct aiosmtpd_session *session,
		     const struct aiosmtpd_envelope *envelope, time_t now,
		     const char *eol)
{
	put_from(out, session);
	sbuf_puts(out, eol);
	if (session->tls_version != NULL) {
		sbuf_puts(out, "\t(using ");
		put_text(out, session->tls_version, false);
		sbuf_puts(out, " with cipher ");
		put_text(out,
			 session->tls_cipher != NULL ? session->tls_cipher
						     : "unknown",
			 false);
		sbuf_printf(out, " (%d bits))%s", session->tls_bits, eol);
	}
	if (session->auth_user != NULL) {
		sbuf_puts(out, "\t(authenticated as ");
		put_text(out, session->auth_user, false);
		sbuf_printf(out, ")%s", eol);
	}
	sbuf_puts(out, "\tby ");
	put_text(out,
		 session->local_name != NULL ? session->local_name
					     : "localhost",
		 false);
	sbuf_printf(out, " (aiosmtpd-c) with %s id %s",
		    received_protocol(session), session->id);
	if (envelope->n_rcpt_tos == 1) {
		sbuf_printf(out, "%s\tfor <", eol);
		put_text(out, envelope->rcpt_tos[0], envelope->smtp_utf8);
		sbuf_putc(out, '>');
	}
	sbuf_puts(out, "; ");
	put_date(out, now);
	sbuf_puts(out, eol);
}

void received_return_path(struct sbuf *out,
			  const struct aiosmtpd_envelope *envelope,
			  const char *eol)
{
	const char *from = envelope->mail_from;

	sbuf_puts(out, "Return-Path: <");
	if (from != NULL && strcmp(from, "<>") != 0)
		put_text(out, from, envelope->smtp_utf8);
	sbuf_printf(out, ">%s", eol);
}
