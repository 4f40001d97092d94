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

struct spool_tap;

extern const struct aiosmtpd_handler handler_debugging;
extern const struct aiosmtpd_handler handler_sink;
extern const struct aiosmtpd_handler handler_mailbox;
extern const struct aiosmtpd_handler handler_maildir;
extern const struct aiosmtpd_handler handler_lmtp;
extern const struct aiosmtpd_handler handler_proxy;
extern const struct aiosmtpd_handler handler_record;

/*
 * handler_find - a built-in handler by name
 *
 * Accepts "Debugging", "aiosmtpd.handlers.Debugging" and "debugging"
 * (and likewise Sink, Mailbox, Maildir, LMTP, Proxy or "smtp", and
 * Record); NULL
 * when none matches.
 */
const struct aiosmtpd_handler *handler_find(const char *name);

/*
 * handler_load - a built-in handler by name, or the one in a shared object
 * when name is a path (see plugin.h)
 *
 * NULL on failure with *error_r set (allocated); *usage_r is true when
 * the name is simply unknown, false when a shared object failed to load.
 */
const struct aiosmtpd_handler *handler_load(const char *name, char **error_r,
					    bool *usage_r);
/*
 * handler_tap - the spool tap of a built-in handler that takes content
 * while it arrives (see spool.h), or NULL; set it on the spool of each
 * session that the handler serves, with the handler's context
 */
const struct spool_tap *handler_tap(const struct aiosmtpd_handler *handler);
/* The Maildir handler's tap: a message whose recipients share one Maildir
 * is written into an unnamed file in its tmp/ as it arrives (local.c). */
extern const struct spool_tap local_maildir_tap;
/* handler_names - the accepted names, for usage messages */
const char *handler_names(void);

#endif
