/*
 * conf.h - the daemon's configuration: defaults, the libconfig file,
 * validation
 *
 * The file is $(sysconfdir)/aiosmtpd.conf or the one named by --config, in
 * libconfig syntax, with aiosmtpd's keyword names (aiosmtpd.conf(5) lists
 * them).  Every key is checked: an unknown name, a wrong type, a value out
 * of range or a malformed address is an error naming the file, the line
 * and the key.  The command line is applied on top by the caller.
 */
#ifndef AIOSMTPD_CONF_H
#define AIOSMTPD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cidr.h"
#include "log.h"
#include "secconf.h"
#include "smtp_session.h"

/* sysexits.h's EX_CONFIG: what a bad configuration exits with. */
#define CONF_EXIT_STATUS 78

/* Session settings; a listener starts with the global ones and may
 * override any of them. */
struct session_conf {
	struct smtp_settings smtp; /* hostname/ident set by conf_finish() */
	struct smtp_call_limit *call_limits; /* smtp.call_limits */
	unsigned timeout;		     /* seconds of client silence */
	/* open connections per client address, all workers; 0: no limit */
	unsigned max_connections_per_client;
	struct tls_conf tls;		     /* see secconf.h */
	struct auth_conf auth;
};

/* A handler and its arguments: a built-in's name or configuration type
 * ("Mailbox", "maildir", ...) and what follows it on the command line. */
struct handler_conf {
	char *name;
	char **args;
	size_t n_args;
};

struct listener_conf {
	char *address; /* "host:port", "[v6]:port" or "unix:/path" */
	struct session_conf session;
	struct handler_conf *handler; /* NULL: the global handler */
	/* PROXY protocol: off while proxy_timeout_ms is 0.  An empty
	 * proxy_from trusts every peer, as aiosmtpd does. */
	unsigned proxy_timeout_ms;
	struct cidr *proxy_from;
	size_t n_proxy_from;
};

/* workers.scheduling: the CPU scheduling policy workers run under.  A
 * blocking worker is woken for every command; under SCHED_BATCH a woken
 * worker waits for the running task's slice instead of preempting it,
 * so a CPU serves several sessions' commands in a row rather than
 * switching tasks for each one. */
enum worker_sched {
	WORKER_SCHED_BATCH,   /* SCHED_BATCH, when started under SCHED_OTHER */
	WORKER_SCHED_INHERIT, /* whatever the master runs under */
};

/* workers = { ... }: how the master sizes its pool. */
struct pool_conf {
	unsigned min;	   /* kept alive at all times */
	unsigned max;	   /* never more */
	unsigned spare;	   /* idle ones kept ready, below max */
	unsigned max_use;  /* sessions before a worker is replaced */
	unsigned max_idle; /* seconds an idle worker waits before leaving */
	enum worker_sched scheduling;
};

enum log_target_conf {
	LOG_CONF_AUTO,	 /* stderr on a terminal or with -d, else syslog */
	LOG_CONF_STDERR,
	LOG_CONF_SYSLOG,
};

struct conf {
	char *file;	/* the file read; NULL for built-in defaults */
	char *hostname; /* NULL until set or resolved */
	char *ident;
	struct session_conf session;
	struct listener_conf *listeners;
	size_t n_listeners;
	struct handler_conf handler;
	unsigned shutdown_timeout; /* seconds sessions get to finish */
	/* Under stress (every worker busy at workers.max): the timeout of
	 * new sessions and of sessions idle between commands, and how long
	 * a connection may wait for a worker before it is told 421. */
	unsigned stress_timeout;
	unsigned queue_timeout;
	struct pool_conf workers;
	char *user;	 /* workers' user; NULL: keep the current one */
	char *group;	 /* NULL: the user's primary group */
	bool allow_root; /* may sessions be served by root? */
	char *pid_file;	 /* NULL: none */
	char *spool_dir; /* NULL: $TMPDIR or /tmp */
	enum log_target_conf log_target;
	enum log_level log_level;
};

/* conf_init - built-in defaults: aiosmtpd's, localhost:8025, Debugging
 * to stdout, workers as user nobody */
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
/* conf_set_tls - TLS on every listener from the command line: STARTTLS
 * (--tlscert) or implicit (--smtpscert) with this certificate and key */
void conf_set_tls(struct conf *cfg, enum tls_mode mode, const char *cert,
		  const char *key, bool require_starttls);
/* conf_listener_handler - the handler a listener uses */
const struct handler_conf *
conf_listener_handler(const struct conf *cfg, const struct listener_conf *lc);

/* conf_finish - resolve what was left unset (the host name, as
 * Python's socket.getfqdn() finds it) and point each listener's settings
 * at the final strings; call once, after every change */
void conf_finish(struct conf *cfg);

/* conf_print - the effective configuration, in the file's syntax */
void conf_print(const struct conf *cfg, FILE *out);

#endif
