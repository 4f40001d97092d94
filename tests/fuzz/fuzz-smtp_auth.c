/*
 * fuzz-smtp_auth.c - AUTH decoding: base64 and whole exchanges
 *
 * Octet 0 picks what runs.  With bit 0 set, the rest is given to the
 * base64 decoder as a client's answer, and encoded as raw octets.
 * Otherwise the rest is an AUTH exchange: octet 1 picks the mechanism,
 * whether there is an initial response (then the input's first line is
 * it) and how the client's octets are cut into reads; what follows is
 * everything the client answers to the 334 challenges.  The back end is a
 * model that offers PLAIN, LOGIN and a mechanism whose challenges are
 * binary.
 *
 * Properties: decoding is strict (only whole quanta of the alphabet, and
 * its output is no longer than 3/4 of the input) and inverts encoding;
 * the exchange ends in a final status, and unless the connection failed
 * it has a reply; every line sent is "334 " and base64 that decodes to
 * the challenge the back end gave; the back end only ever sees decoded
 * octets of the right length, and PLAIN only with its two NULs.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "memstream.h"
#include "sbuf.h"
#include "smtp_auth.h"
#include "smtp_io.h"

/* --- the back end: a model of SASL --------------------------------------- */

struct model {
	const char *mechanism;
	unsigned rounds;
	uint8_t challenge[64]; /* the last challenge given, binary */
	size_t challenge_len;
	struct sbuf given; /* every challenge, in order */
};

static const char *m_mechanisms(void *ctx)
{
	(void)ctx;
	return "LOGIN PLAIN XBINARY";
}

/* give - a challenge made of the octets the client last sent, so that
 * every octet value (NUL, CR, LF) goes through the encoder */
static enum smtp_auth_status give(struct model *m, const char *from,
				  size_t len, const char **out, size_t *out_len)
{
	m->challenge_len = len < sizeof(m->challenge) ? len
						       : sizeof(m->challenge);
	if (m->challenge_len > 0)
		memcpy(m->challenge, from, m->challenge_len);
	sbuf_append(&m->given, m->challenge, m->challenge_len);
	*out = (const char *)m->challenge;
	*out_len = m->challenge_len;
	return SMTP_AUTH_CONTINUE;
}

static enum smtp_auth_status m_step(void *ctx, const char *response,
				    size_t len, const char **out,
				    size_t *out_len)
{
	struct model *m = ctx;

	FUZZ_CHECK(response != NULL && response[len] == '\0');
	m->rounds++;
	if (strcmp(m->mechanism, "PLAIN") == 0) {
		FUZZ_CHECK(m->rounds == 1);
		FUZZ_CHECK(memchr(response, '\0', len) != NULL);
		return len % 2 ? SMTP_AUTH_OK : SMTP_AUTH_BADAUTH;
	}
	if (strcmp(m->mechanism, "LOGIN") == 0) {
		if (m->rounds == 1)
			return give(m, "Password:", 9, out, out_len);
		return len == 6 && memcmp(response, "secret", 6) == 0
			       ? SMTP_AUTH_OK
			       : SMTP_AUTH_BADAUTH;
	}
	/* XBINARY: a round per octet of the first answer's first octet,
	 * at most eight, each challenge echoing the answer */
	if (m->rounds >= 8 || (len > 0 && (uint8_t)response[0] < 0x20))
		return len > 0 && response[0] == 'k' ? SMTP_AUTH_OK
						      : SMTP_AUTH_BADPROT;
	return give(m, response, len, out, out_len);
}

static enum smtp_auth_status m_start(void *ctx, const char *mechanism,
				     const char *response, size_t len,
				     const char **out, size_t *out_len)
{
	struct model *m = ctx;

	m->mechanism = mechanism;
	if (response == NULL) {
		if (strcmp(mechanism, "LOGIN") == 0)
			return give(m, "Username:", 9, out, out_len);
		return give(m, "", 0, out, out_len);
	}
	FUZZ_CHECK(response[len] == '\0');
	m->rounds = 0;
	return m_step(ctx, response, len, out, out_len);
}

static const char *m_user(void *ctx)
{
	(void)ctx;
	return "fuzz";
}

static const struct smtp_auth_ops model_ops = {.mechanisms = m_mechanisms,
					       .start = m_start,
					       .step = m_step,
					       .user = m_user};

/* --- properties ------------------------------------------------------------ */

static bool is_base64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

/* check_base64 - strict decoding, and decoding inverts encoding; every
 * buffer is exactly the size the header asks for, so that ASan sees a
 * write past it */
static void check_base64(const char *in, size_t len)
{
	char *out = malloc(len * 3 / 4 + 1);
	char *enc = malloc(smtp_base64_encoded_len(len));
	char *back;
	size_t out_len = 0, enc_len, back_len = 0;

	if (smtp_base64_decode(in, len, out, &out_len) == 0) {
		FUZZ_CHECK(len % 4 == 0 && out_len <= len * 3 / 4);
		FUZZ_CHECK(out[out_len] == '\0');
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK(is_base64(in[i]));
	}
	enc_len = smtp_base64_encode(in, len, enc);
	FUZZ_CHECK(enc_len + 1 == smtp_base64_encoded_len(len));
	back = malloc(enc_len * 3 / 4 + 1);
	FUZZ_CHECK(smtp_base64_decode(enc, enc_len, back, &back_len) == 0);
	FUZZ_CHECK(back_len == len && memcmp(back, in, len) == 0);
	free(out);
	free(enc);
	free(back);
}

/* check_challenges - every line is "334 " and the base64 of the
 * challenge given, in order */
static void check_challenges(const struct sbuf *out, const struct sbuf *given)
{
	const char *p = out->data, *end = out->data + out->len, *nl;
	char *dec = malloc(out->len + 1);
	size_t pos = 0, dec_len;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		FUZZ_CHECK(nl != NULL && nl - p >= 5 && nl[-1] == '\r');
		FUZZ_CHECK(memcmp(p, "334 ", 4) == 0);
		FUZZ_CHECK(smtp_base64_decode(p + 4, (size_t)(nl - 1 - p - 4),
					      dec, &dec_len) == 0);
		FUZZ_CHECK(pos + dec_len <= given->len &&
			   memcmp(dec, given->data + pos, dec_len) == 0);
		pos += dec_len;
		p = nl + 1;
	}
	FUZZ_CHECK(pos == given->len);
	free(dec);
}

static void exchange(const uint8_t *data, size_t size)
{
	static const char *const mechanisms[] = {"PLAIN", "LOGIN", "XBINARY",
						 "PLAIN"};
	struct memstream ms;
	struct model m = {0};
	enum smtp_io_status io_status;
	enum smtp_auth_status st;
	struct smtp_io *io;
	const char *nl;
	char *initial = NULL;
	size_t n;
	uint8_t c;

	if (size < 1)
		return;
	c = data[0];
	memstream_init(&ms, (const char *)data + 1, size - 1, (c >> 3) & 7);
	if (c & 0x04) {
		/* the initial response: the first line, as the command
		 * parser hands it on (no NUL, no line end) */
		nl = memchr(ms.in, '\n', ms.in_len);
		n = nl != NULL ? (size_t)(nl - ms.in) : ms.in_len;
		if (memchr(ms.in, '\0', n) != NULL) {
			memstream_free(&ms);
			return;
		}
		initial = strndup(ms.in, n);
		ms.pos = nl != NULL ? n + 1 : n;
	}
	sbuf_init(&m.given, 64);
	io = smtp_io_new(&memstream_ops, &ms);
	st = smtp_auth_exchange(io, &model_ops, &m, mechanisms[c & 3], initial,
				&io_status);
	(void)smtp_io_flush(io);
	FUZZ_CHECK(st != SMTP_AUTH_CONTINUE);
	if (st != SMTP_AUTH_IO) {
		const char *reply = smtp_auth_reply(st);

		FUZZ_CHECK(reply != NULL && reply[0] >= '2' && reply[0] <= '5');
	} else {
		/* Only running out of input ends it without a reply. */
		FUZZ_CHECK(ms.pos == ms.in_len);
	}
	check_challenges(&ms.out, &m.given);
	smtp_io_free(&io);
	memstream_free(&ms);
	sbuf_free(&m.given);
	free(initial);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		check_base64((const char *)data + 1, size - 1);
	else
		exchange(data + 1, size - 1);
	return 0;
}
