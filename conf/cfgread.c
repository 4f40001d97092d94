/*
 * cfgread.c - reading libconfig settings with types, ranges and places
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cfgread.h"
#include "sbuf.h"

int cfgread_fail(struct cfgread *cr, const config_setting_t *s,
		 const char *fmt, ...)
{
	const char *file = config_setting_source_file(s);
	struct sbuf sb;
	va_list ap;

	if (cr->error != NULL)
		return -1; /* keep the first error */
	sbuf_init(&sb, 128);
	sbuf_printf(&sb, "%s:%u: ", file != NULL ? file : cr->file,
		    config_setting_source_line(s));
	va_start(ap, fmt);
	sbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	cr->error = sbuf_detach(&sb);
	return -1;
}

const char *cfgread_name(const config_setting_t *s)
{
	const char *name = config_setting_name(s);

	return name != NULL ? name : "(element)";
}

static const char *type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a number";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "true or false";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "unknown";
	}
}

int cfgread_wrong_type(struct cfgread *cr, const config_setting_t *s,
		       const char *wanted)
{
	return cfgread_fail(cr, s, "'%s' must be %s, not %s", cfgread_name(s),
			    wanted, type_name(config_setting_type(s)));
}

int cfgread_bool(struct cfgread *cr, const config_setting_t *s, bool *v)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return cfgread_wrong_type(cr, s, "true or false");
	*v = config_setting_get_bool(s) != 0;
	return 0;
}

int cfgread_int(struct cfgread *cr, const config_setting_t *s, long long min,
		long long max, long long *v)
{
	int type = config_setting_type(s);

	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
		return cfgread_wrong_type(cr, s, "an integer");
	*v = config_setting_get_int64(s);
	if (*v < min || *v > max)
		return cfgread_fail(cr, s,
				    "'%s' must be between %lld and %lld, not "
				    "%lld",
				    cfgread_name(s), min, max, *v);
	return 0;
}

int cfgread_string(struct cfgread *cr, const config_setting_t *s,
		   const char **v)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfgread_wrong_type(cr, s, "a string");
	*v = config_setting_get_string(s);
	return 0;
}

int cfgread_parse_size(const char *text, uint64_t *size_r)
{
	unsigned long long v;
	uint64_t unit = 1;
	char *end;

	if (*text < '0' || *text > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'k' || *end == 'K')
		unit = 1024, end++;
	else if (*end == 'M')
		unit = 1024 * 1024, end++;
	else if (*end == 'G')
		unit = 1024ULL * 1024 * 1024, end++;
	if (*end != '\0' || v > UINT64_MAX / unit)
		return -1;
	*size_r = v * unit;
	return 0;
}

int cfgread_size(struct cfgread *cr, const config_setting_t *s, uint64_t max,
		 uint64_t *v)
{
	long long n = 0;

	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		if (cfgread_parse_size(config_setting_get_string(s), v) < 0)
			return cfgread_fail(cr, s,
					    "'%s' must be a size such as "
					    "33554432, \"512k\" or \"32M\"",
					    cfgread_name(s));
	} else {
		if (cfgread_int(cr, s, 0, LLONG_MAX, &n) < 0)
			return -1;
		*v = (uint64_t)n;
	}
	if (*v > max)
		return cfgread_fail(cr, s, "'%s' must be at most %llu",
				    cfgread_name(s), (unsigned long long)max);
	return 0;
}

int cfgread_seconds(struct cfgread *cr, const config_setting_t *s,
		    double min, double max, unsigned *ms)
{
	int type = config_setting_type(s);
	double v;

	if (type == CONFIG_TYPE_FLOAT)
		v = config_setting_get_float(s);
	else if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
		v = (double)config_setting_get_int64(s);
	else
		return cfgread_wrong_type(cr, s, "a number of seconds");
	if (v < min || v > max)
		return cfgread_fail(cr, s,
				    "'%s' must be between %g and %g seconds, "
				    "not %g",
				    cfgread_name(s), min, max, v);
	*ms = (unsigned)(v * 1000 + 0.5);
	return 0;
}

int cfgread_strings(struct cfgread *cr, const config_setting_t *s,
		    const char ***v, size_t *n)
{
	int type = config_setting_type(s);
	int len;

	if (type == CONFIG_TYPE_STRING) {
		*v = xmalloc(sizeof(**v));
		(*v)[0] = config_setting_get_string(s);
		*n = 1;
		return 0;
	}
	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
		return cfgread_wrong_type(cr, s,
					  "a string or a list of strings");
	len = config_setting_length(s);
	*v = xcalloc((size_t)len + 1, sizeof(**v));
	*n = 0;
	for (int i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			XFREE(*v);
			return cfgread_fail(cr, e,
					    "'%s' must hold strings only",
					    cfgread_name(s));
		}
		(*v)[(*n)++] = config_setting_get_string(e);
	}
	return 0;
}

/* edit_distance - Levenshtein distance of two short names */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 64 || lb >= 64)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins)
					   : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
	}
	return prev[lb];
}

int cfgread_unknown(struct cfgread *cr, const config_setting_t *s,
		    const char *where, const char *const *names)
{
	const char *name = cfgread_name(s), *best = NULL;
	size_t best_d = 3;

	for (; *names != NULL; names++) {
		size_t d = edit_distance(name, *names);

		if (d < best_d) {
			best_d = d;
			best = *names;
		}
	}
	if (best != NULL)
		return cfgread_fail(cr, s,
				    "unknown setting '%s'%s (did you mean "
				    "'%s'?)",
				    name, where, best);
	return cfgread_fail(cr, s, "unknown setting '%s'%s", name, where);
}
