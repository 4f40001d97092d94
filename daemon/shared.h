/*
 * shared.h - what every worker of the pool sees at once
 *
 * A region of memory the master maps before it forks, shared with all
 * workers: the number of open connections per client address (for
 * max_connections_per_client), whether the pool is under stress (all
 * workers busy at workers.max), and the worker table, where each worker
 * keeps its state and counts.  Client counting is done under a
 * process-shared robust mutex, so a worker killed while holding it does
 * not wedge the others; a worker that dies in a session is uncounted by
 * the master.
 */
#ifndef AIOSMTPD_SHARED_H
#define AIOSMTPD_SHARED_H

#include <stdbool.h>

/* Client addresses tracked at once; beyond that a client is not limited
 * (and a warning says so). */
#define SHARED_CLIENTS 8192
/* Lines in the worker table: the most workers a pool may have. */
#define SHARED_WORKERS 4096

enum worker_state {
	WORKER_FREE,	 /* the line is unused */
	WORKER_STARTING, /* forked, not yet waiting for connections */
	WORKER_IDLE,	 /* waiting for a connection */
	WORKER_BUSY,	 /* serving a session */
	WORKER_LEAVING,	 /* done, about to exit */
};

/* What the master reads of a worker's line. */
struct shared_worker_view {
	enum worker_state state;
	unsigned epoch;	   /* the configuration it runs */
	unsigned sessions; /* sessions served so far */
	unsigned messages; /* messages accepted so far */
	int client_slot;   /* its session's per-client count, or -1 */
};

struct shared;

/* shared_create - map the region; in the master, before any fork */
struct shared *shared_create(void);
void shared_destroy(struct shared **sh);

/*
 * shared_client_enter - one more connection from addr
 *
 * Returns the slot to pass to shared_client_leave(), or -1 when addr has
 * limit connections already (nothing is counted then).  limit 0 means no
 * limit: nothing is counted and -2 is returned.
 */
int shared_client_enter(struct shared *sh, const char *addr, unsigned limit);
/* shared_client_leave - the connection counted in slot has ended (a slot
 * below 0 is ignored) */
void shared_client_leave(struct shared *sh, int slot);
/* shared_client_count - connections counted for addr now */
unsigned shared_client_count(struct shared *sh, const char *addr);

/*
 * The worker table.  The master claims a line before it forks a worker
 * and frees it after reaping; the worker writes its state and counts
 * there as they change, so the master learns them without being woken
 * for every session.
 */
/* shared_worker_claim - a free line for a worker of epoch; -1 if none */
int shared_worker_claim(struct shared *sh, unsigned epoch);
void shared_worker_free(struct shared *sh, int line);
void shared_worker_read(struct shared *sh, int line,
			struct shared_worker_view *v);
/* shared_worker_set - the worker's state and counts; client_slot is its
 * session's per-client count (-1 when none), so the master can give it
 * back if the worker dies in the session */
void shared_worker_set(struct shared *sh, int line, enum worker_state state,
		       unsigned sessions, unsigned messages, int client_slot);
/* shared_ready - workers of epoch that can take a connection now
 * (starting or idle) */
unsigned shared_ready(struct shared *sh, unsigned epoch);

/* shared_set_stress - set by the master when the pool is exhausted */
void shared_set_stress(struct shared *sh, bool on);
bool shared_stress(const struct shared *sh);

#endif
