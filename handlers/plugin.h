/*
 * plugin.h - handlers written in C, loaded from shared objects
 *
 * A shared object exports one struct aiosmtpd_handler under the name
 * AIOSMTPD_HANDLER_SYMBOL.  It is loaded once, in the master before the
 * workers are forked, and stays loaded for the daemon's life.  The daemon
 * exports only the functions of aiosmtpd/handler.h to it (the link uses
 * a dynamic list), so a plugin can neither call nor clash with anything
 * else in the daemon.
 */
#ifndef AIOSMTPD_PLUGIN_H
#define AIOSMTPD_PLUGIN_H

#include "aiosmtpd/handler.h"

/* plugin_is_path - does a handler name mean a shared object?  It does
 * when it holds a '/', as "./x.so" or "/usr/lib/x.so" do. */
bool plugin_is_path(const char *name);

/*
 * plugin_load - open path and return its handler table
 *
 * NULL on failure, with *error_r set to an allocated message that names
 * the file and the reason: dlopen()'s error, a missing symbol, or an ABI
 * version other than AIOSMTPD_HANDLER_ABI_VERSION.
 */
const struct aiosmtpd_handler *plugin_load(const char *path, char **error_r);

#endif
