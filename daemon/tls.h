/*
 * tls.h - the OpenSSL server contexts, one per distinct TLS setting
 *
 * A service (one configuration made live) owns one set.  The master
 * builds it as root and before the workers of that service fork: the
 * private key may stay readable by root alone, and every worker inherits
 * the same contexts, and tickets are sealed with keys all workers share
 * (ticket.h), so a TLS session ticket one worker issued resumes on any
 * other, also after a reload.  Listeners with the same certificate, key
 * and protocol settings share one context.  SIGHUP builds a new service, and so new
 * contexts from the files as they are then; when they are broken the
 * reload fails and the running service keeps its own.
 */
#ifndef AIOSMTPD_TLS_H
#define AIOSMTPD_TLS_H

#include <openssl/ssl.h>

struct conf;
struct listener_conf;

struct tls_contexts;

/*
 * tls_contexts_new - build and check the context of every listener of cfg
 * that speaks TLS
 *
 * Returns 0 with the set in *tls_r, or -1 with *error_r an allocated
 * message naming the setting ("/etc/aiosmtpd.conf:12: cannot load the
 * key /etc/ssl/mx.key: no start line").  The set refers to cfg's
 * listeners, which must outlive it.
 */
int tls_contexts_new(const struct conf *cfg, struct tls_contexts **tls_r,
		     char **error_r);

/* tls_contexts_find - the context of lc, or NULL when it has no TLS */
SSL_CTX *tls_contexts_find(const struct tls_contexts *tls,
			   const struct listener_conf *lc);

void tls_contexts_free(struct tls_contexts **tls);

#endif
