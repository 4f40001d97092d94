/*
 * smtp_auth.h - SMTP AUTH framing (RFC 4954), and the seams through which
 * the engine reaches SASL and TLS
 *
 * The engine knows the SMTP side of authentication: base64, "=" for an
 * empty initial response, 334 challenges, "*" to abort, the reply codes.
 * It never sees a password database or the inside of a mechanism: those sit
 * behind struct smtp_auth_ops, which the daemon fills with Cyrus SASL and
 * the unit tests with a fake.  In the same way struct smtp_tls_ops lets
 * the engine ask for a TLS handshake after STARTTLS without calling
 * OpenSSL, so the engine stays free of I/O.
 */
#ifndef AIOSMTPD_SMTP_AUTH_H
#define AIOSMTPD_SMTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp_io.h"

/* What a mechanism step came to; each maps to one reply (RFC 4954 sec. 6). */
enum smtp_auth_status {
	SMTP_AUTH_OK,	    /* 235 2.7.0 */
	SMTP_AUTH_CONTINUE, /* send the challenge in a 334 */
	SMTP_AUTH_BADAUTH,  /* 535 5.7.8: wrong credentials, unknown user */
	SMTP_AUTH_NOMECH,   /* 504 5.5.4 */
	SMTP_AUTH_ENCRYPT,  /* 538 5.7.11 */
	SMTP_AUTH_TOOWEAK,  /* 534 5.7.9 */
	SMTP_AUTH_TRANS,    /* 432 4.7.12 */
	SMTP_AUTH_BADPROT,  /* 501 5.5.2: the client broke the mechanism */
	SMTP_AUTH_TEMPFAIL, /* 454 4.7.0: our side failed */
	SMTP_AUTH_ABORTED,  /* 501 5.7.0: the client answered "*" */
	SMTP_AUTH_BAD_BASE64,  /* 501 5.5.2 */
	SMTP_AUTH_SPLIT,       /* PLAIN without two NULs: 501 5.5.2 */
	SMTP_AUTH_LINE_TOO_LONG, /* 500 5.5.6 */
	SMTP_AUTH_IO,	    /* the connection failed: no reply */
};

/*
 * The authentication back end of one session.  Challenges and responses
 * are raw octets; the engine does the base64.  A returned challenge
 * must stay valid until the next call.
 */
struct smtp_auth_ops {
	/* The mechanisms to offer now, upper case, sorted, separated by
	 * single spaces; NULL or "" when there are none. */
	const char *(*mechanisms)(void *ctx);
	/* Begins an exchange.  response is NULL when the client sent no
	 * initial response, and "" (len 0) for "=". */
	enum smtp_auth_status (*start)(void *ctx, const char *mechanism,
				       const char *response, size_t len,
				       const char **challenge_r,
				       size_t *challenge_len_r);
	/* Continues it with the client's answer to a challenge. */
	enum smtp_auth_status (*step)(void *ctx, const char *response,
				      size_t len, const char **challenge_r,
				      size_t *challenge_len_r);
	/* The authenticated name, after SMTP_AUTH_OK. */
	const char *(*user)(void *ctx);
	/* Called after the session's failures-th wrong credentials, before
	 * the reply goes out: the place to slow a guesser down.  May be
	 * NULL. */
	void (*failed)(void *ctx, unsigned failures);
};

/* The state of an encrypted connection, as handlers and logs see it.
 * The strings belong to the TLS layer and live as long as the session. */
struct smtp_tls_state {
	const char *version; /* "TLSv1.3" */
	const char *cipher;  /* "TLS_AES_256_GCM_SHA384" */
	int bits;
};

struct smtp_tls_ops {
	/*
	 * Runs the server side of the handshake on the connection, once
	 * "220 Ready to start TLS" has been written and the plaintext read
	 * ahead has been dropped.  Returns 0 with the encrypted stream in
	 * *ops_r and *stream_r and its state in *state_r, or -1 when the
	 * handshake failed; the connection is then unusable and the
	 * session ends.
	 */
	int (*starttls)(void *ctx, const struct smtp_stream_ops **ops_r,
			void **stream_r, struct smtp_tls_state *state_r);
};

/* Longest answer line to a challenge (RFC 4954 sec. 4: 12288 octets). */
#define SMTP_AUTH_LINE_MAX 12288

/* smtp_base64_encoded_len - room smtp_base64_encode() needs, NUL included */
size_t smtp_base64_encoded_len(size_t len);
/* smtp_base64_encode - standard alphabet with padding; returns the length
 * written (a NUL follows) */
size_t smtp_base64_encode(const void *in, size_t len, char *out);
/*
 * smtp_base64_decode - strict decoding, as Python's b64decode(validate=True)
 * that aiosmtpd uses: only the alphabet, whole quanta, padding only at the
 * end.  out needs len * 3 / 4 + 1 octets.  Returns 0 with the length in
 * *out_len_r (a NUL follows), or -1.
 */
int smtp_base64_decode(const char *in, size_t len, char *out,
		       size_t *out_len_r);

/* smtp_auth_reply - the reply for a final status (not CONTINUE or IO) */
const char *smtp_auth_reply(enum smtp_auth_status status);

/*
 * smtp_auth_exchange - run one AUTH exchange to its end
 *
 * mechanism must be one the back end offered; response is the initial
 * response as the client wrote it (base64, or "=") or NULL.  Challenges
 * are sent and answers read through io, each answer restarting the idle
 * timer.  Returns the final status; the caller sends smtp_auth_reply()
 * of it (or something stronger), except after SMTP_AUTH_IO, where
 * *io_status_r says what happened to the connection.
 */
enum smtp_auth_status smtp_auth_exchange(struct smtp_io *io,
					 const struct smtp_auth_ops *ops,
					 void *ctx, const char *mechanism,
					 const char *response,
					 enum smtp_io_status *io_status_r);

#endif
