/*
 * smtp_auth.c - SMTP AUTH framing (RFC 4954)
 *
 * Nothing here logs or keeps what the client sent: responses carry
 * passwords, so they live only in this module's buffers and the back end's.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "smtp_auth.h"

/* A mechanism that needs more rounds than this is broken or hostile. */
#define MAX_ROUNDS 10

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t smtp_base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4 + 1;
}

size_t smtp_base64_encode(const void *in, size_t len, char *out)
{
	const unsigned char *p = in;
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static int digit_value(char c)
{
	const char *p = c != '\0' ? strchr(alphabet, c) : NULL;

	return p != NULL ? (int)(p - alphabet) : -1;
}

/* decode_quantum - four characters, the last one or two may be '=' only
 * when last is set; returns the octets written, or -1 */
static int decode_quantum(const char *q, bool last, unsigned char *out)
{
	int pad = q[3] != '=' ? 0 : q[2] != '=' ? 1 : 2;
	unsigned v = 0;

	if (pad > 0 && !last)
		return -1;
	for (int i = 0; i < 4 - pad; i++) {
		int d = digit_value(q[i]);

		if (d < 0)
			return -1;
		v = v << 6 | (unsigned)d;
	}
	v <<= 6 * pad;
	out[0] = (unsigned char)(v >> 16);
	out[1] = (unsigned char)(v >> 8);
	out[2] = (unsigned char)v;
	return 3 - pad;
}

int smtp_base64_decode(const char *in, size_t len, char *out,
		       size_t *out_len_r)
{
	size_t o = 0;
	int n;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		n = decode_quantum(in + i, i + 4 == len,
				   (unsigned char *)out + o);
		if (n < 0)
			return -1;
		o += (size_t)n;
	}
	out[o] = '\0';
	*out_len_r = o;
	return 0;
}

const char *smtp_auth_reply(enum smtp_auth_status status)
{
	switch (status) {
	case SMTP_AUTH_OK:
		return "235 2.7.0 Authentication successful";
	case SMTP_AUTH_BADAUTH:
		return "535 5.7.8 Authentication credentials invalid";
	case SMTP_AUTH_NOMECH:
		return "504 5.5.4 Unrecognized authentication type";
	case SMTP_AUTH_ENCRYPT:
		return "538 5.7.11 Encryption required for requested "
		       "authentication mechanism";
	case SMTP_AUTH_TOOWEAK:
		return "534 5.7.9 Authentication mechanism is too weak";
	case SMTP_AUTH_TRANS:
		return "432 4.7.12 A password transition is needed";
	case SMTP_AUTH_BADPROT:
		return "501 5.5.2 Malformed authentication data";
	case SMTP_AUTH_TEMPFAIL:
		return "454 4.7.0 Temporary authentication failure";
	case SMTP_AUTH_ABORTED:
		return "501 5.7.0 Auth aborted";
	case SMTP_AUTH_BAD_BASE64:
		return "501 5.5.2 Can't decode base64";
	case SMTP_AUTH_SPLIT:
		return "501 5.5.2 Can't split auth value";
	case SMTP_AUTH_LINE_TOO_LONG:
		return "500 5.5.6 Authentication Exchange line is too long";
	case SMTP_AUTH_CONTINUE:
	case SMTP_AUTH_IO:
		break;
	}
	return "454 4.7.0 Temporary authentication failure";
}

/* One exchange: the decoded response lives in buf, which is wiped before
 * it is freed because it may hold a password. */
struct exchange {
	struct smtp_io *io;
	const struct smtp_auth_ops *ops;
	void *ctx;
	bool plain; /* aiosmtpd checks PLAIN's shape itself */
	char *buf;
	size_t size;
	enum smtp_io_status io_status;
};

static void wipe(struct exchange *x)
{
	if (x->buf != NULL)
		explicit_bzero(x->buf, x->size);
}

/* decode - base64 text (or "=" for an empty response) into x->buf */
static enum smtp_auth_status decode(struct exchange *x, const char *text,
				    size_t len, size_t *out_len_r)
{
	size_t need = len / 4 * 3 + 1;

	if (need > x->size) {
		wipe(x);
		free(x->buf);
		x->buf = xmalloc(need);
		x->size = need;
	}
	if (len == 1 && text[0] == '=') {
		x->buf[0] = '\0';
		*out_len_r = 0;
		return SMTP_AUTH_OK;
	}
	if (smtp_base64_decode(text, len, x->buf, out_len_r) < 0)
		return SMTP_AUTH_BAD_BASE64;
	return SMTP_AUTH_OK;
}

/* plain_shape_ok - aiosmtpd splits PLAIN's message at NULs and wants
 * exactly three parts: authzid, authcid, password */
static bool plain_shape_ok(const char *p, size_t len)
{
	size_t nuls = 0;

	for (size_t i = 0; i < len; i++)
		nuls += p[i] == '\0';
	return nuls == 2;
}

/* challenge - send "334 <base64>"; the space stays when it is empty */
static void challenge(struct exchange *x, const char *data, size_t len)
{
	char *text = xmalloc(4 + smtp_base64_encoded_len(len));

	memcpy(text, "334 ", 4);
	smtp_base64_encode(data, len, text + 4);
	smtp_io_replys(x->io, text);
	free(text);
}

/* strip - aiosmtpd strips an answer of white space, CR included */
static void strip(const char **p, size_t *len)
{
	while (*len > 0 && strchr(" \t\r\n\v\f", (*p)[*len - 1]) != NULL)
		(*len)--;
	while (*len > 0 && strchr(" \t\r\n\v\f", **p) != NULL) {
		(*p)++;
		(*len)--;
	}
}

/* answer - read the client's answer to a challenge and decode it */
static enum smtp_auth_status answer(struct exchange *x, size_t *len_r)
{
	const char *line;
	size_t len;

	x->io_status = smtp_io_read_line(x->io, SMTP_AUTH_LINE_MAX, &line,
					 &len);
	if (x->io_status == SMTP_IO_TOO_LONG)
		return SMTP_AUTH_LINE_TOO_LONG;
	if (x->io_status != SMTP_IO_OK)
		return SMTP_AUTH_IO;
	smtp_io_restart_timer(x->io);
	strip(&line, &len);
	if (len == 1 && line[0] == '*')
		return SMTP_AUTH_ABORTED;
	/* An empty line is an empty answer, never "=" (RFC 4954 sec. 4). */
	if (len == 1 && line[0] == '=')
		return SMTP_AUTH_BAD_BASE64;
	return decode(x, line, len, len_r);
}

/* first - the initial response, if any, through ops->start */
static enum smtp_auth_status first(struct exchange *x, const char *mechanism,
				   const char *response, const char **out,
				   size_t *out_len)
{
	enum smtp_auth_status st;
	size_t len = 0;

	if (response == NULL)
		return x->ops->start(x->ctx, mechanism, NULL, 0, out, out_len);
	st = decode(x, response, strlen(response), &len);
	if (st != SMTP_AUTH_OK)
		return st;
	if (x->plain && !plain_shape_ok(x->buf, len))
		return SMTP_AUTH_SPLIT;
	x->plain = false;
	return x->ops->start(x->ctx, mechanism, x->buf, len, out, out_len);
}

enum smtp_auth_status smtp_auth_exchange(struct smtp_io *io,
					 const struct smtp_auth_ops *ops,
					 void *ctx, const char *mechanism,
					 const char *response,
					 enum smtp_io_status *io_status_r)
{
	struct exchange x = {.io = io, .ops = ops, .ctx = ctx};
	enum smtp_auth_status st;
	const char *out = NULL;
	size_t out_len = 0, len = 0;

	x.plain = strcmp(mechanism, "PLAIN") == 0;
	st = first(&x, mechanism, response, &out, &out_len);
	for (int round = 0; st == SMTP_AUTH_CONTINUE; round++) {
		if (round == MAX_ROUNDS) {
			st = SMTP_AUTH_BADPROT;
			break;
		}
		challenge(&x, out, out_len);
		st = answer(&x, &len);
		if (st != SMTP_AUTH_OK)
			break;
		if (x.plain && !plain_shape_ok(x.buf, len)) {
			st = SMTP_AUTH_SPLIT;
			break;
		}
		x.plain = false;
		st = ops->step(ctx, x.buf, len, &out, &out_len);
	}
	*io_status_r = x.io_status;
	wipe(&x);
	free(x.buf);
	return st;
}
