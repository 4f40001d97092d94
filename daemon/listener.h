/*
 * listener.h - listening sockets: TCP over IPv4 and IPv6, and UNIX paths
 *
 * The master binds every listener before it forks, so workers inherit the
 * sockets and a privileged port can be bound before root is dropped.  An
 * address is "host:port", "[v6addr]:port" or "unix:/path"; a host name
 * that resolves to several addresses gets one socket per address, as
 * asyncio's create_server() (and so aiosmtpd) does.
 */
#ifndef AIOSMTPD_LISTENER_H
#define AIOSMTPD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

struct listener_conf;

struct aiosmtpd_handler;

struct listener {
	const struct listener_conf *conf; /* address and session settings */
	const struct aiosmtpd_handler *handler; /* set by the service */
	void *handler_ctx;
	int fd;
	int family;
	char *bound;	 /* the bound address, port 0 resolved */
	char *unix_path; /* removed at close */
	bool port_zero;	 /* bound with port 0: the address is printed */
	bool borrowed;	 /* the socket still belongs to another service */
	/* TCP_NODELAY is set on the listening socket: Linux copies it to
	 * every accepted connection, which then needs no setsockopt() */
	bool nodelay;
};

/* listener_matches - does l serve this configured address already? */
bool listener_matches(const struct listener *l, const char *address);

/*
 * listener_open_all - bind the sockets of one configured address
 *
 * Appends one struct listener per socket to *list (realloc'ed, *n
 * updated).  Returns 0, or -1 with *error_r an allocated message such
 * as "bind(127.0.0.1:25) failed: Address already in use".
 */
int listener_open_all(const struct listener_conf *conf,
		      struct listener **list, size_t *n, char **error_r);
/*
 * listener_take_inherited - adopt sockets systemd passed in (LISTEN_FDS)
 *
 * Every socket in fds bound to an address of conf becomes a listener
 * (appended to *list) and its slot in fds is set to -1.  Returns the
 * number taken.
 */
size_t listener_take_inherited(const struct listener_conf *conf, int *fds,
			       size_t n_fds, struct listener **list,
			       size_t *n);

/* listener_close - close the socket; remove a UNIX socket's path when
 * remove_path is set (only the master does that, at its end) */
void listener_close(struct listener *l, bool remove_path);

#endif
