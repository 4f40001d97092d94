/*
 * shared.h - what every worker of the pool sees at once
 *
 * A small region of memory the master maps before it forks, shared with
 * all workers: the number of open connections per client address (for
 * max_connections_per_client), and whether the pool is under stress (all
 * workers busy at workers.max).  Counting is done under a process-shared
 * robust mutex, so a worker killed while holding it does not wedge the
 * others; a worker that dies in a session is uncounted by the master.
 */
#ifndef AIOSMTPD_SHARED_H
#define AIOSMTPD_SHARED_H

#include <stdbool.h>

/* Client addresses tracked at once; beyond that a client is not limited
 * (and a warning says so). */
#define SHARED_CLIENTS 8192

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

/* shared_set_stress - set by the master when the pool is exhausted */
void shared_set_stress(struct shared *sh, bool on);
bool shared_stress(const struct shared *sh);

#endif
