/*
 * plugin.c - handlers written in C, loaded from shared objects
 *
 * Also home of aiosmtpd_log(), the part of the public interface that has
 * no other module to live in.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "plugin.h"
#include "sbuf.h"

bool plugin_is_path(const char *name)
{
	/* Only a path: dlopen() would look a bare "x.so" up in the library
	 * search path, which is never what an operator means. */
	return strchr(name, '/') != NULL;
}

static char *load_error(const char *path, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static char *load_error(const char *path, const char *fmt, ...)
{
	struct sbuf sb;
	va_list ap;

	sbuf_init(&sb, 128);
	sbuf_printf(&sb, "cannot load handler %s: ", path);
	va_start(ap, fmt);
	sbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	return sbuf_detach(&sb);
}

const struct aiosmtpd_handler *plugin_load(const char *path, char **error_r)
{
	const struct aiosmtpd_handler *h;
	void *dl;

	/* RTLD_NOW: a missing symbol stops the start, not a session.
	 * RTLD_LOCAL: one plugin's symbols never serve another library. */
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		*error_r = load_error(path, "%s", dlerror());
		return NULL;
	}
	h = dlsym(dl, AIOSMTPD_HANDLER_SYMBOL);
	if (h == NULL) {
		*error_r = load_error(path, "it defines no '%s'",
				      AIOSMTPD_HANDLER_SYMBOL);
		dlclose(dl);
		return NULL;
	}
	if (h->abi_version != AIOSMTPD_HANDLER_ABI_VERSION) {
		*error_r = load_error(path,
				      "it was built for handler ABI "
				      "version %u, this daemon has "
				      "version %u; rebuild it against "
				      "this aiosmtpd/handler.h",
				      h->abi_version,
				      AIOSMTPD_HANDLER_ABI_VERSION);
		dlclose(dl);
		return NULL;
	}
	/* The handle is never closed: the table lives as long as we do. */
	return h;
}

void aiosmtpd_log(enum aiosmtpd_log_level level, const char *fmt, ...)
{
	static const enum log_level levels[] = {
		[AIOSMTPD_LOG_DEBUG] = LOG_LEVEL_DEBUG,
		[AIOSMTPD_LOG_INFO] = LOG_LEVEL_INFO,
		[AIOSMTPD_LOG_WARNING] = LOG_LEVEL_WARNING,
		[AIOSMTPD_LOG_ERROR] = LOG_LEVEL_ERROR,
	};
	va_list ap;

	if ((unsigned)level >= N_ELEMENTS(levels))
		level = AIOSMTPD_LOG_ERROR;
	va_start(ap, fmt);
	log_vmessage(levels[level], fmt, ap);
	va_end(ap);
}
