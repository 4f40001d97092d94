/*
 * dialogue.h - drive the protocol engine from memory in unit tests
 *
 * A dialogue is a readable transcript:
 *
 *   "C: EHLO there"       a client line (CRLF is added)
 *   "R: .\r\n"            raw client bytes, sent as they are
 *   "S: 250 OK"           a reply line the server must send (CRLF added)
 *   "T: ok"               the TLS handshake after STARTTLS succeeds ("T:
 *                         fail": it fails); the client lines after it
 *                         arrive through the encrypted stream, and the
 *                         ones before it that the session did not read
 *                         are the plaintext that must never be answered
 *
 * The whole client side is queued first and the session runs until the
 * input ends or the session closes, then everything the server wrote is
 * compared with the S: lines.  The engine's replies depend only on the
 * input, never on timing, so this is the same as a live conversation
 * with every command pipelined.
 */
#ifndef AIOSMTPD_TEST_DIALOGUE_H
#define AIOSMTPD_TEST_DIALOGUE_H

#include <stdbool.h>
#include <stddef.h>

#include "aiosmtpd/handler.h"
#include "memstream.h"
#include "smtp_io.h"
#include "smtp_session.h"
#include "sbuf.h"

/* dialogue_settings - defaults for tests: hostname "mx.test", ident
 * "ident" */
void dialogue_settings(struct smtp_settings *set);

/*
 * dialogue_run - run a transcript through a session; fails the current
 * cmocka test with a readable diff when the replies differ.  Returns how
 * the session ended.
 */
enum smtp_session_end dialogue_run(const struct smtp_settings *set,
				   const struct aiosmtpd_handler *handler,
				   void *handler_ctx,
				   const char *const *transcript,
				   size_t chunk);

/* What else a dialogue may run with; NULL members mean none. */
struct dialogue_seams {
	const struct smtp_auth_ops *auth; /* the SASL back end */
	void *auth_ctx;
	/* the client, e.g. one that came over implicit TLS; NULL:
	 * 127.0.0.1:4000 in plaintext */
	const struct aiosmtpd_session *peer;
};

/* dialogue_run_seams - dialogue_run() with an AUTH back end or another
 * client; the fake TLS of "T:" lines is always there */
enum smtp_session_end dialogue_run_seams(
	const struct smtp_settings *set, const struct aiosmtpd_handler *handler,
	void *handler_ctx, const char *const *transcript, size_t chunk,
	const struct dialogue_seams *seams);

#endif
