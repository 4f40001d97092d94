/*
 * controller.c - the public face of libaiosmtpd: start, look, stop
 *
 * A controller is a temporary directory, a watchdog process that runs the
 * daemon in it, and an inbox over the daemon's Record Maildir.  Live
 * controllers are kept in a list so that the ones a test forgot are
 * stopped when it exits.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aiosmtpd/controller.h"
#include "error.h"
#include "inbox.h"
#include "setup.h"
#include "watchdog.h"

#define START_TIMEOUT_MS 10000
/* The watchdog reports a start timeout itself; this is in case it
 * cannot. */
#define REPORT_MARGIN_MS 5000
/* From SIGTERM to SIGKILL: the daemon gives sessions one second. */
#define STOP_TIMEOUT_MS 10000
/* For the whole stop, reaping and removing included. */
#define STOP_WAIT_MS (STOP_TIMEOUT_MS + 10000)
#define WAIT_POLL_MS 5

struct aiosmtpd_controller {
	struct aiosmtpd_controller *next; /* in the live list */
	pid_t owner;                      /* the process that started it */
	char *dir;
	char host[256];
	unsigned port;
	pid_t pid;
	bool running; /* wd is set */
	struct aiosmtpd_watchdog wd;
	struct aiosmtpd_inbox *inbox;
};

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct aiosmtpd_controller *live;
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

/* --- the temporary directory --------------------------------------------- */

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

/* remove_dir - what the watchdog does, for when there is no watchdog */
static void remove_dir(const char *dir)
{
	(void)nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int make_dir(struct aiosmtpd_controller *c,
		    struct aiosmtpd_error *error_r)
{
	const char *tmp = getenv("TMPDIR");
	size_t len;

	/* The daemon wants absolute paths in its configuration. */
	if (tmp == NULL || tmp[0] != '/')
		tmp = "/tmp";
	len = strlen(tmp) + sizeof("/aiosmtpd-controller.XXXXXX");
	if ((c->dir = malloc(len)) == NULL)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "out of memory");
	snprintf(c->dir, len, "%s/aiosmtpd-controller.XXXXXX", tmp);
	if (mkdtemp(c->dir) == NULL) {
		aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
				   "mkdtemp(%s) failed: %m", c->dir);
		free(c->dir);
		c->dir = NULL;
		return -1;
	}
	return 0;
}

/* --- starting ------------------------------------------------------------ */

/* open_in - a file in the directory for the daemon to write and the
 * watchdog to read */
static int open_in(const char *dir, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return open(path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
		    0600);
}

static void close_plan(struct aiosmtpd_watchdog_plan *plan)
{
	int *fds[] = {&plan->null_fd, &plan->stdout_fd, &plan->log_fd,
		      &plan->notify_fd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	aiosmtpd_setup_free((char ***)&plan->argv);
	aiosmtpd_setup_free((char ***)&plan->envp);
}

/* make_plan - everything the watchdog needs, made before it is forked */
static int make_plan(struct aiosmtpd_controller *c,
		     const struct aiosmtpd_options *o,
		     struct aiosmtpd_watchdog_plan *plan,
		     struct aiosmtpd_error *error_r)
{
	const char *daemon = aiosmtpd_setup_daemon(o);
	char notify[64];

	*plan = (struct aiosmtpd_watchdog_plan){
		.null_fd = open("/dev/null", O_RDWR | O_CLOEXEC),
		.stdout_fd = open_in(c->dir, SETUP_OUT),
		.log_fd = open_in(c->dir, SETUP_LOG),
		.notify_fd = -1,
		.dir = c->dir,
		.start_timeout_ms = o->start_timeout_ms != 0
					    ? o->start_timeout_ms
					    : START_TIMEOUT_MS,
		.stop_timeout_ms = STOP_TIMEOUT_MS,
	};
	if (plan->null_fd < 0 || plan->stdout_fd < 0 || plan->log_fd < 0)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "cannot open the daemon's files in "
					  "%s: %m",
					  c->dir);
	if ((plan->notify_fd = aiosmtpd_setup_notify(notify, sizeof(notify),
						     error_r)) < 0)
		return -1;
	plan->argv = aiosmtpd_setup_argv(o, daemon, c->dir);
	plan->envp = aiosmtpd_setup_envp(notify);
	if (plan->argv == NULL || plan->envp == NULL)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "out of memory");
	return 0;
}

/* take_address - where the daemon listens: the line it printed for port
 * 0, else what it was told */
static void take_address(struct aiosmtpd_controller *c,
			 const struct aiosmtpd_options *o, const char *line)
{
	const char *colon = strrchr(line, ':');
	size_t len;

	if (line[0] == '\0' || colon == NULL) {
		snprintf(c->host, sizeof(c->host), "%s",
			 o->host != NULL ? o->host : "127.0.0.1");
		c->port = o->port;
		return;
	}
	len = (size_t)(colon - line);
	if (line[0] == '[' && len >= 2 && line[len - 1] == ']') {
		line++;
		len -= 2;
	}
	snprintf(c->host, sizeof(c->host), "%.*s", (int)len, line);
	c->port = (unsigned)strtoul(colon + 1, NULL, 10);
}

/* launch - the watchdog, and through it the daemon, until it is ready */
static int launch(struct aiosmtpd_controller *c,
		  const struct aiosmtpd_options *o,
		  struct aiosmtpd_error *error_r)
{
	struct aiosmtpd_watchdog_plan plan;
	char line[256];
	int ret;

	ret = make_plan(c, o, &plan, error_r);
	if (ret == 0 && access(plan.argv[0], X_OK) < 0)
		ret = aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_USAGE,
					 "cannot run the daemon %s: %m (set "
					 "AIOSMTPD_DAEMON or options.daemon)",
					 plan.argv[0]);
	if (ret == 0 &&
	    (ret = aiosmtpd_watchdog_start(&plan, &c->wd, error_r)) == 0)
		c->running = true;
	close_plan(&plan);
	if (ret < 0)
		return -1;
	if (aiosmtpd_watchdog_ready(&c->wd,
				    plan.start_timeout_ms + REPORT_MARGIN_MS,
				    &c->pid, line, sizeof(line), error_r) < 0)
		return -1;
	take_address(c, o, line);
	return 0;
}

/* --- stopping ------------------------------------------------------------ */

/* shut - stop the daemon, remove the directory, free the controller */
static int shut(struct aiosmtpd_controller *c, struct aiosmtpd_error *error_r)
{
	bool cleaned = false;
	int ret = 0;

	if (c->running)
		ret = aiosmtpd_watchdog_stop(&c->wd, STOP_WAIT_MS, &cleaned,
					     error_r);
	if (!cleaned && c->dir != NULL)
		remove_dir(c->dir);
	aiosmtpd_inbox_free(&c->inbox);
	free(c->dir);
	free(c);
	return ret;
}

/* stop_at_exit - the controllers this process started and did not stop */
static void stop_at_exit(void)
{
	struct aiosmtpd_controller **p, *c, *mine = NULL;
	struct aiosmtpd_error error;

	pthread_mutex_lock(&live_lock);
	for (p = &live; (c = *p) != NULL;) {
		if (c->owner != getpid()) {
			p = &c->next; /* a forked child's exit: not ours */
			continue;
		}
		*p = c->next;
		c->next = mine;
		mine = c;
	}
	pthread_mutex_unlock(&live_lock);
	while ((c = mine) != NULL) {
		mine = c->next;
		if (shut(c, &error) < 0)
			fprintf(stderr, "libaiosmtpd: at exit: %s\n",
				error.text);
	}
}

static void register_atexit(void)
{
	(void)atexit(stop_at_exit);
}

static void add_live(struct aiosmtpd_controller *c)
{
	pthread_once(&atexit_once, register_atexit);
	pthread_mutex_lock(&live_lock);
	c->next = live;
	live = c;
	pthread_mutex_unlock(&live_lock);
}

/* take_live - remove c from the list; false when it is not there (the
 * exit handler has it) */
static bool take_live(struct aiosmtpd_controller *c)
{
	struct aiosmtpd_controller **p;
	bool found = false;

	pthread_mutex_lock(&live_lock);
	for (p = &live; *p != NULL; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&live_lock);
	return found;
}

/* --- the interface ------------------------------------------------------- */

struct aiosmtpd_controller *
aiosmtpd_controller_start(const struct aiosmtpd_options *options,
			  struct aiosmtpd_error *error_r)
{
	static const struct aiosmtpd_options defaults;
	const struct aiosmtpd_options *o =
		options != NULL ? options : &defaults;
	struct aiosmtpd_controller *c;
	char mail[4096];

	if (aiosmtpd_setup_check(o, error_r) < 0)
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
				   "out of memory");
		return NULL;
	}
	c->owner = getpid();
	if (make_dir(c, error_r) < 0 ||
	    aiosmtpd_setup_config(o, c->dir, error_r) < 0 ||
	    (o->n_auth_users > 0 &&
	     aiosmtpd_setup_sasldb(o, c->dir, error_r) < 0) ||
	    launch(c, o, error_r) < 0)
		goto fail;
	snprintf(mail, sizeof(mail), "%s/" SETUP_MAIL, c->dir);
	if ((c->inbox = aiosmtpd_inbox_new(mail)) == NULL) {
		aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
				   "out of memory");
		goto fail;
	}
	add_live(c);
	return c;
fail:
	(void)shut(c, NULL); /* the error to report is the first one */
	return NULL;
}

int aiosmtpd_controller_stop(struct aiosmtpd_controller **controller,
			     struct aiosmtpd_error *error_r)
{
	struct aiosmtpd_controller *c = *controller;

	if (c == NULL)
		return 0;
	*controller = NULL;
	if (!take_live(c))
		return 0; /* being stopped at exit */
	return shut(c, error_r);
}

const char *aiosmtpd_controller_host(const struct aiosmtpd_controller *c)
{
	return c->host;
}

unsigned aiosmtpd_controller_port(const struct aiosmtpd_controller *c)
{
	return c->port;
}

pid_t aiosmtpd_controller_pid(const struct aiosmtpd_controller *c)
{
	return c->pid;
}

const char *aiosmtpd_controller_directory(const struct aiosmtpd_controller *c)
{
	return c->dir;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int aiosmtpd_controller_wait(struct aiosmtpd_controller *c, size_t n,
			     unsigned timeout_ms,
			     struct aiosmtpd_error *error_r)
{
	int64_t deadline = now_ms() + timeout_ms;
	const struct timespec pause = {0, WAIT_POLL_MS * 1000000L};
	ssize_t have;

	for (;;) {
		if ((have = aiosmtpd_inbox_refresh(c->inbox, error_r)) < 0)
			return -1;
		if ((size_t)have >= n)
			return 0;
		if (aiosmtpd_watchdog_check(&c->wd, error_r) < 0)
			return -1;
		if (now_ms() >= deadline)
			return aiosmtpd_error_set(
				error_r, AIOSMTPD_ERROR_TIMEOUT,
				"%zd of %zu messages arrived within %u ms",
				have, n, timeout_ms);
		nanosleep(&pause, NULL);
	}
}

ssize_t aiosmtpd_controller_count(struct aiosmtpd_controller *c,
				  struct aiosmtpd_error *error_r)
{
	return aiosmtpd_inbox_refresh(c->inbox, error_r);
}

const struct aiosmtpd_message *
aiosmtpd_controller_message(const struct aiosmtpd_controller *c, size_t i)
{
	return aiosmtpd_inbox_get(c->inbox, i);
}

int aiosmtpd_controller_clear(struct aiosmtpd_controller *c,
			      struct aiosmtpd_error *error_r)
{
	return aiosmtpd_inbox_clear(c->inbox, error_r);
}
