/*
 * watchdog.h - the process that keeps the daemon from outliving its test
 *
 * The test process forks a watchdog, which starts the daemon as its child
 * in a process group of its own, and holds one end of a socket pair whose
 * other end only the test process has.  When that end closes (the
 * controller stops, or the test process exits or is killed, even by
 * SIGKILL) the watchdog stops the daemon, kills whatever is left in its
 * process group, reaps it all and removes the temporary directory.  The
 * daemon in turn dies with the watchdog (PR_SET_PDEATHSIG), and its
 * workers with their master.
 *
 * The watchdog learns that the daemon is ready through systemd's
 * notification protocol (NOTIFY_SOCKET), which the daemon speaks anyway,
 * and reports to the test process over the same socket pair.  After the
 * fork it makes only async-signal-safe calls, so a test may start a
 * controller from any thread.
 */
#ifndef AIOSMTPD_CONTROLLER_WATCHDOG_H
#define AIOSMTPD_CONTROLLER_WATCHDOG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "aiosmtpd/controller.h"

/* What the watchdog needs, all prepared before the fork. */
struct aiosmtpd_watchdog_plan {
	char *const *argv; /* the daemon's command line; argv[0] the path */
	char *const *envp; /* its environment, with NOTIFY_SOCKET */
	int null_fd;       /* /dev/null, read-write */
	int stdout_fd;     /* a file for its standard output */
	int log_fd;        /* a file for its standard error (the log) */
	int notify_fd;     /* the datagram socket NOTIFY_SOCKET names */
	const char *dir;   /* removed with all it holds at the end */
	unsigned start_timeout_ms; /* until READY=1 */
	unsigned stop_timeout_ms;  /* from SIGTERM to SIGKILL */
};

/* The test process's side. */
struct aiosmtpd_watchdog {
	pid_t pid;
	int fd;    /* our end of the socket pair */
	bool died; /* the daemon died while running */
	struct aiosmtpd_error death;
	char buf[4096]; /* reports not read yet */
	size_t len;
};

/*
 * aiosmtpd_watchdog_start - fork the watchdog, which starts the daemon
 *
 * The plan's file descriptors stay open in the caller, which should close
 * them afterwards.  Returns 0, or -1 with *error_r set.
 */
int aiosmtpd_watchdog_start(const struct aiosmtpd_watchdog_plan *plan,
			    struct aiosmtpd_watchdog *wd,
			    struct aiosmtpd_error *error_r);

/*
 * aiosmtpd_watchdog_ready - wait until the daemon is ready
 *
 * Returns 0 with *pid_r (the daemon's master) and the first line the
 * daemon printed (the bound address; "" when it printed none) in line;
 * -1 with *error_r set when it failed to start or timeout_ms passed.
 * Call _stop() either way.
 */
int aiosmtpd_watchdog_ready(struct aiosmtpd_watchdog *wd, unsigned timeout_ms,
			    pid_t *pid_r, char *line, size_t size,
			    struct aiosmtpd_error *error_r);

/* aiosmtpd_watchdog_check - 0 while the daemon runs; -1 with *error_r
 * set once it has died (or the watchdog has) */
int aiosmtpd_watchdog_check(struct aiosmtpd_watchdog *wd,
			    struct aiosmtpd_error *error_r);

/*
 * aiosmtpd_watchdog_stop - have the watchdog stop the daemon and clean
 * up, and wait up to timeout_ms for it to finish
 *
 * Returns 0 when the daemon stopped cleanly, -1 with *error_r set when it
 * did not (it had died, exited with an error or had to be killed) or the
 * watchdog did not finish in time; then the watchdog is killed, which
 * kills the daemon, and the caller must remove the directory itself
 * (*cleaned_r false).
 */
int aiosmtpd_watchdog_stop(struct aiosmtpd_watchdog *wd, unsigned timeout_ms,
			   bool *cleaned_r, struct aiosmtpd_error *error_r);

#endif
