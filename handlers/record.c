/*
 * record.c - the Record handler: every message with its envelope, exactly
 *
 * -c Record DIR, or handler = { type = "record"; path = DIR; }.  A test
 * harness wants back what the client sent, not a rendering of it: the
 * envelope as the session saw it and the content octet for octet (dots
 * removed, CRLF kept).  Each message becomes one file in the Maildir DIR
 * (see record.h for the format), written durably before the 250.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "handler.h"
#include "log.h"
#include "maildir.h"
#include "record.h"
#include "sbuf.h"
#include "spool.h"

#define REPLY_LOCAL "451 4.3.0 Error: local error in processing"

/* Files this process has named: breaks ties within one nanosecond. */
static unsigned long record_count;

/* --- the format ---------------------------------------------------------- */

/* put_value - the octets as they are, but '%', controls and DEL as %XX,
 * so that no value can break a line or hide a byte */
static void put_value(struct sbuf *out, const char *value)
{
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0';
	     p++) {
		if (*p == '%' || *p < 0x20 || *p == 0x7f)
			sbuf_printf(out, "%%%02X", *p);
		else
			sbuf_putc(out, (char)*p);
	}
}

static void put_field(struct sbuf *out, const char *key, const char *value)
{
	sbuf_printf(out, "%s ", key);
	put_value(out, value);
	sbuf_putc(out, '\n');
}

static void put_list(struct sbuf *out, const char *key,
		     const char *const *values, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put_field(out, key, values[i]);
}

void record_header(struct sbuf *out, const struct aiosmtpd_session *session,
		   const struct aiosmtpd_envelope *envelope)
{
	sbuf_puts(out, RECORD_MAGIC "\n");
	put_field(out, "session", session->id);
	put_field(out, "helo",
		  session->host_name != NULL ? session->host_name : "");
	put_field(out, "peer_address", session->peer_addr);
	sbuf_printf(out, "peer_port %u\n", session->peer_port);
	if (session->tls_version != NULL)
		put_field(out, "tls", session->tls_version);
	if (session->auth_user != NULL)
		put_field(out, "auth_user", session->auth_user);
	put_field(out, "mail_from", envelope->mail_from);
	put_list(out, "mail_option", envelope->mail_options,
		 envelope->n_mail_options);
	put_list(out, "rcpt_to", envelope->rcpt_tos, envelope->n_rcpt_tos);
	put_list(out, "rcpt_option", envelope->rcpt_options,
		 envelope->n_rcpt_options);
	sbuf_printf(out, "size %llu\n\n",
		    (unsigned long long)envelope->content_size);
}

void record_name(struct sbuf *out, const struct timespec *when)
{
	sbuf_printf(out, "%012lld.%09ld.P%d.Q%010lu", (long long)when->tv_sec,
		    when->tv_nsec, (int)getpid(), ++record_count);
}

int record_write(void *ctx, maildir_out_fn *out, void *out_ctx)
{
	const struct record_message *m = ctx;
	struct spool *spool = spool_from_content(m->envelope->content);
	struct sbuf head;
	const char *data;
	size_t len;
	int ret;

	sbuf_init(&head, 512);
	record_header(&head, m->session, m->envelope);
	ret = out(out_ctx, head.data, head.len);
	sbuf_free(&head);
	if (ret != 0)
		return -1;
	spool_rewind(spool);
	while ((ret = spool_next(spool, &data, &len)) > 0) {
		if (out(out_ctx, data, len) != 0)
			return -1;
	}
	return ret < 0 ? -1 : 0;
}

/* --- hooks --------------------------------------------------------------- */

struct record {
	char *dir;
};

static void *record_init(int argc, char *const argv[], const char **error_r)
{
	struct record *r;

	if (argc != 1) {
		*error_r = "Record usage: DIR (a Maildir, created if missing)";
		return NULL;
	}
	if (maildir_create(argv[0], error_r) < 0)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->dir = xstrdup(argv[0]);
	return r;
}

static void record_cleanup(void *ctx)
{
	struct record *r = ctx;

	free(r->dir);
	free(r);
}

static const char *record_data(void *ctx, struct aiosmtpd_session *session,
			       struct aiosmtpd_envelope *envelope)
{
	struct record *r = ctx;
	struct record_message m = {session, envelope};
	struct timespec now;
	struct sbuf name;
	char *path = NULL;
	int ret;

	/* The name is taken once the content is complete: that is when the
	 * message arrived. */
	clock_gettime(CLOCK_REALTIME, &now);
	sbuf_init(&name, 64);
	record_name(&name, &now);
	ret = maildir_store_named(r->dir, name.data, session->id, record_write,
				  &m, &path);
	sbuf_free(&name);
	if (ret < 0)
		return REPLY_LOCAL;
	log_debug("%s recorded as %s", session->id, path);
	free(path);
	return NULL;
}

const struct aiosmtpd_handler handler_record = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
	.name = "Record",
	.init = record_init,
	.cleanup = record_cleanup,
	.handle_DATA = record_data,
};
