/*
 * sbuf.h - growable byte buffer, always NUL-terminated
 *
 * Used for replies, formatted log details and anything else whose size is
 * known only while it is built.  The buffer owns its memory; data is valid
 * until the next call that appends or frees.
 */
#ifndef AIOSMTPD_SBUF_H
#define AIOSMTPD_SBUF_H

#include <stdarg.h>
#include <stddef.h>

struct sbuf {
	char *data; /* NUL-terminated; never NULL after sbuf_init() */
	size_t len;
	size_t cap;
};

void sbuf_init(struct sbuf *sb, size_t hint);
void sbuf_free(struct sbuf *sb);
/* sbuf_reset - empty the buffer, keeping its memory */
void sbuf_reset(struct sbuf *sb);
void sbuf_append(struct sbuf *sb, const void *data, size_t len);
void sbuf_puts(struct sbuf *sb, const char *s);
void sbuf_putc(struct sbuf *sb, char c);
void sbuf_printf(struct sbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sbuf_vprintf(struct sbuf *sb, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* sbuf_detach - hand the string to the caller and empty the buffer */
char *sbuf_detach(struct sbuf *sb);
/* sbuf_format - a new string, formatted; the caller frees it */
char *sbuf_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
