/*
 * tlsstream.h - the protocol engine's byte stream over TLS
 *
 * An OpenSSL connection on the non-blocking socket of a struct
 * sockstream, under the same deadlines: reads wait for the idle timer
 * (and, between commands, for the stop deadline), writes for the session
 * timeout, and the handshake for the idle timer restarted when it
 * begins.  The engine sees the same struct smtp_stream_ops as over
 * plaintext.  Every SSL call is tried before waiting, so bytes OpenSSL
 * has already decrypted are never stuck behind a poll().
 */
#ifndef AIOSMTPD_TLSSTREAM_H
#define AIOSMTPD_TLSSTREAM_H

#include <openssl/ssl.h>

#include "smtp_auth.h"
#include "sockstream.h"

struct tlsstream;

extern const struct smtp_stream_ops tlsstream_ops;

/*
 * tlsstream_accept - the server side of the handshake on ss's socket
 *
 * Returns the stream, or NULL with *error_r a short reason for the log
 * ("timeout", "wrong version number", ...; valid until the next call).
 * Nothing has been read from the socket by anybody before, so any
 * plaintext a client pipelined must have been dropped by the caller.
 */
struct tlsstream *tlsstream_accept(SSL_CTX *ctx, struct sockstream *ss,
				   const char **error_r);
/* tlsstream_state - protocol, cipher and its bits; the strings live as
 * long as the stream */
void tlsstream_state(const struct tlsstream *ts,
		     struct smtp_tls_state *state_r);
/* tlsstream_free - send close_notify without waiting for the peer's,
 * and free; the socket stays open */
void tlsstream_free(struct tlsstream **ts);

#endif
