/*
 * address.c - the socket addresses an operator writes
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "address.h"
#include "alloc.h"

static bool valid_port(const char *port)
{
	size_t len = strlen(port);

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (port[i] < '0' || port[i] > '9')
			return false;
	}
	return atoi(port) <= 65535;
}

static int parse_unix(const char *path, struct address *addr,
		      const char **error_r)
{
	struct sockaddr_un sun;

	if (path[0] != '/') {
		*error_r = "a UNIX socket needs an absolute path";
		return -1;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		*error_r = "the UNIX socket path is too long";
		return -1;
	}
	addr->is_unix = true;
	addr->path = xstrdup(path);
	return 0;
}

int address_parse(const char *text, struct address *addr,
		  const char **error_r)
{
	const char *colon, *host = text;
	size_t host_len;

	memset(addr, 0, sizeof(*addr));
	if (strncmp(text, "unix:", 5) == 0)
		return parse_unix(text + 5, addr, error_r);
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL || close[1] != ':') {
			*error_r = "expected [ipv6]:port";
			return -1;
		}
		host = text + 1;
		host_len = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL) {
			*error_r = "expected host:port, [ipv6]:port or "
				   "unix:/path";
			return -1;
		}
		host_len = (size_t)(colon - text);
	}
	if (host_len == 0 || memchr(host, ' ', host_len) != NULL) {
		*error_r = "the host is missing or malformed";
		return -1;
	}
	if (!valid_port(colon + 1)) {
		*error_r = "the port must be a number from 0 to 65535";
		return -1;
	}
	addr->host = xstrndup(host, host_len);
	addr->port = xstrdup(colon + 1);
	return 0;
}

void address_free(struct address *addr)
{
	XFREE(addr->host);
	XFREE(addr->port);
	XFREE(addr->path);
}
