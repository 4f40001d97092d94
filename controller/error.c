/*
 * error.c - filling a struct aiosmtpd_error
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "error.h"

int aiosmtpd_error_set(struct aiosmtpd_error *error,
		       enum aiosmtpd_error_code code, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (error == NULL)
		return -1;
	error->code = code;
	va_start(ap, fmt);
	errno = saved; /* for %m */
	vsnprintf(error->text, sizeof(error->text), fmt, ap);
	va_end(ap);
	errno = saved;
	return -1;
}

void aiosmtpd_error_copy(struct aiosmtpd_error *to,
			 const struct aiosmtpd_error *from)
{
	if (to != NULL && to != from)
		*to = *from;
}
