/*
 * forward.c - the LMTP and Proxy handlers: forward to a next hop
 *
 * Both keep one connection to the next hop per client session, opened at
 * the first RCPT of a transaction and kept in the session's handler_data
 * until the session ends.  Each RCPT is asked of the next hop before we
 * answer it, so a recipient the next hop refuses is refused to our client
 * with the next hop's own reply, at RCPT time.  After the final dot the
 * message goes on with a Received header on top (and, for Proxy, the
 * X-Peer header aiosmtpd's Proxy adds), normalised and dot-stuffed by
 * smtp_client, and our reply is the next hop's:
 *
 *   - to an LMTP client, one reply per recipient, in RCPT order;
 *   - to an SMTP client, 250 only when every recipient was accepted, the
 *     first 5xx when every one failed for good, the first 4xx when none
 *     was accepted, otherwise 451: there is no queue, so a message that
 *     reached only some recipients cannot be finished later by us.
 *
 * A next hop that is down, slow or gone gives a 4xx, never a 250 (fix:
 * aiosmtpd's Proxy answers 250 whatever happened to the message).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "handler.h"
#include "log.h"
#include "received.h"
#include "sbuf.h"
#include "smtp_client.h"
#include "spool.h"

#define REPLY_PARTIAL                                                          \
	"451 4.3.0 Not every recipient accepted the message; nothing was "     \
	"queued, try again later"
#define REPLY_INTERNAL "451 4.3.0 Error: local error in processing"
#define REPLY_NO_UTF8 "553 5.6.7 Next hop does not support SMTPUTF8"
#define REPLY_GARBLED "451 4.4.2 Next hop protocol error, try again later"

struct forward {
	struct smtp_client_conf client;
	bool x_peer; /* aiosmtpd's Proxy header */
};

enum forward_state {
	FORWARD_IDLE,    /* no transaction open at the next hop */
	FORWARD_MAIL,    /* MAIL accepted by the next hop */
	FORWARD_REFUSED, /* every RCPT gets the stored reply */
};

/* One client session's link to the next hop. */
struct forward_session {
	struct smtp_client *client;
	enum forward_state state;
	size_t n_accepted;       /* recipients the next hop accepted */
	struct smtp_reply reply; /* the last reply, returned by hooks */
	struct sbuf answer;      /* the DATA answer put together */
};

/* --- set-up -------------------------------------------------------------- */

/* forward_options - the "key=value" words after the target */
static struct forward *forward_options(struct forward *f, int argc,
				       char *const argv[], const char **error_r)
{
	for (int i = 0; i < argc; i++) {
		if (smtp_client_conf_set(&f->client, argv[i], error_r) < 0)
			goto fail;
	}
	if (smtp_client_conf_ready(&f->client, error_r) < 0)
		goto fail;
	return f;
fail:
	smtp_client_conf_free(&f->client);
	free(f);
	return NULL;
}

static void *lmtp_init(int argc, char *const argv[], const char **error_r)
{
	struct forward *f;

	if (argc < 1) {
		*error_r = "LMTP usage: TARGET [key=value ...] (TARGET is "
			   "unix:/path or host:port)";
		return NULL;
	}
	if (smtp_client_check_target(argv[0], error_r) < 0)
		return NULL;
	f = xcalloc(1, sizeof(*f));
	smtp_client_conf_init(&f->client);
	f->client.target = xstrdup(argv[0]);
	f->client.lmtp = true;
	return forward_options(f, argc - 1, argv + 1, error_r);
}

/* proxy_init - aiosmtpd's "Proxy HOST PORT", with our options after */
static void *proxy_init(int argc, char *const argv[], const char **error_r)
{
	struct forward *f;
	struct sbuf target;
	char *end;
	long port;

	if (argc < 2) {
		*error_r = "Proxy usage: HOST PORT [key=value ...]";
		return NULL;
	}
	port = strtol(argv[1], &end, 10);
	if (*argv[1] == '\0' || *end != '\0' || port < 1 || port > 65535) {
		*error_r = "Proxy: PORT must be a number from 1 to 65535";
		return NULL;
	}
	f = xcalloc(1, sizeof(*f));
	smtp_client_conf_init(&f->client);
	sbuf_init(&target, 64);
	if (strchr(argv[0], ':') != NULL)
		sbuf_printf(&target, "[%s]:%ld", argv[0], port);
	else
		sbuf_printf(&target, "%s:%ld", argv[0], port);
	f->client.target = sbuf_detach(&target);
	f->x_peer = true;
	return forward_options(f, argc - 2, argv + 2, error_r);
}

static void forward_cleanup(void *ctx)
{
	struct forward *f = ctx;

	smtp_client_conf_free(&f->client);
	free(f);
}

/* --- the next hop's transaction ------------------------------------------ */

static struct forward_session *session_of(struct aiosmtpd_session *session)
{
	struct forward_session *fs = session->handler_data;

	if (fs == NULL) {
		fs = xcalloc(1, sizeof(*fs));
		smtp_reply_init(&fs->reply);
		sbuf_init(&fs->answer, 256);
		session->handler_data = fs;
	}
	return fs;
}

static void drop_client(struct forward_session *fs)
{
	smtp_client_free(&fs->client);
	fs->state = FORWARD_IDLE;
}

/* end_transaction - leave the next hop ready for another MAIL */
static void end_transaction(struct forward_session *fs)
{
	if (fs->client != NULL && fs->state == FORWARD_MAIL &&
	    smtp_client_command(fs->client, &fs->reply, "RSET") != 250)
		drop_client(fs);
	if (fs->client != NULL && !smtp_client_usable(fs->client))
		drop_client(fs);
	fs->state = FORWARD_IDLE;
	fs->n_accepted = 0;
}

/*
 * pass_on - make a next hop's reply fit to be our own
 *
 * Only 2xx, 4xx and 5xx answer a command; anything else is the next hop
 * not speaking SMTP.  A 421 closes the next hop's connection, not ours,
 * so our client gets it as 451.  Returns the reply's code.
 */
static int pass_on(struct smtp_reply *reply)
{
	int class = reply->code / 100;
	char *line = reply->text.data;

	if (class != 2 && class != 4 && class != 5) {
		smtp_reply_set(reply, REPLY_GARBLED);
		return reply->code;
	}
	if (reply->code != 421)
		return reply->code;
	for (; line != NULL; line = strstr(line + 3, "\r\n")) {
		if (line != reply->text.data)
			line += 2;
		memcpy(line, "451", 3);
	}
	reply->code = 451;
	return reply->code;
}

static bool has_option(const struct aiosmtpd_envelope *e, const char *opt)
{
	for (size_t i = 0; i < e->n_mail_options; i++) {
		if (strcmp(e->mail_options[i], opt) == 0)
			return true;
	}
	return false;
}

/* send_mail - MAIL FROM with the parameters the next hop understands */
static int send_mail(struct forward_session *fs,
		     const struct aiosmtpd_envelope *e)
{
	const char *from = e->mail_from;
	bool eight = has_option(e, "BODY=8BITMIME") &&
		     smtp_client_offers(fs->client, "8BITMIME");

	if (e->smtp_utf8 && !smtp_client_offers(fs->client, "SMTPUTF8")) {
		smtp_reply_set(&fs->reply, REPLY_NO_UTF8);
		return fs->reply.code;
	}
	if (strcmp(from, "<>") == 0)
		from = "";
	(void)smtp_client_command(fs->client, &fs->reply, "MAIL FROM:<%s>%s%s",
				  from, eight ? " BODY=8BITMIME" : "",
				  e->smtp_utf8 ? " SMTPUTF8" : "");
	return pass_on(&fs->reply);
}

/* begin_transaction - connect if needed and send MAIL; a connection kept
 * from an earlier message may have been closed by the next hop in the
 * meantime, so a broken one is replaced once */
static void begin_transaction(struct forward *f, struct forward_session *fs,
			      struct aiosmtpd_session *session,
			      const struct aiosmtpd_envelope *e)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused = fs->client != NULL;

		if (!reused)
			fs->client = smtp_client_connect(
				&f->client, session->local_name, session->id,
				&fs->reply);
		if (fs->client == NULL)
			break;
		if (send_mail(fs, e) / 100 == 2) {
			fs->state = FORWARD_MAIL;
			return;
		}
		if (smtp_client_usable(fs->client) || !reused)
			break;
		drop_client(fs);
	}
	if (fs->client != NULL && !smtp_client_usable(fs->client))
		drop_client(fs);
	fs->state = FORWARD_REFUSED;
}

/* --- hooks --------------------------------------------------------------- */

static const char *forward_mail(void *ctx, struct aiosmtpd_session *session,
				struct aiosmtpd_envelope *envelope,
				const char *address, const char *const *options,
				size_t n_options)
{
	/* A transaction that EHLO or a failed DATA left open ends here. */
	end_transaction(session_of(session));
	return NULL;
}

static const char *forward_rcpt(void *ctx, struct aiosmtpd_session *session,
				struct aiosmtpd_envelope *envelope,
				const char *address, const char *const *options,
				size_t n_options)
{
	struct forward_session *fs = session_of(session);

	if (fs->state == FORWARD_IDLE)
		begin_transaction(ctx, fs, session, envelope);
	if (fs->state == FORWARD_REFUSED)
		return fs->reply.text.data;
	(void)smtp_client_command(fs->client, &fs->reply, "RCPT TO:<%s>",
				  address);
	if (pass_on(&fs->reply) / 100 == 2) {
		fs->n_accepted++;
		return NULL;
	}
	if (!smtp_client_usable(fs->client)) {
		/* Every later RCPT gets the same answer. */
		drop_client(fs);
		fs->state = FORWARD_REFUSED;
	}
	return fs->reply.text.data;
}

static const char *forward_rset(void *ctx, struct aiosmtpd_session *session,
				struct aiosmtpd_envelope *envelope)
{
	end_transaction(session_of(session));
	return NULL;
}

/* A scan for the line X-Peer goes before. */
struct line_scan {
	uint64_t start; /* where the current line starts */
	uint64_t last;  /* where the last complete line started */
	uint64_t sep;   /* where a pending CR is */
	bool cr;
};

/* line_ended - a line ended with its separator at sep; true when it was
 * empty, which is where X-Peer goes */
static bool line_ended(struct line_scan *ls, uint64_t sep, uint64_t next)
{
	if (sep == ls->start)
		return true;
	ls->last = ls->start;
	ls->start = next;
	return false;
}

/* scan_byte - feed one octet at pos; true at the first empty line */
static bool scan_byte(struct line_scan *ls, char ch, uint64_t pos)
{
	if (ls->cr) {
		/* A CR ends a line whether or not LF follows. */
		ls->cr = false;
		if (ch == '\n')
			return line_ended(ls, ls->sep, pos + 1);
		if (line_ended(ls, ls->sep, pos))
			return true;
	}
	if (ch == '\r') {
		ls->cr = true;
		ls->sep = pos;
		return false;
	}
	return ch == '\n' && line_ended(ls, pos, pos + 1);
}

/* peer_line - where aiosmtpd's Proxy puts X-Peer: before the first empty
 * line, or else before the last line (Python's splitlines() rules: CRLF,
 * CR and LF end lines); 0, or -1 if the content cannot be read */
static int peer_line(struct spool *spool, uint64_t *offset_r)
{
	struct line_scan ls = {0};
	uint64_t pos = 0;
	const char *data;
	size_t len;
	int ret;

	spool_rewind(spool);
	while ((ret = spool_next(spool, &data, &len)) > 0) {
		for (size_t i = 0; i < len; i++, pos++) {
			if (scan_byte(&ls, data[i], pos)) {
				*offset_r = ls.start;
				return 0;
			}
		}
	}
	if (ret < 0)
		return -1;
	if (ls.cr && line_ended(&ls, ls.sep, pos)) {
		*offset_r = ls.start;
		return 0;
	}
	*offset_r = ls.start < pos ? ls.start : ls.last;
	return 0;
}

/* send_content - trace headers, then the message; X-Peer (Proxy only)
 * goes in at offset */
static int send_content(struct forward *f, struct smtp_client *client,
			const struct aiosmtpd_session *session,
			const struct aiosmtpd_envelope *envelope)
{
	struct spool *spool = spool_from_content(envelope->content);
	uint64_t offset = UINT64_MAX, pos = 0;
	struct sbuf head;
	const char *data;
	size_t len, n;
	int ret;

	if (f->x_peer && peer_line(spool, &offset) < 0)
		return -1;
	sbuf_init(&head, 512);
	received_header(&head, session, envelope, time(NULL), "\r\n");
	smtp_client_data(client, head.data, head.len);
	sbuf_reset(&head);
	sbuf_printf(&head, "X-Peer: %s\r\n", session->peer_addr);
	spool_rewind(spool);
	while ((ret = spool_next(spool, &data, &len)) > 0) {
		n = offset >= pos && offset - pos < len ? offset - pos : len;
		smtp_client_data(client, data, n);
		if (n < len) {
			smtp_client_data(client, head.data, head.len);
			smtp_client_data(client, data + n, len - n);
		}
		pos += len;
	}
	if (ret == 0 && offset != UINT64_MAX && offset >= pos)
		smtp_client_data(client, head.data, head.len);
	sbuf_free(&head);
	smtp_client_data_end(client);
	return ret;
}

/* log_results - the next hop's verdict on recipient i, or on every
 * recipient for i == SIZE_MAX (an SMTP next hop gives one for all) */
static void log_results(const struct forward *f,
			const struct aiosmtpd_session *session,
			const struct aiosmtpd_envelope *envelope, size_t i,
			const char *reply)
{
	size_t len = strcspn(reply, "\r\n");

	for (size_t r = 0; r < envelope->n_rcpt_tos; r++) {
		if (i != SIZE_MAX && r != i)
			continue;
		log_info("%s %s delivery to=<%s> relay=%s reply=\"%.*s\"",
			 session->id, session->peer_addr, envelope->rcpt_tos[r],
			 f->client.target, (int)len, reply);
	}
}

/* remember - keep the first reply of a kind */
static void remember(struct sbuf *first, const struct smtp_reply *reply)
{
	if (first->len == 0)
		sbuf_puts(first, reply->text.data);
}

/* collect_replies - read the replies to the final dot (one per accepted
 * recipient from an LMTP next hop, one in all from SMTP) and put the
 * answer to our client together in fs->answer, as the file comment says */
static const char *collect_replies(struct forward *f,
				   struct forward_session *fs,
				   const struct aiosmtpd_session *session,
				   const struct aiosmtpd_envelope *envelope)
{
	size_t n = f->client.lmtp ? fs->n_accepted : 1, ok = 0, perm = 0;
	bool per_rcpt = session->lmtp && f->client.lmtp;
	struct sbuf temp, fatal;
	int code;

	sbuf_reset(&fs->answer);
	sbuf_init(&temp, 128);
	sbuf_init(&fatal, 128);
	for (size_t i = 0; i < n; i++) {
		(void)smtp_client_read_reply(fs->client, &fs->reply);
		code = pass_on(&fs->reply);
		log_results(f, session, envelope, f->client.lmtp ? i : SIZE_MAX,
			    fs->reply.text.data);
		if (per_rcpt)
			sbuf_printf(&fs->answer, "%s%s", i > 0 ? "\r\n" : "",
				    fs->reply.text.data);
		if (code / 100 == 2) {
			ok++;
		} else if (code / 100 == 5) {
			perm++;
			remember(&fatal, &fs->reply);
		} else {
			remember(&temp, &fs->reply);
		}
	}
	if (!per_rcpt) {
		if (ok == n)
			sbuf_puts(&fs->answer, "250 OK");
		else if (ok > 0)
			sbuf_puts(&fs->answer, REPLY_PARTIAL);
		else
			sbuf_puts(&fs->answer,
				  perm == n ? fatal.data : temp.data);
	}
	sbuf_free(&temp);
	sbuf_free(&fatal);
	return fs->answer.data;
}

static const char *forward_data(void *ctx, struct aiosmtpd_session *session,
				struct aiosmtpd_envelope *envelope)
{
	struct forward *f = ctx;
	struct forward_session *fs = session_of(session);
	const char *answer;

	if (fs->state != FORWARD_MAIL || fs->client == NULL ||
	    fs->n_accepted != envelope->n_rcpt_tos) {
		log_error("%s forward: %zu recipients, %zu accepted by %s",
			  session->id, envelope->n_rcpt_tos, fs->n_accepted,
			  f->client.target);
		end_transaction(fs);
		return REPLY_INTERNAL;
	}
	if (smtp_client_command(fs->client, &fs->reply, "DATA") != 354) {
		/* The refusal is every recipient's; RSET would overwrite
		 * the reply, so it is kept aside first. */
		if (pass_on(&fs->reply) / 100 == 2)
			smtp_reply_set(&fs->reply, REPLY_GARBLED);
		sbuf_reset(&fs->answer);
		sbuf_puts(&fs->answer, fs->reply.text.data);
		end_transaction(fs);
		return fs->answer.data;
	}
	if (send_content(f, fs->client, session, envelope) < 0) {
		log_error("%s cannot read the message content: %m",
			  session->id);
		drop_client(fs);
		fs->n_accepted = 0;
		return REPLY_INTERNAL;
	}
	answer = collect_replies(f, fs, session, envelope);
	fs->state = FORWARD_IDLE;
	end_transaction(fs);
	return answer;
}

static void forward_close(void *ctx, struct aiosmtpd_session *session)
{
	struct forward_session *fs = session->handler_data;

	if (fs == NULL)
		return;
	smtp_client_quit(&fs->client);
	smtp_reply_free(&fs->reply);
	sbuf_free(&fs->answer);
	free(fs);
	session->handler_data = NULL;
}

const struct aiosmtpd_handler handler_lmtp = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
	.name = "LMTP",
	.init = lmtp_init,
	.cleanup = forward_cleanup,
	.handle_MAIL = forward_mail,
	.handle_RCPT = forward_rcpt,
	.handle_RSET = forward_rset,
	.handle_DATA = forward_data,
	.handle_CLOSE = forward_close,
};

const struct aiosmtpd_handler handler_proxy = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
	.name = "Proxy",
	.init = proxy_init,
	.cleanup = forward_cleanup,
	.handle_MAIL = forward_mail,
	.handle_RCPT = forward_rcpt,
	.handle_RSET = forward_rset,
	.handle_DATA = forward_data,
	.handle_CLOSE = forward_close,
};
