/*
 * watchdog.c - the process that keeps the daemon from outliving its test
 *
 * Reports from the watchdog to the test process are a type octet, a text
 * and a NUL:
 *
 *	R<pid> <first line of the daemon's stdout>   ready
 *	E<text>    the daemon exited before it was ready
 *	T<text>    it was not ready in time
 *	X<text>    it died while running
 *	S<text>    everything is stopped and removed; the text is empty when
 *		   the daemon stopped cleanly, else says what went wrong
 *
 * The test process sends one octet, 'S', to ask for the stop, and then
 * shuts its end down; the end of the stream alone means the same.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "watchdog.h"

#define LOG_TAIL 640         /* octets of the log quoted in an error */
#define REAP_TIMEOUT_MS 5000 /* for a killed process group to vanish */
#define REAP_POLL_MS 20

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- in the watchdog: async-signal-safe calls only ----------------------- */

/* Text built without stdio, whose locks another thread of the test
 * process may have held at the fork. */
struct text {
	char data[2048];
	size_t len;
};

static void text_add(struct text *t, const char *s, size_t len)
{
	if (len > sizeof(t->data) - 1 - t->len)
		len = sizeof(t->data) - 1 - t->len;
	memcpy(t->data + t->len, s, len);
	t->len += len;
	t->data[t->len] = '\0';
}

static void text_str(struct text *t, const char *s)
{
	text_add(t, s, strlen(s));
}

static void text_uint(struct text *t, unsigned long v)
{
	char digits[24];
	size_t i = sizeof(digits);

	do {
		digits[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	text_add(t, digits + i, sizeof(digits) - i);
}

struct watch {
	const struct aiosmtpd_watchdog_plan *plan;
	int fd; /* to the test process */
	int null_fd, stdout_fd, log_fd, notify_fd;
	pid_t daemon;  /* also its process group; 0 before the fork */
	bool alive;    /* forked and not reaped yet */
	int status;    /* its wait status once reaped */
	bool notified; /* it said READY=1 */
	bool ready;    /* and we reported it */
	bool told;     /* a failure or its death was reported */
	bool stopping; /* we sent SIGTERM */
	bool killed;   /* it needed SIGKILL */
};

/* The self-pipe of the signal handler: [0] is polled, [1] written. */
static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;

	if (write(signal_pipe[1], &c, 1) < 0) {
		/* full: there is plenty to read already */
	}
	errno = saved;
}

static void report(struct watch *w, char type, const struct text *t)
{
	char buf[sizeof(t->data) + 2];
	size_t len = t->len + 2, done = 0;
	ssize_t n;

	buf[0] = type;
	memcpy(buf + 1, t->data, t->len + 1);
	while (done < len) {
		n = send(w->fd, buf + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nobody listens any more */
		done += (size_t)n;
	}
}

static void describe_status(struct text *t, int status)
{
	if (WIFEXITED(status)) {
		text_str(t, "exited with status ");
		text_uint(t, (unsigned long)WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		text_str(t, "was killed by signal ");
		text_uint(t, (unsigned long)WTERMSIG(status));
	} else {
		text_str(t, "ended");
	}
}

/* add_log_tail - the last lines of the daemon's log, where it says why */
static void add_log_tail(const struct watch *w, struct text *t)
{
	char buf[LOG_TAIL + 1];
	off_t size = lseek(w->log_fd, 0, SEEK_END);
	off_t from = size > LOG_TAIL ? size - LOG_TAIL : 0;
	ssize_t n = size > 0
			    ? pread(w->log_fd, buf, (size_t)(size - from), from)
			    : 0;
	char *start = buf;

	if (n <= 0) {
		text_str(t, "; its log is empty");
		return;
	}
	buf[n] = '\0';
	if (from > 0 && memchr(buf, '\n', (size_t)n) != NULL)
		start = (char *)memchr(buf, '\n', (size_t)n) + 1;
	text_str(t, "; its log ends:\n");
	text_add(t, start, (size_t)(buf + n - start));
}

/* first_line - the first line the daemon printed: the bound address */
static void first_line(const struct watch *w, struct text *t)
{
	char buf[256];
	ssize_t n = pread(w->stdout_fd, buf, sizeof(buf) - 1, 0);
	char *nl;

	if (n <= 0)
		return;
	buf[n] = '\0';
	if ((nl = memchr(buf, '\n', (size_t)n)) != NULL)
		*nl = '\0';
	text_str(t, buf);
}

static void reap(struct watch *w)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == w->daemon && w->alive) {
			w->alive = false;
			w->status = status;
		}
	}
}

/* is_ready - a notification holds the line READY=1 */
static bool is_ready(const char *msg, size_t len)
{
	const char *key = "READY=1";
	size_t klen = strlen(key);

	for (size_t i = 0; i + klen <= len; i++) {
		if ((i == 0 || msg[i - 1] == '\n') &&
		    memcmp(msg + i, key, klen) == 0 &&
		    (i + klen == len || msg[i + klen] == '\n'))
			return true;
	}
	return false;
}

/* drain_notify - read every waiting notification; the daemon blocks on a
 * full socket, so they are read for as long as it runs */
static void drain_notify(struct watch *w)
{
	char msg[1024];
	ssize_t n;

	while ((n = recv(w->notify_fd, msg, sizeof(msg), MSG_DONTWAIT)) >= 0 ||
	       errno == EINTR) {
		if (n > 0 && is_ready(msg, (size_t)n))
			w->notified = true;
	}
}

/* drain_signals - true when told to stop (SIGTERM, SIGINT, SIGHUP) */
static bool drain_signals(void)
{
	unsigned char sig;
	bool stop = false;

	while (read(signal_pipe[0], &sig, 1) == 1)
		stop |= sig == SIGTERM || sig == SIGINT || sig == SIGHUP;
	return stop;
}

/* told_to_stop - the test process sent 'S', or its end is closed */
static bool told_to_stop(struct watch *w)
{
	char c;
	ssize_t n = recv(w->fd, &c, 1, MSG_DONTWAIT);

	if (n < 0)
		return errno != EINTR && errno != EAGAIN;
	return n == 0 || c == 'S';
}

/* --- setting up ---------------------------------------------------------- */

static void close_fds(unsigned from, unsigned to)
{
	struct rlimit rl;

	if (from > to)
		return;
#ifdef HAVE_CLOSE_RANGE
	if (close_range(from, to, 0) == 0)
		return;
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur - 1 < to)
		to = (unsigned)(rl.rlim_cur - 1);
	for (unsigned fd = from; fd <= to; fd++)
		close((int)fd);
}

/* keep_only - close every descriptor but 0-2 and the watch's own, so
 * that no end of another controller's socket pair stays open here */
static void keep_only(struct watch *w)
{
	int *own[] = {&w->fd, &w->null_fd, &w->stdout_fd, &w->log_fd,
		      &w->notify_fd};
	const size_t n = sizeof(own) / sizeof(own[0]);
	unsigned sorted[sizeof(own) / sizeof(own[0])], lo = 3;

	/* Out of 0-2 first, which become /dev/null. */
	for (size_t i = 0; i < n; i++) {
		if (*own[i] < 3)
			*own[i] = fcntl(*own[i], F_DUPFD_CLOEXEC, 3);
	}
	for (int fd = 0; fd < 3; fd++)
		dup2(w->null_fd, fd);
	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		for (; j > 0 && sorted[j - 1] > (unsigned)*own[i]; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = (unsigned)*own[i];
	}
	for (size_t i = 0; i < n; i++) {
		close_fds(lo, sorted[i] - 1);
		lo = sorted[i] + 1;
	}
	close_fds(lo, ~0U);
}

/* setup_signals - the self-pipe; SIGTERM, SIGINT and SIGHUP mean stop */
static void setup_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal,
			       .sa_flags = SA_RESTART | SA_NOCLDSTOP};
	struct sigaction ignore = {.sa_handler = SIG_IGN};
	sigset_t none;

	if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		_exit(1);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &ignore, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* exec_daemon - in the daemon's process: its own process group, death
 * with the watchdog, /dev/null, the two files, and the binary */
static void exec_daemon(const struct watch *w, pid_t watchdog)
{
	struct text t = {.len = 0};

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != watchdog)
		_exit(127); /* the watchdog died before the line above */
	dup2(w->null_fd, STDIN_FILENO);
	dup2(w->stdout_fd, STDOUT_FILENO);
	dup2(w->log_fd, STDERR_FILENO);
	signal(SIGPIPE, SIG_DFL); /* an ignored signal stays so past exec */
	execve(w->plan->argv[0], w->plan->argv, w->plan->envp);
	text_str(&t, "cannot execute ");
	text_str(&t, w->plan->argv[0]);
	text_str(&t, ": errno ");
	text_uint(&t, (unsigned long)errno);
	text_str(&t, "\n");
	if (write(STDERR_FILENO, t.data, t.len) < 0) {
		/* the reason is lost; the exit status still tells */
	}
	_exit(127);
}

static void spawn(struct watch *w)
{
	pid_t self = getpid(), pid = fork();
	struct text t = {.len = 0};

	if (pid == 0)
		exec_daemon(w, self);
	if (pid < 0) {
		text_str(&t, "the watchdog cannot fork the daemon: errno ");
		text_uint(&t, (unsigned long)errno);
		report(w, 'E', &t);
		w->told = true;
		return;
	}
	/* Both sides set the group, so that it is set before either
	 * relies on it. */
	setpgid(pid, pid);
	w->daemon = pid;
	w->alive = true;
}

/* --- watching ------------------------------------------------------------ */

/* progress - report what changed: ready, a failed start, a death */
static void progress(struct watch *w, int64_t deadline)
{
	struct text t = {.len = 0};

	if (w->told)
		return;
	if (!w->ready && w->notified) {
		w->ready = true;
		text_uint(&t, (unsigned long)w->daemon);
		text_str(&t, " ");
		first_line(w, &t);
		report(w, 'R', &t);
		return;
	}
	if (w->alive && (w->ready || now_ms() < deadline))
		return;
	text_str(&t, "the daemon ");
	if (w->alive) {
		text_str(&t, "was not ready within ");
		text_uint(&t, w->plan->start_timeout_ms);
		text_str(&t, " ms");
	} else {
		describe_status(&t, w->status);
		text_str(&t,
			 w->ready ? " while running" : " before it was ready");
	}
	add_log_tail(w, &t);
	report(w, w->alive ? 'T' : w->ready ? 'X' : 'E', &t);
	w->told = true;
}

/* watch - until the test process says stop or is gone */
static void watch(struct watch *w)
{
	int64_t deadline = now_ms() + w->plan->start_timeout_ms;

	for (;;) {
		struct pollfd pfd[3] = {
			{.fd = w->fd, .events = POLLIN},
			{.fd = w->notify_fd, .events = POLLIN},
			{.fd = signal_pipe[0], .events = POLLIN}};
		int64_t left = deadline - now_ms();
		int timeout = w->ready || w->told ? -1
			      : left > 0          ? (int)left
						  : 0;

		if (poll(pfd, 3, timeout) < 0 && errno != EINTR)
			return;
		if ((pfd[2].revents & POLLIN) && drain_signals())
			return;
		if (pfd[1].revents & POLLIN)
			drain_notify(w);
		reap(w);
		progress(w, deadline);
		if (pfd[0].revents != 0 && told_to_stop(w))
			return;
	}
}

/* wait_a_little - reap and drain for up to REAP_POLL_MS, false once the
 * deadline has passed */
static bool wait_a_little(struct watch *w, int64_t deadline)
{
	struct pollfd pfd[2] = {{.fd = signal_pipe[0], .events = POLLIN},
				{.fd = w->notify_fd, .events = POLLIN}};
	int64_t left = deadline - now_ms();

	if (left <= 0)
		return false;
	(void)poll(pfd, 2, left < REAP_POLL_MS ? (int)left : REAP_POLL_MS);
	(void)drain_signals();
	drain_notify(w);
	reap(w);
	return true;
}

static bool group_exists(const struct watch *w)
{
	return w->daemon > 0 &&
	       (w->alive || kill(-w->daemon, 0) == 0 || errno != ESRCH);
}

/* stop_daemon - SIGTERM, then after the timeout SIGKILL for the whole
 * group; every process of the group is reaped (the watchdog is their
 * subreaper) before it returns, unless one will not die */
static void stop_daemon(struct watch *w)
{
	int64_t deadline = now_ms() + w->plan->stop_timeout_ms;

	if (w->alive) {
		kill(w->daemon, SIGTERM);
		w->stopping = true;
	}
	while (w->alive && wait_a_little(w, deadline))
		;
	w->killed = w->alive;
	if (w->daemon > 0)
		kill(-w->daemon, SIGKILL);
	deadline = now_ms() + REAP_TIMEOUT_MS;
	while (group_exists(w) && wait_a_little(w, deadline))
		;
}

/* --- removing the directory ---------------------------------------------- */

/* The kernel's record of getdents64(2). */
struct dirent64_record {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

static void remove_entry(int dir_fd, const char *name, int depth);

/* empty_dir - remove what dir_fd holds, depth levels down at most */
static void empty_dir(int dir_fd, int depth)
{
	union {
		char bytes[4096];
		uint64_t align;
	} buf;
	bool found = true;
	long n;

	for (int pass = 0; pass < 16 && found; pass++) {
		found = false;
		lseek(dir_fd, 0, SEEK_SET);
		while ((n = syscall(SYS_getdents64, dir_fd, buf.bytes,
				    sizeof(buf.bytes))) > 0) {
			for (long off = 0; off < n;) {
				struct dirent64_record *d =
					(struct dirent64_record *)(buf.bytes +
								   off);

				off += d->reclen;
				if (strcmp(d->name, ".") == 0 ||
				    strcmp(d->name, "..") == 0)
					continue;
				found = true;
				remove_entry(dir_fd, d->name, depth);
			}
		}
	}
}

static void remove_entry(int dir_fd, const char *name, int depth)
{
	int fd;

	if (unlinkat(dir_fd, name, 0) == 0 || errno != EISDIR || depth >= 8)
		return;
	fd = openat(dir_fd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		empty_dir(fd, depth + 1);
		close(fd);
	}
	unlinkat(dir_fd, name, AT_REMOVEDIR);
}

static void remove_tree(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0) {
		empty_dir(fd, 0);
		close(fd);
	}
	rmdir(dir);
}

/* --- the watchdog -------------------------------------------------------- */

/* final_words - the S report: empty when the daemon stopped cleanly */
static void final_words(const struct watch *w, struct text *t)
{
	if (w->daemon == 0)
		return;
	if (w->killed) {
		text_str(t, "the daemon did not stop within ");
		text_uint(t, w->plan->stop_timeout_ms);
		text_str(t, " ms of SIGTERM and was killed");
	} else if (!w->stopping || !WIFEXITED(w->status) ||
		   WEXITSTATUS(w->status) != 0) {
		text_str(t, "the daemon ");
		describe_status(t, w->status);
		text_str(t, w->stopping ? " when stopped" : " on its own");
	}
	if (group_exists(w))
		text_str(t, t->len > 0 ? "; and its process group outlived "
					 "SIGKILL"
				       : "the daemon's process group outlived "
					 "SIGKILL");
}

static void __attribute__((noreturn))
watchdog_main(const struct aiosmtpd_watchdog_plan *plan, int fd)
{
	struct watch w = {.plan = plan,
			  .fd = fd,
			  .null_fd = plan->null_fd,
			  .stdout_fd = plan->stdout_fd,
			  .log_fd = plan->log_fd,
			  .notify_fd = plan->notify_fd};
	struct text t = {.len = 0};
	sigset_t all;

	/* No handler of the test process may run here. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* Out of the test's session, so that its terminal's signals and
	 * its process group's do not reach us; orphans of the daemon's
	 * group become our children, so we can reap them all. */
	setsid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_NAME, "aiosmtpd-watch"); /* for ps and top */
	keep_only(&w);
	setup_signals();
	spawn(&w);
	if (w.daemon > 0)
		watch(&w);
	stop_daemon(&w);
	remove_tree(plan->dir);
	final_words(&w, &t);
	report(&w, 'S', &t);
	_exit(0);
}

/* --- the test process's side --------------------------------------------- */

int aiosmtpd_watchdog_start(const struct aiosmtpd_watchdog_plan *plan,
			    struct aiosmtpd_watchdog *wd,
			    struct aiosmtpd_error *error_r)
{
	int sv[2];
	pid_t pid;

	memset(wd, 0, sizeof(*wd));
	wd->fd = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "socketpair() failed: %m");
	if ((pid = fork()) < 0) {
		close(sv[0]);
		close(sv[1]);
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "fork() failed: %m");
	}
	if (pid == 0)
		watchdog_main(plan, sv[1]);
	close(sv[1]);
	wd->pid = pid;
	wd->fd = sv[0];
	return 0;
}

/* next_report - the next report, waiting until deadline: 1 with its type
 * and text; 0 at the deadline; -1 when the watchdog is gone */
static int next_report(struct aiosmtpd_watchdog *wd, int64_t deadline,
		       char *type_r, char *text, size_t size)
{
	for (;;) {
		char *nul = memchr(wd->buf, '\0', wd->len);
		struct pollfd pfd = {.fd = wd->fd, .events = POLLIN};
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (nul != NULL) {
			size_t used = (size_t)(nul - wd->buf) + 1;

			*type_r = wd->buf[0];
			snprintf(text, size, "%s", used > 1 ? wd->buf + 1 : "");
			memmove(wd->buf, wd->buf + used, wd->len - used);
			wd->len -= used;
			return 1;
		}
		if (wd->len == sizeof(wd->buf))
			return -1; /* not a report: give up on it */
		n = poll(&pfd, 1, left > 0 ? (int)left : 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return 0;
		n = recv(wd->fd, wd->buf + wd->len, sizeof(wd->buf) - wd->len,
			 MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		wd->len += (size_t)n;
	}
}

int aiosmtpd_watchdog_ready(struct aiosmtpd_watchdog *wd, unsigned timeout_ms,
			    pid_t *pid_r, char *line, size_t size,
			    struct aiosmtpd_error *error_r)
{
	struct aiosmtpd_error got;
	char type = 0, *rest;
	int ret;

	ret = next_report(wd, now_ms() + timeout_ms, &type, got.text,
			  sizeof(got.text));
	if (ret == 0)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_TIMEOUT,
					  "the watchdog did not report within "
					  "%u ms",
					  timeout_ms);
	if (ret < 0)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_DAEMON,
					  "the watchdog died");
	if (type != 'R') {
		got.code = type == 'T' ? AIOSMTPD_ERROR_TIMEOUT
				       : AIOSMTPD_ERROR_DAEMON;
		aiosmtpd_error_copy(error_r, &got);
		return -1;
	}
	*pid_r = (pid_t)strtol(got.text, &rest, 10);
	snprintf(line, size, "%s", *rest == ' ' ? rest + 1 : rest);
	return 0;
}

int aiosmtpd_watchdog_check(struct aiosmtpd_watchdog *wd,
			    struct aiosmtpd_error *error_r)
{
	char type = 0;
	int ret;

	while (!wd->died && (ret = next_report(wd, 0, &type, wd->death.text,
					       sizeof(wd->death.text))) != 0) {
		if (ret < 0)
			snprintf(wd->death.text, sizeof(wd->death.text),
				 "the watchdog died");
		wd->died = ret < 0 || type == 'X';
		wd->death.code = AIOSMTPD_ERROR_DAEMON;
	}
	if (!wd->died)
		return 0;
	aiosmtpd_error_copy(error_r, &wd->death);
	return -1;
}

int aiosmtpd_watchdog_stop(struct aiosmtpd_watchdog *wd, unsigned timeout_ms,
			   bool *cleaned_r, struct aiosmtpd_error *error_r)
{
	int64_t deadline = now_ms() + timeout_ms;
	char type = 0, c = 'S', text[sizeof(error_r->text)];
	bool final = false;
	int ret;

	if (send(wd->fd, &c, 1, MSG_NOSIGNAL) < 0) {
		/* gone already: the end of the stream below tells */
	}
	shutdown(wd->fd, SHUT_WR);
	while ((ret = next_report(wd, deadline, &type, text, sizeof(text))) > 0)
		final |= type == 'S';
	if (ret == 0)
		kill(wd->pid, SIGKILL);
	close(wd->fd);
	wd->fd = -1;
	while (waitpid(wd->pid, NULL, 0) < 0 && errno == EINTR)
		;
	*cleaned_r = final;
	if (ret == 0)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_TIMEOUT,
					  "the watchdog did not finish within "
					  "%u ms and was killed",
					  timeout_ms);
	if (!final)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_DAEMON,
					  "the watchdog died before it "
					  "cleaned up");
	if (text[0] != '\0')
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_DAEMON, "%s",
					  text);
	return 0;
}
