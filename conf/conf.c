/*
 * conf.c - configuration defaults, loading and validation
 *
 * libconfig has no schema, so each group has a table of the keys it may
 * hold, each with a function that checks the value's type and range and
 * stores it.  Anything not in a table is an error.  Values are copied out
 * of libconfig's tree, which is destroyed before conf_load() returns.
 */
#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "sbuf.h"
#include "conf.h"

#define DEFAULT_LISTENER "localhost:8025"
#define DEFAULT_IDENT "aiosmtpd-c " PACKAGE_VERSION

struct loader {
	struct conf *cfg;
	char *error;
};

typedef int key_fn(struct loader *ld, config_setting_t *s,
		   struct session_conf *sc);

struct key {
	const char *name;
	key_fn *apply;
};

/* --- session settings ---------------------------------------------------- */

static void session_init(struct session_conf *sc)
{
	memset(sc, 0, sizeof(*sc));
	smtp_settings_init(&sc->smtp);
	sc->timeout = 300;
}

static void session_free(struct session_conf *sc)
{
	XFREE(sc->call_limits);
	sc->smtp.call_limits = NULL;
	sc->smtp.n_call_limits = 0;
}

static void session_copy(struct session_conf *dst,
			 const struct session_conf *src)
{
	*dst = *src;
	if (src->smtp.n_call_limits > 0) {
		size_t size = src->smtp.n_call_limits * sizeof(*src->call_limits);

		dst->call_limits = xmalloc(size);
		memcpy(dst->call_limits, src->call_limits, size);
	}
	dst->smtp.call_limits = dst->call_limits;
}

/* --- errors -------------------------------------------------------------- */

static int fail(struct loader *ld, const config_setting_t *s,
		const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct loader *ld, const config_setting_t *s,
		const char *fmt, ...)
{
	struct sbuf sb;
	const char *file = config_setting_source_file(s);
	va_list ap;

	sbuf_init(&sb, 128);
	sbuf_printf(&sb, "%s:%u: ", file != NULL ? file : ld->cfg->file,
		      config_setting_source_line(s));
	va_start(ap, fmt);
	sbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	free(ld->error);
	ld->error = sbuf_detach(&sb);
	return -1;
}

static const char *name_of(const config_setting_t *s)
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

static int wrong_type(struct loader *ld, const config_setting_t *s,
		      const char *wanted)
{
	return fail(ld, s, "'%s' must be %s, not %s", name_of(s), wanted,
		    type_name(config_setting_type(s)));
}

/* --- typed getters -------------------------------------------------------- */

static int get_bool(struct loader *ld, const config_setting_t *s, bool *b)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return wrong_type(ld, s, "true or false");
	*b = config_setting_get_bool(s) != 0;
	return 0;
}

static int get_int(struct loader *ld, const config_setting_t *s,
		   long long min, long long max, long long *v)
{
	int type = config_setting_type(s);

	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
		return wrong_type(ld, s, "an integer");
	*v = config_setting_get_int64(s);
	if (*v < min || *v > max)
		return fail(ld, s, "'%s' must be between %lld and %lld, not "
				   "%lld",
			    name_of(s), min, max, *v);
	return 0;
}

static int get_string(struct loader *ld, const config_setting_t *s,
		      const char **v)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return wrong_type(ld, s, "a string");
	*v = config_setting_get_string(s);
	return 0;
}

int conf_parse_size(const char *text, uint64_t *size_r)
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

/* get_size - an integer, or a string with a k, M or G suffix */
static int get_size(struct loader *ld, const config_setting_t *s,
		    uint64_t max, uint64_t *v)
{
	long long n;

	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		if (conf_parse_size(config_setting_get_string(s), v) < 0)
			return fail(ld, s, "'%s' must be a size such as "
					   "33554432, \"512k\" or \"32M\"",
				    name_of(s));
	} else {
		if (get_int(ld, s, 0, LLONG_MAX, &n) < 0)
			return -1;
		*v = (uint64_t)n;
	}
	if (*v > max)
		return fail(ld, s, "'%s' must be at most %llu", name_of(s),
			    (unsigned long long)max);
	return 0;
}

/* --- session keys (global, or per listener) ------------------------------- */

static int key_data_size_limit(struct loader *ld, config_setting_t *s,
			       struct session_conf *sc)
{
	return get_size(ld, s, (uint64_t)1 << 40, &sc->smtp.data_size_limit);
}

static int key_smtputf8(struct loader *ld, config_setting_t *s,
			struct session_conf *sc)
{
	return get_bool(ld, s, &sc->smtp.smtputf8);
}

static int key_decode_data(struct loader *ld, config_setting_t *s,
			   struct session_conf *sc)
{
	return get_bool(ld, s, &sc->smtp.decode_data);
}

static int key_timeout(struct loader *ld, config_setting_t *s,
		       struct session_conf *sc)
{
	long long v = 0;

	if (get_int(ld, s, 1, 86400, &v) < 0)
		return -1;
	sc->timeout = (unsigned)v;
	return 0;
}

static int key_command_size_limit(struct loader *ld, config_setting_t *s,
				  struct session_conf *sc)
{
	long long v = 0;

	/* The input buffer holds the longest line plus MAIL's extra room. */
	if (get_int(ld, s, 64, SMTP_IO_INPUT_SIZE / 2, &v) < 0)
		return -1;
	sc->smtp.command_size_limit = (size_t)v;
	return 0;
}

static int key_local_part_limit(struct loader *ld, config_setting_t *s,
				struct session_conf *sc)
{
	long long v = 0;

	if (get_int(ld, s, 0, 1000, &v) < 0)
		return -1;
	sc->smtp.local_part_limit = (size_t)v;
	return 0;
}

/* add_call_limit - one per-command entry of command_call_limit */
static int add_call_limit(struct loader *ld, config_setting_t *s,
			  struct session_conf *sc)
{
	const char *verb = config_setting_name(s);
	struct smtp_call_limit *cl;
	long long v = 0;

	if (get_int(ld, s, 0, INT_MAX, &v) < 0)
		return -1;
	if (strcmp(verb, "default") == 0 || strcmp(verb, "*") == 0) {
		sc->smtp.call_limit_default = (long)v;
		return 0;
	}
	if (strlen(verb) >= sizeof(cl->verb))
		return fail(ld, s, "'%s' is not a command", verb);
	sc->call_limits =
		xrealloc(sc->call_limits, (sc->smtp.n_call_limits + 1) *
						  sizeof(*sc->call_limits));
	cl = &sc->call_limits[sc->smtp.n_call_limits++];
	strcpy(cl->verb, verb);
	for (char *p = cl->verb; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	}
	cl->limit = (long)v;
	sc->smtp.call_limits = sc->call_limits;
	return 0;
}

/* key_command_call_limit - a number for every command, or a group:
 * { default = 20; NOOP = 5; ... } as aiosmtpd's dict with its "*" key */
static int key_command_call_limit(struct loader *ld, config_setting_t *s,
				  struct session_conf *sc)
{
	long long v = 0;

	XFREE(sc->call_limits);
	sc->smtp.call_limits = NULL;
	sc->smtp.n_call_limits = 0;
	sc->smtp.call_limit_enabled = true;
	sc->smtp.call_limit_default = SMTP_CALL_LIMIT_DEFAULT;
	if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		if (get_int(ld, s, 0, INT_MAX, &v) < 0)
			return -1;
		sc->smtp.call_limit_default = (long)v;
		return 0;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		if (add_call_limit(ld, config_setting_get_elem(s, i), sc) < 0)
			return -1;
	}
	return 0;
}

static const struct key session_keys[] = {
	{"command_call_limit", key_command_call_limit},
	{"command_size_limit", key_command_size_limit},
	{"data_size_limit", key_data_size_limit},
	{"decode_data", key_decode_data},
	{"local_part_limit", key_local_part_limit},
	{"smtputf8", key_smtputf8},
	{"timeout", key_timeout},
};

/* --- tables and the walk --------------------------------------------------- */

/* edit_distance - Levenshtein distance, for "did you mean" hints */
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

/* unknown_key - the error for a key no table knows, with the nearest
 * known name when one is close */
static int unknown_key(struct loader *ld, const config_setting_t *s,
		       const char *where, const struct key *const tables[],
		       const size_t sizes[], size_t n_tables)
{
	const char *name = name_of(s), *best = NULL;
	size_t best_d = 3;

	for (size_t t = 0; t < n_tables; t++) {
		for (size_t i = 0; i < sizes[t]; i++) {
			size_t d = edit_distance(name, tables[t][i].name);

			if (d < best_d) {
				best_d = d;
				best = tables[t][i].name;
			}
		}
	}
	if (best != NULL)
		return fail(ld, s, "unknown setting '%s'%s (did you mean "
				   "'%s'?)",
			    name, where, best);
	return fail(ld, s, "unknown setting '%s'%s", name, where);
}

static const struct key *find_key(const struct key *table, size_t n,
				  const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	}
	return NULL;
}

/* --- listeners ------------------------------------------------------------- */

static int listener_address(struct loader *ld, config_setting_t *s,
			    struct listener_conf *lc)
{
	const char *v = NULL;

	if (get_string(ld, s, &v) < 0)
		return -1;
	if (*v == '\0')
		return fail(ld, s, "'address' must not be empty");
	free(lc->address);
	lc->address = xstrdup(v);
	return 0;
}

static int listener_protocol(struct loader *ld, config_setting_t *s,
			     struct listener_conf *lc)
{
	const char *v = NULL;

	if (get_string(ld, s, &v) < 0)
		return -1;
	if (strcmp(v, "smtp") != 0 && strcmp(v, "lmtp") != 0)
		return fail(ld, s, "'protocol' must be \"smtp\" or \"lmtp\", "
				   "not \"%s\"",
			    v);
	lc->session.smtp.lmtp = strcmp(v, "lmtp") == 0;
	return 0;
}

static const struct key listener_keys[] = {
	{"address", NULL},
	{"protocol", NULL},
};

static int load_listener(struct loader *ld, config_setting_t *group,
			 struct listener_conf *lc)
{
	static const struct key *const tables[] = {listener_keys,
						   session_keys};
	static const size_t sizes[] = {N_ELEMENTS(listener_keys),
				       N_ELEMENTS(session_keys)};
	const struct key *key;
	int ret;

	if (config_setting_type(group) != CONFIG_TYPE_GROUP)
		return fail(ld, group, "each listener must be a group such "
				       "as { address = \"127.0.0.1:25\"; }");
	for (int i = 0; i < config_setting_length(group); i++) {
		config_setting_t *s = config_setting_get_elem(group, i);
		const char *name = config_setting_name(s);

		if (strcmp(name, "address") == 0)
			ret = listener_address(ld, s, lc);
		else if (strcmp(name, "protocol") == 0)
			ret = listener_protocol(ld, s, lc);
		else if ((key = find_key(session_keys,
					 N_ELEMENTS(session_keys), name)))
			ret = key->apply(ld, s, &lc->session);
		else
			ret = unknown_key(ld, s, " in a listener", tables,
					  sizes, 2);
		if (ret < 0)
			return -1;
	}
	if (lc->address == NULL)
		return fail(ld, group, "a listener needs an 'address'");
	return 0;
}

static void listeners_free(struct conf *cfg)
{
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		free(cfg->listeners[i].address);
		session_free(&cfg->listeners[i].session);
	}
	XFREE(cfg->listeners);
	cfg->n_listeners = 0;
}

/* load_listeners - listeners = ( { address = ...; }, ... ); each starts
 * from the global session settings, so it must be read after them */
static int load_listeners(struct loader *ld, config_setting_t *s)
{
	struct conf *cfg = ld->cfg;
	int n = config_setting_length(s);

	if (config_setting_type(s) != CONFIG_TYPE_LIST)
		return wrong_type(ld, s, "a list of groups");
	if (n == 0)
		return fail(ld, s, "'listeners' must not be empty");
	listeners_free(cfg);
	cfg->listeners = xcalloc((size_t)n, sizeof(*cfg->listeners));
	for (int i = 0; i < n; i++) {
		struct listener_conf *lc = &cfg->listeners[i];

		session_copy(&lc->session, &cfg->session);
		cfg->n_listeners++;
		if (load_listener(ld, config_setting_get_elem(s, i), lc) < 0)
			return -1;
	}
	return 0;
}

/* --- global keys ----------------------------------------------------------- */

static int set_string(struct loader *ld, config_setting_t *s, char **dst)
{
	const char *v = NULL;

	if (get_string(ld, s, &v) < 0)
		return -1;
	if (*v == '\0')
		return fail(ld, s, "'%s' must not be empty", name_of(s));
	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

static int key_hostname(struct loader *ld, config_setting_t *s,
			struct session_conf *sc)
{
	return set_string(ld, s, &ld->cfg->hostname);
}

static int key_ident(struct loader *ld, config_setting_t *s,
		     struct session_conf *sc)
{
	return set_string(ld, s, &ld->cfg->ident);
}

static int key_shutdown_timeout(struct loader *ld, config_setting_t *s,
				struct session_conf *sc)
{
	long long v = 0;

	if (get_int(ld, s, 0, 86400, &v) < 0)
		return -1;
	ld->cfg->shutdown_timeout = (unsigned)v;
	return 0;
}

static void handler_args_free(struct conf *cfg)
{
	for (size_t i = 0; i < cfg->n_handler_args; i++)
		free(cfg->handler_args[i]);
	XFREE(cfg->handler_args);
	cfg->n_handler_args = 0;
}

/*
 * The handler group: each type has the keys that become its leading
 * arguments, in order (stream is Debugging's optional one), and the keys
 * passed on as "key=value" options.  A plugin's args list is appended.
 */
struct handler_type {
	const char *type;
	const char *const *args;
	bool args_optional;
	const char *const *options;
};

static const char *const no_keys[] = {NULL};
static const char *const stream_keys[] = {"stream", NULL};
static const char *const path_keys[] = {"path", NULL};
static const char *const target_keys[] = {"target", NULL};
static const char *const host_port_keys[] = {"host", "port", NULL};
static const char *const client_options[] = {
	"timeout", "connect_timeout", "starttls", "tls_verify", "tls_ca",
	NULL};

static const struct handler_type handler_types[] = {
	{"debugging", stream_keys, true, no_keys},
	{"sink", no_keys, false, no_keys},
	{"mailbox", path_keys, false, no_keys},
	{"maildir", path_keys, false, no_keys},
	{"lmtp", target_keys, false, client_options},
	{"proxy", host_port_keys, false, client_options},
	{"smtp", host_port_keys, false, client_options},
	{"plugin", path_keys, false, no_keys},
};

static bool in_keys(const char *const *keys, const char *name)
{
	for (; *keys != NULL; keys++) {
		if (strcmp(*keys, name) == 0)
			return true;
	}
	return false;
}

static void handler_add_arg(struct conf *cfg, const char *arg)
{
	cfg->handler_args = xrealloc(cfg->handler_args,
				     (cfg->n_handler_args + 1) *
					     sizeof(*cfg->handler_args));
	cfg->handler_args[cfg->n_handler_args++] = xstrdup(arg);
}

/* handler_value - a string, integer or boolean setting as the word a
 * handler gets on its command line */
static int handler_value(struct loader *ld, config_setting_t *s,
			 struct sbuf *out)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		sbuf_puts(out, config_setting_get_string(s));
		return 0;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		sbuf_printf(out, "%lld",
			    (long long)config_setting_get_int64(s));
		return 0;
	case CONFIG_TYPE_BOOL:
		sbuf_puts(out, config_setting_get_bool(s) ? "yes" : "no");
		return 0;
	default:
		return wrong_type(ld, s, "a string, number or boolean");
	}
}

/* handler_args - the handler's words from its group, in the order its
 * command line wants them */
static int handler_args(struct loader *ld, config_setting_t *group,
			const struct handler_type *ht)
{
	config_setting_t *s;
	struct sbuf word;
	int ret = 0;

	sbuf_init(&word, 64);
	for (const char *const *k = ht->args; *k != NULL && ret == 0; k++) {
		if ((s = config_setting_get_member(group, *k)) == NULL) {
			if (!ht->args_optional)
				ret = fail(ld, group,
					   "this handler needs '%s'", *k);
			continue;
		}
		sbuf_reset(&word);
		if ((ret = handler_value(ld, s, &word)) == 0)
			handler_add_arg(ld->cfg, word.data);
	}
	for (const char *const *k = ht->options; *k != NULL && ret == 0;
	     k++) {
		if ((s = config_setting_get_member(group, *k)) == NULL)
			continue;
		sbuf_reset(&word);
		sbuf_printf(&word, "%s=", *k);
		if ((ret = handler_value(ld, s, &word)) == 0)
			handler_add_arg(ld->cfg, word.data);
	}
	sbuf_free(&word);
	return ret;
}

/* plugin_args - args = [ "word", ... ] of a plugin */
static int plugin_args(struct loader *ld, config_setting_t *group)
{
	config_setting_t *list = config_setting_get_member(group, "args");
	const char *v = NULL;

	if (list == NULL)
		return 0;
	if (config_setting_type(list) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(list) != CONFIG_TYPE_LIST)
		return wrong_type(ld, list, "an array of strings");
	for (int i = 0; i < config_setting_length(list); i++) {
		config_setting_t *word = config_setting_get_elem(list, i);

		if (get_string(ld, word, &v) < 0)
			return -1;
		handler_add_arg(ld->cfg, v);
	}
	return 0;
}

static const struct handler_type *find_handler_type(const char *type)
{
	for (size_t i = 0; i < N_ELEMENTS(handler_types); i++) {
		if (strcmp(handler_types[i].type, type) == 0)
			return &handler_types[i];
	}
	return NULL;
}

/* check_handler_keys - every key of the group belongs to its type */
static int check_handler_keys(struct loader *ld, config_setting_t *group,
			      const struct handler_type *ht)
{
	static const struct key base[] = {{"type", NULL}};
	static const struct key plugin[] = {{"args", NULL}};
	bool is_plugin = strcmp(ht->type, "plugin") == 0;
	struct key known[8];
	size_t n = 0;

	for (const char *const *k = ht->args; *k != NULL; k++)
		known[n++] = (struct key){*k, NULL};
	for (const char *const *k = ht->options; *k != NULL; k++)
		known[n++] = (struct key){*k, NULL};
	for (int i = 0; i < config_setting_length(group); i++) {
		config_setting_t *m = config_setting_get_elem(group, i);
		const char *name = name_of(m);
		const struct key *const tables[] = {base, known, plugin};
		const size_t sizes[] = {1, n, is_plugin ? 1 : 0};

		if (strcmp(name, "type") != 0 && !in_keys(ht->args, name) &&
		    !in_keys(ht->options, name) &&
		    !(is_plugin && strcmp(name, "args") == 0))
			return unknown_key(ld, m, " in 'handler'", tables,
					   sizes, 3);
	}
	return 0;
}

/* key_handler - handler = { type = "..."; ... }: see handler_types */
static int key_handler(struct loader *ld, config_setting_t *s,
		       struct session_conf *sc)
{
	struct conf *cfg = ld->cfg;
	config_setting_t *type = config_setting_get_member(s, "type");
	const struct handler_type *ht;
	const char *t = NULL;

	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return wrong_type(ld, s, "a group such as { type = \"sink\"; }");
	if (type == NULL)
		return fail(ld, s, "'handler' needs a 'type'");
	if (get_string(ld, type, &t) < 0)
		return -1;
	if ((ht = find_handler_type(t)) == NULL)
		return fail(ld, type,
			    "unknown handler type \"%s\" (known: "
			    "\"debugging\", \"sink\", \"mailbox\", "
			    "\"maildir\", \"lmtp\", \"proxy\", \"plugin\")",
			    t);
	if (check_handler_keys(ld, s, ht) < 0)
		return -1;
	handler_args_free(cfg);
	free(cfg->handler);
	cfg->handler = xstrdup(t);
	if (handler_args(ld, s, ht) < 0)
		return -1;
	if (strcmp(t, "plugin") != 0)
		return 0;
	/* A plugin is named by its path; its own words follow. */
	if (cfg->handler_args[0][0] != '/')
		return fail(ld, config_setting_get_member(s, "path"),
			    "'path' of a plugin must be absolute");
	free(cfg->handler);
	cfg->handler = cfg->handler_args[0];
	memmove(cfg->handler_args, cfg->handler_args + 1,
		--cfg->n_handler_args * sizeof(*cfg->handler_args));
	return plugin_args(ld, s);
}

static int key_listeners(struct loader *ld, config_setting_t *s,
			 struct session_conf *sc)
{
	return 0; /* read after every other key: see conf_load() */
}

static const struct key global_keys[] = {
	{"handler", key_handler},
	{"hostname", key_hostname},
	{"ident", key_ident},
	{"listeners", key_listeners},
	{"shutdown_timeout", key_shutdown_timeout},
};

static int load_root(struct loader *ld, config_setting_t *root)
{
	static const struct key *const tables[] = {global_keys, session_keys};
	static const size_t sizes[] = {N_ELEMENTS(global_keys),
				       N_ELEMENTS(session_keys)};
	config_setting_t *listeners = NULL;
	const struct key *key;

	for (int i = 0; i < config_setting_length(root); i++) {
		config_setting_t *s = config_setting_get_elem(root, i);
		const char *name = config_setting_name(s);

		if ((key = find_key(global_keys, N_ELEMENTS(global_keys),
				    name)) == NULL)
			key = find_key(session_keys, N_ELEMENTS(session_keys),
				       name);
		if (key == NULL)
			return unknown_key(ld, s, "", tables, sizes, 2);
		if (key->apply(ld, s, &ld->cfg->session) < 0)
			return -1;
		if (strcmp(name, "listeners") == 0)
			listeners = s;
	}
	if (listeners != NULL)
		return load_listeners(ld, listeners);
	/* The default listener takes the file's global settings too. */
	conf_set_listener(ld->cfg, ld->cfg->listeners[0].address);
	return 0;
}

/* --- life cycle ------------------------------------------------------------ */

void conf_init(struct conf *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	session_init(&cfg->session);
	cfg->shutdown_timeout = 30;
	cfg->handler = xstrdup("Debugging");
	conf_set_listener(cfg, DEFAULT_LISTENER);
}

void conf_free(struct conf *cfg)
{
	listeners_free(cfg);
	session_free(&cfg->session);
	handler_args_free(cfg);
	free(cfg->handler);
	free(cfg->hostname);
	free(cfg->ident);
	free(cfg->file);
	memset(cfg, 0, sizeof(*cfg));
}

void conf_set_listener(struct conf *cfg, const char *address)
{
	char *copy = xstrdup(address);

	listeners_free(cfg);
	cfg->listeners = xcalloc(1, sizeof(*cfg->listeners));
	cfg->n_listeners = 1;
	cfg->listeners[0].address = copy;
	session_copy(&cfg->listeners[0].session, &cfg->session);
}

void conf_set_handler(struct conf *cfg, const char *name, int argc,
			char *const argv[])
{
	handler_args_free(cfg);
	free(cfg->handler);
	cfg->handler = xstrdup(name);
	if (argc > 0)
		cfg->handler_args = xmalloc((size_t)argc *
					    sizeof(*cfg->handler_args));
	for (int i = 0; i < argc; i++)
		cfg->handler_args[i] = xstrdup(argv[i]);
	cfg->n_handler_args = (size_t)argc;
}

/* read_error - libconfig's reason for not reading path */
static char *read_error(const config_t *lc, const char *path, int saved)
{
	struct sbuf sb;

	sbuf_init(&sb, 128);
	if (config_error_type(lc) == CONFIG_ERR_FILE_IO)
		sbuf_printf(&sb, "%s: cannot read: %s", path,
			      saved != 0 ? strerror(saved) : "not a file");
	else
		sbuf_printf(&sb, "%s:%d: %s",
			      config_error_file(lc) != NULL
				      ? config_error_file(lc)
				      : path,
			      config_error_line(lc), config_error_text(lc));
	return sbuf_detach(&sb);
}

int conf_load(struct conf *cfg, const char *path, bool explicit,
		char **error_r)
{
	struct loader ld = {.cfg = cfg};
	char *dir, *slash;
	config_t lc;
	int ret = 0;

	if (!explicit && access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	free(cfg->file);
	cfg->file = xstrdup(path);
	config_init(&lc);
	/* @include names are relative to the including file, not to the
	 * daemon's working directory (which is / under systemd). */
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		config_set_include_dir(&lc, *dir != '\0' ? dir : "/");
	}
	errno = 0;
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		*error_r = read_error(&lc, path, errno);
		ret = -1;
	} else if (load_root(&ld, config_root_setting(&lc)) < 0) {
		*error_r = ld.error;
		ret = -1;
	}
	config_destroy(&lc);
	free(dir);
	return ret;
}

/* --- finishing and printing ------------------------------------------------ */

/* getfqdn - Python's socket.getfqdn(): the first of the reverse lookup's
 * names that has a dot, else the name the lookup returned */
static char *getfqdn(void)
{
	char host[256];
	struct hostent *he;
	struct in_addr addr;

	if (gethostname(host, sizeof(host)) < 0)
		return xstrdup("localhost");
	host[sizeof(host) - 1] = '\0';
	he = gethostbyname(host);
	if (he == NULL || he->h_addrtype != AF_INET || he->h_addr_list[0] == NULL)
		return xstrdup(host);
	memcpy(&addr, he->h_addr_list[0], sizeof(addr));
	he = gethostbyaddr(&addr, sizeof(addr), AF_INET);
	if (he == NULL)
		return xstrdup(host);
	if (strchr(he->h_name, '.') != NULL)
		return xstrdup(he->h_name);
	for (char **alias = he->h_aliases; *alias != NULL; alias++) {
		if (strchr(*alias, '.') != NULL)
			return xstrdup(*alias);
	}
	return xstrdup(he->h_name);
}

void conf_finish(struct conf *cfg)
{
	if (cfg->hostname == NULL)
		cfg->hostname = getfqdn();
	if (cfg->ident == NULL)
		cfg->ident = xstrdup(DEFAULT_IDENT);
	cfg->session.smtp.hostname = cfg->hostname;
	cfg->session.smtp.ident = cfg->ident;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		cfg->listeners[i].session.smtp.hostname = cfg->hostname;
		cfg->listeners[i].session.smtp.ident = cfg->ident;
	}
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

static void print_session(const struct session_conf *sc, FILE *out,
			  const char *indent)
{
	const struct smtp_settings *set = &sc->smtp;

	fprintf(out, "%sdata_size_limit = %llu;\n", indent,
		(unsigned long long)set->data_size_limit);
	fprintf(out, "%ssmtputf8 = %s;\n", indent,
		set->smtputf8 ? "true" : "false");
	fprintf(out, "%sdecode_data = %s;\n", indent,
		set->decode_data ? "true" : "false");
	fprintf(out, "%stimeout = %u;\n", indent, sc->timeout);
	fprintf(out, "%scommand_size_limit = %zu;\n", indent,
		set->command_size_limit);
	fprintf(out, "%slocal_part_limit = %zu;\n", indent,
		set->local_part_limit);
	if (!set->call_limit_enabled)
		return;
	fprintf(out, "%scommand_call_limit = { default = %ld;", indent,
		set->call_limit_default);
	for (size_t i = 0; i < set->n_call_limits; i++)
		fprintf(out, " %s = %ld;", set->call_limits[i].verb,
			set->call_limits[i].limit);
	fprintf(out, " };\n");
}

void conf_print(const struct conf *cfg, FILE *out)
{
	fprintf(out, "# effective configuration, from %s\n",
		cfg->file != NULL ? cfg->file : "built-in defaults");
	fprintf(out, "hostname = ");
	print_quoted(out, cfg->hostname != NULL ? cfg->hostname : "");
	fprintf(out, ";\nident = ");
	print_quoted(out, cfg->ident != NULL ? cfg->ident : "");
	fprintf(out, ";\nshutdown_timeout = %u;\n", cfg->shutdown_timeout);
	print_session(&cfg->session, out, "");
	fprintf(out, "handler = { type = ");
	print_quoted(out, cfg->handler);
	for (size_t i = 0; i < cfg->n_handler_args; i++) {
		fprintf(out, "; arg%zu = ", i);
		print_quoted(out, cfg->handler_args[i]);
	}
	fprintf(out, "; };\nlisteners = (\n");
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct listener_conf *lc = &cfg->listeners[i];

		fprintf(out, "  {\n    address = ");
		print_quoted(out, lc->address);
		fprintf(out, ";\n    protocol = \"%s\";\n",
			lc->session.smtp.lmtp ? "lmtp" : "smtp");
		print_session(&lc->session, out, "    ");
		fprintf(out, "  }%s\n", i + 1 < cfg->n_listeners ? "," : "");
	}
	fprintf(out, ");\n");
}
