/*
 * log.c - stderr and syslog logging
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_ident = "aiosmtpd";
static enum log_target log_target = LOG_TARGET_STDERR;
static enum log_level log_min_level = LOG_LEVEL_INFO;

/* The time to the second and "ident[pid]: ", formatted once: a busy
 * worker logs several lines per session, and strftime() and getpid()
 * were most of what logging cost. */
static time_t cached_second = -1;
static char cached_time[32];
static char cached_ident[64];
static pid_t cached_pid;

/* stderr_prefix - "2026-12-03T17:19:31.117 aiosmtpd[6684]: " */
static size_t stderr_prefix(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != cached_second) {
		localtime_r(&ts.tv_sec, &tm);
		strftime(cached_time, sizeof(cached_time), "%Y-%m-%dT%H:%M:%S",
			 &tm);
		cached_second = ts.tv_sec;
	}
	if (cached_ident[0] == '\0' || cached_pid == 0) {
		cached_pid = getpid();
		snprintf(cached_ident, sizeof(cached_ident), "%s[%d]: ",
			 log_ident, (int)cached_pid);
	}
	n = snprintf(buf, size, "%s.%03ld %s", cached_time,
		     ts.tv_nsec / 1000000, cached_ident);
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* forget_pid - after fork() the child logs under its own pid */
static void forget_pid(void)
{
	cached_pid = 0;
}

static const char *const level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_ERROR] = "error",
};

void log_open(const char *ident, enum log_target target,
	      enum log_level min_level)
{
	static bool registered;

	log_ident = ident;
	log_target = target;
	log_min_level = min_level;
	cached_ident[0] = '\0';
	if (!registered)
		registered = pthread_atfork(NULL, NULL, forget_pid) == 0;
	if (target == LOG_TARGET_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_level(enum log_level min_level)
{
	log_min_level = min_level;
}

bool log_enabled(enum log_level level)
{
	return level >= log_min_level;
}

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++) {
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return level_names[level];
}

/* emit - format one line and write it in one call; errno is preserved */
static void emit(int priority, const char *prefix, const char *fmt,
		 va_list ap)
{
	int saved_errno = errno;
	char line[2048];
	size_t len = 0;
	int n;

	if (log_target == LOG_TARGET_STDERR)
		len = stderr_prefix(line, sizeof(line));
	n = snprintf(line + len, sizeof(line) - len, "%s", prefix);
	len += n > 0 ? (size_t)n : 0;
	errno = saved_errno;
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	len = n < 0 ? len : len + (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;

	if (log_target == LOG_TARGET_SYSLOG) {
		line[len] = '\0';
		syslog(priority, "%s", line);
	} else {
		line[len++] = '\n';
		if (write(STDERR_FILENO, line, len) < 0) {
			/* Nowhere left to report it. */
		}
	}
	errno = saved_errno;
}

#define LOG_BODY(level, priority, prefix)                                      \
	do {                                                                   \
		va_list ap;                                                    \
		if (!log_enabled(level))                                       \
			return;                                                \
		va_start(ap, fmt);                                             \
		emit(priority, prefix, fmt, ap);                               \
		va_end(ap);                                                    \
	} while (0)

void log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_DEBUG, LOG_DEBUG, "");
}

void log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_INFO, LOG_INFO, "");
}

void log_warning(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARNING, LOG_WARNING, "warning: ");
}

void log_error(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_ERROR, LOG_ERR, "error: ");
}

void log_vmessage(enum log_level level, const char *fmt, va_list ap)
{
	static const int priorities[] = {
		[LOG_LEVEL_DEBUG] = LOG_DEBUG,
		[LOG_LEVEL_INFO] = LOG_INFO,
		[LOG_LEVEL_WARNING] = LOG_WARNING,
		[LOG_LEVEL_ERROR] = LOG_ERR,
	};
	static const char *const prefixes[] = {
		[LOG_LEVEL_DEBUG] = "",
		[LOG_LEVEL_INFO] = "",
		[LOG_LEVEL_WARNING] = "warning: ",
		[LOG_LEVEL_ERROR] = "error: ",
	};

	if (level > LOG_LEVEL_ERROR)
		level = LOG_LEVEL_ERROR;
	if (log_enabled(level))
		emit(priorities[level], prefixes[level], fmt, ap);
}

void log_fatal(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(LOG_CRIT, "fatal: ", fmt, ap);
	va_end(ap);
	if (log_target == LOG_TARGET_SYSLOG) {
		/* Whoever started us should see why we stop. */
		fprintf(stderr, "%s: fatal: ", log_ident);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	exit(status);
}

void log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(LOG_CRIT, "panic: ", fmt, ap);
	va_end(ap);
	abort();
}
