/*
 * handler.c - the table of built-in handlers
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "handler.h"
#include "maildir.h"
#include "plugin.h"
#include "sbuf.h"

struct handler_name {
	const char *name; /* aiosmtpd's class name */
	const char *alias; /* configuration file type, when different */
	const struct aiosmtpd_handler *handler;
};

static const struct handler_name builtins[] = {
	{"Debugging", NULL, &handler_debugging},
	{"Sink", NULL, &handler_sink},
	{"Mailbox", NULL, &handler_mailbox},
	{"Maildir", NULL, &handler_maildir},
	{"LMTP", NULL, &handler_lmtp},
	{"Proxy", "smtp", &handler_proxy},
	{"Record", NULL, &handler_record},
};

#define DOTTED_PREFIX "aiosmtpd.handlers."

const struct aiosmtpd_handler *handler_find(const char *name)
{
	if (strncmp(name, DOTTED_PREFIX, strlen(DOTTED_PREFIX)) == 0)
		name += strlen(DOTTED_PREFIX);
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		if (strcasecmp(name, builtins[i].name) == 0 ||
		    (builtins[i].alias != NULL &&
		     strcasecmp(name, builtins[i].alias) == 0))
			return builtins[i].handler;
	}
	return NULL;
}

const struct spool_tap *handler_tap(const struct aiosmtpd_handler *handler)
{
	if (handler == &handler_mailbox)
		return &maildir_mailbox_tap;
	if (handler == &handler_maildir)
		return &local_maildir_tap;
	return NULL;
}

const char *handler_names(void)
{
	return "Debugging [stdout|stderr], Sink, Mailbox DIR, Maildir PATH, "
	       "LMTP TARGET, Proxy HOST PORT, Record DIR, or "
	       "/path/to/handler.so";
}

const struct aiosmtpd_handler *handler_load(const char *name, char **error_r,
					    bool *usage_r)
{
	const struct aiosmtpd_handler *h = handler_find(name);

	*usage_r = false;
	if (h != NULL)
		return h;
	if (plugin_is_path(name))
		return plugin_load(name, error_r);
	*usage_r = true;
	*error_r = sbuf_format("unknown handler class '%s' (built in: %s)",
			       name, handler_names());
	return NULL;
}
