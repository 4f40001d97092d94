/*
 * secure.h - TLS and AUTH for one connection: the daemon's side of the
 * protocol engine's seams
 *
 * A worker makes one per accepted connection.  It runs the handshake of
 * an implicit-TLS listener before the greeting, tells the session which
 * stream to talk through, answers the engine's STARTTLS with a handshake
 * on the same socket, and backs AUTH with Cyrus SASL, told of the TLS
 * strength so that plaintext mechanisms open up only under TLS.  Every
 * handshake is logged with its protocol, cipher and bits.
 */
#ifndef AIOSMTPD_SECURE_H
#define AIOSMTPD_SECURE_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "aiosmtpd/handler.h"
#include "listener.h"
#include "smtp_session.h"
#include "sockstream.h"

struct secure;

/* secure_worker_init - once in each new worker: Cyrus SASL, when some
 * listener offers AUTH.  Returns 0, or -1 with *error_r set. */
int secure_worker_init(const struct listener *listeners, size_t n,
		       const char **error_r);

/* secure_new - for a connection on a listener with settings lc and TLS
 * context ctx (NULL without TLS), over ss; id and client name it in log
 * lines and must outlive it */
struct secure *secure_new(const struct listener_conf *lc, SSL_CTX *ctx,
			  struct sockstream *ss, const char *id,
			  const char *client);
/*
 * secure_implicit - on an implicit-TLS listener, the handshake before
 * the greeting, with peer's TLS fields filled in; elsewhere nothing.
 * Returns 0, or -1 (logged) when the connection must be closed.
 */
int secure_implicit(struct secure *sec, struct aiosmtpd_session *peer);
/* secure_stream - the stream the session starts with */
void secure_stream(struct secure *sec, const struct smtp_stream_ops **ops_r,
		   void **stream_r);
/* secure_attach - give session its STARTTLS and AUTH back ends */
void secure_attach(struct secure *sec, struct smtp_session *session);
void secure_free(struct secure **sec);

#endif
