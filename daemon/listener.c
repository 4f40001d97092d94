/*
 * listener.c - binding listening sockets
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "address.h"
#include "alloc.h"
#include "conf.h"
#include "listener.h"
#include "log.h"
#include "sbuf.h"

#define LISTEN_BACKLOG 1024

/* sockaddr_text - "127.0.0.1:25" or "[::1]:25" */
static char *sockaddr_text(const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		return sbuf_format("[%s]:%u", host, ntohs(in6->sin6_port));
	}
	const struct sockaddr_in *in = (const void *)sa;

	inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
	return sbuf_format("%s:%u", host, ntohs(in->sin_port));
}

static struct listener *append(struct listener **list, size_t *n,
			       const struct listener_conf *conf)
{
	struct listener *l;

	*list = xrealloc(*list, (*n + 1) * sizeof(**list));
	l = &(*list)[(*n)++];
	memset(l, 0, sizeof(*l));
	l->conf = conf;
	l->fd = -1;
	return l;
}

/* prepare - the options every listening socket gets */
static int prepare(int fd, int family)
{
	int on = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
		return -1;
	if (family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
		return -1;
	/* Non-blocking: every worker polls the socket and only one of them
	 * wins each connection; the others must not block in accept(). */
	return fcntl(fd, F_SETFL, O_NONBLOCK);
}

static int open_unix(const struct listener_conf *conf, const char *path,
		     struct listener **list, size_t *n, char **error_r)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct listener *l;
	struct stat st;
	int fd;

	strcpy(sun.sun_path, path);
	/* A socket left by an earlier run is replaced; anything else at
	 * the path is not ours to remove. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0666) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		*error_r = sbuf_format("bind(unix:%s) failed: %s", path,
				  strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	l = append(list, n, conf);
	l->fd = fd;
	l->family = AF_UNIX;
	l->unix_path = xstrdup(path);
	l->bound = sbuf_format("unix:%s", path);
	return 0;
}

/* set_nodelay - replies go out at once on every connection; set on the
 * listener, the option is inherited by accept() */
static void set_nodelay(struct listener *l)
{
	int on = 1;

	if (l->family == AF_UNIX)
		return;
	l->nodelay = setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &on,
				sizeof(on)) == 0;
}

/* bind_one - one socket for one resolved address */
static int bind_one(const struct listener_conf *conf, const struct addrinfo *ai,
		    bool port_zero, struct listener **list, size_t *n,
		    char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct listener *l;
	char *text = sockaddr_text(ai->ai_addr);
	int fd;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || prepare(fd, ai->ai_family) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		int saved = errno;

		*error_r = sbuf_format("bind(%s) failed: %s", text, strerror(saved));
		if (fd >= 0)
			close(fd);
		free(text);
		errno = saved;
		return -1;
	}
	free(text);
	l = append(list, n, conf);
	l->fd = fd;
	l->family = ai->ai_family;
	l->bound = sockaddr_text((struct sockaddr *)&ss);
	l->port_zero = port_zero;
	set_nodelay(l);
	return 0;
}

int listener_open_all(const struct listener_conf *conf,
		      struct listener **list, size_t *n, char **error_r)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res, *ai;
	struct address addr;
	const char *why;
	size_t first = *n;
	int ret = -1, err;

	if (address_parse(conf->address, &addr, &why) < 0) {
		*error_r = sbuf_format("%s: %s", conf->address, why);
		return -1;
	}
	if (addr.is_unix) {
		ret = open_unix(conf, addr.path, list, n, error_r);
		address_free(&addr);
		return ret;
	}
	if ((err = getaddrinfo(addr.host, addr.port, &hints, &res)) != 0) {
		*error_r = sbuf_format("%s: cannot resolve %s: %s", conf->address,
				  addr.host, gai_strerror(err));
		goto out;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		char *bind_error = NULL;

		if (bind_one(conf, ai, strcmp(addr.port, "0") == 0, list, n,
			     &bind_error) == 0)
			continue;
		/* localhost may resolve to ::1 on a host without IPv6:
		 * skip an address the host does not have, fail on any
		 * other error. */
		if (errno != EADDRNOTAVAIL && errno != EAFNOSUPPORT) {
			*error_r = bind_error;
			goto free_res;
		}
		log_warning("%s", bind_error);
		free(bind_error);
	}
	if (*n == first) {
		*error_r = sbuf_format("%s: no address could be bound",
				  conf->address);
		goto free_res;
	}
	ret = 0;
free_res:
	freeaddrinfo(res);
out:
	address_free(&addr);
	return ret;
}

bool listener_matches(const struct listener *l, const char *address)
{
	return l->fd >= 0 && strcmp(l->conf->address, address) == 0;
}

void listener_close(struct listener *l, bool remove_path)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (remove_path && l->unix_path != NULL)
		(void)unlink(l->unix_path);
	XFREE(l->unix_path);
	XFREE(l->bound);
}

/* same_address - is the socket fd bound to sa? */
static bool same_address(int fd, const struct sockaddr *sa)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
	    ss.ss_family != sa->sa_family)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&ss, *b = (const void *)sa;

		return a->sin_port == b->sin_port &&
		       a->sin_addr.s_addr == b->sin_addr.s_addr;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&ss,
					  *b = (const void *)sa;

		return a->sin6_port == b->sin6_port &&
		       memcmp(&a->sin6_addr, &b->sin6_addr,
			      sizeof(a->sin6_addr)) == 0;
	}
	if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *a = (const void *)&ss,
					 *b = (const void *)sa;

		return strcmp(a->sun_path, b->sun_path) == 0;
	}
	return false;
}

/* adopt - an inherited socket becomes a listener */
static void adopt(const struct listener_conf *conf, int fd,
		  const struct sockaddr *sa, struct listener **list,
		  size_t *n)
{
	struct listener *l = append(list, n, conf);

	(void)fcntl(fd, F_SETFL, O_NONBLOCK);
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	l->fd = fd;
	l->family = sa->sa_family;
	if (sa->sa_family == AF_UNIX)
		l->bound = sbuf_format("unix:%s",
				  ((const struct sockaddr_un *)sa)->sun_path);
	else
		l->bound = sockaddr_text(sa);
	set_nodelay(l);
	log_info("listening on %s, passed in by systemd", l->bound);
}

/* take_matching - inherited sockets bound to sa */
static size_t take_matching(const struct listener_conf *conf,
			    const struct sockaddr *sa, int *fds, size_t n_fds,
			    struct listener **list, size_t *n)
{
	size_t taken = 0;

	for (size_t i = 0; i < n_fds; i++) {
		if (fds[i] >= 0 && same_address(fds[i], sa)) {
			adopt(conf, fds[i], sa, list, n);
			fds[i] = -1;
			taken++;
		}
	}
	return taken;
}

size_t listener_take_inherited(const struct listener_conf *conf, int *fds,
			       size_t n_fds, struct listener **list,
			       size_t *n)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res, *ai;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct address addr;
	const char *why;
	size_t taken = 0;

	if (address_parse(conf->address, &addr, &why) < 0)
		return 0;
	if (addr.is_unix) {
		strcpy(sun.sun_path, addr.path);
		taken = take_matching(conf, (struct sockaddr *)&sun, fds, n_fds,
				      list, n);
	} else if (getaddrinfo(addr.host, addr.port, &hints, &res) == 0) {
		for (ai = res; ai != NULL; ai = ai->ai_next)
			taken += take_matching(conf, ai->ai_addr, fds, n_fds,
					       list, n);
		freeaddrinfo(res);
	}
	address_free(&addr);
	return taken;
}
