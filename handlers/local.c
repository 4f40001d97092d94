/*
 * local.c - the Maildir handler: local delivery, one Maildir per recipient
 *
 * -c Maildir PATH, or handler = { type = "maildir"; path = PATH; }.  Each
 * recipient's Maildir is PATH with %u (the local part), %d (the domain;
 * our host name for an address without one) and %% expanded, both parts
 * lower-cased.  The message is written once, durably, into the first
 * Maildir and hard-linked into the others (copied where they are on
 * another file system), so recipients who share a Maildir share one file.
 * Missing Maildirs are created (tmp, new, cur, mode 0700).
 *
 * Unlike the Mailbox handler, which keeps aiosmtpd's file format, the
 * file is the message as received with LF line ends, under a Return-Path
 * and a Received header, as a final delivery writes it.
 *
 * A recipient whose local part or domain could lead out of the intended
 * directory (a '/', a leading '.', control characters) is refused at RCPT.
 *
 * A message whose recipients all share one Maildir is written while it
 * arrives, into an unnamed file in its tmp/ (the spool's tap), and only
 * synced and linked at the final dot; others are spooled first.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "handler.h"
#include "log.h"
#include "maildir.h"
#include "received.h"
#include "sbuf.h"
#include "spool.h"

#define REPLY_BAD_RCPT "550 5.1.3 Recipient address not deliverable here"
#define REPLY_LOCAL "451 4.3.0 Error: local error in processing"
#define REPLY_FULL "452 4.3.1 Insufficient system storage"

struct local {
	char *path; /* the template */
};

/* --- the path template --------------------------------------------------- */

/* check_template - only %u, %d and %% may follow a '%' */
static int check_template(const char *path, const char **error_r)
{
	if (*path == '\0') {
		*error_r = "Maildir: the path must not be empty";
		return -1;
	}
	for (const char *p = strchr(path, '%'); p != NULL;
	     p = strchr(p + 2, '%')) {
		if (p[1] != 'u' && p[1] != 'd' && p[1] != '%') {
			*error_r = "Maildir: the path may hold only %u (local "
				   "part), %d (domain) and %%";
			return -1;
		}
	}
	return 0;
}

/* safe_part - a local part or domain that is one harmless path name */
static bool safe_part(const char *p, size_t len)
{
	if (len == 0 || p[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static void put_lower(struct sbuf *out, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		sbuf_putc(out, p[i] >= 'A' && p[i] <= 'Z'
				       ? (char)(p[i] - 'A' + 'a')
				       : p[i]);
}

/* expand - the recipient's Maildir; -1 if the address is unsafe there */
static int expand(const char *path, const char *address, const char *local_name,
		  struct sbuf *out)
{
	const char *at = strrchr(address, '@');
	const char *domain = at != NULL ? at + 1 : local_name;
	size_t ulen = at != NULL ? (size_t)(at - address) : strlen(address);
	size_t dlen = strlen(domain);

	for (const char *p = path; *p != '\0'; p++) {
		if (*p != '%') {
			sbuf_putc(out, *p);
			continue;
		}
		p++;
		if (*p == 'u' && safe_part(address, ulen))
			put_lower(out, address, ulen);
		else if (*p == 'd' && safe_part(domain, dlen))
			put_lower(out, domain, dlen);
		else if (*p == '%')
			sbuf_putc(out, '%');
		else
			return -1;
	}
	return 0;
}

/* --- writing the file ---------------------------------------------------- */

struct local_message {
	const struct aiosmtpd_session *session;
	const struct aiosmtpd_envelope *envelope;
};

/* lf_put - content with CRLF, bare CR and bare LF all written as LF,
 * appended to out; *cr carries a CR at the end of one piece to the next.
 * Runs between CRs are copied whole: a call per octet was half of a
 * worker's time on 1 MiB messages. */
static void lf_put(struct sbuf *out, const char *data, size_t len, bool *cr)
{
	const char *p = data, *end = data + len, *r;

	if (len == 0)
		return;
	if (*cr && *p == '\n')
		p++; /* the LF of a CRLF split between two pieces */
	*cr = false;
	while (p < end) {
		r = memchr(p, '\r', (size_t)(end - p));
		if (r == NULL) {
			sbuf_append(out, p, (size_t)(end - p));
			break;
		}
		sbuf_append(out, p, (size_t)(r - p));
		sbuf_putc(out, '\n');
		p = r + 1;
		if (p == end)
			*cr = true;
		else if (*p == '\n')
			p++;
	}
}

/* to_lf - the spooled content through lf_put() */
static int to_lf(struct spool *spool, maildir_out_fn *out, void *out_ctx)
{
	struct sbuf buf;
	const char *data;
	bool cr = false;
	size_t len;
	int ret;

	sbuf_init(&buf, 64 * 1024 + 16);
	spool_rewind(spool);
	while ((ret = spool_next(spool, &data, &len)) > 0) {
		lf_put(&buf, data, len, &cr);
		if (out(out_ctx, buf.data, buf.len) != 0)
			ret = -1;
		sbuf_reset(&buf);
		if (ret < 0)
			break;
	}
	sbuf_free(&buf);
	return ret < 0 ? -1 : 0;
}

/* put_head - the Return-Path and Received headers */
static void put_head(struct sbuf *out, const struct aiosmtpd_session *session,
		     const struct aiosmtpd_envelope *envelope)
{
	received_return_path(out, envelope, "\n");
	received_header(out, session, envelope, time(NULL), "\n");
}

static int write_message(void *ctx, maildir_out_fn *out, void *out_ctx)
{
	struct local_message *m = ctx;
	struct sbuf head;
	int ret;

	sbuf_init(&head, 512);
	put_head(&head, m->session, m->envelope);
	ret = out(out_ctx, head.data, head.len);
	sbuf_free(&head);
	if (ret != 0)
		return -1;
	return to_lf(spool_from_content(m->envelope->content), out, out_ctx);
}

/* --- delivery ------------------------------------------------------------ */

/* One distinct Maildir of a message and what became of it. */
struct target {
	char *dir;
	char *file; /* the delivered file; NULL until, or on failure */
	int error;  /* errno of a failure */
};

struct delivery {
	struct target *targets;
	size_t n;
	size_t *of_rcpt; /* each recipient's target */
};

static void delivery_plan(struct delivery *d, const struct local *l,
			  const struct aiosmtpd_session *session,
			  const struct aiosmtpd_envelope *e)
{
	struct sbuf dir;
	size_t t;

	d->targets = xcalloc(e->n_rcpt_tos, sizeof(*d->targets));
	d->of_rcpt = xcalloc(e->n_rcpt_tos, sizeof(*d->of_rcpt));
	d->n = 0;
	sbuf_init(&dir, 256);
	for (size_t i = 0; i < e->n_rcpt_tos; i++) {
		sbuf_reset(&dir);
		if (expand(l->path, e->rcpt_tos[i], session->local_name, &dir) <
		    0)
			log_panic("%s Maildir: <%s> passed RCPT but does not "
				  "expand",
				  session->id, e->rcpt_tos[i]);
		for (t = 0; t < d->n; t++) {
			if (strcmp(d->targets[t].dir, dir.data) == 0)
				break;
		}
		if (t == d->n)
			d->targets[d->n++].dir = xstrdup(dir.data);
		d->of_rcpt[i] = t;
	}
	sbuf_free(&dir);
}

static void delivery_free(struct delivery *d)
{
	for (size_t t = 0; t < d->n; t++) {
		free(d->targets[t].dir);
		free(d->targets[t].file);
	}
	free(d->targets);
	free(d->of_rcpt);
}

/* deliver_one - the message in one Maildir: a link to the first copy
 * where possible, else a copy of its own */
static void deliver_one(struct target *t, const char *first,
			struct local_message *m)
{
	const char *error, *id = m->session->id;

	if (maildir_create(t->dir, &error) < 0) {
		t->error = errno;
		return;
	}
	if (first != NULL &&
	    maildir_store_link(t->dir, id, first, &t->file) == 0)
		return;
	if (maildir_store(t->dir, id, write_message, m, &t->file) < 0)
		t->error = errno;
}

/* failure_reply - what a recipient whose Maildir failed is told */
static const char *failure_reply(int error)
{
	return error == ENOSPC || error == EDQUOT ? REPLY_FULL : REPLY_LOCAL;
}

/* rollback - an SMTP client gets one reply for every recipient, so a
 * message that reached only some of them is taken back from the others
 * before the client is told to try again */
static void rollback(struct delivery *d, const char *id)
{
	for (size_t t = 0; t < d->n; t++) {
		if (d->targets[t].file == NULL)
			continue;
		if (unlink(d->targets[t].file) < 0)
			log_warning("%s cannot take back %s: %m", id,
				    d->targets[t].file);
		XFREE(d->targets[t].file);
	}
}

/* answer - NULL when every Maildir has the message; else one reply, or
 * on LMTP one per recipient, in buf */
static const char *answer(struct delivery *d,
			  const struct aiosmtpd_session *session,
			  const struct aiosmtpd_envelope *e, struct sbuf *buf)
{
	int first_error = 0;

	for (size_t t = 0; t < d->n && first_error == 0; t++)
		first_error = d->targets[t].error;
	if (first_error == 0)
		return NULL;
	if (!session->lmtp) {
		rollback(d, session->id);
		return failure_reply(first_error);
	}
	for (size_t i = 0; i < e->n_rcpt_tos; i++) {
		int error = d->targets[d->of_rcpt[i]].error;

		sbuf_printf(buf, "%s%s", i > 0 ? "\r\n" : "",
			    error != 0 ? failure_reply(error) : "250 OK");
	}
	return buf->data;
}

/* --- writing while the message arrives ----------------------------------- */

#define STREAM_BLOCK (64 * 1024)

/* A message for one Maildir, written as it arrives: the Maildir tap.  A
 * failure is kept for handle_DATA to answer, as a spooled message's
 * would be, rather than failing the spool with a generic 451. */
struct local_stream {
	int fd;
	char *dir; /* for the log */
	struct sbuf buf; /* converted content not yet written */
	bool cr;
	int error; /* errno of a failure, already logged */
	const char *log_id;
};

/* stream_flush - write out buf; a failure is logged and kept */
static void stream_flush(struct local_stream *st)
{
	if (maildir_write(st->fd, st->buf.data, st->buf.len) < 0) {
		st->error = errno != 0 ? errno : EIO;
		maildir_log_failure(st->log_id, "write", st->dir);
	}
	sbuf_reset(&st->buf);
}

static void stream_free(struct local_stream *st)
{
	if (st->fd >= 0)
		close(st->fd);
	free(st->dir);
	sbuf_free(&st->buf);
	free(st);
}

static struct local_stream *stream_new(int fd, const char *dir,
				       const struct aiosmtpd_session *session)
{
	struct local_stream *st = xcalloc(1, sizeof(*st));

	st->fd = fd;
	st->dir = xstrdup(dir);
	st->log_id = session->id;
	sbuf_init(&st->buf, STREAM_BLOCK + 512);
	return st;
}

/* stream_open - a stream into dir, or NULL to spool (a file system
 * without unnamed files); a Maildir that cannot be created is a failure
 * kept for handle_DATA, logged here and only here */
static struct local_stream *stream_open(const char *dir,
					const struct aiosmtpd_session *session,
					const struct aiosmtpd_envelope *envelope)
{
	struct local_stream *st;
	const char *error;
	int fd;

	if (maildir_create(dir, &error) < 0) {
		st = stream_new(-1, dir, session);
		st->error = errno != 0 ? errno : EIO;
		return st;
	}
	if ((fd = maildir_open_unnamed(dir)) < 0)
		return NULL;
	st = stream_new(fd, dir, session);
	put_head(&st->buf, session, envelope);
	return st;
}

/* local_open - stream only when every recipient shares one Maildir: with
 * several, each is written (or linked) on its own from the spool */
static void *local_open(void *ctx, const struct aiosmtpd_session *session,
			const struct aiosmtpd_envelope *envelope)
{
	struct local_stream *st = NULL;
	struct delivery d;

	delivery_plan(&d, ctx, session, envelope);
	if (d.n == 1)
		st = stream_open(d.targets[0].dir, session, envelope);
	delivery_free(&d);
	return st;
}

static int local_write(void *state, const char *data, size_t len)
{
	struct local_stream *st = state;

	if (st->error != 0)
		return 0;
	lf_put(&st->buf, data, len, &st->cr);
	if (st->buf.len >= STREAM_BLOCK)
		stream_flush(st);
	return 0;
}

static void local_discard(void *state)
{
	stream_free(state);
}

const struct spool_tap local_maildir_tap = {
	.open = local_open,
	.write = local_write,
	.discard = local_discard,
};

/* stream_finish - the streamed message synced and linked into t's new/ */
static void stream_finish(struct local_stream *st, struct target *t)
{
	if (st->error == 0)
		stream_flush(st);
	if (st->error == 0 &&
	    maildir_commit_unnamed(t->dir, st->fd, st->log_id, &t->file) < 0)
		st->error = errno != 0 ? errno : EIO;
	t->error = st->error;
	stream_free(st);
}

/* --- hooks --------------------------------------------------------------- */

static void *local_init(int argc, char *const argv[], const char **error_r)
{
	struct local *l;

	if (argc != 1) {
		*error_r = "Maildir usage: PATH (may hold %u, %d and %%)";
		return NULL;
	}
	if (check_template(argv[0], error_r) < 0)
		return NULL;
	l = xcalloc(1, sizeof(*l));
	l->path = xstrdup(argv[0]);
	return l;
}

static void local_cleanup(void *ctx)
{
	struct local *l = ctx;

	free(l->path);
	free(l);
}

static const char *local_rcpt(void *ctx, struct aiosmtpd_session *session,
			      struct aiosmtpd_envelope *envelope,
			      const char *address, const char *const *options,
			      size_t n_options)
{
	struct local *l = ctx;
	struct sbuf dir;
	int ret;

	sbuf_init(&dir, 256);
	ret = expand(l->path, address, session->local_name, &dir);
	sbuf_free(&dir);
	return ret < 0 ? REPLY_BAD_RCPT : NULL;
}

static const char *local_data(void *ctx, struct aiosmtpd_session *session,
			      struct aiosmtpd_envelope *envelope)
{
	static struct sbuf reply; /* valid until the next call, as hooks'
				     replies must be */
	struct local_message m = {session, envelope};
	struct local_stream *st =
		spool_take_tap(spool_from_content(envelope->content));
	struct delivery d;
	const char *first = NULL, *status;

	delivery_plan(&d, ctx, session, envelope);
	if (st != NULL) /* one Maildir, written already */
		stream_finish(st, &d.targets[0]);
	for (size_t t = st != NULL ? 1 : 0; t < d.n; t++) {
		deliver_one(&d.targets[t], first, &m);
		if (first == NULL)
			first = d.targets[t].file;
	}
	if (reply.data == NULL)
		sbuf_init(&reply, 256);
	sbuf_reset(&reply);
	status = answer(&d, session, envelope, &reply);
	for (size_t i = 0; i < envelope->n_rcpt_tos; i++) {
		const struct target *t = &d.targets[d.of_rcpt[i]];

		log_info("%s %s delivery to=<%s> maildir=%s result=%s",
			 session->id, session->peer_addr, envelope->rcpt_tos[i],
			 t->dir,
			 t->file != NULL ? "delivered" : "not delivered");
	}
	delivery_free(&d);
	return status;
}

const struct aiosmtpd_handler handler_maildir = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
	.name = "Maildir",
	.init = local_init,
	.cleanup = local_cleanup,
	.handle_RCPT = local_rcpt,
	.handle_DATA = local_data,
};
