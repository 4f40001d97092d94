/*
 * received.h - trace headers: Received and Return-Path
 *
 * RFC 5321 section 4.4: a server that takes a message for delivery or
 * relay puts a Received line on top of it, and the final delivery adds
 * Return-Path with the envelope sender.  Both are built from what the
 * session knows: the client's HELO name and address, our host name, the
 * protocol with its TLS and AUTH marks (RFC 3848), the session id that
 * the daemon's log lines carry, and the date.
 */
#ifndef AIOSMTPD_RECEIVED_H
#define AIOSMTPD_RECEIVED_H

#include <time.h>

#include "aiosmtpd/handler.h"
#include "sbuf.h"

/* received_protocol - "SMTP", "ESMTP", "ESMTPSA", "LMTPS", ... */
const char *received_protocol(const struct aiosmtpd_session *session);

/*
 * received_header - append a Received header, folded over several lines
 *
 * The TLS protocol and cipher, and the name an authenticated client
 * proved (RFC 4954 sec. 7 wants it traceable), are comments of their own.
 * Each line ends in eol ("\n" for a Maildir, "\r\n" on the wire).  The
 * "for <address>" clause is written only for a single recipient, so one
 * copy never shows the other recipients.  Octets a client sent that
 * would break the header (controls, 8-bit, parentheses) become '?'.
 */
void received_header(struct sbuf *out, const struct aiosmtpd_session *session,
		     const struct aiosmtpd_envelope *envelope, time_t now,
		     const char *eol);

/* received_return_path - "Return-Path: <sender>" and eol; "<>" for the
 * null sender */
void received_return_path(struct sbuf *out,
			  const struct aiosmtpd_envelope *envelope,
			  const char *eol);

#endif
