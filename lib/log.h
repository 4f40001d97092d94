/*
 * log.h - the one logging module: stderr or syslog (facility mail)
 *
 * Every message is one line written with a single write(2) (or syslog(3)),
 * so lines from different workers never interleave.  Levels follow syslog.
 * Session events are logged by the caller as "<session-id> <client> event
 * key=value ..."; this module only adds the time, the program and pid (on
 * stderr) and the level word for warnings and worse.  Never pass AUTH data
 * or message content to it.
 */
#ifndef AIOSMTPD_LOG_H
#define AIOSMTPD_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_ERROR,
};

enum log_target {
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
};

/* log_open - choose the target and the lowest level that is written */
void log_open(const char *ident, enum log_target target,
	      enum log_level min_level);
/* log_set_level - change the lowest level written */
void log_set_level(enum log_level min_level);
bool log_enabled(enum log_level level);
/* log_level_parse - "debug", "info", "warning" or "error"; -1 if none */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_vmessage - log at a level given at run time (the plugin API) */
void log_vmessage(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* log_fatal - log and exit(status): for bad configuration and start-up */
void log_fatal(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* log_panic - log and abort(): our own state is impossible */
void log_panic(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif
