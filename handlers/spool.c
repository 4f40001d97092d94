/*
 * spool.c - message content in memory, then in an unlinked file
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "spool.h"

#define READ_BLOCK (64 * 1024)

struct spool {
	char *dir;
	char *mem; /* SPOOL_MEMORY_LIMIT octets */
	size_t mem_len;
	int fd; /* -1 until the content outgrows mem */
	uint64_t file_len;
	uint64_t size;
	int error; /* errno of the first failure; 0 when fine */
	/* reading */
	uint64_t pos;
	char *block; /* READ_BLOCK octets, allocated on first file read */
	/* a tap in place of memory and file */
	const struct spool_tap *tap;
	void *tap_ctx;
	void *tap_state; /* this message's, until taken or discarded */
	bool tapped;	 /* this message went to the tap */
};

struct spool *spool_new(const char *dir)
{
	struct spool *spool = xcalloc(1, sizeof(*spool));
	const char *tmp = getenv("TMPDIR");

	if (dir == NULL)
		dir = tmp != NULL && *tmp != '\0' ? tmp : "/tmp";
	spool->dir = xstrdup(dir);
	spool->mem = xmalloc(SPOOL_MEMORY_LIMIT);
	spool->fd = -1;
	return spool;
}

void spool_free(struct spool **spoolp)
{
	struct spool *spool = *spoolp;

	if (spool == NULL)
		return;
	spool_reset(spool);
	if (spool->fd >= 0)
		close(spool->fd);
	free(spool->dir);
	free(spool->mem);
	free(spool->block);
	free(spool);
	*spoolp = NULL;
}

void spool_reset(struct spool *spool)
{
	if (spool->tap_state != NULL) {
		spool->tap->discard(spool->tap_state);
		spool->tap_state = NULL;
	}
	spool->tapped = false;
	/* Keep the file for the next large message, but give its blocks
	 * back now: a worker must not sit on 32 MiB of disk between mails. */
	if (spool->fd >= 0 && spool->file_len > 0 &&
	    ftruncate(spool->fd, 0) < 0) {
		close(spool->fd);
		spool->fd = -1;
	}
	spool->mem_len = 0;
	spool->file_len = 0;
	spool->size = 0;
	spool->error = 0;
	spool->pos = 0;
}

void spool_set_tap(struct spool *spool, const struct spool_tap *tap,
		   void *ctx)
{
	spool_reset(spool);
	spool->tap = tap;
	spool->tap_ctx = ctx;
}

void spool_begin(struct spool *spool, const struct aiosmtpd_session *session,
		 const struct aiosmtpd_envelope *envelope)
{
	spool_reset(spool);
	if (spool->tap == NULL)
		return;
	spool->tap_state = spool->tap->open(spool->tap_ctx, session, envelope);
	spool->tapped = spool->tap_state != NULL;
}

void *spool_take_tap(struct spool *spool)
{
	void *state = spool->tap_state;

	spool->tap_state = NULL;
	return state;
}

/* open_file - an anonymous file in dir: O_TMPFILE, or mkstemp + unlink
 * where the file system lacks O_TMPFILE */
static int open_file(struct spool *spool)
{
	char path[4096];
	int fd;

	fd = open(spool->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof(path), "%s/aiosmtpd-spool.XXXXXX", spool->dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		log_error("spool: cannot create a file in %s: %m", spool->dir);
		return -1;
	}
	(void)unlink(path);
	return fd;
}

/* pwrite_all - write at an explicit offset, so a reused file needs no
 * lseek after it was truncated */
static int pwrite_all(int fd, const char *data, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, data, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* spill - move the memory part to the file, then append data there */
static int spill(struct spool *spool, const void *data, size_t len)
{
	if (spool->fd < 0 && (spool->fd = open_file(spool)) < 0)
		return -1;
	if (spool->file_len == 0 && spool->mem_len > 0) {
		if (pwrite_all(spool->fd, spool->mem, spool->mem_len, 0) < 0)
			return -1;
		spool->file_len = spool->mem_len;
	}
	if (pwrite_all(spool->fd, data, len, spool->file_len) < 0)
		return -1;
	spool->file_len += len;
	return 0;
}

/* store - content to the tap, to memory or to the file */
static int store(struct spool *spool, const void *data, size_t len)
{
	if (spool->tapped) {
		if (spool->tap_state == NULL) {
			errno = EINVAL; /* taken over already */
			return -1;
		}
		return spool->tap->write(spool->tap_state, data, len);
	}
	if (spool->file_len == 0 &&
	    spool->mem_len + len <= SPOOL_MEMORY_LIMIT) {
		memcpy(spool->mem + spool->mem_len, data, len);
		spool->mem_len += len;
		return 0;
	}
	return spill(spool, data, len);
}

int spool_write(struct spool *spool, const void *data, size_t len)
{
	if (spool->error != 0) {
		errno = spool->error;
		return -1;
	}
	errno = 0;
	if (store(spool, data, len) < 0) {
		spool->error = errno != 0 ? errno : EIO;
		return -1;
	}
	spool->size += len;
	return 0;
}

bool spool_failed(const struct spool *spool)
{
	return spool->error != 0;
}

int spool_errno(const struct spool *spool)
{
	return spool->error;
}

uint64_t spool_size(const struct spool *spool)
{
	return spool->size;
}

int spool_rewind(struct spool *spool)
{
	spool->pos = 0;
	return 0;
}

int spool_next(struct spool *spool, const char **data_r, size_t *len_r)
{
	ssize_t n;

	if (spool->tapped) {
		errno = EINVAL;
		return -1;
	}
	if (spool->pos >= spool->size)
		return 0;
	if (spool->file_len == 0) {
		*data_r = spool->mem + spool->pos;
		*len_r = (size_t)(spool->size - spool->pos);
		spool->pos = spool->size;
		return 1;
	}
	if (spool->block == NULL)
		spool->block = xmalloc(READ_BLOCK);
	do {
		n = pread(spool->fd, spool->block, READ_BLOCK,
			  (off_t)spool->pos);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (n == 0) {
		errno = EIO; /* the file is shorter than what we wrote */
		return -1;
	}
	spool->pos += (uint64_t)n;
	*data_r = spool->block;
	*len_r = (size_t)n;
	return 1;
}

ssize_t spool_read(struct spool *spool, void *buf, size_t len)
{
	uint64_t left = spool->size - spool->pos;
	ssize_t n;

	if (spool->tapped) {
		errno = EINVAL;
		return -1;
	}
	if (len > left)
		len = (size_t)left;
	if (len == 0)
		return 0;
	if (spool->file_len == 0) {
		memcpy(buf, spool->mem + spool->pos, len);
		spool->pos += len;
		return (ssize_t)len;
	}
	do {
		n = pread(spool->fd, buf, len, (off_t)spool->pos);
	} while (n < 0 && errno == EINTR);
	if (n > 0)
		spool->pos += (uint64_t)n;
	return n;
}

/* The public reading interface for handlers is the spool's. */
ssize_t aiosmtpd_content_read(struct aiosmtpd_content *content, void *buf,
			      size_t len)
{
	return spool_read(spool_from_content(content), buf, len);
}

int aiosmtpd_content_rewind(struct aiosmtpd_content *content)
{
	return spool_rewind(spool_from_content(content));
}
