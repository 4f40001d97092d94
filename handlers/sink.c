/*
 * sink.c - the Sink handler: accept everything, keep nothing
 *
 * As aiosmtpd's handlers.Sink, it has no hooks at all, so the session
 * gives every default reply and does not even store the content.
 */
#include "config.h"

#include <stddef.h>

#include "handler.h"

static void *sink_init(int argc, char *const argv[], const char **error_r)
{
	static int sink_ctx;

	(void)argv;
	if (argc > 0) {
		*error_r = "Sink handler does not accept arguments";
		return NULL;
	}
	return &sink_ctx;
}

const struct aiosmtpd_handler handler_sink = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
	.name = "Sink",
	.init = sink_init,
};
