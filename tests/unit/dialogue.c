/*
 * dialogue.c - drive the protocol engine from memory in unit tests
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "dialogue.h"
#include "log.h"
#include "spool.h"

void dialogue_settings(struct smtp_settings *set)
{
	log_set_level(LOG_LEVEL_ERROR);
	smtp_settings_init(set);
	set->hostname = "mx.test";
	set->ident = "ident";
}

/* visible - the bytes with CR and LF shown, for failure messages */
static void visible(struct sbuf *sb, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r')
			sbuf_puts(sb, "\\r");
		else if (p[i] == '\n')
			sbuf_puts(sb, "\\n\n    ");
		else
			sbuf_putc(sb, p[i]);
	}
}

/* The fake TLS layer of "T:" lines: the handshake switches to a second
 * memory stream that holds the client lines after the "T:" line. */
struct fake_tls {
	struct memstream tls;
	bool handshake_ok;
};

static int fake_starttls(void *ctx, const struct smtp_stream_ops **ops_r,
			 void **stream_r, struct smtp_tls_state *state_r)
{
	struct fake_tls *ft = ctx;

	if (!ft->handshake_ok)
		return -1;
	*ops_r = &memstream_ops;
	*stream_r = &ft->tls;
	*state_r = (struct smtp_tls_state){"TLSv1.3", "TEST_CIPHER", 256};
	return 0;
}

static const struct smtp_tls_ops fake_tls_ops = {.starttls = fake_starttls};

/* parse - split a transcript into the client's plaintext, its bytes
 * after the handshake, and the expected replies */
static void parse(const char *const *transcript, struct sbuf *plain,
		  struct sbuf *tls, struct sbuf *expected, bool *handshake_ok)
{
	struct sbuf *client = plain;

	for (const char *const *t = transcript; *t != NULL; t++) {
		const char *text = *t + 3;

		if (strncmp(*t, "C: ", 3) == 0) {
			sbuf_puts(client, text);
			sbuf_puts(client, "\r\n");
		} else if (strncmp(*t, "R: ", 3) == 0) {
			sbuf_puts(client, text);
		} else if (strncmp(*t, "S: ", 3) == 0) {
			sbuf_puts(expected, text);
			sbuf_puts(expected, "\r\n");
		} else if (strncmp(*t, "T: ", 3) == 0) {
			*handshake_ok = strcmp(text, "ok") == 0;
			client = tls;
		} else {
			fail_msg("bad transcript line: %s", *t);
		}
	}
}

enum smtp_session_end dialogue_run(const struct smtp_settings *set,
				   const struct aiosmtpd_handler *handler,
				   void *handler_ctx,
				   const char *const *transcript,
				   size_t chunk)
{
	return dialogue_run_seams(set, handler, handler_ctx, transcript,
				  chunk, NULL);
}

enum smtp_session_end dialogue_run_seams(
	const struct smtp_settings *set, const struct aiosmtpd_handler *handler,
	void *handler_ctx, const char *const *transcript, size_t chunk,
	const struct dialogue_seams *seams)
{
	struct sbuf client, tls_client, expected, msg;
	static const struct aiosmtpd_session plain_peer = {
		.id = "TEST",
		.peer_family = AF_INET,
		.peer_addr = "127.0.0.1",
		.peer_port = 4000};
	const struct aiosmtpd_session *peer = &plain_peer;
	struct smtp_session *session;
	enum smtp_session_end end;
	struct fake_tls ft = {.handshake_ok = true};
	struct memstream ms;
	struct smtp_io *io;
	struct spool *spool = spool_new(NULL);

	if (seams != NULL && seams->peer != NULL)
		peer = seams->peer;
	sbuf_init(&client, 1024);
	sbuf_init(&tls_client, 1024);
	sbuf_init(&expected, 1024);
	parse(transcript, &client, &tls_client, &expected, &ft.handshake_ok);
	memstream_init(&ms, client.data, client.len, chunk);
	memstream_init(&ft.tls, tls_client.data, tls_client.len, chunk);
	io = smtp_io_new(&memstream_ops, &ms);
	session = smtp_session_new(set, handler, handler_ctx, io, spool, peer);
	smtp_session_set_tls(session, &fake_tls_ops, &ft);
	if (seams != NULL && seams->auth != NULL)
		smtp_session_set_auth(session, seams->auth, seams->auth_ctx);
	end = smtp_session_run(session);
	smtp_session_free(&session);
	smtp_io_free(&io);
	spool_free(&spool);
	/* Nothing is written in plaintext once TLS is on, so the replies
	 * are the two outputs one after the other. */
	sbuf_append(&ms.out, ft.tls.out.data, ft.tls.out.len);
	memstream_free(&ft.tls);
	sbuf_free(&tls_client);

	if (ms.out.len != expected.len ||
	    memcmp(ms.out.data, expected.data, expected.len) != 0) {
		sbuf_init(&msg, 1024);
		sbuf_puts(&msg, "replies differ\n  expected:\n    ");
		visible(&msg, expected.data, expected.len);
		sbuf_puts(&msg, "\n  got:\n    ");
		visible(&msg, ms.out.data, ms.out.len);
		print_error("%s\n", msg.data);
		sbuf_free(&msg);
		memstream_free(&ms);
		sbuf_free(&client);
		sbuf_free(&expected);
		fail();
	}
	memstream_free(&ms);
	sbuf_free(&client);
	sbuf_free(&expected);
	return end;
}
