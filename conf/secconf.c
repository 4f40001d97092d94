/*
 * secconf.c - the tls and auth settings: reading, copying, printing
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "sbuf.h"
#include "secconf.h"

/* What a key of the tls or auth groups writes to. */
struct target {
	struct tls_conf *tc;
	struct auth_conf *ac;
	struct smtp_settings *smtp;
};

typedef int key_fn(struct cfgread *cr, const config_setting_t *s,
		   struct target *t);

struct key {
	const char *name;
	key_fn *apply;
};

/* --- life cycle ----------------------------------------------------------- */

static char **strings_copy(char *const *v, size_t n)
{
	char **copy = n > 0 ? xcalloc(n, sizeof(*copy)) : NULL;

	for (size_t i = 0; i < n; i++)
		copy[i] = xstrdup(v[i]);
	return copy;
}

static void strings_free(char ***v, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*v)[i]);
	XFREE(*v);
	*n = 0;
}

static char *strdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void options_free(struct auth_conf *ac)
{
	for (size_t i = 0; i < ac->n_options; i++) {
		free(ac->options[i].name);
		free(ac->options[i].value);
	}
	XFREE(ac->options);
	ac->n_options = 0;
}

void secconf_init(struct tls_conf *tc, struct auth_conf *ac)
{
	memset(tc, 0, sizeof(*tc));
	memset(ac, 0, sizeof(*ac));
	tc->min_version = 12;
}

void secconf_copy(struct tls_conf *tc, const struct tls_conf *from_tc,
		  struct auth_conf *ac, const struct auth_conf *from_ac)
{
	*tc = *from_tc;
	tc->cert = strdup_or_null(from_tc->cert);
	tc->key = strdup_or_null(from_tc->key);
	tc->ciphers = strdup_or_null(from_tc->ciphers);
	tc->ciphersuites = strdup_or_null(from_tc->ciphersuites);
	tc->origin = strdup_or_null(from_tc->origin);
	*ac = *from_ac;
	ac->mechanisms = strings_copy(from_ac->mechanisms,
				      from_ac->n_mechanisms);
	ac->exclude = strings_copy(from_ac->exclude, from_ac->n_exclude);
	ac->service = strdup_or_null(from_ac->service);
	ac->realm = strdup_or_null(from_ac->realm);
	ac->options = NULL;
	if (from_ac->n_options > 0)
		ac->options = xcalloc(from_ac->n_options,
				      sizeof(*ac->options));
	for (size_t i = 0; i < from_ac->n_options; i++) {
		ac->options[i].name = xstrdup(from_ac->options[i].name);
		ac->options[i].value = xstrdup(from_ac->options[i].value);
	}
}

void secconf_free(struct tls_conf *tc, struct auth_conf *ac)
{
	XFREE(tc->cert);
	XFREE(tc->key);
	XFREE(tc->ciphers);
	XFREE(tc->ciphersuites);
	XFREE(tc->origin);
	strings_free(&ac->mechanisms, &ac->n_mechanisms);
	strings_free(&ac->exclude, &ac->n_exclude);
	XFREE(ac->service);
	XFREE(ac->realm);
	options_free(ac);
}

/* --- reading ------------------------------------------------------------- */

/* origin - "file:line" of a setting, for errors found after loading */
static char *origin(const struct cfgread *cr, const config_setting_t *s)
{
	const char *file = config_setting_source_file(s);
	struct sbuf sb;

	sbuf_init(&sb, 64);
	sbuf_printf(&sb, "%s:%u", file != NULL ? file : cr->file,
		    config_setting_source_line(s));
	return sbuf_detach(&sb);
}

/* replace_string - a non-empty string setting into *dst */
static int replace_string(struct cfgread *cr, const config_setting_t *s,
			  char **dst)
{
	const char *v = NULL;

	if (cfgread_string(cr, s, &v) < 0)
		return -1;
	if (*v == '\0')
		return cfgread_fail(cr, s, "'%s' must not be empty",
				    cfgread_name(s));
	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

/* load_group - every member of a group through its table */
static int load_group(struct cfgread *cr, const config_setting_t *group,
		      const char *where, const struct key *table, size_t n,
		      const char *const *names, struct target *t)
{
	for (int i = 0; i < config_setting_length(group); i++) {
		config_setting_t *s = config_setting_get_elem(group, i);
		const struct key *key = NULL;

		for (size_t k = 0; k < n; k++) {
			if (strcmp(table[k].name, cfgread_name(s)) == 0)
				key = &table[k];
		}
		if (key == NULL)
			return cfgread_unknown(cr, s, where, names);
		if (key->apply(cr, s, t) < 0)
			return -1;
	}
	return 0;
}

static int tls_mode(struct cfgread *cr, const config_setting_t *s,
		    struct target *t)
{
	static const char *const modes[] = {
		[TLS_MODE_NONE] = "none",
		[TLS_MODE_STARTTLS] = "starttls",
		[TLS_MODE_IMPLICIT] = "implicit",
	};
	const char *v = NULL;

	if (cfgread_string(cr, s, &v) < 0)
		return -1;
	for (size_t i = 0; i < N_ELEMENTS(modes); i++) {
		if (strcmp(v, modes[i]) != 0)
			continue;
		t->tc->mode = (enum tls_mode)i;
		if (t->tc->origin == NULL)
			t->tc->origin = origin(cr, s);
		return 0;
	}
	return cfgread_fail(cr, s,
			    "'%s' must be \"none\", \"starttls\" or "
			    "\"implicit\", not \"%s\"",
			    cfgread_name(s), v);
}

/* tls_string - cert, key or ciphers: errors found when the context is
 * built name the place of the last of them */
static int tls_string(struct cfgread *cr, const config_setting_t *s,
		      struct target *t, char **dst)
{
	if (replace_string(cr, s, dst) < 0)
		return -1;
	free(t->tc->origin);
	t->tc->origin = origin(cr, s);
	return 0;
}

static int tls_cert(struct cfgread *cr, const config_setting_t *s,
		    struct target *t)
{
	return tls_string(cr, s, t, &t->tc->cert);
}

static int tls_key(struct cfgread *cr, const config_setting_t *s,
		   struct target *t)
{
	return tls_string(cr, s, t, &t->tc->key);
}

static int tls_ciphers(struct cfgread *cr, const config_setting_t *s,
		       struct target *t)
{
	return tls_string(cr, s, t, &t->tc->ciphers);
}

static int tls_ciphersuites(struct cfgread *cr, const config_setting_t *s,
			    struct target *t)
{
	return tls_string(cr, s, t, &t->tc->ciphersuites);
}

static int tls_min_version(struct cfgread *cr, const config_setting_t *s,
			   struct target *t)
{
	const char *v = NULL;

	if (cfgread_string(cr, s, &v) < 0)
		return -1;
	if (strcmp(v, "TLSv1.2") == 0)
		t->tc->min_version = 12;
	else if (strcmp(v, "TLSv1.3") == 0)
		t->tc->min_version = 13;
	else
		return cfgread_fail(cr, s,
				    "'min_version' must be \"TLSv1.2\" or "
				    "\"TLSv1.3\", not \"%s\"",
				    v);
	return 0;
}

static int tls_require_starttls(struct cfgread *cr, const config_setting_t *s,
				struct target *t)
{
	return cfgread_bool(cr, s, &t->smtp->require_starttls);
}

static const struct key tls_keys[] = {
	{"cert", tls_cert},
	{"ciphers", tls_ciphers},
	{"ciphersuites", tls_ciphersuites},
	{"key", tls_key},
	{"min_version", tls_min_version},
	{"mode", tls_mode},
	{"require_starttls", tls_require_starttls},
};

static const char *const tls_names[] = {
	"cert",	       "ciphers", "ciphersuites",     "key",
	"min_version", "mode",	  "require_starttls", NULL};

int secconf_tls(struct cfgread *cr, const config_setting_t *s,
		struct tls_conf *tc, struct smtp_settings *smtp)
{
	struct target t = {.tc = tc, .smtp = smtp};

	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return tls_mode(cr, s, &t);
	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return cfgread_wrong_type(cr, s,
					  "\"none\", \"starttls\", "
					  "\"implicit\" or a group");
	return load_group(cr, s, " in 'tls'", tls_keys, N_ELEMENTS(tls_keys),
			  tls_names, &t);
}

/* mechanism_name - RFC 4422's syntax: up to 20 of A-Z 0-9 - _ */
static bool mechanism_name(const char *name)
{
	size_t len = strlen(name);

	return len >= 1 && len <= 20 &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == len;
}

/* get_mechanisms - a mechanism name, or a list of them */
static int get_mechanisms(struct cfgread *cr, const config_setting_t *s,
			  char ***v, size_t *n)
{
	const char **names = NULL;
	size_t count = 0;

	if (cfgread_strings(cr, s, &names, &count) < 0)
		return -1;
	strings_free(v, n);
	*v = xcalloc(count + 1, sizeof(**v));
	for (size_t i = 0; i < count; i++) {
		if (!mechanism_name(names[i])) {
			cfgread_fail(cr, s,
				     "'%s': \"%s\" is not a SASL mechanism "
				     "name (upper case, such as \"PLAIN\")",
				     cfgread_name(s), names[i]);
			free(names);
			return -1;
		}
		(*v)[(*n)++] = xstrdup(names[i]);
	}
	free(names);
	return 0;
}

static int auth_enabled(struct cfgread *cr, const config_setting_t *s,
			struct target *t)
{
	return cfgread_bool(cr, s, &t->ac->enabled);
}

static int auth_required(struct cfgread *cr, const config_setting_t *s,
			 struct target *t)
{
	return cfgread_bool(cr, s, &t->smtp->auth_required);
}

static int auth_require_tls(struct cfgread *cr, const config_setting_t *s,
			    struct target *t)
{
	return cfgread_bool(cr, s, &t->smtp->auth_require_tls);
}

static int auth_mechanisms(struct cfgread *cr, const config_setting_t *s,
			   struct target *t)
{
	return get_mechanisms(cr, s, &t->ac->mechanisms,
			      &t->ac->n_mechanisms);
}

static int auth_exclude(struct cfgread *cr, const config_setting_t *s,
			struct target *t)
{
	return get_mechanisms(cr, s, &t->ac->exclude, &t->ac->n_exclude);
}

static int auth_max_failures(struct cfgread *cr, const config_setting_t *s,
			     struct target *t)
{
	long long v = 0;

	if (cfgread_int(cr, s, 0, 1000, &v) < 0)
		return -1;
	t->smtp->auth_max_failures = (unsigned)v;
	return 0;
}

static int sasl_service(struct cfgread *cr, const config_setting_t *s,
			struct target *t)
{
	return replace_string(cr, s, &t->ac->service);
}

static int sasl_realm(struct cfgread *cr, const config_setting_t *s,
		      struct target *t)
{
	return replace_string(cr, s, &t->ac->realm);
}

/* The options of Cyrus SASL 2.1.28 and its bundled plugins (its
 * options.rst), so that a misspelt one is an error here rather than a
 * setting Cyrus silently ignores. */
static const char *const sasl_option_names[] = {
	"authdaemond_path", "auto_transition", "auxprop_plugin",
	"canon_user_plugin", "ccache_store", "keytab", "ldapdb_canon_attr",
	"ldapdb_id", "ldapdb_mech", "ldapdb_pw", "ldapdb_rc",
	"ldapdb_starttls", "ldapdb_uri", "log_level", "mech_list", "opiekeys",
	"otp_mda", "plugin_list", "pwcheck_method", "saslauthd_path",
	"sasldb_mapsize", "sasldb_maxreaders", "sasldb_path",
	"scram_iteration_counter", "sql_database", "sql_engine",
	"sql_hostnames", "sql_insert", "sql_passwd", "sql_select",
	"sql_update", "sql_user", "sql_usessl", "srp_mda", "srvtab", NULL};

static bool known_option(const char *name)
{
	for (size_t i = 0; sasl_option_names[i] != NULL; i++) {
		if (strcmp(sasl_option_names[i], name) == 0)
			return true;
	}
	return false;
}

/* option_value - a scalar as the text Cyrus would read from its file */
static int option_value(struct cfgread *cr, const config_setting_t *s,
			char **value_r)
{
	struct sbuf sb;

	sbuf_init(&sb, 32);
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		sbuf_puts(&sb, config_setting_get_string(s));
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		sbuf_printf(&sb, "%lld", config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_BOOL:
		sbuf_puts(&sb, config_setting_get_bool(s) ? "yes" : "no");
		break;
	default:
		sbuf_free(&sb);
		return cfgread_wrong_type(cr, s,
					  "a string, an integer or a boolean");
	}
	*value_r = sbuf_detach(&sb);
	return 0;
}

/* sasl_options - options = { pwcheck_method = "auxprop"; ... } */
static int sasl_options(struct cfgread *cr, const config_setting_t *s,
			struct target *t)
{
	struct auth_conf *ac = t->ac;
	int n = config_setting_length(s);

	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return cfgread_wrong_type(cr, s, "a group");
	options_free(ac);
	ac->options = xcalloc((size_t)n + 1, sizeof(*ac->options));
	for (int i = 0; i < n; i++) {
		config_setting_t *m = config_setting_get_elem(s, i);
		struct sasl_option *o = &ac->options[ac->n_options];

		if (!known_option(cfgread_name(m)))
			return cfgread_unknown(cr, m, " in 'sasl.options'",
					       sasl_option_names);
		if (option_value(cr, m, &o->value) < 0)
			return -1;
		o->name = xstrdup(cfgread_name(m));
		ac->n_options++;
	}
	return 0;
}

static const struct key sasl_keys[] = {
	{"options", sasl_options},
	{"realm", sasl_realm},
	{"service", sasl_service},
};

static const char *const sasl_names[] = {"options", "realm", "service",
					 NULL};

static int auth_sasl(struct cfgread *cr, const config_setting_t *s,
		     struct target *t)
{
	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return cfgread_wrong_type(cr, s, "a group");
	return load_group(cr, s, " in 'sasl'", sasl_keys,
			  N_ELEMENTS(sasl_keys), sasl_names, t);
}

static const struct key auth_keys[] = {
	{"enabled", auth_enabled},	   {"exclude", auth_exclude},
	{"max_failures", auth_max_failures}, {"mechanisms", auth_mechanisms},
	{"require_tls", auth_require_tls}, {"required", auth_required},
	{"sasl", auth_sasl},
};

static const char *const auth_names[] = {
	"enabled",     "exclude",  "max_failures", "mechanisms",
	"require_tls", "required", "sasl",	   NULL};

int secconf_auth(struct cfgread *cr, const config_setting_t *s,
		 struct auth_conf *ac, struct smtp_settings *smtp)
{
	struct target t = {.ac = ac, .smtp = smtp};

	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return cfgread_wrong_type(cr, s,
					  "a group such as { required = "
					  "true; }");
	/* The group's presence turns AUTH on; enabled = false, off. */
	ac->enabled = true;
	return load_group(cr, s, " in 'auth'", auth_keys,
			  N_ELEMENTS(auth_keys), auth_names, &t);
}

/* --- the command line, finishing, printing -------------------------------- */

void secconf_set_tls(struct tls_conf *tc, struct smtp_settings *smtp,
		     enum tls_mode mode, const char *cert, const char *key,
		     bool require_starttls)
{
	tc->mode = mode;
	free(tc->cert);
	tc->cert = xstrdup(cert);
	free(tc->key);
	tc->key = xstrdup(key);
	free(tc->origin);
	tc->origin = xstrdup(mode == TLS_MODE_IMPLICIT ? "--smtpscert"
						       : "--tlscert");
	smtp->require_starttls = require_starttls;
}

void secconf_finish(const struct tls_conf *tc, struct smtp_settings *smtp)
{
	smtp->tls_available = tc->mode == TLS_MODE_STARTTLS;
	if (!smtp->tls_available)
		smtp->require_starttls = false;
}

static void print_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static void print_optional(FILE *out, const char *name, const char *value)
{
	if (value == NULL)
		return;
	fprintf(out, " %s = ", name);
	print_quoted(out, value);
	fputc(';', out);
}

static void print_names(FILE *out, const char *name, char *const *v,
			size_t n)
{
	fprintf(out, " %s = [", name);
	for (size_t i = 0; i < n; i++) {
		fputs(i > 0 ? ", " : " ", out);
		print_quoted(out, v[i]);
	}
	fprintf(out, "%s];", n > 0 ? " " : "");
}

static void print_tls(FILE *out, const char *indent,
		      const struct tls_conf *tc,
		      const struct smtp_settings *smtp)
{
	static const char *const modes[] = {"none", "starttls", "implicit"};

	fprintf(out, "%stls = { mode = \"%s\";", indent, modes[tc->mode]);
	print_optional(out, "cert", tc->cert);
	print_optional(out, "key", tc->key);
	print_optional(out, "ciphers", tc->ciphers);
	print_optional(out, "ciphersuites", tc->ciphersuites);
	fprintf(out, " min_version = \"TLSv1.%u\"; require_starttls = %s; };\n",
		tc->min_version - 10,
		smtp->require_starttls ? "true" : "false");
}

static void print_auth(FILE *out, const char *indent,
		       const struct auth_conf *ac,
		       const struct smtp_settings *smtp)
{
	fprintf(out,
		"%sauth = { enabled = %s; required = %s; require_tls = %s; "
		"max_failures = %u;",
		indent, ac->enabled ? "true" : "false",
		smtp->auth_required ? "true" : "false",
		smtp->auth_require_tls ? "true" : "false",
		smtp->auth_max_failures);
	print_names(out, "mechanisms", ac->mechanisms, ac->n_mechanisms);
	print_names(out, "exclude", ac->exclude, ac->n_exclude);
	fprintf(out, " sasl = {");
	print_optional(out, "service", ac->service);
	print_optional(out, "realm", ac->realm);
	fprintf(out, " options = {");
	for (size_t i = 0; i < ac->n_options; i++) {
		fprintf(out, " %s = ", ac->options[i].name);
		print_quoted(out, ac->options[i].value);
		fputc(';', out);
	}
	fprintf(out, " }; }; };\n");
}

void secconf_print(FILE *out, const char *indent, const struct tls_conf *tc,
		   const struct auth_conf *ac,
		   const struct smtp_settings *smtp)
{
	print_tls(out, indent, tc, smtp);
	print_auth(out, indent, ac, smtp);
}
