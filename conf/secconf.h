/*
 * secconf.h - the tls and auth settings: reading, copying, printing
 *
 *   tls = "none" | "starttls" | "implicit";
 *   tls = { mode = ...; cert = ...; key = ...; ciphers = ...;
 *           ciphersuites = ...; min_version = "TLSv1.2";
 *           require_starttls = false; };
 *   auth = { enabled; required; require_tls; mechanisms; exclude;
 *            max_failures; sasl = { service; realm; options = { ... }; }; };
 *
 * Both are session settings: given globally, and overridden per
 * listener, member by member.  What the protocol engine reads
 * (require_starttls, auth.required, auth.require_tls, max_failures) goes
 * into its struct smtp_settings; the rest is for the daemon's TLS and
 * SASL layers.  Every SASL option is checked against the options Cyrus
 * SASL 2.1.28 knows, so a misspelt one is an error, not ignored.
 */
#ifndef AIOSMTPD_SECCONF_H
#define AIOSMTPD_SECCONF_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cfgread.h"
#include "smtp_session.h"

enum tls_mode {
	TLS_MODE_NONE,
	TLS_MODE_STARTTLS, /* offered after EHLO */
	TLS_MODE_IMPLICIT, /* handshake before the greeting (SMTPS) */
};

struct tls_conf {
	enum tls_mode mode;
	char *cert;	    /* PEM certificate chain, leaf first */
	char *key;	    /* PEM private key */
	char *ciphers;	    /* TLS 1.2 cipher list; NULL: OpenSSL's */
	char *ciphersuites; /* TLS 1.3 suites; NULL: OpenSSL's */
	unsigned min_version; /* 12 or 13: TLS 1.2 or TLS 1.3 */
	/* "file:line" where cert, key or ciphers (else the mode) were last
	 * set, or "--tlscert": errors in building the context name it */
	char *origin;
};

/* One option handed to Cyrus SASL as if from its own config file. */
struct sasl_option {
	char *name;
	char *value;
};

struct auth_conf {
	bool enabled; /* an auth group is present (and not disabled) */
	char **mechanisms; /* what SASL may offer; none: the default list */
	size_t n_mechanisms;
	char **exclude; /* never offered */
	size_t n_exclude;
	char *service; /* SASL service name; NULL: "smtp" */
	char *realm;   /* user realm; NULL: the hostname */
	struct sasl_option *options;
	size_t n_options;
};

/* secconf_init - the defaults: no TLS (1.2 at least when on), no AUTH */
void secconf_init(struct tls_conf *tc, struct auth_conf *ac);
/* secconf_copy - deep copies, so a listener's overrides never touch
 * the global strings */
void secconf_copy(struct tls_conf *tc, const struct tls_conf *from_tc,
		  struct auth_conf *ac, const struct auth_conf *from_ac);
void secconf_free(struct tls_conf *tc, struct auth_conf *ac);

/* secconf_tls, secconf_auth - read a tls or auth setting; 0, or -1
 * with the error recorded in cr */
int secconf_tls(struct cfgread *cr, const config_setting_t *s,
		struct tls_conf *tc, struct smtp_settings *smtp);
int secconf_auth(struct cfgread *cr, const config_setting_t *s,
		 struct auth_conf *ac, struct smtp_settings *smtp);

/* secconf_set_tls - TLS from the command line (--tlscert, --smtpscert) */
void secconf_set_tls(struct tls_conf *tc, struct smtp_settings *smtp,
		     enum tls_mode mode, const char *cert, const char *key,
		     bool require_starttls);
/* secconf_finish - STARTTLS is offered, and may be required, only where
 * the mode is starttls (aiosmtpd: require_starttls needs a tls_context) */
void secconf_finish(const struct tls_conf *tc, struct smtp_settings *smtp);

/* secconf_print - both settings in the file's syntax, one line each */
void secconf_print(FILE *out, const char *indent, const struct tls_conf *tc,
		   const struct auth_conf *ac,
		   const struct smtp_settings *smtp);

#endif
