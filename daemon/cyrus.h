/*
 * cyrus.h - SMTP AUTH through Cyrus SASL: the engine's struct
 * smtp_auth_ops over a sasl_conn_t
 *
 * Every SASL option comes from our own configuration (a listener's auth
 * group) through a SASL_CB_GETOPT callback, and Cyrus's configuration
 * path points where no file can exist, so no /etc/sasl2 file is read by
 * surprise.  Cyrus is initialised once per process, after fork (its init
 * is per process, and a new configuration needs new workers anyway).
 * Passwords and AUTH data are never logged: Cyrus's own log messages
 * above SASL_LOG_DEBUG, the levels that trace protocols and passwords,
 * are dropped.
 */
#ifndef AIOSMTPD_CYRUS_H
#define AIOSMTPD_CYRUS_H

#include <stdbool.h>

#include "conf.h"
#include "smtp_auth.h"

struct cyrus_session;

extern const struct smtp_auth_ops cyrus_auth_ops;

/*
 * cyrus_init - load the SASL plugins; once per process, before any
 * session.  defaults answers the options Cyrus asks for outside a
 * connection.  Returns 0, or -1 with *error_r a static message.
 */
int cyrus_init(const struct auth_conf *defaults, const char **error_r);

/*
 * cyrus_session_new - the back end of one SMTP session
 *
 * ac is the listener's auth configuration and must outlive the session.
 * local and remote are "addr;port" (IPv6 without brackets) or NULL for a
 * UNIX socket; ssf is the TLS cipher's bits, 0 in plaintext.  The SASL
 * connection is made when first needed, and again after a failed
 * exchange or TLS, never reused.
 */
struct cyrus_session *cyrus_session_new(const struct auth_conf *ac,
					bool require_tls,
					const char *hostname,
					const char *local, const char *remote,
					unsigned ssf);
/* cyrus_session_tls - TLS now protects the session with ssf bits */
void cyrus_session_tls(struct cyrus_session *cs, unsigned ssf);
void cyrus_session_free(struct cyrus_session **cs);

/* cyrus_failure_delay_ms - how long the failures-th wrong credentials of
 * a session wait before their reply: nothing the first time, then one
 * more second each time, at most five */
unsigned cyrus_failure_delay_ms(unsigned failures);

#endif
