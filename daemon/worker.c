/*
 * worker.c - a worker process: accept a connection, run one session
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "conf.h"
#include "handler.h"
#include "service.h"
#include "log.h"
#include "proxy_recv.h"
#include "secure.h"
#include "smtp_io.h"
#include "smtp_session.h"
#include "sockstream.h"
#include "spool.h"
#include "status.h"
#include "worker.h"

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t retire_requested;
static int64_t stop_at = -1;
static unsigned stop_grace;
static sigset_t wait_mask;

struct worker {
	const struct worker_env *env;
	struct spool *spool;
	struct worker_status status; /* the record for the status pipe */
	unsigned sessions;	     /* served so far */
	unsigned messages;	     /* accepted so far */
	int client_slot;	     /* the session's per-client count, or -1 */
	uint64_t id_seed;
	unsigned id_counter;
};

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* on_retire - SIGHUP: a new configuration is live; leave once idle */
static void on_retire(int sig)
{
	(void)sig;
	retire_requested = 1;
}

/* stop_deadline - when sessions must end, counted from the first time a
 * session asks after the stop request */
static int64_t stop_deadline(void)
{
	if (!stop_requested)
		return -1;
	if (stop_at < 0)
		stop_at = sockstream_now() + (int64_t)stop_grace * 1000;
	return stop_at;
}

/* setup_signals - SIGTERM and SIGINT are blocked except while waiting in
 * epoll_pwait() or ppoll(), so a stop request can never slip in between
 * a check of the flag and the wait */
static void setup_signals(void)
{
	struct sigaction stop = {.sa_handler = on_stop};
	struct sigaction retire = {.sa_handler = on_retire};
	sigset_t block;

	sigemptyset(&stop.sa_mask);
	sigemptyset(&retire.sa_mask);
	sigaction(SIGTERM, &stop, NULL);
	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGHUP, &retire, NULL);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	/* The master forks with every signal blocked; a request that
	 * arrived since then is still pending and is taken in the first
	 * wait. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_SETMASK, &block, NULL);
	sigemptyset(&wait_mask);
}

/* report - the worker's line in the table; the master is woken only
 * when a busy worker leaves fewer ready workers than workers.spare (or
 * none), since only then may the pool need a new worker or be under
 * stress.  Under stress the pool is at workers.max and the master looks
 * at it every STRESS_POLL_MS anyway: a wakeup per session would tell it
 * nothing. */
static void report(struct worker *w, enum worker_state state)
{
	const struct worker_env *env = w->env;
	unsigned spare = env->service->conf.workers.spare;
	ssize_t n;

	shared_worker_set(env->shared, env->line, state, w->sessions,
			  w->messages, w->client_slot);
	if (state != WORKER_BUSY)
		return;
	w->status.ready = shared_ready(env->shared, env->epoch);
	if ((w->status.ready >= spare && w->status.ready > 0) ||
	    shared_stress(env->shared))
		return;
	w->status.state = (int)state;
	do {
		n = write(env->status_fd, &w->status, sizeof(w->status));
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(w->status))
		stop_requested = 1; /* the master is gone */
}

/* too_many - max_connections_per_client: count this connection against
 * its client address across the pool, or turn it away with 421 (an
 * SMTPS client, which expects a handshake, is only closed) */
static bool too_many(struct worker *w, int fd, const struct listener *l,
		     const struct aiosmtpd_session *peer, const char *id,
		     const char *client)
{
	static const char reply[] = "421 4.7.0 Too many connections\r\n";
	const struct session_conf *sc = &l->conf->session;

	if (peer->peer_family == AF_UNIX || sc->max_connections_per_client == 0)
		return false;
	w->client_slot = shared_client_enter(w->env->shared, peer->peer_addr,
					     sc->max_connections_per_client);
	if (w->client_slot != -1) {
		/* on the worker's line, for the master to give back should
		 * this worker die in the session */
		shared_worker_set(w->env->shared, w->env->line, WORKER_BUSY,
				  w->sessions, w->messages, w->client_slot);
		return false;
	}
	if (sc->tls.mode != TLS_MODE_IMPLICIT)
		(void)send(fd, reply, sizeof(reply) - 1, MSG_NOSIGNAL);
	log_warning("%s %s refused: more than %u connections from %s "
		    "(max_connections_per_client)",
		    id, client, sc->max_connections_per_client,
		    peer->peer_addr);
	return true;
}

/* stressed - the pool is under stress: sessions get stress_timeout */
static bool stressed(void *ctx)
{
	return shared_stress(ctx);
}

/* session_id - twelve hex digits, unique enough to grep for */
static void session_id(struct worker *w, char *buf, size_t size)
{
	uint64_t x = w->id_seed + 0x9e3779b97f4a7c15ULL * ++w->id_counter;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	snprintf(buf, size, "%012llX",
		 (unsigned long long)(x & 0xffffffffffffULL));
}

/* peer_info - the client's address, as accept4() gave it, the way
 * handlers and logs see it */
static void peer_info(const struct sockaddr_storage *ss,
		      struct aiosmtpd_session *peer, char *addr, size_t size)
{
	peer->peer_family = AF_UNIX;
	peer->peer_port = 0;
	addr[0] = '\0';
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		peer->peer_family = AF_INET;
		inet_ntop(AF_INET, &in->sin_addr, addr, (socklen_t)size);
		peer->peer_port = ntohs(in->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)ss;

		peer->peer_family = AF_INET6;
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, (socklen_t)size);
		peer->peer_port = ntohs(in6->sin6_port);
	}
}

/* client_text - the client as log lines name it */
static void client_text(const struct aiosmtpd_session *peer, char *buf,
			size_t size)
{
	if (peer->peer_family == AF_INET6)
		snprintf(buf, size, "[%s]:%u", peer->peer_addr,
			 peer->peer_port);
	else if (peer->peer_family == AF_INET)
		snprintf(buf, size, "%s:%u", peer->peer_addr, peer->peer_port);
	else
		snprintf(buf, size, "unix");
}

/* proxy_step - on a PROXY listener, the header before anything else; the
 * client it names replaces the peer from here on.  NULL: close. */
static struct proxy_recv *proxy_step(int fd, const struct listener *l,
				     struct aiosmtpd_session *peer,
				     char *addr, size_t size, char *client,
				     size_t client_size)
{
	struct proxy_recv *pr;

	pr = proxy_recv_session(fd, l, peer, addr, size, client, &wait_mask,
				stop_deadline);
	if (pr != NULL)
		client_text(peer, client, client_size);
	return pr;
}

static void serve(struct worker *w, int fd, const struct sockaddr_storage *from,
		  const struct listener *l)
{
	const struct session_conf *sc = &l->conf->session;
	struct aiosmtpd_session peer = {0};
	const struct smtp_session_stats *stats;
	struct smtp_session *session;
	struct proxy_recv *proxy = NULL;
	enum smtp_session_end end;
	struct sockstream ss;
	struct smtp_io *io;
	const struct smtp_stream_ops *ops;
	struct secure *sec = NULL;
	void *stream;
	char id[16], addr[64], client[80];
	int on = 1;

	report(w, WORKER_BUSY);
	session_id(w, id, sizeof(id));
	peer.id = id;
	peer.peer_addr = addr;
	peer_info(from, &peer, addr, sizeof(addr));
	client_text(&peer, client, sizeof(client));
	if (peer.peer_family != AF_UNIX && !l->nodelay)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (l->conf->proxy_timeout_ms > 0 &&
	    (proxy = proxy_step(fd, l, &peer, addr, sizeof(addr), client,
				sizeof(client))) == NULL)
		goto done;
	if (too_many(w, fd, l, &peer, id, client))
		goto done;
	sockstream_init(&ss, fd, sc->timeout, stop_deadline, &wait_mask);
	sockstream_stress(&ss, stressed, w->env->shared,
			  w->env->service->conf.stress_timeout);
	sec = secure_new(l->conf, tls_contexts_find(w->env->service->tls,
						    l->conf),
			 &ss, id, client);
	log_info("%s %s connect listener=%s%s%s", id, client, l->bound,
		 proxy != NULL ? " proxy=" : "",
		 proxy != NULL ? proxy->proxy_client : "");
	if (secure_implicit(sec, &peer) < 0) {
		log_info("%s %s disconnect reason=tls commands=0 messages=0 "
			 "rejected=0",
			 id, client);
		goto done;
	}
	secure_stream(sec, &ops, &stream);
	io = smtp_io_new(ops, stream);
	spool_set_tap(w->spool, handler_tap(l->handler), l->handler_ctx);
	session = smtp_session_new(&sc->smtp, l->handler, l->handler_ctx, io,
				   w->spool, &peer);
	secure_attach(sec, session);

	if (proxy != NULL && !smtp_session_proxy(session, &proxy->hdr.data))
		end = SMTP_END_REFUSED;
	else
		end = smtp_session_run(session);
	stats = smtp_session_stats(session);
	if (ss.stress_cut)
		log_warning("%s %s stress: session cut after %u s idle",
			    id, client, w->env->service->conf.stress_timeout);
	log_info("%s %s disconnect reason=%s commands=%u messages=%u "
		 "rejected=%u",
		 id, client, smtp_session_end_name(end), stats->commands,
		 stats->messages, stats->rejected);
	w->messages += stats->messages;
	smtp_session_free(&session);
	smtp_io_free(&io);
done:
	w->sessions++;
	shared_client_leave(w->env->shared, w->client_slot);
	w->client_slot = -1;
	secure_free(&sec);
	spool_reset(w->spool);
	free(proxy);
	close(fd);
	report(w, WORKER_IDLE);
}

/* accept_from - take a connection a sibling did not take first; true
 * when a session was served */
static bool accept_from(struct worker *w, const struct listener *l)
{
	struct sockaddr_storage from = {.ss_family = AF_UNSPEC};
	socklen_t len = sizeof(from);
	int fd = accept4(l->fd, (struct sockaddr *)&from, &len,
			 SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0) {
		serve(w, fd, &from, l);
		return true;
	}
	switch (errno) {
	case EAGAIN:
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
		return false; /* a sibling won, or the client left already */
	default:
		log_warning("accept(%s) failed: %m", l->bound);
		if (errno == EMFILE || errno == ENFILE)
			(void)poll(NULL, 0, 100);
		return false;
	}
}

/* idle_wait - ms to wait for a connection before leaving idle, or -1 */
static int idle_wait(const struct worker *w, int64_t idle_since)
{
	int64_t left = idle_since +
		       (int64_t)w->env->service->conf.workers.max_idle * 1000 -
		       sockstream_now();

	return left > 0 ? (int)left : 0;
}

/* worn_out - leave between sessions: stopped, retired, or used up */
static bool worn_out(const struct worker *w)
{
	return stop_requested || retire_requested ||
	       w->sessions >= w->env->service->conf.workers.max_use;
}

/* watch - an epoll set of the listeners and the master's pipe; the
 * listeners are exclusive, so a new connection wakes one idle worker
 * rather than every worker (with poll(), all woke and all but one got
 * EAGAIN from accept4(): issue 7's strace showed 28 wasted accept4()
 * calls per connection with 32 workers) */
static int watch(const struct service *svc, int master_fd)
{
	struct epoll_event ev;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		log_panic("epoll_create1() failed: %m");
	for (size_t i = 0; i <= svc->n_listeners; i++) {
		bool master = i == svc->n_listeners;

		ev.events = master ? EPOLLIN : EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.u64 = i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD,
			      master ? master_fd : svc->listeners[i].fd,
			      &ev) < 0)
			log_panic("epoll_ctl() failed: %m");
	}
	return ep;
}

static void worker_loop(struct worker *w)
{
	const struct service *svc = w->env->service;
	size_t n = svc->n_listeners;
	struct epoll_event ready[16];
	int64_t idle_since = sockstream_now();
	int ep = watch(svc, w->env->master_fd), k;
	bool master_gone = false;

	while (!worn_out(w) && !master_gone) {
		k = epoll_pwait(ep, ready, N_ELEMENTS(ready),
				idle_wait(w, idle_since), &wait_mask);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			log_panic("worker epoll_pwait() failed: %m");
		if (k == 0)
			break; /* idle for max_idle seconds */
		for (int i = 0; i < k; i++)
			master_gone |= ready[i].data.u64 == n;
		for (int i = 0; i < k && !master_gone && !worn_out(w); i++) {
			if (accept_from(w, &svc->listeners[ready[i].data.u64]))
				idle_since = sockstream_now();
		}
	}
	close(ep);
}

/* set_scheduling - workers.scheduling = "batch": the worker takes
 * SCHED_BATCH, so that a command arriving for it does not preempt the
 * task on the CPU (another worker, the client on this host, any
 * program); it runs when that task blocks or its slice ends.  A CPU then
 * answers several sessions' commands in a row instead of switching for
 * each.  With smtp-source sending 1 KiB messages over 8 and 32
 * sessions on 2 cores (issue 7), a message took 7.5 to 8 context
 * switches instead of 9.3 to 9.7, and a sixth more messages went
 * through a second (two fifths more over reused connections).  A policy
 * the operator chose for the master (chrt, systemd's
 * CPUSchedulingPolicy=) is kept. */
static void set_scheduling(enum worker_sched sched)
{
	struct sched_param none = {.sched_priority = 0};

	if (sched != WORKER_SCHED_BATCH || sched_getscheduler(0) != SCHED_OTHER)
		return;
	if (sched_setscheduler(0, SCHED_BATCH, &none) < 0)
		log_warning("sched_setscheduler(SCHED_BATCH) failed: %m; "
			    "workers.scheduling = \"batch\" has no effect");
}

/* usable_spool_dir - a worker that cannot spool messages is no use: it
 * says why and leaves, and the master backs off before the next one */
static void check_spool_dir(const char *dir)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0) {
		log_error("spool directory %s is not usable: %m", dir);
		_exit(1);
	}
	close(fd);
}

void worker_main(const struct worker_env *env)
{
	const struct service *svc = env->service;
	const char *tmp = getenv("TMPDIR");
	const char *spool_dir = svc->conf.spool_dir != NULL
					? svc->conf.spool_dir
				: tmp != NULL && *tmp != '\0' ? tmp
							      : "/tmp";
	struct worker w = {.env = env, .client_slot = -1};
	const char *error;

	setup_signals();
	set_scheduling(svc->conf.workers.scheduling);
	stop_grace = svc->conf.shutdown_timeout;
	for (size_t i = 0; i < N_ELEMENTS(env->close_fds); i++) {
		if (env->close_fds[i] >= 0)
			close(env->close_fds[i]);
	}
	identity_drop(&svc->identity);
	check_spool_dir(spool_dir);
	if (secure_worker_init(svc->listeners, svc->n_listeners, &error) <
	    0) {
		log_error("cannot start SASL: %s", error);
		_exit(1);
	}
	if (getrandom(&w.id_seed, sizeof(w.id_seed), 0) < 0)
		w.id_seed = (uint64_t)getpid() * 2654435761u;
	w.status.pid = getpid();
	w.status.generation = env->generation;
	w.spool = spool_new(spool_dir);
	report(&w, WORKER_IDLE);
	worker_loop(&w);
	report(&w, WORKER_LEAVING);
	spool_free(&w.spool);
	_exit(0);
}
