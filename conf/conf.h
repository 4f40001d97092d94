/*
 * conf.h - the daemon's configuration: defaults, the libconfig file,
 * validation
 *
 * The file is /etc/aiosmtpd.conf (really $(sysconfdir)/aiosmtpd.conf) or
 * the one named by --config, in libconfig syntax, with aiosmtpd's keyword
 * names.  Every key is checked: an unknown name, a wrong type or a value
 * out of range is an error naming the file, the line and the key.  The
 * command line is applied on top by the caller.
 */
#ifndef AIOSMTPD_CONF_H
#define AIOSMTPD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "smtp_session.h"

/* sysexits.h's EX_CONFIG: what a bad configuration exits with. */
#define CONF_EXIT_STATUS 78

/* Session settings; a listener starts with the global ones and may
 * override any of them. */
struct session_conf {
	struct smtp_settings smtp; /* hostname/ident set by conf_finish() */
	struct smtp_call_limit *call_limits; /* smtp.call_limits */
	unsigned timeout;		     /* seconds of client silence */
};

struct listener_conf {
	char *address; /* "host:port", "[v6]:port" or "unix:/path" */
	struct session_conf session;
};

struct conf {
	char *file;	/* the file read; NULL for built-in defaults */
	char *hostname; /* NULL until set or resolved */
	char *ident;
	struct session_conf session;
	struct listener_conf *listeners;
	size_t n_listeners;
	char *handler;	      /* handler name or type */
	char **handler_args;  /* its arguments */
	size_t n_handler_args;
	unsigned shutdown_timeout; /* seconds sessions get to finish */
};

/* conf_init - built-in defaults: aiosmtpd's, localhost:8025, Debugging
 * to stdout */
void conf_init(struct conf *cfg);
void conf_free(struct conf *cfg);

/*
 * conf_load - read and check a file into cfg (initialised)
 *
 * When explicit is false a missing file is not an error and leaves the
 * defaults.  On error returns -1 and sets *error_r to an allocated
 * message such as "/etc/aiosmtpd.conf:12: unknown setting 'tiemout'".
 */
int conf_load(struct conf *cfg, const char *path, bool explicit,
		char **error_r);

/* conf_set_listener - replace all listeners by one (the -l option) */
void conf_set_listener(struct conf *cfg, const char *address);
/* conf_set_handler - replace the handler (the -c option) */
void conf_set_handler(struct conf *cfg, const char *name, int argc,
			char *const argv[]);

/* conf_parse_size - "33554432", "32M", "512k": 0, or -1 */
int conf_parse_size(const char *text, uint64_t *size_r);

/* conf_finish - resolve what was left unset (the host name, as
 * Python's socket.getfqdn() finds it) and point each listener's settings
 * at the final strings; call once, after every change */
void conf_finish(struct conf *cfg);

/* conf_print - the effective configuration, in the file's syntax */
void conf_print(const struct conf *cfg, FILE *out);

#endif
