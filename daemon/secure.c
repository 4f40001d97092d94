/*
 * secure.c - TLS and AUTH for one connection
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "alloc.h"
#include "conf.h"
#include "cyrus.h"
#include "log.h"
#include "secure.h"
#include "tlsstream.h"

struct secure {
	const struct listener_conf *lc;
	SSL_CTX *ctx; /* NULL without TLS */
	struct sockstream *ss;
	const char *id;
	const char *client;
	struct tlsstream *ts; /* NULL in plaintext */
	struct cyrus_session *sasl; /* NULL without AUTH */
};

int secure_worker_init(const struct listener *listeners, size_t n,
		       const char **error_r)
{
	for (size_t i = 0; i < n; i++) {
		const struct auth_conf *ac = &listeners[i].conf->session.auth;

		if (ac->enabled)
			return cyrus_init(ac, error_r);
	}
	return 0;
}

/* sasl_address - "addr;port" as Cyrus wants it (no brackets for IPv6),
 * NULL for a UNIX socket */
static char *sasl_address(const struct sockaddr_storage *sa)
{
	char addr[INET6_ADDRSTRLEN], *text;
	unsigned port;

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
		port = ntohs(in->sin_port);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		port = ntohs(in6->sin6_port);
	} else {
		return NULL;
	}
	text = xmalloc(sizeof(addr) + 8);
	snprintf(text, sizeof(addr) + 8, "%s;%u", addr, port);
	return text;
}

/* start_sasl - the AUTH back end, with both ends of the connection */
static void start_sasl(struct secure *sec)
{
	const struct session_conf *sc = &sec->lc->session;
	struct sockaddr_storage local = {0}, remote = {0};
	socklen_t len = sizeof(local);
	char *l, *r;

	(void)getsockname(sec->ss->fd, (struct sockaddr *)&local, &len);
	len = sizeof(remote);
	(void)getpeername(sec->ss->fd, (struct sockaddr *)&remote, &len);
	l = sasl_address(&local);
	r = sasl_address(&remote);
	sec->sasl = cyrus_session_new(&sc->auth, sc->smtp.auth_require_tls,
				      sc->smtp.hostname, l, r, 0);
	free(l);
	free(r);
}

struct secure *secure_new(const struct listener_conf *lc, SSL_CTX *ctx,
			  struct sockstream *ss, const char *id,
			  const char *client)
{
	struct secure *sec = xcalloc(1, sizeof(*sec));

	sec->lc = lc;
	sec->ctx = ctx;
	sec->ss = ss;
	sec->id = id;
	sec->client = client;
	if (lc->session.auth.enabled)
		start_sasl(sec);
	return sec;
}

/* handshake - TLS on the socket, logged either way */
static int handshake(struct secure *sec, struct smtp_tls_state *state)
{
	const char *error = "no TLS context";

	if (sec->ctx == NULL ||
	    (sec->ts = tlsstream_accept(sec->ctx, sec->ss, &error)) == NULL) {
		log_info("%s %s tls failed reason=\"%s\"", sec->id,
			 sec->client, error);
		return -1;
	}
	tlsstream_state(sec->ts, state);
	log_info("%s %s tls version=%s cipher=%s bits=%d", sec->id,
		 sec->client, state->version, state->cipher, state->bits);
	if (sec->sasl != NULL)
		cyrus_session_tls(sec->sasl, (unsigned)state->bits);
	return 0;
}

int secure_implicit(struct secure *sec, struct aiosmtpd_session *peer)
{
	struct smtp_tls_state state;

	if (sec->lc->session.tls.mode != TLS_MODE_IMPLICIT)
		return 0;
	if (handshake(sec, &state) < 0)
		return -1;
	peer->tls_version = state.version;
	peer->tls_cipher = state.cipher;
	peer->tls_bits = state.bits;
	return 0;
}

void secure_stream(struct secure *sec, const struct smtp_stream_ops **ops_r,
		   void **stream_r)
{
	if (sec->ts != NULL) {
		*ops_r = &tlsstream_ops;
		*stream_r = sec->ts;
	} else {
		*ops_r = &sockstream_ops;
		*stream_r = sec->ss;
	}
}

/* starttls - the engine's STARTTLS, once it has answered 220 */
static int starttls(void *ctx, const struct smtp_stream_ops **ops_r,
		    void **stream_r, struct smtp_tls_state *state_r)
{
	struct secure *sec = ctx;

	if (handshake(sec, state_r) < 0)
		return -1;
	secure_stream(sec, ops_r, stream_r);
	return 0;
}

static const struct smtp_tls_ops secure_tls_ops = {.starttls = starttls};

void secure_attach(struct secure *sec, struct smtp_session *session)
{
	if (sec->lc->session.tls.mode == TLS_MODE_STARTTLS)
		smtp_session_set_tls(session, &secure_tls_ops, sec);
	if (sec->sasl != NULL)
		smtp_session_set_auth(session, &cyrus_auth_ops, sec->sasl);
}

void secure_free(struct secure **secp)
{
	struct secure *sec = *secp;

	if (sec == NULL)
		return;
	tlsstream_free(&sec->ts);
	cyrus_session_free(&sec->sasl);
	free(sec);
	*secp = NULL;
}
