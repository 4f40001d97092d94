/*
 * master.c - the master process: workers, signals, the status pipe
 *
 * Signal handlers only write the signal number to a self-pipe; everything
 * else happens in the main loop, which polls that pipe and the status
 * pipe.  A worker that dies is replaced at once, unless workers keep
 * dying before serving anyone: then replacements back off exponentially,
 * so a broken set-up does not fork in a tight loop.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "master.h"
#include "sockstream.h"
#include "status.h"
#include "worker.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000
/* A worker that dies sooner than this without a session is "early". */
#define EARLY_DEATH_MS 1000

struct child {
	pid_t pid;
	unsigned generation;
	int state;
	int64_t started;
	unsigned sessions;
};

struct master {
	const struct master_opts *opts;
	struct child *children;
	size_t n_children;
	unsigned generation;
	int status_pipe[2];
	int life_pipe[2];
	bool stopping;
	int stop_signals;
	int64_t backoff_ms;
	int64_t next_spawn; /* monotonic ms; 0: now */
};

static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;

	if (write(signal_pipe[1], &c, 1) < 0) {
		/* The pipe is full: the loop has plenty to read already. */
	}
	errno = saved;
}

static void setup_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal,
			       .sa_flags = SA_RESTART | SA_NOCLDSTOP};

	if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		log_fatal(1, "pipe2() failed: %m");
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
}

/* restore_signals - a new worker starts from default dispositions */
static void restore_signals(void)
{
	signal(SIGCHLD, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	close(signal_pipe[0]);
	close(signal_pipe[1]);
}

static void spawn(struct master *m)
{
	struct worker_env env = {
		.listeners = m->opts->listeners,
		.n_listeners = m->opts->n_listeners,
		.handler = m->opts->handler,
		.handler_ctx = m->opts->handler_ctx,
		.status_fd = m->status_pipe[1],
		.master_fd = m->life_pipe[0],
		.close_fds = {m->status_pipe[0], m->life_pipe[1]},
		.generation = ++m->generation,
		.shutdown_timeout = m->opts->shutdown_timeout,
	};
	sigset_t all, saved;
	struct child *c;
	pid_t pid;

	/* Until the child has dropped the master's handlers and pipe, a
	 * signal sent to it would be reported to the master as its own:
	 * keep every signal blocked across fork(). */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved);
	pid = fork();
	if (pid == 0) {
		restore_signals();
		worker_main(&env); /* sets its own signal mask */
	}
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (pid < 0) {
		log_error("fork() failed: %m");
		return;
	}
	m->children = xrealloc(m->children,
			       (m->n_children + 1) * sizeof(*m->children));
	c = &m->children[m->n_children++];
	memset(c, 0, sizeof(*c));
	c->pid = pid;
	c->generation = env.generation;
	c->state = WORKER_IDLE;
	c->started = sockstream_now();
}

/* spawn_missing - the one place that decides to fork: up to the worker
 * count, unless the back-off after early deaths says wait */
static void spawn_missing(struct master *m)
{
	if (m->stopping || sockstream_now() < m->next_spawn)
		return;
	while (m->n_children < m->opts->workers)
		spawn(m);
}

static struct child *find_child(struct master *m, pid_t pid)
{
	for (size_t i = 0; i < m->n_children; i++) {
		if (m->children[i].pid == pid)
			return &m->children[i];
	}
	return NULL;
}

/* child_died - forget a worker; log a death that was not asked for and
 * back off when workers die before serving anyone */
static void child_died(struct master *m, struct child *c, int wstatus)
{
	bool early = c->sessions == 0 &&
		     sockstream_now() - c->started < EARLY_DEATH_MS;
	bool clean = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;

	if (WIFSIGNALED(wstatus)) {
		if (!m->stopping)
			log_warning("worker %d killed by signal %d",
				    (int)c->pid, WTERMSIG(wstatus));
	} else if (!clean) {
		log_warning("worker %d exited with status %d", (int)c->pid,
			    WEXITSTATUS(wstatus));
	}
	if (!clean && early && !m->stopping) {
		m->backoff_ms = m->backoff_ms == 0 ? BACKOFF_FIRST_MS
						   : m->backoff_ms * 2;
		if (m->backoff_ms > BACKOFF_MAX_MS)
			m->backoff_ms = BACKOFF_MAX_MS;
		m->next_spawn = sockstream_now() + m->backoff_ms;
		log_warning("worker %d died at start; next one in %lld ms",
			    (int)c->pid, (long long)m->backoff_ms);
	} else {
		m->backoff_ms = 0;
	}
	*c = m->children[--m->n_children];
}

static void reap(struct master *m)
{
	struct child *c;
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
		if ((c = find_child(m, pid)) != NULL)
			child_died(m, c, wstatus);
	}
}

static void read_status(struct master *m)
{
	struct worker_status st;
	struct child *c;
	ssize_t n;

	while ((n = read(m->status_pipe[0], &st, sizeof(st))) > 0) {
		if (n != (ssize_t)sizeof(st)) {
			log_warning("short status record (%zd bytes)", n);
			continue;
		}
		c = find_child(m, st.pid);
		if (c == NULL || c->generation != st.generation)
			continue; /* reaped already, or an older process */
		c->state = st.state;
		c->sessions = st.sessions;
	}
}

static void log_summary(const struct master *m)
{
	unsigned busy = 0, sessions = 0;

	for (size_t i = 0; i < m->n_children; i++) {
		busy += m->children[i].state == WORKER_BUSY;
		sessions += m->children[i].sessions;
	}
	log_info("pool: %zu workers, %u busy, %zu idle, %u sessions by live "
		 "workers",
		 m->n_children, busy, m->n_children - busy, sessions);
}

/* stop - first signal: ask workers to finish; second: kill them */
static void stop(struct master *m, int sig)
{
	m->stop_signals++;
	if (!m->stopping) {
		m->stopping = true;
		log_info("stopping on signal %d: sessions get %u s to finish",
			 sig, m->opts->shutdown_timeout);
		for (size_t i = 0; i < m->n_children; i++)
			kill(m->children[i].pid, SIGTERM);
		return;
	}
	log_warning("stopping now on a second signal %d", sig);
	for (size_t i = 0; i < m->n_children; i++)
		kill(m->children[i].pid, SIGKILL);
}

static void handle_signals(struct master *m)
{
	unsigned char sig;

	while (read(signal_pipe[0], &sig, 1) == 1) {
		switch (sig) {
		case SIGCHLD:
			reap(m);
			break;
		case SIGTERM:
		case SIGINT:
			stop(m, sig);
			break;
		case SIGUSR1:
			log_summary(m);
			break;
		case SIGHUP:
			log_warning("SIGHUP: reloading is not supported yet");
			break;
		}
	}
}

static void print_bound(const struct master_opts *opts)
{
	for (size_t i = 0; i < opts->n_listeners; i++) {
		if (opts->listeners[i].port_zero)
			printf("%s\n", opts->listeners[i].bound);
	}
	fflush(stdout);
}

static int poll_timeout(const struct master *m)
{
	int64_t wait;

	if (m->stopping || m->n_children >= m->opts->workers)
		return -1;
	wait = m->next_spawn - sockstream_now();
	return wait < 0 ? 0 : (int)wait;
}

int master_run(const struct master_opts *opts)
{
	struct master m = {.opts = opts};
	struct pollfd pfd[2];

	setup_signals();
	if (pipe2(m.status_pipe, O_CLOEXEC) < 0 ||
	    pipe2(m.life_pipe, O_CLOEXEC) < 0)
		log_fatal(1, "pipe2() failed: %m");
	(void)fcntl(m.status_pipe[0], F_SETFL, O_NONBLOCK);
	spawn_missing(&m);
	print_bound(opts);
	log_info("ready: %zu listener(s), %u workers", opts->n_listeners,
		 opts->workers);

	pfd[0] = (struct pollfd){.fd = signal_pipe[0], .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = m.status_pipe[0], .events = POLLIN};
	while (!m.stopping || m.n_children > 0) {
		if (poll(pfd, 2, poll_timeout(&m)) < 0 && errno != EINTR)
			log_panic("master poll() failed: %m");
		if (pfd[1].revents & POLLIN)
			read_status(&m);
		handle_signals(&m);
		spawn_missing(&m);
	}
	for (size_t i = 0; i < opts->n_listeners; i++)
		listener_close(&opts->listeners[i], true);
	log_info("stopped");
	free(m.children);
	return m.stop_signals > 1 ? 1 : 0;
}
