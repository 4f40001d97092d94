/*
 * cfgread.h - reading libconfig settings with types, ranges and places
 *
 * libconfig parses; it does not know which names and types a program
 * wants.  These helpers read one setting as the type the caller needs and,
 * when it is not, produce an error that names the file, the line and the
 * setting, such as "/etc/aiosmtpd.conf:12: 'timeout' must be an integer,
 * not a string".  Unknown names get the nearest known name as a hint.
 */
#ifndef AIOSMTPD_CFGREAD_H
#define AIOSMTPD_CFGREAD_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfgread {
	const char *file; /* for settings libconfig knows no file of */
	char *error;	  /* the first error; the caller frees it */
};

/* cfgread_fail - record an error at s; always returns -1 */
int cfgread_fail(struct cfgread *cr, const config_setting_t *s,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* cfgread_wrong_type - "'X' must be <wanted>, not <its type>"; -1 */
int cfgread_wrong_type(struct cfgread *cr, const config_setting_t *s,
		       const char *wanted);

/* cfgread_name - the setting's name, or "(element)" in a list */
const char *cfgread_name(const config_setting_t *s);

/* Each getter returns 0, or -1 after recording an error. */
int cfgread_bool(struct cfgread *cr, const config_setting_t *s, bool *v);
int cfgread_int(struct cfgread *cr, const config_setting_t *s, long long min,
		long long max, long long *v);
int cfgread_string(struct cfgread *cr, const config_setting_t *s,
		   const char **v);
/* cfgread_size - an integer, or a string with a k, M or G suffix */
int cfgread_size(struct cfgread *cr, const config_setting_t *s, uint64_t max,
		 uint64_t *v);
/* cfgread_seconds - a whole or fractional number of seconds, in ms */
int cfgread_seconds(struct cfgread *cr, const config_setting_t *s,
		    double min, double max, unsigned *ms);
/* cfgread_strings - a string, or an array or list of strings; the
 * strings belong to libconfig */
int cfgread_strings(struct cfgread *cr, const config_setting_t *s,
		    const char ***v, size_t *n);

/* cfgread_unknown - the error for a name no table has; names is every
 * name that would have been accepted here, NULL-terminated */
int cfgread_unknown(struct cfgread *cr, const config_setting_t *s,
		    const char *where, const char *const *names);

/* cfgread_parse_size - "33554432", "32M", "512k", "1G": 0, or -1 */
int cfgread_parse_size(const char *text, uint64_t *size_r);

#endif
