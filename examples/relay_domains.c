/*
 * relay_domains.c - an example handler written in C: accept mail only for
 * the domains it is given
 *
 *	aiosmtpd -c /path/to/relay_domains.so example.com example.org
 *
 * or in aiosmtpd.conf
 *
 *	handler = { type = "plugin"; path = "/path/to/relay_domains.so";
 *		    args = [ "example.com", "example.org" ]; };
 *
 * A recipient in another domain gets "550 5.7.1 Unable to relay" at RCPT;
 * every other hook falls through to the daemon's default, so an accepted
 * message is answered "250 OK" and dropped, as aiosmtpd's Sink does.  Its
 * handle_DATA only logs the message's size, to show the content interface.
 *
 * Build it on its own with
 *
 *	cc -shared -fPIC -o relay_domains.so relay_domains.c
 *
 * against the installed <aiosmtpd/handler.h>.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <aiosmtpd/handler.h>

struct relay_domains {
	int n;
	char **domains;
};

static void *relay_init(int argc, char *const argv[], const char **error_r)
{
	struct relay_domains *rd;

	if (argc < 1) {
		*error_r = "relay_domains usage: DOMAIN [DOMAIN ...]";
		return NULL;
	}
	if ((rd = calloc(1, sizeof(*rd))) == NULL ||
	    (rd->domains = calloc((size_t)argc, sizeof(char *))) == NULL) {
		free(rd);
		*error_r = "out of memory";
		return NULL;
	}
	for (rd->n = 0; rd->n < argc; rd->n++)
		rd->domains[rd->n] = strdup(argv[rd->n]);
	return rd;
}

static void relay_cleanup(void *ctx)
{
	struct relay_domains *rd = ctx;

	for (int i = 0; i < rd->n; i++)
		free(rd->domains[i]);
	free(rd->domains);
	free(rd);
}

/* ours - is the address's domain one of the configured ones?  Domains
 * are compared without regard to case, as DNS names are. */
static int ours(const struct relay_domains *rd, const char *address)
{
	const char *at = strrchr(address, '@');

	if (at == NULL)
		return 0;
	for (int i = 0; i < rd->n; i++) {
		if (rd->domains[i] != NULL &&
		    strcasecmp(at + 1, rd->domains[i]) == 0)
			return 1;
	}
	return 0;
}

static const char *relay_rcpt(void *ctx, struct aiosmtpd_session *session,
			      struct aiosmtpd_envelope *envelope,
			      const char *address, const char *const *options,
			      size_t n_options)
{
	(void)envelope, (void)options, (void)n_options;
	if (ours(ctx, address))
		return NULL; /* the default: "250 OK" */
	aiosmtpd_log(AIOSMTPD_LOG_INFO, "%s relay_domains: refused <%s>",
		     session->id, address);
	return "550 5.7.1 Unable to relay";
}

static const char *relay_data(void *ctx, struct aiosmtpd_session *session,
			      struct aiosmtpd_envelope *envelope)
{
	char buf[4096];
	unsigned long long total = 0;
	ssize_t n;

	(void)ctx;
	while ((n = aiosmtpd_content_read(envelope->content, buf,
					  sizeof(buf))) > 0)
		total += (unsigned long long)n;
	if (n < 0)
		return "451 4.3.0 Cannot read the message";
	aiosmtpd_log(AIOSMTPD_LOG_INFO,
		     "%s relay_domains: accepted %llu octets for %zu "
		     "recipients",
		     session->id, total, envelope->n_rcpt_tos);
	return NULL;
}

const struct aiosmtpd_handler aiosmtpd_handler = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
	.name = "relay_domains",
	.init = relay_init,
	.cleanup = relay_cleanup,
	.handle_RCPT = relay_rcpt,
	.handle_DATA = relay_data,
};
