/*
 * sendmail.h - the code under test in the example: a tiny function that
 * sends one mail over SMTP, as an application might have
 */
#ifndef EXAMPLE_SENDMAIL_H
#define EXAMPLE_SENDMAIL_H

#include <stddef.h>

struct mail {
	const char *from;
	const char *const *to;
	size_t n_to;
	const char *subject;
	const char *body; /* lines end with "\n" */
};

/*
 * sendmail - send m to the SMTP server at host:port
 *
 * The message is a From, To and Subject header and the body, every line
 * ending in CRLF.  Returns 0, or -1 with the reason in error.
 */
int sendmail(const char *host, unsigned port, const struct mail *m, char *error,
	     size_t error_size);

#endif
