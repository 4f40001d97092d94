/*
 * handler.c - the table of built-in handlers
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "handler.h"

struct handler_name {
	const char *name; /* aiosmtpd's class name */
	const char *alias; /* configuration file type, when different */
	const struct aiosmtpd_handler *handler;
};

static const struct handler_name builtins[] = {
	{"Debugging", NULL, &handler_debugging},
	{"Sink", NULL, &handler_sink},
	{"Mailbox", "maildir", &handler_mailbox},
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

const char *handler_names(void)
{
	return "Debugging [stdout|stderr], Sink, Mailbox DIR";
}
