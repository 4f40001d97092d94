/*
 * smtp_data.c - the DATA reader
 *
 * The parser keeps one small state between calls, so a line, a stuffed dot
 * or the final ".<CR><LF>" may be split anywhere across input blocks.
 * Content is passed to the sink as spans of the caller's buffer; the only
 * bytes that never reach it are stuffed dots and the final dot line.
 */
#include "config.h"

#include <string.h>

#include "alloc.h"
#include "smtp_data.h"

enum {
	S_START,  /* at the start of a line */
	S_DOT,	  /* the line started with a dot, which was dropped */
	S_DOT_CR, /* ".<CR>" at the start of a line: maybe the end */
	S_MID,	  /* inside a line */
	S_CR,	  /* inside a line, just after a CR */
};

void smtp_data_begin(struct smtp_data_reader *rd, uint64_t limit,
		     smtp_data_sink_fn *sink, void *sink_ctx)
{
	memset(rd, 0, sizeof(*rd));
	rd->status = SMTP_DATA_NOMINAL;
	rd->limit = limit;
	rd->state = S_START;
	rd->sink = sink;
	rd->sink_ctx = sink_ctx;
}

static void emit(struct smtp_data_reader *rd, const char *data, size_t len)
{
	if (len == 0 || rd->status != SMTP_DATA_NOMINAL)
		return;
	rd->content += len;
	if (rd->sink != NULL)
		rd->sink(rd->sink_ctx, data, len);
}

/* grow_line - n more content octets on this line; past 1001 without a
 * CRLF aiosmtpd's reader overruns and the message is too long at once,
 * unless it already failed for another reason */
static void grow_line(struct smtp_data_reader *rd, size_t n)
{
	rd->line_len += n;
	if (rd->line_len > SMTP_DATA_LINE_LIMIT &&
	    rd->status == SMTP_DATA_NOMINAL)
		rd->status = SMTP_DATA_TOO_LONG;
}

/* end_line - a CRLF ended a line: count it, as aiosmtpd does, whole;
 * then check its length with the CRLF, as aiosmtpd checks a line that
 * fitted its reader (so at the end of a line the size limit comes first) */
static void end_line(struct smtp_data_reader *rd)
{
	rd->counted += rd->line_len + 2;
	if (rd->status == SMTP_DATA_NOMINAL && rd->limit != 0 &&
	    rd->counted > rd->limit)
		rd->status = SMTP_DATA_TOO_MUCH;
	if (rd->status == SMTP_DATA_NOMINAL &&
	    rd->line_len + 2 > SMTP_DATA_LINE_LIMIT)
		rd->status = SMTP_DATA_TOO_LONG;
	rd->line_len = 0;
	rd->state = S_START;
}

size_t smtp_data_feed(struct smtp_data_reader *rd, const char *buf,
		      size_t len, bool *done_r)
{
	size_t span = 0; /* start of the bytes not yet passed to the sink */
	size_t i = 0;
	const char *cr;

	*done_r = false;
	if (len == 0)
		return 0;
	while (i < len) {
		switch (rd->state) {
		case S_START:
			if (buf[i] == '.') {
				emit(rd, buf + span, i - span);
				span = ++i;
				rd->line_len = 1;
				rd->state = S_DOT;
			} else {
				rd->state = S_MID;
			}
			break;
		case S_DOT:
			if (buf[i] == '\r') {
				i++;
				rd->state = S_DOT_CR;
			} else {
				rd->state = S_MID;
			}
			break;
		case S_DOT_CR:
			if (buf[i] == '\n') {
				/* The final dot: neither the CR nor the LF
				 * is content. */
				size_t stop = i > 0 ? i - 1 : 0;

				emit(rd, buf + span, stop > span ? stop - span : 0);
				*done_r = true;
				return i + 1;
			}
			/* ".<CR>x": the CR is content.  If it arrived in an
			 * earlier block it was held back; pass it on now. */
			if (i == 0)
				emit(rd, "\r", 1);
			grow_line(rd, 1);
			rd->state = S_MID;
			break;
		case S_MID:
			cr = memchr(buf + i, '\r', len - i);
			if (cr == NULL) {
				grow_line(rd, len - i);
				i = len;
				break;
			}
			grow_line(rd, (size_t)(cr - (buf + i)));
			i = (size_t)(cr - buf) + 1;
			rd->state = S_CR;
			break;
		case S_CR:
			if (buf[i] == '\n') {
				i++;
				end_line(rd);
			} else {
				grow_line(rd, 1);
				rd->state = S_MID;
			}
			break;
		}
	}

	/* Hold back a CR that may belong to the final ".<CR><LF>". */
	if (rd->state == S_DOT_CR && len - 1 >= span)
		emit(rd, buf + span, len - 1 - span);
	else
		emit(rd, buf + span, len - span);
	return len;
}
