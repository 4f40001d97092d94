/*
 * shared.c - what every worker of the pool sees at once
 *
 * The client table is open addressing over a fixed array: an address
 * keeps its slot while it has connections; a slot whose count falls to
 * zero keeps its key as a tombstone until a new address reuses it, so
 * probing never stops early.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "shared.h"

#define KEY_SIZE 64 /* an IPv6 address in text, with room to spare */

struct client_slot {
	char key[KEY_SIZE]; /* "" when never used */
	unsigned count;
};

/* One worker's line: written by the worker (state, counts) and by the
 * master (claim, free); each field is read and written whole. */
struct worker_line {
	atomic_int state;
	atomic_uint epoch;
	atomic_uint sessions;
	atomic_uint messages;
	atomic_int client_slot;
};

struct shared {
	pthread_mutex_t lock;
	atomic_bool stress;
	bool warned_full;
	atomic_int lines_used; /* one past the highest line ever claimed */
	struct client_slot clients[SHARED_CLIENTS];
	struct worker_line workers[SHARED_WORKERS];
};

struct shared *shared_create(void)
{
	struct shared *sh;
	pthread_mutexattr_t attr;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		log_fatal(1, "mmap(%zu) for the shared pool state failed: %m",
			  sizeof(*sh));
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&sh->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	atomic_init(&sh->stress, false);
	return sh;
}

void shared_destroy(struct shared **shp)
{
	if (*shp == NULL)
		return;
	pthread_mutex_destroy(&(*shp)->lock);
	munmap(*shp, sizeof(**shp));
	*shp = NULL;
}

/* lock - take the mutex, recovering it from a worker that died with it
 * (the table is consistent at every step, so it needs no repair) */
static void lock(struct shared *sh)
{
	int ret = pthread_mutex_lock(&sh->lock);

	if (ret == EOWNERDEAD)
		pthread_mutex_consistent(&sh->lock);
	else if (ret != 0)
		log_panic("pthread_mutex_lock() of the shared state failed: %s",
			  strerror(ret));
}

static void unlock(struct shared *sh)
{
	pthread_mutex_unlock(&sh->lock);
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* find_slot - addr's slot, or a free one for it; -1 when the table is
 * full.  Called locked. */
static int find_slot(struct shared *sh, const char *addr, bool create)
{
	uint32_t start = hash(addr) % SHARED_CLIENTS;
	int free_slot = -1;

	for (uint32_t i = 0; i < SHARED_CLIENTS; i++) {
		uint32_t k = (start + i) % SHARED_CLIENTS;
		struct client_slot *c = &sh->clients[k];

		if (strcmp(c->key, addr) == 0)
			return (int)k;
		if (c->count == 0 && free_slot < 0)
			free_slot = (int)k;
		if (c->key[0] == '\0')
			break; /* never used: addr is not further on */
	}
	if (!create || free_slot < 0)
		return -1;
	strncpy(sh->clients[free_slot].key, addr, KEY_SIZE - 1);
	sh->clients[free_slot].key[KEY_SIZE - 1] = '\0';
	return free_slot;
}

int shared_client_enter(struct shared *sh, const char *addr, unsigned limit)
{
	int slot;

	if (limit == 0)
		return -2;
	lock(sh);
	slot = find_slot(sh, addr, true);
	if (slot < 0) {
		if (!sh->warned_full)
			log_warning("more than %d client addresses connected: "
				    "max_connections_per_client is not "
				    "enforced for the others",
				    SHARED_CLIENTS);
		sh->warned_full = true;
		unlock(sh);
		return -2;
	}
	if (sh->clients[slot].count >= limit) {
		unlock(sh);
		return -1;
	}
	sh->clients[slot].count++;
	unlock(sh);
	return slot;
}

void shared_client_leave(struct shared *sh, int slot)
{
	if (slot < 0 || slot >= SHARED_CLIENTS)
		return;
	lock(sh);
	if (sh->clients[slot].count > 0)
		sh->clients[slot].count--;
	unlock(sh);
}

unsigned shared_client_count(struct shared *sh, const char *addr)
{
	unsigned n = 0;
	int slot;

	lock(sh);
	if ((slot = find_slot(sh, addr, false)) >= 0)
		n = sh->clients[slot].count;
	unlock(sh);
	return n;
}

void shared_set_stress(struct shared *sh, bool on)
{
	atomic_store(&sh->stress, on);
}

bool shared_stress(const struct shared *sh)
{
	return atomic_load((atomic_bool *)&sh->stress);
}

int shared_worker_claim(struct shared *sh, unsigned epoch)
{
	for (int i = 0; i < SHARED_WORKERS; i++) {
		struct worker_line *w = &sh->workers[i];

		if (atomic_load(&w->state) != WORKER_FREE)
			continue;
		atomic_store(&w->epoch, epoch);
		atomic_store(&w->sessions, 0);
		atomic_store(&w->messages, 0);
		atomic_store(&w->client_slot, -1);
		atomic_store(&w->state, WORKER_STARTING);
		if (i >= atomic_load(&sh->lines_used))
			atomic_store(&sh->lines_used, i + 1);
		return i;
	}
	return -1;
}

void shared_worker_free(struct shared *sh, int line)
{
	if (line >= 0 && line < SHARED_WORKERS)
		atomic_store(&sh->workers[line].state, WORKER_FREE);
}

void shared_worker_read(struct shared *sh, int line,
			struct shared_worker_view *v)
{
	struct worker_line *w = &sh->workers[line];

	v->state = (enum worker_state)atomic_load(&w->state);
	v->epoch = atomic_load(&w->epoch);
	v->sessions = atomic_load(&w->sessions);
	v->messages = atomic_load(&w->messages);
	v->client_slot = atomic_load(&w->client_slot);
}

void shared_worker_set(struct shared *sh, int line, enum worker_state state,
		       unsigned sessions, unsigned messages, int client_slot)
{
	struct worker_line *w = &sh->workers[line];

	atomic_store(&w->sessions, sessions);
	atomic_store(&w->messages, messages);
	atomic_store(&w->client_slot, client_slot);
	atomic_store(&w->state, state);
}

unsigned shared_ready(struct shared *sh, unsigned epoch)
{
	int used = atomic_load(&sh->lines_used);
	unsigned n = 0;

	for (int i = 0; i < used; i++) {
		struct worker_line *w = &sh->workers[i];
		int state = atomic_load(&w->state);

		n += (state == WORKER_IDLE || state == WORKER_STARTING) &&
		     atomic_load(&w->epoch) == epoch;
	}
	return n;
}
