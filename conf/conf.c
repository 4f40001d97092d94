/*
 * conf.c - configuration defaults, loading and validation
 *
 * Each group of the file has a table of the keys it may hold, each with a
 * function that checks the value (through cfgread) and stores it.  Values
 * are copied out of libconfig's tree, which is destroyed before
 * conf_load() returns.  Listeners are read after every global key, since
 * each starts from the global session settings.
 */
#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <netdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "address.h"
#include "alloc.h"
#include "cfgread.h"
#include "conf.h"
#include "sbuf.h"

#define DEFAULT_LISTENER "localhost:8025"
#define DEFAULT_IDENT "aiosmtpd-c " PACKAGE_VERSION

struct loader {
	struct conf *cfg;
	struct cfgread cr;
};

/* --- session settings ---------------------------------------------------- */

static void session_init(struct session_conf *sc)
{
	memset(sc, 0, sizeof(*sc));
	smtp_settings_init(&sc->smtp);
	sc->timeout = 300;
	secconf_init(&sc->tls, &sc->auth);
}

static void session_free(struct session_conf *sc)
{
	secconf_free(&sc->tls, &sc->auth);
	XFREE(sc->call_limits);
	sc->smtp.call_limits = NULL;
	sc->smtp.n_call_limits = 0;
}

static void session_copy(struct session_conf *dst,
			 const struct session_conf *src)
{
	*dst = *src;
	dst->call_limits = NULL;
	if (src->smtp.n_call_limits > 0) {
		size_t size = src->smtp.n_call_limits * sizeof(*src->call_limits);

		dst->call_limits = xmalloc(size);
		memcpy(dst->call_limits, src->call_limits, size);
	}
	dst->smtp.call_limits = dst->call_limits;
	secconf_copy(&dst->tls, &src->tls, &dst->auth, &src->auth);
}

typedef int session_key_fn(struct loader *ld, config_setting_t *s,
			   struct session_conf *sc);

struct session_key {
	const char *name;
	session_key_fn *apply;
};

static int key_data_size_limit(struct loader *ld, config_setting_t *s,
			       struct session_conf *sc)
{
	return cfgread_size(&ld->cr, s, (uint64_t)1 << 40,
			    &sc->smtp.data_size_limit);
}

static int key_smtputf8(struct loader *ld, config_setting_t *s,
			struct session_conf *sc)
{
	return cfgread_bool(&ld->cr, s, &sc->smtp.smtputf8);
}

/* read_unsigned - an integer setting between min and max, into *out */
static int read_unsigned(struct loader *ld, config_setting_t *s,
			 long long min, long long max, unsigned *out)
{
	long long v = 0;

	if (cfgread_int(&ld->cr, s, min, max, &v) < 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int key_decode_data(struct loader *ld, config_setting_t *s,
			   struct session_conf *sc)
{
	return cfgread_bool(&ld->cr, s, &sc->smtp.decode_data);
}

static int key_timeout(struct loader *ld, config_setting_t *s,
		       struct session_conf *sc)
{
	return read_unsigned(ld, s, 1, 86400, &sc->timeout);
}

static int key_command_size_limit(struct loader *ld, config_setting_t *s,
				  struct session_conf *sc)
{
	long long v = 0;

	/* The input buffer holds the longest line plus MAIL's extra room. */
	if (cfgread_int(&ld->cr, s, 64, SMTP_IO_INPUT_SIZE / 2, &v) < 0)
		return -1;
	sc->smtp.command_size_limit = (size_t)v;
	return 0;
}

static int key_local_part_limit(struct loader *ld, config_setting_t *s,
				struct session_conf *sc)
{
	long long v = 0;

	if (cfgread_int(&ld->cr, s, 0, 1000, &v) < 0)
		return -1;
	sc->smtp.local_part_limit = (size_t)v;
	return 0;
}

/* key_max_recipients - RCPTs per message; RFC 5321 4.5.3.1.8 wants at
 * least 100 accepted, which is for the operator to weigh */
static int key_max_recipients(struct loader *ld, config_setting_t *s,
			      struct session_conf *sc)
{
	long long v = 0;

	if (cfgread_int(&ld->cr, s, 0, INT_MAX, &v) < 0)
		return -1;
	sc->smtp.max_recipients = (size_t)v;
	return 0;
}

/* key_max_connections_per_client - open connections one client address
 * may have across all workers; 0 means no limit */
static int key_max_connections_per_client(struct loader *ld,
					  config_setting_t *s,
					  struct session_conf *sc)
{
	return read_unsigned(ld, s, 0, 100000,
			     &sc->max_connections_per_client);
}

/* add_call_limit - one per-command entry of command_call_limit */
static int add_call_limit(struct loader *ld, config_setting_t *s,
			  struct session_conf *sc)
{
	const char *verb = config_setting_name(s);
	struct smtp_call_limit *cl;
	long long v = 0;

	if (cfgread_int(&ld->cr, s, 0, INT_MAX, &v) < 0)
		return -1;
	if (strcmp(verb, "default") == 0 || strcmp(verb, "*") == 0) {
		sc->smtp.call_limit_default = (long)v;
		return 0;
	}
	if (strlen(verb) >= sizeof(cl->verb))
		return cfgread_fail(&ld->cr, s, "'%s' is not a command", verb);
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
		if (cfgread_int(&ld->cr, s, 0, INT_MAX, &v) < 0)
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

static int key_tls(struct loader *ld, config_setting_t *s,
		   struct session_conf *sc)
{
	return secconf_tls(&ld->cr, s, &sc->tls, &sc->smtp);
}

static int key_auth(struct loader *ld, config_setting_t *s,
		    struct session_conf *sc)
{
	return secconf_auth(&ld->cr, s, &sc->auth, &sc->smtp);
}

static const struct session_key session_keys[] = {
	{"auth", key_auth},
	{"command_call_limit", key_command_call_limit},
	{"command_size_limit", key_command_size_limit},
	{"data_size_limit", key_data_size_limit},
	{"decode_data", key_decode_data},
	{"local_part_limit", key_local_part_limit},
	{"max_connections_per_client", key_max_connections_per_client},
	{"max_recipients", key_max_recipients},
	{"smtputf8", key_smtputf8},
	{"timeout", key_timeout},
	{"tls", key_tls},
};

static const struct session_key *find_session_key(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(session_keys); i++) {
		if (strcmp(session_keys[i].name, name) == 0)
			return &session_keys[i];
	}
	return NULL;
}

/* names_with_session - a group's own names and the session keys, for
 * "did you mean" hints */
static const char **names_with_session(const char *const *own)
{
	size_t n = 0, k = 0;
	const char **names;

	while (own[n] != NULL)
		n++;
	names = xcalloc(n + N_ELEMENTS(session_keys) + 1, sizeof(*names));
	for (; k < n; k++)
		names[k] = own[k];
	for (size_t i = 0; i < N_ELEMENTS(session_keys); i++)
		names[k++] = session_keys[i].name;
	return names;
}

/* --- handlers ------------------------------------------------------------ */

static void handler_conf_clear(struct handler_conf *h)
{
	for (size_t i = 0; i < h->n_args; i++)
		free(h->args[i]);
	XFREE(h->args);
	XFREE(h->name);
	h->n_args = 0;
}

static void handler_conf_set(struct handler_conf *h, const char *name,
			     size_t n_args, const char *const *args)
{
	handler_conf_clear(h);
	h->name = xstrdup(name);
	h->args = xcalloc(n_args + 1, sizeof(*h->args));
	for (size_t i = 0; i < n_args; i++)
		h->args[i] = xstrdup(args[i]);
	h->n_args = n_args;
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
	{"record", path_keys, false, no_keys},
};

static bool in_keys(const char *const *keys, const char *name)
{
	for (; *keys != NULL; keys++) {
		if (strcmp(*keys, name) == 0)
			return true;
	}
	return false;
}

static const struct handler_type *find_handler_type(const char *type)
{
	for (size_t i = 0; i < N_ELEMENTS(handler_types); i++) {
		if (strcmp(handler_types[i].type, type) == 0)
			return &handler_types[i];
	}
	return NULL;
}

static void handler_add_arg(struct handler_conf *h, const char *arg)
{
	h->args = xrealloc(h->args, (h->n_args + 2) * sizeof(*h->args));
	h->args[h->n_args++] = xstrdup(arg);
	h->args[h->n_args] = NULL;
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
		return cfgread_fail(&ld->cr, s,
				    "'%s' must be a string, number or "
				    "boolean",
				    cfgread_name(s));
	}
}

/* handler_words - the handler's words from its group, in the order its
 * command line wants them */
static int handler_words(struct loader *ld, config_setting_t *group,
			 const struct handler_type *ht,
			 struct handler_conf *h)
{
	config_setting_t *s;
	struct sbuf word;
	int ret = 0;

	sbuf_init(&word, 64);
	for (const char *const *k = ht->args; *k != NULL && ret == 0; k++) {
		if ((s = config_setting_get_member(group, *k)) == NULL) {
			if (!ht->args_optional)
				ret = cfgread_fail(&ld->cr, group,
						   "this handler needs '%s'",
						   *k);
			continue;
		}
		sbuf_reset(&word);
		if ((ret = handler_value(ld, s, &word)) == 0)
			handler_add_arg(h, word.data);
	}
	for (const char *const *k = ht->options; *k != NULL && ret == 0;
	     k++) {
		if ((s = config_setting_get_member(group, *k)) == NULL)
			continue;
		sbuf_reset(&word);
		sbuf_printf(&word, "%s=", *k);
		if ((ret = handler_value(ld, s, &word)) == 0)
			handler_add_arg(h, word.data);
	}
	sbuf_free(&word);
	return ret;
}

/* plugin_words - args = [ "word", ... ] of a plugin */
static int plugin_words(struct loader *ld, config_setting_t *group,
			struct handler_conf *h)
{
	config_setting_t *list = config_setting_get_member(group, "args");
	const char **words;
	size_t n;

	if (list == NULL)
		return 0;
	if (cfgread_strings(&ld->cr, list, &words, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		handler_add_arg(h, words[i]);
	free(words);
	return 0;
}

/* check_handler_keys - every key of the group belongs to its type */
static int check_handler_keys(struct loader *ld, config_setting_t *group,
			      const struct handler_type *ht)
{
	bool is_plugin = strcmp(ht->type, "plugin") == 0;
	const char *names[12];
	size_t n = 0;

	names[n++] = "type";
	for (const char *const *k = ht->args; *k != NULL; k++)
		names[n++] = *k;
	for (const char *const *k = ht->options; *k != NULL; k++)
		names[n++] = *k;
	if (is_plugin)
		names[n++] = "args";
	names[n] = NULL;
	for (int i = 0; i < config_setting_length(group); i++) {
		config_setting_t *m = config_setting_get_elem(group, i);

		if (!in_keys(names, config_setting_name(m)))
			return cfgread_unknown(&ld->cr, m, " in 'handler'",
					       names);
	}
	return 0;
}

/* load_handler - handler = { type = "..."; ... }: see handler_types */
static int load_handler(struct loader *ld, config_setting_t *s,
			struct handler_conf *h)
{
	config_setting_t *type;
	const struct handler_type *ht;
	const char *t = NULL;

	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return cfgread_fail(&ld->cr, s,
				    "'%s' must be a group such as { type = "
				    "\"sink\"; }",
				    cfgread_name(s));
	if ((type = config_setting_get_member(s, "type")) == NULL)
		return cfgread_fail(&ld->cr, s, "'handler' needs a 'type'");
	if (cfgread_string(&ld->cr, type, &t) < 0)
		return -1;
	if ((ht = find_handler_type(t)) == NULL)
		return cfgread_fail(&ld->cr, type,
				    "unknown handler type \"%s\" (known: "
				    "\"debugging\", \"sink\", \"mailbox\", "
				    "\"maildir\", \"lmtp\", \"proxy\", "
				    "\"plugin\", \"record\")",
				    t);
	if (check_handler_keys(ld, s, ht) < 0)
		return -1;
	handler_conf_clear(h);
	h->name = xstrdup(t);
	if (handler_words(ld, s, ht, h) < 0)
		return -1;
	if (strcmp(t, "plugin") != 0)
		return 0;
	/* A plugin is named by its path; its own words follow. */
	if (h->args[0][0] != '/')
		return cfgread_fail(&ld->cr,
				    config_setting_get_member(s, "path"),
				    "'path' of a plugin must be absolute");
	free(h->name);
	h->name = h->args[0];
	memmove(h->args, h->args + 1, h->n_args * sizeof(*h->args));
	h->n_args--;
	return plugin_words(ld, s, h);
}

/* --- listeners ----------------------------------------------------------- */

static int listener_address(struct loader *ld, config_setting_t *s,
			    struct listener_conf *lc)
{
	struct address addr;
	const char *v = NULL, *why;

	if (cfgread_string(&ld->cr, s, &v) < 0)
		return -1;
	if (address_parse(v, &addr, &why) < 0)
		return cfgread_fail(&ld->cr, s, "'address' \"%s\": %s", v, why);
	address_free(&addr);
	free(lc->address);
	lc->address = xstrdup(v);
	return 0;
}

static int listener_protocol(struct loader *ld, config_setting_t *s,
			     struct listener_conf *lc)
{
	const char *v = NULL;

	if (cfgread_string(&ld->cr, s, &v) < 0)
		return -1;
	if (strcmp(v, "smtp") != 0 && strcmp(v, "lmtp") != 0)
		return cfgread_fail(&ld->cr, s,
				    "'protocol' must be \"smtp\" or \"lmtp\", "
				    "not \"%s\"",
				    v);
	lc->session.smtp.lmtp = strcmp(v, "lmtp") == 0;
	return 0;
}

static int listener_handler(struct loader *ld, config_setting_t *s,
			    struct listener_conf *lc)
{
	if (lc->handler == NULL)
		lc->handler = xcalloc(1, sizeof(*lc->handler));
	return load_handler(ld, s, lc->handler);
}

/* listener_proxy_timeout - proxy_protocol_timeout, which turns the PROXY
 * protocol on; above 0 (aiosmtpd's ValueError), and under 3 s aiosmtpd
 * warns, and so does this */
static int listener_proxy_timeout(struct loader *ld, config_setting_t *s,
				  struct listener_conf *lc)
{
	if (cfgread_seconds(&ld->cr, s, 0.001, 3600, &lc->proxy_timeout_ms) <
	    0)
		return -1;
	if (lc->proxy_timeout_ms < 3000)
		log_warning("%s:%u: proxy_protocol_timeout < 3.0",
			    ld->cr.file, config_setting_source_line(s));
	return 0;
}

/* listener_proxy_from - proxy_protocol_from = [ "192.0.2.1",
 * "2001:db8::/32" ]: the peers whose PROXY headers are believed */
static int listener_proxy_from(struct loader *ld, config_setting_t *s,
			       struct listener_conf *lc)
{
	const char **v = NULL;
	size_t n = 0;
	int ret = 0;

	if (cfgread_strings(&ld->cr, s, &v, &n) < 0)
		return -1;
	if (n == 0) {
		free(v);
		return cfgread_fail(&ld->cr, s,
				    "'proxy_protocol_from' must not be empty "
				    "(leave it out to trust every peer)");
	}
	XFREE(lc->proxy_from);
	lc->proxy_from = xcalloc(n, sizeof(*lc->proxy_from));
	lc->n_proxy_from = n;
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (cidr_parse(v[i], &lc->proxy_from[i]) < 0)
			ret = cfgread_fail(&ld->cr, s,
					   "'proxy_protocol_from': \"%s\" is "
					   "not an address or a network such "
					   "as \"192.0.2.0/24\"",
					   v[i]);
	}
	free(v);
	return ret;
}

static const char *const listener_own_names[] = {
	"address", "handler", "protocol", "proxy_protocol_from",
	"proxy_protocol_timeout", NULL};

/* listener_key - one member of a listener group */
static int listener_key(struct loader *ld, config_setting_t *s,
			struct listener_conf *lc)
{
	const char *name = config_setting_name(s);
	const struct session_key *key;
	const char **names;
	int ret;

	if (strcmp(name, "address") == 0)
		return listener_address(ld, s, lc);
	if (strcmp(name, "protocol") == 0)
		return listener_protocol(ld, s, lc);
	if (strcmp(name, "handler") == 0)
		return listener_handler(ld, s, lc);
	if (strcmp(name, "proxy_protocol_timeout") == 0)
		return listener_proxy_timeout(ld, s, lc);
	if (strcmp(name, "proxy_protocol_from") == 0)
		return listener_proxy_from(ld, s, lc);
	if ((key = find_session_key(name)) != NULL)
		return key->apply(ld, s, &lc->session);
	names = names_with_session(listener_own_names);
	ret = cfgread_unknown(&ld->cr, s, " in a listener", names);
	free(names);
	return ret;
}

static int load_listener(struct loader *ld, config_setting_t *group,
			 struct listener_conf *lc)
{
	if (config_setting_type(group) != CONFIG_TYPE_GROUP)
		return cfgread_fail(&ld->cr, group,
				    "each listener must be a group such as { "
				    "address = \"127.0.0.1:25\"; }");
	for (int i = 0; i < config_setting_length(group); i++) {
		if (listener_key(ld, config_setting_get_elem(group, i), lc) < 0)
			return -1;
	}
	if (lc->address == NULL)
		return cfgread_fail(&ld->cr, group,
				    "a listener needs an 'address'");
	if (lc->n_proxy_from > 0 && lc->proxy_timeout_ms == 0)
		return cfgread_fail(&ld->cr, group,
				    "'proxy_protocol_from' needs "
				    "'proxy_protocol_timeout'");
	return 0;
}

static void listeners_free(struct conf *cfg)
{
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct listener_conf *lc = &cfg->listeners[i];

		free(lc->address);
		free(lc->proxy_from);
		session_free(&lc->session);
		if (lc->handler != NULL) {
			handler_conf_clear(lc->handler);
			free(lc->handler);
		}
	}
	XFREE(cfg->listeners);
	cfg->n_listeners = 0;
}

/* load_listeners - listeners = ( { address = ...; }, ... ) */
static int load_listeners(struct loader *ld, config_setting_t *s)
{
	struct conf *cfg = ld->cfg;
	int n = config_setting_length(s);

	if (config_setting_type(s) != CONFIG_TYPE_LIST)
		return cfgread_fail(&ld->cr, s,
				    "'listeners' must be a list of groups: "
				    "( { address = \"...\"; } )");
	if (n == 0)
		return cfgread_fail(&ld->cr, s,
				    "'listeners' must not be empty");
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

/* --- workers and log ------------------------------------------------------ */

struct pool_key {
	const char *name;
	long long min, max;
	size_t offset; /* of the unsigned field in struct pool_conf */
};

static const struct pool_key pool_keys[] = {
	{"min", 1, 4096, offsetof(struct pool_conf, min)},
	{"max", 1, 4096, offsetof(struct pool_conf, max)},
	{"spare", 0, 4096, offsetof(struct pool_conf, spare)},
	{"max_use", 1, 1000000000, offsetof(struct pool_conf, max_use)},
	{"max_idle", 1, 86400, offsetof(struct pool_conf, max_idle)},
};

static const char *const pool_names[] = {
	"max", "max_idle", "max_use", "min", "scheduling", "spare", NULL};

/* load_scheduling - workers.scheduling = "batch" | "inherit" */
static int load_scheduling(struct loader *ld, config_setting_t *m,
			   enum worker_sched *sched)
{
	const char *v = NULL;

	if (cfgread_string(&ld->cr, m, &v) < 0)
		return -1;
	if (strcmp(v, "batch") == 0)
		*sched = WORKER_SCHED_BATCH;
	else if (strcmp(v, "inherit") == 0)
		*sched = WORKER_SCHED_INHERIT;
	else
		return cfgread_fail(&ld->cr, m,
				    "'scheduling' must be \"batch\" or "
				    "\"inherit\", not \"%s\"",
				    v);
	return 0;
}

/* load_workers - workers = { min; max; spare; max_use; max_idle;
 * scheduling; } */
static int load_workers(struct loader *ld, config_setting_t *s)
{
	struct pool_conf *pc = &ld->cfg->workers;

	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return cfgread_fail(&ld->cr, s,
				    "'workers' must be a group such as { min "
				    "= 2; max = 64; }");
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *m = config_setting_get_elem(s, i);
		const char *name = config_setting_name(m);
		const struct pool_key *k = NULL;
		long long v = 0;

		if (strcmp(name, "scheduling") == 0) {
			if (load_scheduling(ld, m, &pc->scheduling) < 0)
				return -1;
			continue;
		}
		for (size_t j = 0; j < N_ELEMENTS(pool_keys); j++) {
			if (strcmp(pool_keys[j].name, name) == 0)
				k = &pool_keys[j];
		}
		if (k == NULL)
			return cfgread_unknown(&ld->cr, m, " in 'workers'",
					       pool_names);
		if (cfgread_int(&ld->cr, m, k->min, k->max, &v) < 0)
			return -1;
		*(unsigned *)((char *)pc + k->offset) = (unsigned)v;
	}
	if (pc->min > pc->max)
		return cfgread_fail(&ld->cr, s,
				    "'workers': min (%u) must not exceed max "
				    "(%u)",
				    pc->min, pc->max);
	return 0;
}

static const char *const log_names[] = {"level", "target", NULL};

/* load_log - log = { target = "auto" | "stderr" | "syslog"; level = ...; } */
static int load_log(struct loader *ld, config_setting_t *s)
{
	static const char *const targets[] = {"auto", "stderr", "syslog"};
	struct conf *cfg = ld->cfg;
	config_setting_t *m;
	const char *v = NULL;
	int level;

	if (config_setting_type(s) != CONFIG_TYPE_GROUP)
		return cfgread_fail(&ld->cr, s,
				    "'log' must be a group such as { level = "
				    "\"info\"; }");
	for (int i = 0; i < config_setting_length(s); i++) {
		m = config_setting_get_elem(s, i);
		if (strcmp(config_setting_name(m), "target") != 0 &&
		    strcmp(config_setting_name(m), "level") != 0)
			return cfgread_unknown(&ld->cr, m, " in 'log'",
					       log_names);
	}
	if ((m = config_setting_get_member(s, "target")) != NULL) {
		size_t i;

		if (cfgread_string(&ld->cr, m, &v) < 0)
			return -1;
		for (i = 0; i < N_ELEMENTS(targets); i++) {
			if (strcmp(v, targets[i]) == 0)
				break;
		}
		if (i == N_ELEMENTS(targets))
			return cfgread_fail(&ld->cr, m,
					    "'target' must be \"auto\", "
					    "\"stderr\" or \"syslog\", not "
					    "\"%s\"",
					    v);
		cfg->log_target = (enum log_target_conf)i;
	}
	if ((m = config_setting_get_member(s, "level")) != NULL) {
		if (cfgread_string(&ld->cr, m, &v) < 0)
			return -1;
		if ((level = log_level_parse(v)) < 0)
			return cfgread_fail(&ld->cr, m,
					    "'level' must be \"debug\", "
					    "\"info\", \"warning\" or "
					    "\"error\", not \"%s\"",
					    v);
		cfg->log_level = (enum log_level)level;
	}
	return 0;
}

/* --- global keys --------------------------------------------------------- */

typedef int global_key_fn(struct loader *ld, config_setting_t *s);

struct global_key {
	const char *name;
	global_key_fn *apply;
};

/* set_string - a non-empty string, copied into *dst */
static int set_string(struct loader *ld, config_setting_t *s, char **dst)
{
	const char *v = NULL;

	if (cfgread_string(&ld->cr, s, &v) < 0)
		return -1;
	if (*v == '\0')
		return cfgread_fail(&ld->cr, s, "'%s' must not be empty",
				    cfgread_name(s));
	free(*dst);
	*dst = xstrdup(v);
	return 0;
}

/* set_path - an absolute path */
static int set_path(struct loader *ld, config_setting_t *s, char **dst)
{
	if (set_string(ld, s, dst) < 0)
		return -1;
	if ((*dst)[0] != '/')
		return cfgread_fail(&ld->cr, s,
				    "'%s' must be an absolute path",
				    cfgread_name(s));
	return 0;
}

static int key_hostname(struct loader *ld, config_setting_t *s)
{
	return set_string(ld, s, &ld->cfg->hostname);
}

static int key_ident(struct loader *ld, config_setting_t *s)
{
	return set_string(ld, s, &ld->cfg->ident);
}

static int key_user(struct loader *ld, config_setting_t *s)
{
	return set_string(ld, s, &ld->cfg->user);
}

static int key_group(struct loader *ld, config_setting_t *s)
{
	return set_string(ld, s, &ld->cfg->group);
}

static int key_allow_root(struct loader *ld, config_setting_t *s)
{
	return cfgread_bool(&ld->cr, s, &ld->cfg->allow_root);
}

static int key_pid_file(struct loader *ld, config_setting_t *s)
{
	return set_path(ld, s, &ld->cfg->pid_file);
}

static int key_spool_dir(struct loader *ld, config_setting_t *s)
{
	return set_path(ld, s, &ld->cfg->spool_dir);
}

static int key_stress_timeout(struct loader *ld, config_setting_t *s)
{
	return read_unsigned(ld, s, 1, 86400, &ld->cfg->stress_timeout);
}

static int key_queue_timeout(struct loader *ld, config_setting_t *s)
{
	return read_unsigned(ld, s, 1, 86400, &ld->cfg->queue_timeout);
}

static int key_shutdown_timeout(struct loader *ld, config_setting_t *s)
{
	return read_unsigned(ld, s, 0, 86400, &ld->cfg->shutdown_timeout);
}

static int key_handler(struct loader *ld, config_setting_t *s)
{
	return load_handler(ld, s, &ld->cfg->handler);
}

static int key_workers(struct loader *ld, config_setting_t *s)
{
	return load_workers(ld, s);
}

static int key_log(struct loader *ld, config_setting_t *s)
{
	return load_log(ld, s);
}

static int key_listeners(struct loader *ld, config_setting_t *s)
{
	return 0; /* read after every other key: see load_root() */
}

static const struct global_key global_keys[] = {
	{"allow_root", key_allow_root},
	{"group", key_group},
	{"handler", key_handler},
	{"hostname", key_hostname},
	{"ident", key_ident},
	{"listeners", key_listeners},
	{"log", key_log},
	{"pid_file", key_pid_file},
	{"queue_timeout", key_queue_timeout},
	{"shutdown_timeout", key_shutdown_timeout},
	{"spool_dir", key_spool_dir},
	{"stress_timeout", key_stress_timeout},
	{"user", key_user},
	{"workers", key_workers},
};

static const struct global_key *find_global_key(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(global_keys); i++) {
		if (strcmp(global_keys[i].name, name) == 0)
			return &global_keys[i];
	}
	return NULL;
}

/* unknown_global - an unknown top-level name, with a hint */
static int unknown_global(struct loader *ld, config_setting_t *s)
{
	const char *own[N_ELEMENTS(global_keys) + 1];
	const char **names;
	int ret;

	for (size_t i = 0; i < N_ELEMENTS(global_keys); i++)
		own[i] = global_keys[i].name;
	own[N_ELEMENTS(global_keys)] = NULL;
	names = names_with_session(own);
	ret = cfgread_unknown(&ld->cr, s, "", names);
	free(names);
	return ret;
}

static int load_root(struct loader *ld, config_setting_t *root)
{
	config_setting_t *listeners = NULL;
	const struct session_key *skey;
	const struct global_key *gkey;

	for (int i = 0; i < config_setting_length(root); i++) {
		config_setting_t *s = config_setting_get_elem(root, i);
		const char *name = config_setting_name(s);
		int ret;

		if ((gkey = find_global_key(name)) != NULL)
			ret = gkey->apply(ld, s);
		else if ((skey = find_session_key(name)) != NULL)
			ret = skey->apply(ld, s, &ld->cfg->session);
		else
			ret = unknown_global(ld, s);
		if (ret < 0)
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

/* cores - online CPUs, at least 2 */
static unsigned cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 2 ? 2 : n > 64 ? 64 : (unsigned)n;
}

void conf_init(struct conf *cfg)
{
	static const char *const no_args[] = {NULL};

	memset(cfg, 0, sizeof(*cfg));
	session_init(&cfg->session);
	cfg->shutdown_timeout = 30;
	cfg->stress_timeout = 10;
	cfg->queue_timeout = 30;
	/* As many workers as cores are kept ready: a blocking worker per
	 * core keeps every core busy when sessions are short. */
	cfg->workers = (struct pool_conf){
		.min = cores(), .max = 128, .spare = 2, .max_use = 1000,
		.max_idle = 60, .scheduling = WORKER_SCHED_BATCH};
	cfg->user = xstrdup("nobody");
	cfg->log_level = LOG_LEVEL_INFO;
	handler_conf_set(&cfg->handler, "debugging", 0, no_args);
	conf_set_listener(cfg, DEFAULT_LISTENER);
}

void conf_free(struct conf *cfg)
{
	listeners_free(cfg);
	session_free(&cfg->session);
	handler_conf_clear(&cfg->handler);
	free(cfg->hostname);
	free(cfg->ident);
	free(cfg->file);
	free(cfg->user);
	free(cfg->group);
	free(cfg->pid_file);
	free(cfg->spool_dir);
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
	handler_conf_set(&cfg->handler, name, (size_t)argc,
			 (const char *const *)argv);
	/* The command line's handler serves every listener. */
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct listener_conf *lc = &cfg->listeners[i];

		if (lc->handler != NULL) {
			handler_conf_clear(lc->handler);
			XFREE(lc->handler);
		}
	}
}

const struct handler_conf *
conf_listener_handler(const struct conf *cfg, const struct listener_conf *lc)
{
	return lc->handler != NULL ? lc->handler : &cfg->handler;
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
	ld.cr.file = cfg->file;
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
		*error_r = ld.cr.error;
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
	if (he == NULL || he->h_addrtype != AF_INET ||
	    he->h_addr_list[0] == NULL)
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
	secconf_finish(&cfg->session.tls, &cfg->session.smtp);
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct session_conf *sc = &cfg->listeners[i].session;

		sc->smtp.hostname = cfg->hostname;
		sc->smtp.ident = cfg->ident;
		secconf_finish(&sc->tls, &sc->smtp);
	}
}

void conf_set_tls(struct conf *cfg, enum tls_mode mode, const char *cert,
		  const char *key, bool require_starttls)
{
	secconf_set_tls(&cfg->session.tls, &cfg->session.smtp, mode, cert, key,
			require_starttls);
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct session_conf *sc = &cfg->listeners[i].session;

		secconf_set_tls(&sc->tls, &sc->smtp, mode, cert, key,
				require_starttls);
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

static void print_string(FILE *out, const char *indent, const char *key,
			 const char *value)
{
	fprintf(out, "%s%s = ", indent, key);
	print_quoted(out, value);
	fprintf(out, ";\n");
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
	fprintf(out, "%smax_recipients = %zu;\n", indent,
		set->max_recipients);
	fprintf(out, "%smax_connections_per_client = %u;\n", indent,
		sc->max_connections_per_client);
	secconf_print(out, indent, &sc->tls, &sc->auth, set);
	if (!set->call_limit_enabled)
		return;
	fprintf(out, "%scommand_call_limit = { default = %ld;", indent,
		set->call_limit_default);
	for (size_t i = 0; i < set->n_call_limits; i++)
		fprintf(out, " %s = %ld;", set->call_limits[i].verb,
			set->call_limits[i].limit);
	fprintf(out, " };\n");
}

static void print_proxy(const struct listener_conf *lc, FILE *out)
{
	char net[CIDR_TEXT_SIZE];

	if (lc->proxy_timeout_ms == 0)
		return;
	fprintf(out, "    proxy_protocol_timeout = %g;\n",
		lc->proxy_timeout_ms / 1000.0);
	if (lc->n_proxy_from == 0)
		return;
	fprintf(out, "    proxy_protocol_from = [");
	for (size_t i = 0; i < lc->n_proxy_from; i++) {
		cidr_format(&lc->proxy_from[i], net, sizeof(net));
		fprintf(out, "%s \"%s\"", i > 0 ? "," : "", net);
	}
	fprintf(out, " ];\n");
}

/* handler_type - the file's type for a handler named on the command line
 * ("Mailbox", "aiosmtpd.handlers.Sink", "/x/y.so", ...) */
static const char *handler_type(const char *name)
{
	static const char *const types[][2] = {
		{"debugging", "debugging"}, {"sink", "sink"},
		{"mailbox", "mailbox"},	    {"maildir", "maildir"},
		{"lmtp", "lmtp"},	    {"proxy", "proxy"},
		{"smtp", "proxy"},	    {"record", "record"},
	};
	const char *dotted = "aiosmtpd.handlers.";

	if (strchr(name, '/') != NULL)
		return "plugin";
	if (strncmp(name, dotted, strlen(dotted)) == 0)
		name += strlen(dotted);
	for (size_t i = 0; i < N_ELEMENTS(types); i++) {
		if (strcasecmp(name, types[i][0]) == 0)
			return types[i][1];
	}
	return name;
}

/* print_words - a handler's words under the keys they came from: its
 * leading arguments in order, then its "key=value" options */
static void print_words(const struct handler_conf *h,
			const struct handler_type *ht, FILE *out)
{
	size_t i = 0;

	for (const char *const *k = ht->args; *k != NULL && i < h->n_args;
	     k++, i++) {
		fprintf(out, "; %s = ", *k);
		print_quoted(out, h->args[i]);
	}
	for (; i < h->n_args; i++) {
		const char *eq = strchr(h->args[i], '=');

		if (eq == NULL || eq == h->args[i])
			continue; /* the handler refuses it at start */
		fprintf(out, "; %.*s = ", (int)(eq - h->args[i]), h->args[i]);
		print_quoted(out, eq + 1);
	}
}

/* print_handler - a handler group, as the file would say it */
static void print_handler(const struct handler_conf *h, FILE *out,
			  const char *indent)
{
	const char *type = handler_type(h->name);
	const struct handler_type *ht = find_handler_type(type);

	fprintf(out, "%shandler = { type = ", indent);
	print_quoted(out, type);
	if (strcmp(type, "plugin") == 0) {
		fprintf(out, "; path = ");
		print_quoted(out, h->name);
		fprintf(out, "; args = [");
		for (size_t i = 0; i < h->n_args; i++) {
			fprintf(out, "%s", i > 0 ? ", " : " ");
			print_quoted(out, h->args[i]);
		}
		fprintf(out, " ]");
	} else if (ht != NULL) {
		print_words(h, ht, out);
	}
	fprintf(out, "; };\n");
}

static void print_daemon(const struct conf *cfg, FILE *out)
{
	static const char *const targets[] = {"auto", "stderr", "syslog"};
	const struct pool_conf *pc = &cfg->workers;

	if (cfg->user != NULL)
		print_string(out, "", "user", cfg->user);
	if (cfg->group != NULL)
		print_string(out, "", "group", cfg->group);
	fprintf(out, "allow_root = %s;\n", cfg->allow_root ? "true" : "false");
	if (cfg->pid_file != NULL)
		print_string(out, "", "pid_file", cfg->pid_file);
	if (cfg->spool_dir != NULL)
		print_string(out, "", "spool_dir", cfg->spool_dir);
	fprintf(out, "shutdown_timeout = %u;\n", cfg->shutdown_timeout);
	fprintf(out, "stress_timeout = %u;\n", cfg->stress_timeout);
	fprintf(out, "queue_timeout = %u;\n", cfg->queue_timeout);
	fprintf(out,
		"workers = { min = %u; max = %u; spare = %u; max_use = %u; "
		"max_idle = %u; scheduling = \"%s\"; };\n",
		pc->min, pc->max, pc->spare, pc->max_use, pc->max_idle,
		pc->scheduling == WORKER_SCHED_BATCH ? "batch" : "inherit");
	fprintf(out, "log = { target = \"%s\"; level = \"%s\"; };\n",
		targets[cfg->log_target], log_level_name(cfg->log_level));
}

void conf_print(const struct conf *cfg, FILE *out)
{
	fprintf(out, "# effective configuration, from %s\n",
		cfg->file != NULL ? cfg->file : "built-in defaults");
	print_string(out, "", "hostname",
		     cfg->hostname != NULL ? cfg->hostname : "");
	print_string(out, "", "ident", cfg->ident != NULL ? cfg->ident : "");
	print_daemon(cfg, out);
	print_session(&cfg->session, out, "");
	print_handler(&cfg->handler, out, "");
	fprintf(out, "listeners = (\n");
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct listener_conf *lc = &cfg->listeners[i];

		fprintf(out, "  {\n");
		print_string(out, "    ", "address", lc->address);
		fprintf(out, "    protocol = \"%s\";\n",
			lc->session.smtp.lmtp ? "lmtp" : "smtp");
		print_proxy(lc, out);
		print_session(&lc->session, out, "    ");
		if (lc->handler != NULL)
			print_handler(lc->handler, out, "    ");
		fprintf(out, "  }%s\n", i + 1 < cfg->n_listeners ? "," : "");
	}
	fprintf(out, ");\n");
}
