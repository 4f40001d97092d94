/*
 * error.h - filling a struct aiosmtpd_error
 *
 * Every function of the library that can fail takes the caller's
 * struct aiosmtpd_error, which may be NULL.  Every symbol this library
 * exports starts with aiosmtpd_, because a static library shares the
 * test program's namespace.
 */
#ifndef AIOSMTPD_CONTROLLER_ERROR_H
#define AIOSMTPD_CONTROLLER_ERROR_H

#include "aiosmtpd/controller.h"

/* aiosmtpd_error_set - code and a printf-formatted text (%m works);
 * always returns -1, so that "return aiosmtpd_error_set(...)" fails */
int aiosmtpd_error_set(struct aiosmtpd_error *error,
		       enum aiosmtpd_error_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* aiosmtpd_error_copy - *to = *from, when to is not NULL */
void aiosmtpd_error_copy(struct aiosmtpd_error *to,
			 const struct aiosmtpd_error *from);

#endif
