/*
 * spool.h - where a message's content waits while it arrives
 *
 * A worker keeps one spool and reuses it for every message.  Content is
 * held in memory up to a small bound and spills over into an unlinked
 * temporary file beyond it, so a 32 MiB message costs the worker no more
 * memory than a 1 KiB one.  The spool is the struct aiosmtpd_content that
 * handlers read in handle_DATA.
 *
 * A handler that writes every message out anyway can instead take the
 * content while it arrives, through a tap: the Mailbox handler renders
 * it straight into its Maildir's tmp/, so a large message is written
 * once instead of twice.  The spool then only counts the octets.
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

/*
 * A tap, set for the sessions of a handler that has one.  Each message
 * either reaches the handler, which takes the tap's state over with
 * spool_take_tap() in handle_DATA, or is discarded: by spool_reset() or
 * spool_begin() for the next message, or spool_free().
 */
struct spool_tap {
	/* open - a message begins: the tap's state, or NULL to have this
	 * message spooled as usual (the handler then finds no tap) */
	void *(*open)(void *ctx, const struct aiosmtpd_session *session,
		      const struct aiosmtpd_envelope *envelope);
	/* write - 0, or -1 with errno set, which fails the spool */
	int (*write)(void *state, const char *data, size_t len);
	/* discard - the message will not be handed on: remove what was
	 * written and free the state */
	void (*discard)(void *state);
};

/* spool_set_tap - the tap for the messages to come; NULL for none.
 * session and envelope must stay valid until the message ends. */
void spool_set_tap(struct spool *spool, const struct spool_tap *tap,
		   void *ctx);
/* spool_begin - empty the spool for a new message and open the tap */
void spool_begin(struct spool *spool, const struct aiosmtpd_session *session,
		 const struct aiosmtpd_envelope *envelope);
/* spool_take_tap - the tap's state for this message, now the caller's to
 * finish and free; NULL when the message was spooled.  The content of a
 * tapped message cannot be read back (reading fails with EINVAL). */
void *spool_take_tap(struct spool *spool);

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
