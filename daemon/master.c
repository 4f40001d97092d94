/*
 * master.c - the master process: the worker pool, signals, reloads
 *
 * Signal handlers only write the signal number to a self-pipe; everything
 * else happens in the main loop, which polls that pipe and the status
 * pipe.  Every decision to fork goes through pool_to_fork(); when workers
 * die before serving anyone, forks back off exponentially, so a broken
 * set-up does not fork in a tight loop.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "conf.h"
#include "log.h"
#include "master.h"
#include "notify.h"
#include "pool.h"
#include "sockstream.h"
#include "shared.h"
#include "status.h"
#include "ticket.h"
#include "worker.h"

#define BACKOFF_FIRST_MS 250
#define STRESS_CALM_MS 1000 /* free workers for this long end stress */
#define STRESS_POLL_MS 200  /* how often queues are looked at in stress */
#define BACKOFF_MAX_MS 30000
/* A worker that dies sooner than this without a session died "at start". */
#define EARLY_DEATH_MS 2000
/* systemd's STATUS line is refreshed at most this often. */
#define STATUS_INTERVAL_MS 1000

struct child {
	pid_t pid;
	unsigned generation; /* the fork counter, against pid reuse */
	int line;	     /* its line in the shared worker table */
	unsigned epoch;	     /* the configuration it runs */
	int64_t started;
};

struct master {
	const struct master_opts *opts;
	struct service *svc;
	unsigned epoch;
	struct child *children;
	size_t n_children;
	unsigned generation;
	struct shared *sh;
	int status_pipe[2]; /* workers wake the master when the pool runs low */
	int life_pipe[2];
	int64_t calm_since;   /* under stress: since when a worker is free */
	int64_t *queued_since; /* per listener: waiting with no worker free */
	bool stopping;
	int stop_signals;
	int64_t backoff_ms;
	int64_t next_spawn; /* monotonic ms; 0: now */
	/* sessions and messages of workers that have left */
	unsigned long long sessions_done;
	unsigned long long messages_done;
	char status_line[128];
	int64_t status_sent;
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

/* --- the pool ------------------------------------------------------------- */

static void spawn(struct master *m)
{
	struct worker_env env = {
		.service = m->svc,
		.shared = m->sh,
		.epoch = m->epoch,
		.status_fd = m->status_pipe[1],
		.master_fd = m->life_pipe[0],
		.close_fds = {m->status_pipe[0], m->life_pipe[1]},
		.generation = ++m->generation,
	};
	sigset_t all, saved;
	struct child *c;
	pid_t pid;

	if ((env.line = shared_worker_claim(m->sh, m->epoch)) < 0) {
		log_error("no free line in the worker table (%d workers)",
			  SHARED_WORKERS);
		return;
	}
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
		shared_worker_free(m->sh, env.line);
		return;
	}
	m->children = xrealloc(m->children,
			       (m->n_children + 1) * sizeof(*m->children));
	c = &m->children[m->n_children++];
	memset(c, 0, sizeof(*c));
	c->pid = pid;
	c->generation = env.generation;
	c->line = env.line;
	c->epoch = m->epoch;
	c->started = sockstream_now();
}

/* count - the pool as the workers' lines show it now: every line in use
 * belongs to a child not yet reaped */
static struct pool_counts count(const struct master *m)
{
	return (struct pool_counts){
		.total = (unsigned)m->n_children,
		.idle = shared_ready(m->sh, m->epoch),
	};
}

/* spawn_wanted - fork what the pool policy asks for, unless workers
 * have been dying at start and the back-off says wait */
static void spawn_wanted(struct master *m)
{
	unsigned n;

	if (m->stopping || sockstream_now() < m->next_spawn)
		return;
	n = pool_to_fork(&m->svc->conf.workers, count(m));
	while (n-- > 0)
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

/* back_off - a worker died at start: wait longer before the next fork */
static void back_off(struct master *m, pid_t pid)
{
	m->backoff_ms = m->backoff_ms == 0 ? BACKOFF_FIRST_MS
					   : m->backoff_ms * 2;
	if (m->backoff_ms > BACKOFF_MAX_MS)
		m->backoff_ms = BACKOFF_MAX_MS;
	m->next_spawn = sockstream_now() + m->backoff_ms;
	log_warning("worker %d died at start; next fork in %lld ms",
		    (int)pid, (long long)m->backoff_ms);
}

/* child_died - forget a worker; log a death that was not asked for */
static void child_died(struct master *m, struct child *c, int wstatus)
{
	struct shared_worker_view v;
	bool early, clean = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;

	shared_worker_read(m->sh, c->line, &v);
	early = v.sessions == 0 &&
		sockstream_now() - c->started < EARLY_DEATH_MS;
	if (WIFSIGNALED(wstatus)) {
		if (!m->stopping)
			log_warning("worker %d killed by signal %d",
				    (int)c->pid, WTERMSIG(wstatus));
	} else if (!clean) {
		log_warning("worker %d exited with status %d", (int)c->pid,
			    WEXITSTATUS(wstatus));
	}
	if (!clean && early && !m->stopping)
		back_off(m, c->pid);
	else if (clean && v.sessions > 0)
		m->backoff_ms = 0;
	m->sessions_done += v.sessions;
	m->messages_done += v.messages;
	/* A worker killed in a session leaves its client counted. */
	shared_client_leave(m->sh, v.client_slot);
	shared_worker_free(m->sh, c->line);
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

/* read_status - a worker found the pool low; the loop looks again at
 * the worker table, the records only say who woke us */
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
		log_debug("worker %d busy, %u ready", (int)st.pid, st.ready);
	}
}

/* --- status, reload, stop ---------------------------------------------- */

/* pool_status - "3 busy, 2 idle, 1234 sessions, 5678 messages" */
static void pool_status(const struct master *m, char *buf, size_t size)
{
	unsigned long long sessions = m->sessions_done;
	unsigned long long messages = m->messages_done;
	struct shared_worker_view v;
	unsigned busy = 0;

	for (size_t i = 0; i < m->n_children; i++) {
		shared_worker_read(m->sh, m->children[i].line, &v);
		busy += v.state == WORKER_BUSY;
		sessions += v.sessions;
		messages += v.messages;
	}
	snprintf(buf, size, "%u busy, %zu idle, %llu sessions, %llu messages",
		 busy, m->n_children - busy, sessions, messages);
}

/* update_status - tell systemd when the pool changed, at most once a
 * second */
static void update_status(struct master *m)
{
	char line[sizeof(m->status_line)];
	int64_t now = sockstream_now();

	if (now - m->status_sent < STATUS_INTERVAL_MS)
		return;
	pool_status(m, line, sizeof(line));
	if (strcmp(line, m->status_line) == 0)
		return;
	strcpy(m->status_line, line);
	m->status_sent = now;
	notify_send("STATUS=%s", line);
}

/* retire_old - workers of an older configuration leave once idle */
static void retire_old(struct master *m)
{
	for (size_t i = 0; i < m->n_children; i++) {
		if (m->children[i].epoch != m->epoch)
			kill(m->children[i].pid, SIGHUP);
	}
}

static void reload(struct master *m)
{
	struct service *next = xcalloc(1, sizeof(*next));
	enum service_error kind;
	struct conf cfg;
	char *error = NULL;

	notify_send("RELOADING=1");
	log_info("reloading the configuration");
	if (m->opts->load(&cfg, &error) < 0 ||
	    service_open(next, &cfg, m->opts->keep_user, m->svc, &error,
			 &kind) < 0) {
		log_error("reload failed, keeping the running configuration: "
			  "%s",
			  error);
		free(error);
		free(next);
		notify_send("READY=1");
		return;
	}
	service_close(m->svc, true);
	free(m->svc);
	m->svc = next;
	m->epoch++;
	m->queued_since = xrealloc(m->queued_since, next->n_listeners *
							   sizeof(*m->queued_since));
	memset(m->queued_since, 0,
	       next->n_listeners * sizeof(*m->queued_since));
	m->backoff_ms = 0;
	m->next_spawn = 0;
	retire_old(m);
	for (size_t i = 0; i < next->n_listeners; i++)
		log_info("listening on %s", next->listeners[i].bound);
	log_info("reloaded: %zu listener(s), workers min %u max %u",
		 next->n_listeners, next->conf.workers.min,
		 next->conf.workers.max);
	notify_send("READY=1");
}

static void log_summary(const struct master *m)
{
	char line[128];

	pool_status(m, line, sizeof(line));
	log_info("pool: %zu workers, %s", m->n_children, line);
}

/* stop - first signal: ask workers to finish; second: kill them */
static void stop(struct master *m, int sig)
{
	m->stop_signals++;
	if (!m->stopping) {
		m->stopping = true;
		notify_send("STOPPING=1");
		log_info("stopping on signal %d: sessions get %u s to finish",
			 sig, m->svc->conf.shutdown_timeout);
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
			if (!m->stopping)
				reload(m);
			break;
		}
	}
}

/* --- overload ------------------------------------------------------------ */

/* update_stress - the pool is under stress while every worker is busy at
 * workers.max: workers then shorten timeouts, and connections that wait
 * too long for a worker are turned away */
static void update_stress(struct master *m)
{
	const struct conf *cfg = &m->svc->conf;
	struct pool_counts c = count(m);
	bool stress = !m->stopping && c.total >= cfg->workers.max &&
		      c.idle == 0;
	bool was = shared_stress(m->sh);
	int64_t now = sockstream_now();

	/* Stress ends only after a worker has been free for a while: the
	 * pool is not out of trouble each time one session ends and the
	 * next connection is about to be accepted. */
	if (was && !stress && !m->stopping) {
		if (m->calm_since == 0)
			m->calm_since = now;
		if (now - m->calm_since < STRESS_CALM_MS)
			return;
	}
	m->calm_since = 0;
	if (stress == was)
		return;
	shared_set_stress(m->sh, stress);
	for (size_t i = 0; i < m->svc->n_listeners; i++)
		m->queued_since[i] = 0;
	if (stress)
		log_warning("stress: all %u workers busy; sessions idle for %u "
			    "s are cut, connections waiting %u s for a "
			    "worker get 421",
			    cfg->workers.max, cfg->stress_timeout,
			    cfg->queue_timeout);
	else if (!m->stopping)
		log_info("stress over: workers free again");
}

/* turn_away - 421 to every connection waiting on l: under stress they
 * have waited queue_timeout for a worker already, and would otherwise
 * wait until the client gives up */
static void turn_away(const struct master *m, const struct listener *l)
{
	static const char reply[] =
		"421 4.3.2 Service currently unavailable\r\n";
	bool tls = l->conf->session.tls.mode == TLS_MODE_IMPLICIT;
	unsigned n = 0;
	int fd;

	while (n < 1024 && (fd = accept4(l->fd, NULL, NULL,
					 SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		/* An SMTPS client expects a handshake, not text: it is
		 * only closed. */
		if (!tls)
			(void)send(fd, reply, sizeof(reply) - 1, MSG_NOSIGNAL);
		close(fd);
		n++;
	}
	if (n > 0)
		log_warning("stress: %u connection(s) to %s waited %u s for a "
			    "worker: told 421 and closed",
			    n, l->bound, m->svc->conf.queue_timeout);
}

/* watch_queues - under stress, listeners with connections waiting; one
 * that has had them for queue_timeout is turned away.  pfd has a slot
 * per listener.  The listeners are looked at, never waited on: a
 * listener with a connection queued is readable until a worker is free,
 * so a wait on it returns at once, again and again (the master spun at
 * a whole CPU while every worker was busy, the moment it could least
 * afford it). */
static void watch_queues(struct master *m, struct pollfd *pfd)
{
	int64_t now = sockstream_now();

	if (poll(pfd, m->svc->n_listeners, 0) < 0)
		return;
	for (size_t i = 0; i < m->svc->n_listeners; i++) {
		if (!(pfd[i].revents & POLLIN)) {
			m->queued_since[i] = 0;
			continue;
		}
		if (m->queued_since[i] == 0)
			m->queued_since[i] = now;
		if (now - m->queued_since[i] >=
		    (int64_t)m->svc->conf.queue_timeout * 1000) {
			turn_away(m, &m->svc->listeners[i]);
			m->queued_since[i] = 0;
		}
	}
}

/* --- the loop ------------------------------------------------------------ */

static void print_bound(const struct service *svc)
{
	for (size_t i = 0; i < svc->n_listeners; i++) {
		if (svc->listeners[i].port_zero)
			printf("%s\n", svc->listeners[i].bound);
		log_info("listening on %s", svc->listeners[i].bound);
	}
	fflush(stdout);
}

static void write_pid_file(const char *path)
{
	FILE *f;

	if (path == NULL)
		return;
	if ((f = fopen(path, "w")) == NULL) {
		log_error("cannot write pid file %s: %m", path);
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) != 0)
		log_error("cannot write pid file %s: %m", path);
}

/* poll_timeout - until the next fork the back-off allows, or the next
 * STATUS refresh; -1 when nothing is due */
static int poll_timeout(const struct master *m)
{
	int64_t now = sockstream_now(), wait = -1;

	if (!m->stopping && m->next_spawn > now)
		wait = m->next_spawn - now;
	if (!m->stopping && pool_to_fork(&m->svc->conf.workers, count(m)) > 0 &&
	    m->next_spawn <= now)
		wait = 0;
	if (wait < 0 || wait > STATUS_INTERVAL_MS)
		wait = STATUS_INTERVAL_MS;
	return (int)wait;
}

/* poll_set - the signal and status pipes, which the master waits on,
 * then a slot per listener for watch_queues() */
static void poll_set(struct master *m, struct pollfd **pfd)
{
	size_t n = 2 + m->svc->n_listeners;

	*pfd = xrealloc(*pfd, n * sizeof(**pfd));
	(*pfd)[0] = (struct pollfd){.fd = signal_pipe[0], .events = POLLIN};
	(*pfd)[1] = (struct pollfd){.fd = m->status_pipe[0], .events = POLLIN};
	for (size_t i = 2; i < n; i++)
		(*pfd)[i] = (struct pollfd){.fd = m->svc->listeners[i - 2].fd,
					    .events = POLLIN};
}

/* one_pass - wait for something to do, then do it */
static void one_pass(struct master *m, struct pollfd **pfd)
{
	int timeout = poll_timeout(m);
	bool stress = shared_stress(m->sh);

	poll_set(m, pfd);
	/* Under stress the queues are looked at often. */
	if (stress && (timeout < 0 || timeout > STRESS_POLL_MS))
		timeout = STRESS_POLL_MS;
	if (poll(*pfd, 2, timeout) < 0 && errno != EINTR)
		log_panic("master poll() failed: %m");
	if ((*pfd)[1].revents & POLLIN)
		read_status(m);
	handle_signals(m);
	if (stress && shared_stress(m->sh))
		watch_queues(m, *pfd + 2);
	spawn_wanted(m);
	update_stress(m);
	update_status(m);
	ticket_keys_rotate(sockstream_now());
}

int master_run(const struct master_opts *opts)
{
	struct master m = {.opts = opts, .svc = opts->service};
	struct pollfd *pfd = NULL;
	char *pid_file = NULL;

	setup_signals();
	if (pipe2(m.status_pipe, O_CLOEXEC) < 0 ||
	    pipe2(m.life_pipe, O_CLOEXEC) < 0)
		log_fatal(1, "pipe2() failed: %m");
	(void)fcntl(m.status_pipe[0], F_SETFL, O_NONBLOCK);
	m.sh = shared_create();
	if (m.svc->conf.pid_file != NULL)
		pid_file = xstrdup(m.svc->conf.pid_file);
	write_pid_file(pid_file);
	m.queued_since = xcalloc(m.svc->n_listeners, sizeof(*m.queued_since));
	spawn_wanted(&m);
	print_bound(m.svc);
	log_info("ready: workers min %u max %u spare %u",
		 m.svc->conf.workers.min, m.svc->conf.workers.max,
		 m.svc->conf.workers.spare);
	notify_send("READY=1\nMAINPID=%d", (int)getpid());

	while (!m.stopping || m.n_children > 0)
		one_pass(&m, &pfd);
	service_close(m.svc, true);
	free(m.svc);
	if (pid_file != NULL)
		(void)unlink(pid_file);
	free(pid_file);
	free(pfd);
	free(m.queued_since);
	free(m.children);
	shared_destroy(&m.sh);
	log_info("stopped");
	return m.stop_signals > 1 ? 1 : 0;
}
