/*
 * cyrus.c - SMTP AUTH through Cyrus SASL
 */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sasl/sasl.h>

#include "alloc.h"
#include "cyrus.h"
#include "log.h"
#include "sbuf.h"

/* Our sasl_server_init() name: Cyrus would read <name>.conf. */
#define APP_NAME "aiosmtpd"
/* Where Cyrus looks for that file: a path below a character device can
 * never exist, whoever creates what, so nothing is read by surprise. */
#define NO_CONFIG_PATH "/dev/null"
/* Offered when auth.mechanisms is empty; names whose plugin is missing
 * are dropped by Cyrus.  DIGEST-MD5 (RFC 6331), NTLM, ANONYMOUS and the
 * like need asking for by name. */
#define DEFAULT_MECHANISMS                                                     \
	"PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-224 SCRAM-SHA-256 "        \
	"SCRAM-SHA-384 SCRAM-SHA-512"
#define MAX_FAILURE_DELAY_MS 5000

/* Cyrus declares every callback as int (*)(void); casting through a
 * generic function pointer keeps -Wcast-function-type quiet. */
#define CALLBACK_PROC(f) ((int (*)(void))(void (*)(void))(f))

/* The SASL view of one auth configuration, built once per process. */
struct cyrus_conf {
	const struct auth_conf *ac;
	bool global; /* asked outside a connection: no mech_list */
	char *mech_list;
	char log_level[4];
	sasl_callback_t callbacks[3];
	struct cyrus_conf *next;
};

struct cyrus_session {
	const struct cyrus_conf *cc;
	bool require_tls;
	char *hostname;
	char *local;
	char *remote;
	unsigned ssf;
	sasl_conn_t *conn;
	bool spent; /* conn has run an exchange: the next one gets a new one */
	char *mechanisms;
	char *user;
};

static struct cyrus_conf *confs;
static struct cyrus_conf global_conf;
static bool initialised;

/* --- options and logging -------------------------------------------------- */

/* option - our answer to Cyrus asking for an option, NULL for "ask your
 * file", which does not exist */
static const char *option(const struct cyrus_conf *cc, const char *name)
{
	const struct auth_conf *ac = cc->ac;

	for (size_t i = 0; i < ac->n_options; i++) {
		if (strcmp(ac->options[i].name, name) == 0)
			return cc->global && strcmp(name, "mech_list") == 0
				       ? NULL
				       : ac->options[i].value;
	}
	if (strcmp(name, "pwcheck_method") == 0)
		return "auxprop";
	if (strcmp(name, "auxprop_plugin") == 0)
		return "sasldb";
	if (strcmp(name, "log_level") == 0)
		return cc->log_level;
	if (strcmp(name, "mech_list") == 0 && !cc->global)
		return cc->mech_list;
	return NULL;
}

static int getopt_cb(void *context, const char *plugin_name,
		     const char *name, const char **result, unsigned *len)
{
	const char *value = option(context, name);

	if (value == NULL)
		return SASL_FAIL;
	*result = value;
	if (len != NULL)
		*len = (unsigned)strlen(value);
	return SASL_OK;
}

/* log_cb - Cyrus's messages, except the levels that trace protocol
 * data and passwords */
static int log_cb(void *context, int level, const char *message)
{
	if (message == NULL || level > SASL_LOG_DEBUG)
		return SASL_OK;
	if (level <= SASL_LOG_ERR)
		log_warning("sasl: %s", message);
	else
		log_debug("sasl: %s", message);
	return SASL_OK;
}

/* join_mechanisms - auth.mechanisms as Cyrus's mech_list */
static char *join_mechanisms(const struct auth_conf *ac)
{
	struct sbuf sb;

	if (ac->n_mechanisms == 0)
		return xstrdup(DEFAULT_MECHANISMS);
	sbuf_init(&sb, 64);
	for (size_t i = 0; i < ac->n_mechanisms; i++)
		sbuf_printf(&sb, "%s%s", i > 0 ? " " : "", ac->mechanisms[i]);
	return sbuf_detach(&sb);
}

static void conf_fill(struct cyrus_conf *cc, const struct auth_conf *ac,
		      bool global)
{
	cc->ac = ac;
	cc->global = global;
	cc->mech_list = join_mechanisms(ac);
	snprintf(cc->log_level, sizeof(cc->log_level), "%d",
		 log_enabled(LOG_LEVEL_DEBUG) ? SASL_LOG_DEBUG : SASL_LOG_ERR);
	cc->callbacks[0] = (sasl_callback_t){SASL_CB_GETOPT,
					     CALLBACK_PROC(getopt_cb), cc};
	cc->callbacks[1] =
		(sasl_callback_t){SASL_CB_LOG, CALLBACK_PROC(log_cb), cc};
	cc->callbacks[2] = (sasl_callback_t){SASL_CB_LIST_END, NULL, NULL};
}

/* conf_for - the SASL view of ac, built at its first session */
static const struct cyrus_conf *conf_for(const struct auth_conf *ac)
{
	struct cyrus_conf *cc;

	for (cc = confs; cc != NULL; cc = cc->next) {
		if (cc->ac == ac)
			return cc;
	}
	cc = xcalloc(1, sizeof(*cc));
	conf_fill(cc, ac, false);
	cc->next = confs;
	confs = cc;
	return cc;
}

int cyrus_init(const struct auth_conf *defaults, const char **error_r)
{
	int r;

	if (initialised)
		return 0;
	conf_fill(&global_conf, defaults, true);
	if ((r = sasl_set_path(SASL_PATH_TYPE_CONFIG,
			       (char *)NO_CONFIG_PATH)) != SASL_OK ||
	    (r = sasl_server_init(global_conf.callbacks, APP_NAME)) !=
		    SASL_OK) {
		*error_r = sasl_errstring(r, NULL, NULL);
		return -1;
	}
	initialised = true;
	return 0;
}

unsigned cyrus_failure_delay_ms(unsigned failures)
{
	unsigned ms = failures > 1 ? (failures - 1) * 1000 : 0;

	return ms > MAX_FAILURE_DELAY_MS ? MAX_FAILURE_DELAY_MS : ms;
}

/* --- connections ---------------------------------------------------------- */

static void dispose(struct cyrus_session *cs)
{
	if (cs->conn != NULL)
		sasl_dispose(&cs->conn);
	XFREE(cs->mechanisms);
	cs->spent = false;
}

/*
 * connect_sasl - a new SASL connection.  No SASL security layer (SMTP
 * has TLS for that); plaintext mechanisms are refused until TLS gives an
 * external SSF, unless the listener allows AUTH in plaintext.
 */
static int connect_sasl(struct cyrus_session *cs)
{
	const struct auth_conf *ac = cs->cc->ac;
	sasl_security_properties_t props = {0};
	sasl_ssf_t ssf = cs->ssf;
	int r;

	dispose(cs);
	r = sasl_server_new(ac->service != NULL ? ac->service : "smtp",
			    cs->hostname, ac->realm, cs->local, cs->remote,
			    cs->cc->callbacks, 0, &cs->conn);
	if (r != SASL_OK) {
		log_warning("sasl_server_new() failed: %s",
			    sasl_errstring(r, NULL, NULL));
		cs->conn = NULL;
		return -1;
	}
	props.security_flags = SASL_SEC_NOANONYMOUS;
	if (cs->require_tls)
		props.security_flags |= SASL_SEC_NOPLAINTEXT;
	(void)sasl_setprop(cs->conn, SASL_SEC_PROPS, &props);
	if (ssf > 0)
		(void)sasl_setprop(cs->conn, SASL_SSF_EXTERNAL, &ssf);
	return 0;
}

static int ensure_conn(struct cyrus_session *cs)
{
	if (cs->conn != NULL && !cs->spent)
		return 0;
	return connect_sasl(cs);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool excluded(const struct auth_conf *ac, const char *name)
{
	for (size_t i = 0; i < ac->n_exclude; i++) {
		if (strcmp(ac->exclude[i], name) == 0)
			return true;
	}
	return false;
}

/* offer - Cyrus's list, without auth.exclude, sorted as aiosmtpd sorts
 * its EHLO line */
static char *offer(const struct auth_conf *ac, const char *list)
{
	char *copy = xstrdup(list), *save = NULL, *word;
	char **names = xcalloc(strlen(list) / 2 + 2, sizeof(*names));
	size_t n = 0;
	struct sbuf sb;

	for (word = strtok_r(copy, " ", &save); word != NULL;
	     word = strtok_r(NULL, " ", &save)) {
		if (!excluded(ac, word))
			names[n++] = word;
	}
	qsort(names, n, sizeof(*names), compare_names);
	sbuf_init(&sb, 64);
	for (size_t i = 0; i < n; i++)
		sbuf_printf(&sb, "%s%s", i > 0 ? " " : "", names[i]);
	free(names);
	free(copy);
	return sbuf_detach(&sb);
}

/* --- the engine's operations ---------------------------------------------- */

static const char *cyrus_mechanisms(void *ctx)
{
	struct cyrus_session *cs = ctx;
	const char *list = NULL;
	unsigned len = 0;
	int count = 0;

	if (ensure_conn(cs) < 0)
		return NULL;
	if (cs->mechanisms != NULL)
		return cs->mechanisms;
	if (sasl_listmech(cs->conn, NULL, "", " ", "", &list, &len, &count) !=
	    SASL_OK)
		list = "";
	cs->mechanisms = offer(cs->cc->ac, list);
	return cs->mechanisms;
}

/* status - Cyrus's result as the engine's; a user that does not exist
 * is "wrong credentials", never told apart (Postfix does the same) */
static enum smtp_auth_status status(int r)
{
	switch (r) {
	case SASL_OK:
		return SMTP_AUTH_OK;
	case SASL_CONTINUE:
		return SMTP_AUTH_CONTINUE;
	case SASL_BADAUTH:
	case SASL_NOUSER:
	case SASL_NOAUTHZ:
	case SASL_DISABLED:
	case SASL_EXPIRED:
		return SMTP_AUTH_BADAUTH;
	case SASL_NOMECH:
		return SMTP_AUTH_NOMECH;
	case SASL_ENCRYPT:
		return SMTP_AUTH_ENCRYPT;
	case SASL_TOOWEAK:
		return SMTP_AUTH_TOOWEAK;
	case SASL_TRANS:
		return SMTP_AUTH_TRANS;
	case SASL_BADPROT:
		return SMTP_AUTH_BADPROT;
	default:
		return SMTP_AUTH_TEMPFAIL;
	}
}

static enum smtp_auth_status finish(struct cyrus_session *cs, int r,
				    const char *out, unsigned out_len,
				    const char **challenge_r,
				    size_t *challenge_len_r)
{
	const void *user = NULL;

	if (r == SASL_CONTINUE) {
		*challenge_r = out != NULL ? out : "";
		*challenge_len_r = out != NULL ? out_len : 0;
		return SMTP_AUTH_CONTINUE;
	}
	if (r == SASL_OK) {
		/* SMTP has no "additional data with success": whatever
		 * Cyrus left in out is not for the client. */
		if (sasl_getprop(cs->conn, SASL_USERNAME, &user) != SASL_OK ||
		    user == NULL)
			return SMTP_AUTH_TEMPFAIL;
		free(cs->user);
		cs->user = xstrdup(user);
		return SMTP_AUTH_OK;
	}
	if (r != SASL_BADAUTH && r != SASL_NOUSER && r != SASL_BADPROT)
		log_debug("sasl: %s", sasl_errstring(r, NULL, NULL));
	return status(r);
}

static enum smtp_auth_status
cyrus_start(void *ctx, const char *mechanism, const char *response,
	    size_t len, const char **challenge_r, size_t *challenge_len_r)
{
	struct cyrus_session *cs = ctx;
	const char *out = NULL;
	unsigned out_len = 0;
	int r;

	if (ensure_conn(cs) < 0)
		return SMTP_AUTH_TEMPFAIL;
	cs->spent = true;
	r = sasl_server_start(cs->conn, mechanism, response, (unsigned)len,
			      &out, &out_len);
	return finish(cs, r, out, out_len, challenge_r, challenge_len_r);
}

static enum smtp_auth_status cyrus_step(void *ctx, const char *response,
					size_t len, const char **challenge_r,
					size_t *challenge_len_r)
{
	struct cyrus_session *cs = ctx;
	const char *out = NULL;
	unsigned out_len = 0;
	int r;

	r = sasl_server_step(cs->conn, response, (unsigned)len, &out,
			     &out_len);
	return finish(cs, r, out, out_len, challenge_r, challenge_len_r);
}

static const char *cyrus_user(void *ctx)
{
	struct cyrus_session *cs = ctx;

	return cs->user;
}

/* cyrus_failed - slow a guesser down: the reply waits */
static void cyrus_failed(void *ctx, unsigned failures)
{
	unsigned ms = cyrus_failure_delay_ms(failures);

	if (ms > 0)
		(void)poll(NULL, 0, (int)ms);
}

const struct smtp_auth_ops cyrus_auth_ops = {
	.mechanisms = cyrus_mechanisms,
	.start = cyrus_start,
	.step = cyrus_step,
	.user = cyrus_user,
	.failed = cyrus_failed,
};

struct cyrus_session *cyrus_session_new(const struct auth_conf *ac,
					bool require_tls,
					const char *hostname,
					const char *local, const char *remote,
					unsigned ssf)
{
	struct cyrus_session *cs = xcalloc(1, sizeof(*cs));

	cs->cc = conf_for(ac);
	cs->require_tls = require_tls;
	cs->hostname = xstrdup(hostname);
	cs->local = local != NULL ? xstrdup(local) : NULL;
	cs->remote = remote != NULL ? xstrdup(remote) : NULL;
	cs->ssf = ssf;
	return cs;
}

void cyrus_session_tls(struct cyrus_session *cs, unsigned ssf)
{
	cs->ssf = ssf;
	dispose(cs);
}

void cyrus_session_free(struct cyrus_session **csp)
{
	struct cyrus_session *cs = *csp;

	if (cs == NULL)
		return;
	dispose(cs);
	free(cs->hostname);
	free(cs->local);
	free(cs->remote);
	free(cs->user);
	free(cs);
	*csp = NULL;
}
