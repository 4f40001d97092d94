/*
 * pyfmt.h - text formatted the way Python formats it
 *
 * aiosmtpd's handlers print Python objects: the peer tuple, the list of
 * mail options, lines decoded with errors="replace", bytes split with
 * splitlines().  To print the same bytes, these helpers reproduce those
 * conversions.  No I/O.
 */
#ifndef AIOSMTPD_PYFMT_H
#define AIOSMTPD_PYFMT_H

#include <stdbool.h>
#include <stddef.h>

#include "sbuf.h"

/* pyfmt_repr_str - repr() of the str that these UTF-8 (surrogateescape)
 * octets decode to, quotes included */
void pyfmt_repr_str(struct sbuf *sb, const char *s, size_t len);
/* pyfmt_repr_list - repr() of a list of such strings: "['A', 'B']" */
void pyfmt_repr_list(struct sbuf *sb, const char *const *items, size_t n);
/* pyfmt_peer - repr() of asyncio's peername: "('127.0.0.1', 25)",
 * "('::1', 25, 0, 0)", or "''" for a UNIX socket */
void pyfmt_peer(struct sbuf *sb, int family, const char *addr,
		unsigned port);
/* pyfmt_decode_replace - bytes.decode("utf-8", "replace") written back
 * as UTF-8: each maximal ill-formed subpart becomes U+FFFD */
void pyfmt_decode_replace(struct sbuf *sb, const char *s, size_t len);

/*
 * Line splitting as Python's splitlines() does it, over content that
 * arrives in chunks.  Bytes split at CRLF, CR and LF; str (text) also at
 * VT, FF, FS, GS, RS and, in UTF-8, U+0085, U+2028 and U+2029.  The line
 * ends are not passed on.
 */
typedef int pyfmt_line_fn(void *ctx, const char *line, size_t len);

struct pyfmt_lines {
	struct sbuf partial; /* a line begun in an earlier chunk */
	bool cr_pending;       /* the last chunk ended in CR */
	bool text;
};

void pyfmt_lines_init(struct pyfmt_lines *pl, bool text);
void pyfmt_lines_free(struct pyfmt_lines *pl);
/* pyfmt_lines_feed - call fn for each complete line; a non-zero return
 * from fn stops and is returned */
int pyfmt_lines_feed(struct pyfmt_lines *pl, const char *data, size_t len,
		     pyfmt_line_fn *fn, void *ctx);
/* pyfmt_lines_finish - pass on a last line that had no line end */
int pyfmt_lines_finish(struct pyfmt_lines *pl, pyfmt_line_fn *fn, void *ctx);

#endif
