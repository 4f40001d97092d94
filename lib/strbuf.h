/*
 * strbuf.h - growable byte buffer, always NUL-terminated
 *
 * Used for replies, formatted log details and anything else whose size is
 * known only while it is built.  The buffer owns its memory; data is valid
 * until the next call that appends or frees.
 */
#ifndef AIOSMTPD_STRBUF_H
#define AIOSMTPD_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *data; /* NUL-terminated; never NULL after strbuf_init() */
	size_t len;
	size_t cap;
};

void strbuf_init(struct strbuf *sb, size_t hint);
void strbuf_free(struct strbuf *sb);
/* strbuf_reset - empty the buffer, keeping its memory */
void strbuf_reset(struct strbuf *sb);
void strbuf_append(struct strbuf *sb, const void *data, size_t len);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_putc(struct strbuf *sb, char c);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void strbuf_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* strbuf_detach - hand the string to the caller and empty the buffer */
char *strbuf_detach(struct strbuf *sb);

#endif
