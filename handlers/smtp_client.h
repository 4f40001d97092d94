/*
 * smtp_client.h - a blocking SMTP and LMTP client for forwarding
 *
 * The forwarding handlers talk to their next hop through this module.  It
 * connects (host:port or a UNIX socket), reads the greeting, says EHLO or
 * LHLO, upgrades with STARTTLS when asked to, sends commands and reads
 * replies, and streams message content with every line end (CRLF, bare
 * CR, bare LF) written as CRLF and leading dots doubled, so nothing in a
 * message can end it early at the next hop (SMTP smuggling).
 *
 * Every exchange ends in a reply.  When the next hop cannot be reached,
 * stops answering, breaks the connection or speaks nonsense, the module
 * makes up a 4xx reply and logs why, so a caller passes replies on and
 * never has to tell the two apart; smtp_client_usable() says whether the
 * connection can carry another command.
 */
#ifndef AIOSMTPD_SMTP_CLIENT_H
#define AIOSMTPD_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "sbuf.h"

enum smtp_client_tls {
	SMTP_CLIENT_TLS_NO,       /* never STARTTLS */
	SMTP_CLIENT_TLS_MAY,      /* when offered; no certificate check */
	SMTP_CLIENT_TLS_REQUIRED, /* refuse to go on without it */
};

struct smtp_client_tls_state; /* the TLS client context, made once */

struct smtp_client_conf {
	char *target; /* "unix:/path", "/path", "host:port", "[v6]:port" */
	bool lmtp;    /* LHLO instead of EHLO */
	unsigned connect_timeout; /* seconds */
	unsigned timeout;         /* seconds for each read or write */
	enum smtp_client_tls tls;
	bool tls_verify; /* REQUIRED: check the certificate and name */
	char *tls_ca;    /* CA file for tls_verify; NULL: the system's */
	struct smtp_client_tls_state *tls_state; /* see smtp_client_conf_ready() */
};

/* smtp_client_conf_init - no TLS, 30 s to connect, 300 s per step */
void smtp_client_conf_init(struct smtp_client_conf *conf);
void smtp_client_conf_free(struct smtp_client_conf *conf);
/*
 * smtp_client_conf_set - one "key=value" option: timeout, connect_timeout
 * (seconds), starttls (no, may, required), tls_verify (yes, no), tls_ca
 * (a file).  0, or -1 with *error_r set to a static message.
 */
int smtp_client_conf_set(struct smtp_client_conf *conf, const char *option,
			 const char **error_r);

/*
 * smtp_client_conf_ready - after the last smtp_client_conf_set(), when
 * STARTTLS is configured: make the TLS client context once, CAs loaded
 *
 * Called where the handler starts (in the master, before the fork), so
 * a CA file that cannot be read stops the start instead of failing
 * every message, and no connection pays for loading the CAs (the
 * system's bundle takes about 20 ms).  The context also keeps the next
 * hop's last TLS session, per process, so later connections resume it.
 * 0, or -1 with *error_r set to a message valid until the next call.
 */
int smtp_client_conf_ready(struct smtp_client_conf *conf,
			   const char **error_r);

/* smtp_client_check_target - 0 when target is written as the conf's
 * target wants it, else -1 with *error_r set to a static message */
int smtp_client_check_target(const char *target, const char **error_r);

struct smtp_reply {
	int code;         /* 250, 550, ...; a made-up 4xx on failure */
	struct sbuf text; /* the whole reply, lines joined by CRLF */
};

void smtp_reply_init(struct smtp_reply *reply);
void smtp_reply_free(struct smtp_reply *reply);
/* smtp_reply_set - replace the reply by a single line of our own */
void smtp_reply_set(struct smtp_reply *reply, const char *line);

struct smtp_client;

/*
 * smtp_client_connect - connect, read the greeting, EHLO or LHLO with
 * helo as our name, and STARTTLS as configured (which needs the conf
 * made ready by smtp_client_conf_ready())
 *
 * Returns the client, or NULL with *reply holding the refusal (the next
 * hop's, or a made-up 451).  log_id prefixes the log lines (the session
 * id); it must outlive the client.
 */
struct smtp_client *smtp_client_connect(const struct smtp_client_conf *conf,
					const char *helo, const char *log_id,
					struct smtp_reply *reply);
/* smtp_client_free - close without QUIT */
void smtp_client_free(struct smtp_client **client);
/* smtp_client_quit - QUIT (its reply is not waited for long), then free */
void smtp_client_quit(struct smtp_client **client);

/* smtp_client_usable - false after a failure that ended the connection
 * or a 421 */
bool smtp_client_usable(const struct smtp_client *client);
/* smtp_client_offers - did EHLO/LHLO list this keyword? */
bool smtp_client_offers(const struct smtp_client *client, const char *keyword);

/* smtp_client_read_reply - the next reply; returns its code */
int smtp_client_read_reply(struct smtp_client *client,
			   struct smtp_reply *reply);
/* smtp_client_command - send one command and read its reply */
int smtp_client_command(struct smtp_client *client, struct smtp_reply *reply,
			const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* smtp_client_data - message content after a 354, normalised and
 * dot-stuffed; may be called with any split of the content */
void smtp_client_data(struct smtp_client *client, const char *data, size_t len);
/* smtp_client_data_end - end the line if needed, send the final dot;
 * the replies are read with smtp_client_read_reply() */
void smtp_client_data_end(struct smtp_client *client);

#endif
