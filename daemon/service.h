/*
 * service.h - one configuration made live: sockets, handlers, identity
 *
 * A service is what workers of one configuration run: the configuration
 * itself, its bound listeners, a started instance of each handler it
 * names, and the user and group sessions run as.  The master builds one
 * at start and a new one at each SIGHUP; building the new one never
 * disturbs the old one, and a listener whose address did not change
 * keeps its socket, so no connection is refused while reloading.
 */
#ifndef AIOSMTPD_SERVICE_H
#define AIOSMTPD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "aiosmtpd/handler.h"
#include "conf.h"
#include "listener.h"
#include "tls.h"

struct handler_instance {
	const struct handler_conf *hc;
	const struct aiosmtpd_handler *handler;
	void *ctx;
};

/* Who sessions run as. */
struct identity {
	bool change; /* false: stay who the master is (-n) */
	uid_t uid;
	gid_t gid;
	char *user;
};

struct service {
	struct conf conf;
	struct listener *listeners;
	size_t n_listeners;
	struct handler_instance *handlers;
	size_t n_handlers;
	struct identity identity;
	struct tls_contexts *tls; /* certificates, read as root */
};

/* How service_open() failed: at start, a bad user is aiosmtpd's exit 1,
 * anything else in the configuration is 78. */
enum service_error {
	SERVICE_ERROR_CONFIG,  /* the user, the group, TLS files */
	SERVICE_ERROR_SETUID,  /* not root: cannot become the user */
	SERVICE_ERROR_BIND,    /* a listener cannot be bound */
	SERVICE_ERROR_HANDLER, /* unknown handler, or its init refused */
};

/*
 * service_open - make conf live in svc
 *
 * svc takes conf over (it is moved, not copied).  keep_user is -n.
 * Sockets of old (NULL at start) whose address is unchanged are taken
 * over instead of bound again; the others are bound.  On failure returns
 * -1 with *error_r (allocated) and *kind_r set, and leaves old as it was.
 */
int service_open(struct service *svc, struct conf *conf, bool keep_user,
		 struct service *old, char **error_r,
		 enum service_error *kind_r);
/*
 * service_inherit - sockets passed in by systemd (LISTEN_FDS) for the next
 * service_open() to use before binding; a listener's address takes every
 * inherited socket bound to it.  Those no listener names are closed.
 */
void service_inherit(int *fds, size_t n);

/* service_close - close what svc holds: sockets (UNIX paths removed
 * when remove_paths), handlers, the configuration */
void service_close(struct service *svc, bool remove_paths);

/* identity_drop - become the service's user for good (in a worker) */
void identity_drop(const struct identity *id);

#endif
