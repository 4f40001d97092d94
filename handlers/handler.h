/*
 * handler.h - the built-in handlers and how a name selects one
 *
 * The hook table itself is the public interface in aiosmtpd/handler.h.
 * This module maps the names an operator writes (aiosmtpd's class names,
 * short or dotted, on the command line; lower-case types in the
 * configuration file) to the built-in tables.
 */
#ifndef AIOSMTPD_HANDLERS_HANDLER_H
#define AIOSMTPD_HANDLERS_HANDLER_H

#include "aiosmtpd/handler.h"

extern const struct aiosmtpd_handler handler_debugging;
extern const struct aiosmtpd_handler handler_sink;
extern const struct aiosmtpd_handler handler_mailbox;

/*
 * handler_find - a built-in handler by name
 *
 * Accepts "Debugging", "aiosmtpd.handlers.Debugging" and "debugging"
 * (and likewise "Sink", "Mailbox" or "maildir"); NULL when none matches.
 */
const struct aiosmtpd_handler *handler_find(const char *name);
/* handler_names - the accepted names, for usage messages */
const char *handler_names(void);

#endif
