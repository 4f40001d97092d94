/*
 * service.c - one configuration made live: sockets, handlers, identity
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "handler.h"
#include "log.h"
#include "sbuf.h"
#include "service.h"

/* --- identity ------------------------------------------------------------- */

/* resolve_identity - the user and group sessions run as; root only when
 * asked for (allow_root, or -n by root) */
static int resolve_identity(const struct conf *cfg, bool keep_user,
			    struct identity *id, char **error_r,
			    enum service_error *kind_r)
{
	struct passwd *pw;
	struct group *gr;

	*kind_r = SERVICE_ERROR_CONFIG;
	if (keep_user || cfg->user == NULL) {
		id->change = false;
		return 0;
	}
	if ((pw = getpwnam(cfg->user)) == NULL) {
		*error_r = sbuf_format("unknown user '%s'", cfg->user);
		return -1;
	}
	id->uid = pw->pw_uid;
	id->gid = pw->pw_gid;
	id->user = xstrdup(cfg->user);
	if (cfg->group != NULL) {
		if ((gr = getgrnam(cfg->group)) == NULL) {
			*error_r = sbuf_format("unknown group '%s'", cfg->group);
			return -1;
		}
		id->gid = gr->gr_gid;
	}
	if (id->uid == 0 && !cfg->allow_root) {
		*error_r = sbuf_format("refusing to serve sessions as root (user "
				  "'%s'): set allow_root = true, or run with "
				  "-n",
				  cfg->user);
		return -1;
	}
	if (geteuid() != 0 && geteuid() != id->uid) {
		*kind_r = SERVICE_ERROR_SETUID;
		*error_r = sbuf_format("Cannot setuid \"%s\"; try running with -n "
				  "option.",
				  cfg->user);
		return -1;
	}
	id->change = geteuid() == 0;
	return 0;
}

void identity_drop(const struct identity *id)
{
	if (!id->change)
		return;
	if (setgroups(1, &id->gid) < 0 || setgid(id->gid) < 0 ||
	    setuid(id->uid) < 0)
		log_fatal(1, "cannot become user %s: %m", id->user);
	if (id->uid != 0 && setuid(0) == 0)
		log_panic("still able to become root after setuid(%u)",
			  (unsigned)id->uid);
}

/* as_identity - run fn with the effective ids of the sessions, so that
 * what a handler creates at start (a Maildir) belongs to them */
static void *as_identity(const struct identity *id,
			 void *(*fn)(void *arg, const char **error_r),
			 void *arg, const char **error_r)
{
	bool switched = id->change && geteuid() == 0;
	void *ret;

	if (switched && (setegid(id->gid) < 0 || seteuid(id->uid) < 0))
		log_fatal(1, "cannot act as user %s: %m", id->user);
	ret = fn(arg, error_r);
	if (switched && (seteuid(0) < 0 || setegid(0) < 0))
		log_panic("cannot become root again: %m");
	return ret;
}

/* --- handlers ------------------------------------------------------------- */


static void *call_init(void *arg, const char **error_r)
{
	const struct handler_instance *hi = arg;

	if (hi->handler->init == NULL)
		return (void *)hi->handler;
	return hi->handler->init((int)hi->hc->n_args, hi->hc->args, error_r);
}

/* start_handler - find (or load) and initialise one handler instance */
static int start_handler(struct service *svc, const struct handler_conf *hc,
			 char **error_r, enum service_error *kind_r)
{
	struct handler_instance *hi;
	const char *why = "cannot start";
	bool usage;

	svc->handlers = xrealloc(svc->handlers, (svc->n_handlers + 1) *
							sizeof(*svc->handlers));
	hi = &svc->handlers[svc->n_handlers];
	memset(hi, 0, sizeof(*hi));
	hi->hc = hc;
	if ((hi->handler = handler_load(hc->name, error_r, &usage)) == NULL) {
		/* A shared object that cannot be used is a broken set-up; an
		 * unknown class name is a mistake on the command line. */
		*kind_r = usage ? SERVICE_ERROR_HANDLER : SERVICE_ERROR_CONFIG;
		return -1;
	}
	if ((hi->ctx = as_identity(&svc->identity, call_init, hi, &why)) ==
	    NULL) {
		*error_r = xstrdup(why);
		return -1;
	}
	svc->n_handlers++;
	return 0;
}

/* start_handlers - the global handler and each listener's own, and
 * which listener uses which */
static int start_handlers(struct service *svc, char **error_r,
			  enum service_error *kind_r)
{
	if (start_handler(svc, &svc->conf.handler, error_r, kind_r) < 0)
		return -1;
	for (size_t i = 0; i < svc->conf.n_listeners; i++) {
		struct listener_conf *lc = &svc->conf.listeners[i];

		if (lc->handler != NULL &&
		    start_handler(svc, lc->handler, error_r, kind_r) < 0)
			return -1;
	}
	for (size_t i = 0; i < svc->n_listeners; i++) {
		struct listener *l = &svc->listeners[i];
		const struct handler_conf *hc =
			conf_listener_handler(&svc->conf, l->conf);

		for (size_t k = 0; k < svc->n_handlers; k++) {
			if (svc->handlers[k].hc == hc) {
				l->handler = svc->handlers[k].handler;
				l->handler_ctx = svc->handlers[k].ctx;
			}
		}
	}
	return 0;
}

/* --- listeners ------------------------------------------------------------ */

/* borrow - use old's sockets for an unchanged address; false if none */
static bool borrow(struct service *svc, const struct listener_conf *lc,
		   const struct service *old)
{
	bool found = false;

	for (size_t i = 0; old != NULL && i < old->n_listeners; i++) {
		const struct listener *o = &old->listeners[i];
		struct listener *l;

		if (!listener_matches(o, lc->address))
			continue;
		svc->listeners = xrealloc(svc->listeners,
					  (svc->n_listeners + 1) *
						  sizeof(*svc->listeners));
		l = &svc->listeners[svc->n_listeners++];
		*l = *o;
		l->conf = lc;
		l->bound = xstrdup(o->bound);
		l->unix_path = o->unix_path != NULL ? xstrdup(o->unix_path)
						    : NULL;
		l->borrowed = true;
		found = true;
	}
	return found;
}

/* Sockets from systemd, until a service takes them. */
static int *inherited;
static size_t n_inherited;

void service_inherit(int *fds, size_t n)
{
	inherited = fds;
	n_inherited = n;
}

/* drop_inherited - close what systemd passed and no listener names */
static void drop_inherited(void)
{
	for (size_t i = 0; i < n_inherited; i++) {
		if (inherited[i] >= 0) {
			log_warning("closing socket %d passed in by systemd: "
				    "no listener has its address",
				    inherited[i]);
			close(inherited[i]);
		}
	}
	XFREE(inherited);
	n_inherited = 0;
}

static int open_listeners(struct service *svc, const struct service *old,
			  char **error_r)
{
	for (size_t i = 0; i < svc->conf.n_listeners; i++) {
		const struct listener_conf *lc = &svc->conf.listeners[i];

		if (borrow(svc, lc, old))
			continue;
		if (n_inherited > 0 &&
		    listener_take_inherited(lc, inherited, n_inherited,
					    &svc->listeners,
					    &svc->n_listeners) > 0)
			continue;
		if (listener_open_all(lc, &svc->listeners, &svc->n_listeners,
				      error_r) < 0)
			return -1;
	}
	return 0;
}

/* take_over - the borrowed sockets now belong to svc alone */
static void take_over(struct service *svc, struct service *old)
{
	for (size_t i = 0; i < svc->n_listeners; i++) {
		struct listener *l = &svc->listeners[i];

		if (!l->borrowed)
			continue;
		for (size_t k = 0; k < old->n_listeners; k++) {
			if (old->listeners[k].fd == l->fd) {
				old->listeners[k].fd = -1;
				XFREE(old->listeners[k].unix_path);
			}
		}
		l->borrowed = false;
	}
}

int service_open(struct service *svc, struct conf *conf, bool keep_user,
		 struct service *old, char **error_r,
		 enum service_error *kind_r)
{
	memset(svc, 0, sizeof(*svc));
	svc->conf = *conf;
	memset(conf, 0, sizeof(*conf));
	if (resolve_identity(&svc->conf, keep_user, &svc->identity, error_r,
			     kind_r) < 0)
		goto fail;
	/* Before any worker of this service exists: they all share the
	 * contexts, and on SIGHUP broken files keep the old service. */
	*kind_r = SERVICE_ERROR_CONFIG;
	if (tls_contexts_new(&svc->conf, &svc->tls, error_r) < 0)
		goto fail;
	*kind_r = SERVICE_ERROR_BIND;
	if (open_listeners(svc, old, error_r) < 0)
		goto fail;
	drop_inherited();
	*kind_r = SERVICE_ERROR_HANDLER;
	if (start_handlers(svc, error_r, kind_r) < 0)
		goto fail;
	if (old != NULL)
		take_over(svc, old);
	return 0;
fail:
	service_close(svc, false);
	return -1;
}

void service_close(struct service *svc, bool remove_paths)
{
	for (size_t i = 0; i < svc->n_listeners; i++) {
		struct listener *l = &svc->listeners[i];

		if (l->borrowed) {
			l->fd = -1; /* its owner closes it */
			XFREE(l->unix_path);
		}
		listener_close(l, remove_paths);
	}
	XFREE(svc->listeners);
	svc->n_listeners = 0;
	for (size_t i = 0; i < svc->n_handlers; i++) {
		const struct handler_instance *hi = &svc->handlers[i];

		if (hi->handler->cleanup != NULL && hi->ctx != hi->handler)
			hi->handler->cleanup(hi->ctx);
	}
	XFREE(svc->handlers);
	svc->n_handlers = 0;
	XFREE(svc->identity.user);
	tls_contexts_free(&svc->tls);
	conf_free(&svc->conf);
}
