/*
 * spool.h - where a message's content waits while it arrives
 *
 * A worker keeps one spool and reuses it for every message.  Content is
 * held in memory up to a small bound and spills over into an unlinked
 * temporary file beyond it, so a 32 MiB message costs the worker no more
 * memory than a 1 KiB one.  The spool is the struct aiosmtpd_content that
 * handlers read in handle_DATA.
 */
#ifndef AIOSMTPD_SPOOL_H
#define AIOSMTPD_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aiosmtpd/handler.h"

/* Octets kept in memory before the content moves to a file. */
#define SPOOL_MEMORY_LIMIT (64 * 1024)

struct spool;

/* spool_new - a spool whose overflow files go to dir ($TMPDIR or /tmp
 * when NULL); the file is created only when needed */
struct spool *spool_new(const char *dir);
void spool_free(struct spool **spool);
/* spool_reset - empty the spool for the next message */
void spool_reset(struct spool *spool);

/* spool_write - append content; -1 with errno set if the overflow file
 * cannot be written, after which the spool stays failed until reset */
int spool_write(struct spool *spool, const void *data, size_t len);
bool spool_failed(const struct spool *spool);
/* spool_errno - why the spool failed */
int spool_errno(const struct spool *spool);
uint64_t spool_size(const struct spool *spool);

/* spool_rewind - read from the beginning again */
int spool_rewind(struct spool *spool);
/* spool_read - copy up to len octets; 0 at the end, -1 on error */
ssize_t spool_read(struct spool *spool, void *buf, size_t len);
/* spool_next - the next run of content without copying where possible:
 * sets *data_r and *len_r; returns 1, 0 at the end, -1 on error. */
int spool_next(struct spool *spool, const char **data_r, size_t *len_r);

static inline struct aiosmtpd_content *spool_content(struct spool *spool)
{
	return (struct aiosmtpd_content *)spool;
}

static inline struct spool *spool_from_content(struct aiosmtpd_content *c)
{
	return (struct spool *)c;
}

#endif
