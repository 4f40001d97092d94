/*
 * aiosmtpd/controller.h - start aiosmtpd-c for a test, read back its mail
 *
 * The C form of aiosmtpd's Controller: a test starts a real SMTP (or LMTP)
 * server on loopback, points the code under test at it, and then looks at
 * what arrived, envelope and content exactly as they were sent.
 *
 *	struct aiosmtpd_error err;
 *	struct aiosmtpd_controller *server;
 *	const struct aiosmtpd_message *m;
 *
 *	server = aiosmtpd_controller_start(NULL, &err);
 *	if (server == NULL)
 *		fail(err.text);
 *	send_welcome_mail("127.0.0.1", aiosmtpd_controller_port(server));
 *	if (aiosmtpd_controller_wait(server, 1, 5000, &err) < 0)
 *		fail(err.text);
 *	m = aiosmtpd_controller_message(server, 0);
 *	check(strcmp(m->rcpt_tos[0], "new.user@example.com") == 0);
 *	aiosmtpd_controller_stop(&server, NULL);
 *
 * Build with "cc test.c $(pkg-config --cflags --libs aiosmtpd)".
 *
 * Unlike aiosmtpd's Controller, which runs the server in the test's own
 * process, this runs the installed daemon binary (or the one named by
 * options.daemon or the AIOSMTPD_DAEMON environment variable) as a
 * separate process group, with a temporary directory for its
 * configuration, log and mail.  A small watchdog process stands between
 * the two: however the test process ends (stop, exit, a crash, SIGKILL)
 * the watchdog stops the daemon and all its workers and removes the
 * temporary directory.  Each message is kept by the daemon's Record
 * handler (see aiosmtpd(8), RECORD FORMAT) and read from there.
 *
 * Errors are returned as values, never as an exit: a function that fails
 * returns -1 or NULL and fills the struct aiosmtpd_error it was given
 * (which may be NULL when the caller does not care why).  Different
 * controllers may be used from different threads; one controller must
 * not be used by two threads at once.  Linux only.
 */
#ifndef AIOSMTPD_CONTROLLER_H
#define AIOSMTPD_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* data_size_limit for no limit at all. */
#define AIOSMTPD_NO_LIMIT UINT64_MAX

enum aiosmtpd_error_code {
	AIOSMTPD_OK = 0,
	AIOSMTPD_ERROR_USAGE,   /* a bad option or argument */
	AIOSMTPD_ERROR_SYSTEM,  /* a system call failed; the text says which */
	AIOSMTPD_ERROR_DAEMON,  /* the daemon refused to start or died; the
				   text ends with the last lines of its log */
	AIOSMTPD_ERROR_TIMEOUT, /* not ready, or not enough mail, in time */
	AIOSMTPD_ERROR_FORMAT,  /* a message file could not be read */
};

struct aiosmtpd_error {
	enum aiosmtpd_error_code code;
	char text[1024]; /* one or more lines, NUL-terminated */
};

/* A user the server accepts with AUTH: "name" or "name@realm". */
struct aiosmtpd_user {
	const char *name;
	const char *password;
};

/*
 * How to start the server.  A zeroed struct (or NULL) means: the
 * installed daemon, 127.0.0.1 on a free port, every message recorded for
 * aiosmtpd_controller_message().  The strings are copied by start.
 */
struct aiosmtpd_options {
	const char *daemon;   /* the binary; NULL: $AIOSMTPD_DAEMON, else
				 the installed aiosmtpd */
	const char *host;     /* NULL: "127.0.0.1"; "::1" works too */
	unsigned port;        /* 0: a free port, see _port() */
	const char *hostname; /* the server's name in its replies;
				 NULL: "localhost" */
	bool lmtp;            /* speak LMTP instead of SMTP */

	/* Another handler instead of recording the messages (aiosmtpd's
	 * -c: "Sink", "Mailbox", "/path/to/handler.so", ...) with its
	 * arguments, NULL-terminated.  Nothing is recorded then, and
	 * aiosmtpd_controller_count() stays 0. */
	const char *handler;
	const char *const *handler_args;

	uint64_t data_size_limit; /* 0: 33554432 as aiosmtpd; or
				     AIOSMTPD_NO_LIMIT */
	bool smtputf8;            /* offer SMTPUTF8 (RFC 6531) */

	/* STARTTLS with this certificate chain and key (PEM files), or
	 * implicit TLS (SMTPS) when tls_implicit is set. */
	const char *tls_cert;
	const char *tls_key;
	bool tls_implicit;
	bool require_starttls; /* refuse mail before STARTTLS */

	/* AUTH for these users (through a sasldb made with saslpasswd2). */
	const struct aiosmtpd_user *auth_users;
	size_t n_auth_users;
	bool auth_required;    /* refuse mail before AUTH */
	bool auth_require_tls; /* offer AUTH only under TLS, as aiosmtpd
				  does by default; off here */

	/* More aiosmtpd.conf(5) settings, added as they are to the
	 * generated file, e.g. "timeout = 5;".  A setting the library
	 * writes too (see aiosmtpd_controller_directory()) is an error. */
	const char *config;

	unsigned start_timeout_ms; /* 0: 10000 */
};

/* One message as the server received it.  Every string is
 * NUL-terminated; the lists hold n_ strings. */
struct aiosmtpd_message {
	const char *mail_from;           /* "<>" for the null sender */
	const char *const *mail_options; /* "SIZE=35", "BODY=8BITMIME" */
	size_t n_mail_options;
	const char *const *rcpt_tos;
	size_t n_rcpt_tos;
	const char *const *rcpt_options;
	size_t n_rcpt_options;
	const char *content; /* the octets after DATA, dots removed, CRLF
				kept, with a NUL after the last one */
	size_t content_size;
	const char *peer_address; /* "127.0.0.1"; "" for a UNIX socket */
	unsigned peer_port;
	const char *helo;      /* the HELO, EHLO or LHLO argument */
	const char *session;   /* the session id of the daemon's log */
	const char *tls;       /* the TLS version; NULL without TLS */
	const char *auth_user; /* NULL unless the client authenticated */
	const char *file;      /* the file it was read from */
			       /* New fields are added here, at the end. */
};

struct aiosmtpd_controller;

/*
 * aiosmtpd_controller_start - start a server and wait until it accepts
 * connections
 *
 * Returns the controller, or NULL with *error_r set; nothing is left
 * running and no file is left behind on failure.  An option the daemon
 * refuses (TLS or AUTH with a daemon built without them, a bad config
 * setting) is an AIOSMTPD_ERROR_DAEMON with the daemon's own words.
 */
struct aiosmtpd_controller *
aiosmtpd_controller_start(const struct aiosmtpd_options *options,
			  struct aiosmtpd_error *error_r);

/*
 * aiosmtpd_controller_stop - stop the server, remove its directory, free
 * the controller and set *controller to NULL (NULL is accepted)
 *
 * Returns 0 when the daemon stopped cleanly; -1 with *error_r set when it
 * had died before, exited with an error, or had to be killed.  Everything
 * is cleaned up either way.  Controllers still running when the process
 * exits are stopped by an atexit handler.
 */
int aiosmtpd_controller_stop(struct aiosmtpd_controller **controller,
			     struct aiosmtpd_error *error_r);

/* aiosmtpd_controller_host - the address it listens on, "127.0.0.1" */
const char *aiosmtpd_controller_host(const struct aiosmtpd_controller *c);
/* aiosmtpd_controller_port - the port it listens on */
unsigned aiosmtpd_controller_port(const struct aiosmtpd_controller *c);
/* aiosmtpd_controller_pid - the daemon's master process, which is also
 * the id of the process group of the daemon and its workers */
pid_t aiosmtpd_controller_pid(const struct aiosmtpd_controller *c);
/*
 * aiosmtpd_controller_directory - the temporary directory, removed at
 * stop: aiosmtpd.conf (the generated configuration), aiosmtpd.log (the
 * daemon's log), aiosmtpd.out (its standard output) and mail/ (the
 * Maildir the messages are recorded in)
 */
const char *aiosmtpd_controller_directory(const struct aiosmtpd_controller *c);

/*
 * aiosmtpd_controller_wait - wait until at least n messages have arrived
 * since the start or the last clear
 *
 * Returns 0, or -1 with *error_r set: AIOSMTPD_ERROR_TIMEOUT after
 * timeout_ms, AIOSMTPD_ERROR_DAEMON at once if the daemon died.
 */
int aiosmtpd_controller_wait(struct aiosmtpd_controller *c, size_t n,
			     unsigned timeout_ms,
			     struct aiosmtpd_error *error_r);

/*
 * aiosmtpd_controller_count - the number of messages that have arrived,
 * reading any new ones; -1 with *error_r set when one cannot be read
 */
ssize_t aiosmtpd_controller_count(struct aiosmtpd_controller *c,
				  struct aiosmtpd_error *error_r);

/*
 * aiosmtpd_controller_message - message i (0 is the first to arrive), as
 * read by the last _wait() or _count(); NULL when there is no such
 * message
 *
 * Messages are in the order they arrived (their file names' order;
 * messages that arrive on several connections at once are in the order
 * they were found).  The message stays valid until _clear() or _stop().
 */
const struct aiosmtpd_message *
aiosmtpd_controller_message(const struct aiosmtpd_controller *c, size_t i);

/*
 * aiosmtpd_controller_clear - forget every message received so far and
 * delete its file; 0, or -1 with *error_r set
 */
int aiosmtpd_controller_clear(struct aiosmtpd_controller *c,
			      struct aiosmtpd_error *error_r);

#ifdef __cplusplus
}
#endif

#endif
