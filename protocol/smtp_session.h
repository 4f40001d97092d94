/*
 * smtp_session.h - the SMTP and LMTP session state machine
 *
 * One session is one client connection, from the 220 greeting to the
 * close.  smtp_session_run() plays the whole dialogue through a struct
 * smtp_io, calling the handler's hooks as aiosmtpd calls a handler's
 * handle_* methods, and returns why it ended.  Every reply text and every
 * check order is aiosmtpd 1.4's (see BEHAVIOR.md), except the rows marked
 * "fix" there, where the RFC is followed.
 *
 * The session does no I/O of its own, so unit tests drive whole dialogues
 * from memory; the daemon runs it over a socket.
 */
#ifndef AIOSMTPD_SMTP_SESSION_H
#define AIOSMTPD_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aiosmtpd/handler.h"
#include "smtp_auth.h"
#include "smtp_io.h"
#include "spool.h"

/* aiosmtpd's CALL_LIMIT_DEFAULT: the budget of a command that a
 * per-command limit table leaves out. */
#define SMTP_CALL_LIMIT_DEFAULT 20

/* One entry of command_call_limit: how often verb may be sent. */
struct smtp_call_limit {
	char verb[16]; /* upper case */
	long limit;
};

/* The session settings of one listener.  The session only reads them. */
struct smtp_settings {
	const char *hostname; /* in the greeting and HELO/EHLO replies */
	const char *ident;    /* greeting text after the hostname */
	bool lmtp;
	uint64_t data_size_limit; /* 0: no limit */
	bool smtputf8;
	bool decode_data;
	size_t command_size_limit; /* 512 */
	size_t local_part_limit;   /* 0: no limit */
	size_t max_recipients;	   /* RCPTs per message; 0: no limit */
	/* command_call_limit: off unless call_limit_enabled */
	bool call_limit_enabled;
	long call_limit_default;
	const struct smtp_call_limit *call_limits;
	size_t n_call_limits;
	/* TLS and AUTH; the handshake and SASL are behind the seams that
	 * smtp_session_set_tls() and smtp_session_set_auth() install */
	bool tls_available;    /* STARTTLS is offered */
	bool require_starttls; /* only with tls_available */
	bool auth_required;
	bool auth_require_tls;
	unsigned auth_max_failures; /* 0: no limit */
};

/* smtp_settings_init - aiosmtpd's defaults (hostname and ident unset) */
void smtp_settings_init(struct smtp_settings *set);

enum smtp_session_end {
	SMTP_END_QUIT,	   /* the client said QUIT */
	SMTP_END_EOF,	   /* the client closed the connection */
	SMTP_END_TIMEOUT,  /* the client was silent for the timeout */
	SMTP_END_ERROR,	   /* reading or writing failed */
	SMTP_END_LIMIT,	   /* too many unknown commands or calls */
	SMTP_END_SHUTDOWN, /* the daemon is stopping */
	SMTP_END_TLS,	   /* the TLS handshake after STARTTLS failed */
	SMTP_END_REFUSED,  /* handle_PROXY refused the connection */
};

const char *smtp_session_end_name(enum smtp_session_end end);

struct smtp_session_stats {
	unsigned commands;
	unsigned messages; /* messages whose DATA got a 2xx reply */
	unsigned rejected; /* final dots answered with something else */
};

struct smtp_session;

/*
 * smtp_session_new - prepare a session
 *
 * peer carries the session id and the client's address; it is copied.
 * handler may have no hooks at all (that is aiosmtpd's Sink).  The spool
 * holds message content; it is reset at each DATA.  Nothing is sent yet.
 */
struct smtp_session *smtp_session_new(const struct smtp_settings *set,
				      const struct aiosmtpd_handler *handler,
				      void *handler_ctx, struct smtp_io *io,
				      struct spool *spool,
				      const struct aiosmtpd_session *peer);
/*
 * smtp_session_set_tls - how STARTTLS reaches the TLS layer; without it
 * STARTTLS is answered "454 TLS not available".  A session that starts
 * encrypted (implicit TLS) says so in peer->tls_version instead.
 */
void smtp_session_set_tls(struct smtp_session *session,
			  const struct smtp_tls_ops *ops, void *ctx);
/* smtp_session_set_auth - the SASL back end; without it no mechanism is
 * offered and AUTH gets "504 5.5.4" */
void smtp_session_set_auth(struct smtp_session *session,
			   const struct smtp_auth_ops *ops, void *ctx);
/*
 * smtp_session_proxy - show a PROXY header to the handler, before the run
 *
 * proxy must stay valid until the session is freed; hooks see it as
 * session->proxy.  Returns false when handle_PROXY refused it: the caller
 * then closes the connection without a greeting and frees the session.
 */
bool smtp_session_proxy(struct smtp_session *session,
			const struct aiosmtpd_proxy_data *proxy);
/* smtp_session_run - greet, then serve commands until the session ends */
enum smtp_session_end smtp_session_run(struct smtp_session *session);
const struct smtp_session_stats *
smtp_session_stats(const struct smtp_session *session);
/* smtp_session_free - call handle_CLOSE and free everything */
void smtp_session_free(struct smtp_session **session);

#endif
