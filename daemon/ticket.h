/*
 * ticket.h - TLS session ticket keys, renewed by the master, shared by
 * every worker
 *
 * OpenSSL seals tickets with a key it makes with each context and keeps
 * for the context's life.  Our contexts are made in the master before the
 * workers fork, so that key would live as long as the daemon (or until a
 * reload), and whoever read it once could open every ticket issued since,
 * and with them the keys of every resumed session.
 *
 * Instead two keys live in memory the master maps before its first fork.
 * New tickets are sealed with the newer key; a ticket sealed with either
 * is accepted, one under the older key is replaced by a fresh ticket.
 * The master makes a new key in place of the older one every
 * TICKET_PERIOD seconds, so no key lives longer than two periods, and a
 * ticket (whose lifetime is one period) always finds its key.  The keys
 * belong to no configuration: a reload keeps them, so tickets survive it.
 */
#ifndef AIOSMTPD_TICKET_H
#define AIOSMTPD_TICKET_H

#include <stdint.h>

#include <openssl/ssl.h>

/* Seconds between two new keys, and the lifetime of a ticket. */
#define TICKET_PERIOD 3600

/* ticket_keys_attach - seal and open ctx's tickets with the shared keys,
 * made (and mapped) on the first call, which must be in the master
 * before any fork, and turn OpenSSL's server session cache off; 0, or
 * -1 when the keys cannot be made */
int ticket_keys_attach(SSL_CTX *ctx);

/* ticket_keys_rotate - in the master: when the newer key is
 * TICKET_PERIOD old at now (sockstream_now() milliseconds), make a new
 * one in place of the older; nothing before the first attach */
void ticket_keys_rotate(int64_t now);

#endif
