/*
 * fuzz-session.c - a whole SMTP or LMTP session fed from memory
 *
 * Octets 0 to 2 pick the settings (LMTP, SMTPUTF8, decode_data, limits,
 * AUTH and TLS requirements), the handler, whether its handle_PROXY lets
 * the session start, and how the client's octets are cut into reads; the
 * rest is everything the client sends.  The session
 * runs to its end through a memory stream, as the unit tests' dialogues
 * do, with AUTH and STARTTLS as far as they exist.  Properties: the
 * session ends, every reply line is "ddd" plus " " or "-" and ends in
 * CRLF, and the content a handler reads is the size it was told.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "aiosmtpd/handler.h"
#include "fuzz.h"
#include "log.h"
#include "memstream.h"
#include "smtp_io.h"
#include "smtp_session.h"
#include "spool.h"

/* --- a handler with every hook, answering from the input ------------------ */

static const char *pick(const char *arg, const char *reply)
{
	return arg != NULL && arg[0] == 'x' ? reply : NULL;
}

static const char *h_helo(void *c, struct aiosmtpd_session *s,
			  struct aiosmtpd_envelope *e, const char *name)
{
	return pick(name, "550 no");
}

static const char *h_ehlo(void *c, struct aiosmtpd_session *s,
			  struct aiosmtpd_envelope *e, const char *name,
			  const char *responses)
{
	FUZZ_CHECK(strncmp(responses, "250-", 4) == 0);
	return pick(name, "250-x\r\n250 HELP");
}

static const char *h_mail(void *c, struct aiosmtpd_session *s,
			  struct aiosmtpd_envelope *e, const char *address,
			  const char *const *options, size_t n)
{
	FUZZ_CHECK(e->mail_from == NULL);
	return pick(address, "451 later");
}

static const char *h_rcpt(void *c, struct aiosmtpd_session *s,
			  struct aiosmtpd_envelope *e, const char *address,
			  const char *const *options, size_t n)
{
	FUZZ_CHECK(e->mail_from != NULL);
	return pick(address, "550 5.7.1 Unable to relay");
}

static const char *h_data(void *c, struct aiosmtpd_session *s,
			  struct aiosmtpd_envelope *e)
{
	char buf[512];
	uint64_t total = 0;
	ssize_t n;

	FUZZ_CHECK(e->n_rcpt_tos > 0 && e->content != NULL);
	for (int pass = 0; pass < 2; pass++) {
		total = 0;
		while ((n = aiosmtpd_content_read(e->content, buf,
						  sizeof(buf))) > 0)
			total += (uint64_t)n;
		FUZZ_CHECK(n == 0 && total == e->content_size);
		FUZZ_CHECK(aiosmtpd_content_rewind(e->content) == 0);
	}
	if (s->lmtp && e->n_rcpt_tos == 2)
		return "250 one\r\n452 two";
	return total % 3 == 0 ? "250 2.0.0 queued" : NULL;
}

static const char *h_simple(void *c, struct aiosmtpd_session *s,
			    struct aiosmtpd_envelope *e)
{
	return NULL;
}

static const char *h_vrfy(void *c, struct aiosmtpd_session *s,
			  struct aiosmtpd_envelope *e, const char *address)
{
	return pick(address, "250 <x@y>");
}

static const char *h_noop(void *c, struct aiosmtpd_session *s,
			  struct aiosmtpd_envelope *e, const char *arg)
{
	return pick(arg, "250 noop");
}

static bool h_proxy(void *c, struct aiosmtpd_session *s,
		    const struct aiosmtpd_proxy_data *p)
{
	return p->src_port % 2 == 0;
}

static const struct aiosmtpd_handler every_hook = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
	.handle_HELO = h_helo,
	.handle_EHLO = h_ehlo,
	.handle_NOOP = h_noop,
	.handle_QUIT = h_simple,
	.handle_VRFY = h_vrfy,
	.handle_MAIL = h_mail,
	.handle_RCPT = h_rcpt,
	.handle_DATA = h_data,
	.handle_RSET = h_simple,
	.handle_PROXY = h_proxy,
};

static const struct aiosmtpd_handler no_hooks = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
};

/* --- settings from two octets ----------------------------------------------
 */

static void settings(uint8_t a, uint8_t b, struct smtp_settings *set)
{
	static const struct smtp_call_limit limits[] = {{"NOOP", 2},
							{"RCPT", 3}};
	static const uint64_t sizes[] = {33554432, 0, 40, 1000};

	smtp_settings_init(set);
	set->hostname = "mx.fuzz";
	set->ident = "fuzz";
	set->lmtp = a & 0x01;
	set->smtputf8 = a & 0x02;
	set->decode_data = a & 0x04;
	set->data_size_limit = sizes[(a >> 3) & 3];
	set->call_limit_enabled = a & 0x20;
	set->call_limit_default = 4;
	set->call_limits = limits;
	set->n_call_limits = 2;
	set->auth_required = a & 0x40;
	set->auth_require_tls = !(a & 0x80);
	set->tls_available = b & 0x01;
	set->require_starttls = b & 0x02;
	set->max_recipients = b & 0x04 ? 2 : 0;
	set->local_part_limit = b & 0x08 ? 3 : 0;
	set->command_size_limit = b & 0x10 ? 64 : 512;
}

/* check_replies - every line "ddd" then ' ' or '-', ending in CRLF */
static void check_replies(const struct sbuf *out)
{
	const char *p = out->data, *end = out->data + out->len, *nl;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		FUZZ_CHECK(nl != NULL && nl - p >= 5 && nl[-1] == '\r');
		FUZZ_CHECK(p[0] >= '2' && p[0] <= '5' && p[1] >= '0' &&
			   p[1] <= '9' && p[2] >= '0' && p[2] <= '9');
		FUZZ_CHECK(p[3] == ' ' || p[3] == '-');
		p = nl + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int ends[] = {0, 0, ETIMEDOUT, ECANCELED};
	struct aiosmtpd_proxy_data pd = {.version = 2,
					 .command = 1,
					 .family = 1,
					 .protocol = 1,
					 .src_addr = "192.0.2.1",
					 .src_port = 4001};
	struct aiosmtpd_session peer = {.id = "FUZZ",
					.peer_family = AF_INET,
					.peer_addr = "127.0.0.1",
					.peer_port = 4000};
	struct smtp_settings set;
	struct memstream ms;
	struct spool *spool;
	struct smtp_session *s;
	struct smtp_io *io;
	uint8_t c;

	if (size < 3)
		return 0;
	log_set_level(LOG_LEVEL_ERROR);
	settings(data[0], data[1], &set);
	c = data[2];
	memstream_init(&ms, (const char *)data + 3, size - 3,
		       ((c >> 1) & 7) == 0 ? 0 : 1u << (((c >> 1) & 7) - 1));
	ms.fail_read_errno = ends[(c >> 4) & 3];
	pd.src_port += (c >> 6) & 1;
	spool = spool_new(NULL);
	io = smtp_io_new(&memstream_ops, &ms);
	s = smtp_session_new(&set, (c & 1) ? &no_hooks : &every_hook, NULL, io,
			     spool, &peer);
	if (smtp_session_proxy(s, &pd)) {
		(void)smtp_session_run(s);
		/* It read everything, or it ended on a reply (QUIT, limits). */
		FUZZ_CHECK(ms.pos == ms.in_len || ms.out.len > 0);
	} else {
		FUZZ_CHECK(ms.pos == 0 && ms.out.len == 0);
	}
	check_replies(&ms.out);
	smtp_session_free(&s);
	smtp_io_free(&io);
	spool_free(&spool);
	memstream_free(&ms);
	return 0;
}
