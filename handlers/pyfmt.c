/*
 * pyfmt.c - text formatted the way Python formats it
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "alloc.h"
#include "pyfmt.h"

/* decode_one - the code point of a valid UTF-8 sequence at p, its length
 * in *n; or -1 with *n the length of the maximal ill-formed subpart, as
 * Python's decoder (and Unicode's recommended practice) counts it */
static long decode_one(const unsigned char *p, size_t len, size_t *n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, i;
	long cp;

	*n = 1;
	if (p[0] < 0x80)
		return p[0];
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 1, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		need = 2, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		need = 3, cp = p[0] & 0x07;
	else
		return -1;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	for (i = 1; i <= need; i++) {
		if (i >= len || p[i] < lo || p[i] > hi) {
			*n = i;
			return -1;
		}
		cp = (cp << 6) | (p[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	*n = need + 1;
	return cp;
}

void pyfmt_decode_replace(struct sbuf *sb, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = 0, n;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (decode_one(p + i, len - i, &n) >= 0) {
			i += n;
			continue;
		}
		sbuf_append(sb, s + start, i - start);
		sbuf_puts(sb, "\xef\xbf\xbd");
		i += n;
		start = i;
	}
	sbuf_append(sb, s + start, len - start);
}

/* printable - Python's str.isprintable() for one code point, for the
 * characters an option word can hold; non-ASCII is printable except the
 * controls, spaces and format characters below */
static bool printable(long cp)
{
	if (cp < 0x20 || cp == 0x7f)
		return false;
	if (cp < 0x7f)
		return true;
	if (cp <= 0xa0 || cp == 0xad)
		return false;
	if ((cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
	    (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 || cp == 0xfeff ||
	    cp == 0x1680 || (cp >= 0xe000 && cp <= 0xf8ff))
		return false;
	return true;
}

static void repr_escape(struct sbuf *sb, long cp)
{
	if (cp == '\t')
		sbuf_puts(sb, "\\t");
	else if (cp == '\n')
		sbuf_puts(sb, "\\n");
	else if (cp == '\r')
		sbuf_puts(sb, "\\r");
	else if (cp < 0x100)
		sbuf_printf(sb, "\\x%02lx", cp);
	else if (cp < 0x10000)
		sbuf_printf(sb, "\\u%04lx", cp);
	else
		sbuf_printf(sb, "\\U%08lx", cp);
}

void pyfmt_repr_str(struct sbuf *sb, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char quote = '\'';
	size_t i = 0, n;
	long cp;

	if (memchr(s, '\'', len) != NULL && memchr(s, '"', len) == NULL)
		quote = '"';
	sbuf_putc(sb, quote);
	while (i < len) {
		cp = decode_one(p + i, len - i, &n);
		if (cp < 0) {
			/* surrogateescape: one lone surrogate per octet */
			n = 1;
			cp = 0xdc00 + p[i];
		}
		if (cp == quote || cp == '\\') {
			sbuf_putc(sb, '\\');
			sbuf_putc(sb, (char)cp);
		} else if (!printable(cp) || (cp >= 0xd800 && cp <= 0xdfff)) {
			repr_escape(sb, cp);
		} else {
			sbuf_append(sb, s + i, n);
		}
		i += n;
	}
	sbuf_putc(sb, quote);
}

void pyfmt_repr_list(struct sbuf *sb, const char *const *items, size_t n)
{
	sbuf_putc(sb, '[');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			sbuf_puts(sb, ", ");
		pyfmt_repr_str(sb, items[i], strlen(items[i]));
	}
	sbuf_putc(sb, ']');
}

void pyfmt_peer(struct sbuf *sb, int family, const char *addr,
		unsigned port)
{
	if (family == AF_INET6)
		sbuf_printf(sb, "('%s', %u, 0, 0)", addr, port);
	else if (family == AF_INET)
		sbuf_printf(sb, "('%s', %u)", addr, port);
	else
		sbuf_puts(sb, "''");
}

/* --- splitlines ---------------------------------------------------------- */

void pyfmt_lines_init(struct pyfmt_lines *pl, bool text)
{
	sbuf_init(&pl->partial, 256);
	pl->cr_pending = false;
	pl->text = text;
}

void pyfmt_lines_free(struct pyfmt_lines *pl)
{
	sbuf_free(&pl->partial);
}

/* line_end - length of the line separator at p, 0 if none; a CR at the
 * end of the chunk counts as a whole separator (a following LF is then
 * swallowed by the next feed) */
static size_t line_end(const struct pyfmt_lines *pl, const char *p,
		       size_t len)
{
	unsigned char c = (unsigned char)p[0];

	if (c == '\n')
		return 1;
	if (c == '\r')
		return len >= 2 && p[1] == '\n' ? 2 : 1;
	if (!pl->text)
		return 0;
	if (c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e))
		return 1;
	if (c == 0xc2 && len >= 2 && (unsigned char)p[1] == 0x85)
		return 2;
	if (c == 0xe2 && len >= 3 && (unsigned char)p[1] == 0x80 &&
	    ((unsigned char)p[2] == 0xa8 || (unsigned char)p[2] == 0xa9))
		return 3;
	return 0;
}

/* plain_run - how many octets from p on cannot start a line end.  In
 * binary mode only CR and LF can, and memchr() finds them far faster
 * than line_end() on every octet, which was 82% of the instructions of
 * a 1 MiB Maildir delivery (issue 7's callgrind profile) */
static size_t plain_run(const struct pyfmt_lines *pl, const char *p,
			size_t len)
{
	const char *lf, *cr;

	if (pl->text)
		return 0;
	lf = memchr(p, '\n', len);
	cr = memchr(p, '\r', lf != NULL ? (size_t)(lf - p) : len);
	if (cr != NULL)
		return (size_t)(cr - p);
	return lf != NULL ? (size_t)(lf - p) : len;
}

static int emit_line(struct pyfmt_lines *pl, const char *line, size_t len,
		     pyfmt_line_fn *fn, void *ctx)
{
	int ret;

	if (pl->partial.len == 0)
		return fn(ctx, line, len);
	sbuf_append(&pl->partial, line, len);
	ret = fn(ctx, pl->partial.data, pl->partial.len);
	sbuf_reset(&pl->partial);
	return ret;
}

int pyfmt_lines_feed(struct pyfmt_lines *pl, const char *data, size_t len,
		     pyfmt_line_fn *fn, void *ctx)
{
	size_t start = 0, i = 0, n;
	int ret;

	if (len > 0 && pl->cr_pending && data[0] == '\n')
		start = i = 1;
	pl->cr_pending = false;
	while (i < len) {
		i += plain_run(pl, data + i, len - i);
		if (i == len)
			break;
		if ((n = line_end(pl, data + i, len - i)) == 0) {
			i++;
			continue;
		}
		if ((ret = emit_line(pl, data + start, i - start, fn, ctx)) != 0)
			return ret;
		if (n == 1 && data[i] == '\r' && i + 1 == len)
			pl->cr_pending = true;
		i += n;
		start = i;
	}
	sbuf_append(&pl->partial, data + start, len - start);
	return 0;
}

int pyfmt_lines_finish(struct pyfmt_lines *pl, pyfmt_line_fn *fn, void *ctx)
{
	int ret = 0;

	if (pl->partial.len > 0)
		ret = fn(ctx, pl->partial.data, pl->partial.len);
	sbuf_reset(&pl->partial);
	pl->cr_pending = false;
	return ret;
}
