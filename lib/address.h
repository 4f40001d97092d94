/*
 * address.h - the socket addresses an operator writes
 *
 * "host:port", "[ipv6]:port" or "unix:/path", as listeners and next hops
 * are configured.  Only the syntax is checked here; names are resolved
 * when a socket is bound or connected.
 */
#ifndef AIOSMTPD_ADDRESS_H
#define AIOSMTPD_ADDRESS_H

#include <stdbool.h>

struct address {
	bool is_unix;
	char *host; /* NULL for unix */
	char *port; /* decimal, 0-65535; NULL for unix */
	char *path; /* unix only */
};

/*
 * address_parse - split text into its parts
 *
 * Returns 0, or -1 with *error_r set to a static explanation.  On success
 * the caller frees the parts with address_free().
 */
int address_parse(const char *text, struct address *addr,
		  const char **error_r);
void address_free(struct address *addr);

#endif
