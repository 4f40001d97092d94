/*
 * tls.c - the OpenSSL server contexts, one per distinct TLS setting
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "alloc.h"
#include "conf.h"
#include "sbuf.h"
#include "ticket.h"
#include "tls.h"

/* Identifies our sessions in tickets; resumption fails without one
 * once client certificates are asked for. */
#define SESSION_ID_CONTEXT "aiosmtpd"

struct entry {
	const struct listener_conf *lc;
	SSL_CTX *ctx;
};

struct tls_contexts {
	struct entry *entries;
	size_t n;
};

/* openssl_reason - OpenSSL's first error, the one that says what was
 * wrong ("no start line", "key values mismatch"); the queue is emptied */
static const char *openssl_reason(void)
{
	static char buf[256];
	unsigned long e = ERR_peek_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (reason != NULL)
		snprintf(buf, sizeof(buf), "%s", reason);
	else if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		snprintf(buf, sizeof(buf), "unknown error");
	ERR_clear_error();
	return buf;
}

static char *error_text(const struct tls_conf *tc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* error_text - a message that starts with where the setting was made */
static char *error_text(const struct tls_conf *tc, const char *fmt, ...)
{
	struct sbuf sb;
	va_list ap;

	sbuf_init(&sb, 128);
	sbuf_printf(&sb, "%s: ", tc->origin != NULL ? tc->origin : "tls");
	va_start(ap, fmt);
	sbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	return sbuf_detach(&sb);
}

/* load_files - the chain and the key; a file we cannot read is named
 * with the system's reason, which OpenSSL's messages hide */
static int load_files(SSL_CTX *ctx, const struct tls_conf *tc,
		      char **error_r)
{
	if (access(tc->cert, R_OK) < 0) {
		*error_r = error_text(tc, "cannot read the certificate %s: %s",
				      tc->cert, strerror(errno));
		return -1;
	}
	if (access(tc->key, R_OK) < 0) {
		*error_r = error_text(tc, "cannot read the key %s: %s", tc->key,
				      strerror(errno));
		return -1;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, tc->cert) != 1) {
		*error_r = error_text(tc, "cannot load the certificate %s: %s",
				      tc->cert, openssl_reason());
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, tc->key, SSL_FILETYPE_PEM) != 1) {
		*error_r = error_text(tc, "cannot load the key %s: %s", tc->key,
				      openssl_reason());
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = error_text(tc, "the key %s does not match the "
					  "certificate %s: %s",
				      tc->key, tc->cert, openssl_reason());
		return -1;
	}
	return 0;
}

/* set_protocol - versions and ciphers */
static int set_protocol(SSL_CTX *ctx, const struct tls_conf *tc,
			char **error_r)
{
	int min = tc->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;

	if (SSL_CTX_set_min_proto_version(ctx, min) != 1) {
		*error_r = error_text(tc, "cannot set min_version: %s",
				      openssl_reason());
		return -1;
	}
	if (tc->ciphers != NULL &&
	    SSL_CTX_set_cipher_list(ctx, tc->ciphers) != 1) {
		*error_r = error_text(tc, "bad ciphers \"%s\": %s",
				      tc->ciphers, openssl_reason());
		return -1;
	}
	if (tc->ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, tc->ciphersuites) != 1) {
		*error_r = error_text(tc, "bad ciphersuites \"%s\": %s",
				      tc->ciphersuites, openssl_reason());
		return -1;
	}
	return 0;
}

/*
 * build - one context.  Renegotiation is refused; a client that drops
 * TCP without close_notify after QUIT is normal for SMTP, which detects
 * truncation on its own, so that is not an error either.
 */
static SSL_CTX *build(const struct tls_conf *tc, char **error_r)
{
	SSL_CTX *ctx;

	if (tc->cert == NULL || tc->key == NULL) {
		*error_r = error_text(tc, "%s needs both 'cert' and 'key'",
				      tc->mode == TLS_MODE_IMPLICIT
					      ? "implicit TLS"
					      : "STARTTLS");
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		*error_r = error_text(tc, "SSL_CTX_new() failed: %s",
				      openssl_reason());
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (ticket_keys_attach(ctx) < 0) {
		*error_r = error_text(tc, "cannot make TLS ticket keys: %s",
				      openssl_reason());
		SSL_CTX_free(ctx);
		return NULL;
	}
	(void)SSL_CTX_set_session_id_context(
		ctx, (const unsigned char *)SESSION_ID_CONTEXT,
		sizeof(SESSION_ID_CONTEXT) - 1);
	if (set_protocol(ctx, tc, error_r) < 0 ||
	    load_files(ctx, tc, error_r) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static bool same_string(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	       (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool same_tls(const struct tls_conf *a, const struct tls_conf *b)
{
	return same_string(a->cert, b->cert) && same_string(a->key, b->key) &&
	       same_string(a->ciphers, b->ciphers) &&
	       same_string(a->ciphersuites, b->ciphersuites) &&
	       a->min_version == b->min_version;
}

/* shared - a context already built for the same settings */
static SSL_CTX *shared(const struct tls_contexts *t,
		       const struct tls_conf *tc)
{
	for (size_t i = 0; i < t->n; i++) {
		if (same_tls(&t->entries[i].lc->session.tls, tc)) {
			SSL_CTX_up_ref(t->entries[i].ctx);
			return t->entries[i].ctx;
		}
	}
	return NULL;
}

int tls_contexts_new(const struct conf *cfg, struct tls_contexts **tls_r,
		     char **error_r)
{
	struct tls_contexts *t = xcalloc(1, sizeof(*t));

	t->entries = xcalloc(cfg->n_listeners + 1, sizeof(*t->entries));
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct listener_conf *lc = &cfg->listeners[i];
		const struct tls_conf *tc = &lc->session.tls;
		SSL_CTX *ctx;

		if (tc->mode == TLS_MODE_NONE)
			continue;
		if ((ctx = shared(t, tc)) == NULL &&
		    (ctx = build(tc, error_r)) == NULL) {
			tls_contexts_free(&t);
			return -1;
		}
		t->entries[t->n++] = (struct entry){lc, ctx};
	}
	*tls_r = t;
	return 0;
}

SSL_CTX *tls_contexts_find(const struct tls_contexts *t,
			   const struct listener_conf *lc)
{
	for (size_t i = 0; t != NULL && i < t->n; i++) {
		if (t->entries[i].lc == lc)
			return t->entries[i].ctx;
	}
	return NULL;
}

void tls_contexts_free(struct tls_contexts **tp)
{
	struct tls_contexts *t = *tp;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		SSL_CTX_free(t->entries[i].ctx);
	free(t->entries);
	free(t);
	*tp = NULL;
}
