/*
 * sbuf.c - growable byte buffer
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "sbuf.h"

void sbuf_init(struct sbuf *sb, size_t hint)
{
	sb->cap = hint < 16 ? 16 : hint;
	sb->data = xmalloc(sb->cap);
	sb->data[0] = '\0';
	sb->len = 0;
}

void sbuf_free(struct sbuf *sb)
{
	XFREE(sb->data);
	sb->len = sb->cap = 0;
}

void sbuf_reset(struct sbuf *sb)
{
	sb->len = 0;
	sb->data[0] = '\0';
}

/* grow - make room for extra more bytes and the NUL */
static void grow(struct sbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;

	if (need <= sb->cap)
		return;
	while (sb->cap < need)
		sb->cap *= 2;
	sb->data = xrealloc(sb->data, sb->cap);
}

void sbuf_append(struct sbuf *sb, const void *data, size_t len)
{
	grow(sb, len);
	memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
}

void sbuf_puts(struct sbuf *sb, const char *s)
{
	sbuf_append(sb, s, strlen(s));
}

void sbuf_putc(struct sbuf *sb, char c)
{
	sbuf_append(sb, &c, 1);
}

void sbuf_vprintf(struct sbuf *sb, const char *fmt, va_list ap)
{
	va_list copy;
	int n;

	va_copy(copy, ap);
	n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, copy);
	va_end(copy);
	ASSERT(n >= 0);
	if ((size_t)n >= sb->cap - sb->len) {
		grow(sb, (size_t)n);
		n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
		ASSERT(n >= 0);
	}
	sb->len += (size_t)n;
}

void sbuf_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sbuf_vprintf(sb, fmt, ap);
	va_end(ap);
}

char *sbuf_detach(struct sbuf *sb)
{
	char *s = sb->data;

	sb->data = NULL;
	sb->len = sb->cap = 0;
	return s;
}

char *sbuf_format(const char *fmt, ...)
{
	struct sbuf sb;
	va_list ap;

	sbuf_init(&sb, 128);
	va_start(ap, fmt);
	sbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	return sbuf_detach(&sb);
}
