/*
 * setup.h - what a controller gives the daemon: its configuration file,
 * a sasldb for AUTH users, its command line and environment
 *
 * Everything is written into the controller's temporary directory:
 * aiosmtpd.conf, sasldb2 (with auth users), and, from the daemon,
 * aiosmtpd.log, aiosmtpd.out and the Record Maildir mail/.
 */
#ifndef AIOSMTPD_CONTROLLER_SETUP_H
#define AIOSMTPD_CONTROLLER_SETUP_H

#include "aiosmtpd/controller.h"

#define SETUP_CONF "aiosmtpd.conf"
#define SETUP_LOG "aiosmtpd.log"
#define SETUP_OUT "aiosmtpd.out"
#define SETUP_MAIL "mail"
#define SETUP_SASLDB "sasldb2"

/* aiosmtpd_setup_check - options that contradict each other, or are
 * missing a partner; 0, or -1 with *error_r set */
int aiosmtpd_setup_check(const struct aiosmtpd_options *o,
			 struct aiosmtpd_error *error_r);

/* aiosmtpd_setup_daemon - the binary: options.daemon, $AIOSMTPD_DAEMON,
 * else the installed one */
const char *aiosmtpd_setup_daemon(const struct aiosmtpd_options *o);

/* aiosmtpd_setup_config - write dir/aiosmtpd.conf; 0, or -1 with
 * *error_r set */
int aiosmtpd_setup_config(const struct aiosmtpd_options *o, const char *dir,
			  struct aiosmtpd_error *error_r);

/* aiosmtpd_setup_sasldb - dir/sasldb2 with the auth users, made by
 * saslpasswd2; 0, or -1 with *error_r set */
int aiosmtpd_setup_sasldb(const struct aiosmtpd_options *o, const char *dir,
			  struct aiosmtpd_error *error_r);

/* aiosmtpd_setup_argv - the daemon's command line, NULL-terminated;
 * NULL when out of memory */
char **aiosmtpd_setup_argv(const struct aiosmtpd_options *o, const char *daemon,
			   const char *dir);

/* aiosmtpd_setup_envp - this process's environment for the daemon:
 * NOTIFY_SOCKET=notify_socket, and no systemd variables of our own;
 * NULL when out of memory */
char **aiosmtpd_setup_envp(const char *notify_socket);

/* aiosmtpd_setup_notify - a datagram socket with a name of the kernel's
 * choosing, for NOTIFY_SOCKET ("@" and the abstract name); the fd, or -1
 * with *error_r set */
int aiosmtpd_setup_notify(char *name, size_t size,
			  struct aiosmtpd_error *error_r);

/* aiosmtpd_setup_free - a vector of _argv() or _envp(), set to NULL */
void aiosmtpd_setup_free(char ***vector);

#endif
