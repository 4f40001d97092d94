/*
 * proxy_recv.c - take a PROXY protocol header off a socket, exactly
 *
 * Each round peeks at most as many octets as the parser can use, parses
 * everything seen so far, and takes from the socket only octets the
 * parser vouches for: all of them while the header goes on (so a slow
 * proxy never makes ppoll() spin on octets left in the socket), the
 * header's own once it is complete.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "alloc.h"
#include "cidr.h"
#include "conf.h"
#include "log.h"
#include "proxy_recv.h"
#include "sockstream.h"

/* take - remove n octets that were peeked at from the socket */
static int take(struct proxy_recv *pr, int fd, size_t n)
{
	ssize_t got;

	while (n > 0) {
		got = recv(fd, pr->buf + pr->have, n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1; /* they were there a moment ago */
		pr->have += (size_t)got;
		n -= (size_t)got;
	}
	return 0;
}

/* wait_readable - 0 when fd may have more, or -1 with *error_r set */
static int wait_readable(int fd, int64_t deadline, const sigset_t *wait_mask,
			 int64_t (*stop)(void), const char **error_r)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int64_t now = sockstream_now(), limit = deadline;
	int64_t stop_at = stop != NULL ? stop() : -1;
	struct timespec ts;

	if (stop_at >= 0 && now >= stop_at) {
		*error_r = "daemon stopping";
		return -1;
	}
	if (now >= deadline) {
		*error_r = "PROXY header timeout";
		return -1;
	}
	if (stop_at >= 0 && stop_at < limit)
		limit = stop_at;
	ts.tv_sec = (limit - now) / 1000;
	ts.tv_nsec = (long)((limit - now) % 1000) * 1000000;
	if (ppoll(&pfd, 1, &ts, wait_mask) < 0 && errno != EINTR) {
		*error_r = "ppoll() failed";
		return -1;
	}
	return 0;
}

/* recv_failed - the text for a recv() that failed or saw the end */
static const char *recv_failed(struct proxy_recv *pr, ssize_t n)
{
	if (n == 0) {
		pr->closed = true;
		return "connection closed during the PROXY header";
	}
	snprintf(pr->error, sizeof(pr->error), "recv() failed: %s",
		 strerror(errno));
	return pr->error;
}

/* step - parse what is there once more; 1 when done, 0 to wait, -1 on
 * error.  *want is how many octets in all the parser can use next. */
static int step(struct proxy_recv *pr, int fd, size_t seen, size_t *want,
		const char **error_r)
{
	switch (proxy_protocol_parse(pr->buf, seen, &pr->hdr, want, error_r)) {
	case PROXY_PROTOCOL_OK:
		if (take(pr, fd, pr->hdr.length - pr->have) < 0) {
			*error_r = "PROXY header vanished from the socket";
			return -1;
		}
		return 1;
	case PROXY_PROTOCOL_MORE:
		/* Every octet seen belongs to the header: take them, so the
		 * next ppoll() waits for new ones. */
		if (take(pr, fd, seen - pr->have) < 0) {
			*error_r = "PROXY header vanished from the socket";
			return -1;
		}
		return 0;
	case PROXY_PROTOCOL_INVALID:
		return -1;
	}
	return -1;
}

int proxy_recv_header(struct proxy_recv *pr, int fd, int64_t deadline,
		      const sigset_t *wait_mask, int64_t (*stop)(void),
		      const char **error_r)
{
	size_t want = PROXY_PROTOCOL_MIN;
	ssize_t n;
	int r;

	pr->have = 0;
	pr->closed = false;
	for (;;) {
		ASSERT(want > pr->have && want <= sizeof(pr->buf));
		n = recv(fd, pr->buf + pr->have, want - pr->have, MSG_PEEK);
		if (n > 0) {
			r = step(pr, fd, pr->have + (size_t)n, &want, error_r);
			if (r != 0)
				return r > 0 ? 0 : -1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN) {
			*error_r = recv_failed(pr, n);
			return -1;
		}
		if (wait_readable(fd, deadline, wait_mask, stop, error_r) < 0)
			return -1;
	}
}

/* --- the session's PROXY step ----------------------------------------------
 */

/* use_client - the header's client replaces the peer, for the logs, the
 * handlers and X-Peer (fix: aiosmtpd keeps the proxy as session.peer) */
static void use_client(const struct proxy_protocol_header *hdr,
		       struct aiosmtpd_session *peer, char *addr, size_t size)
{
	const struct aiosmtpd_proxy_data *d = &hdr->data;

	snprintf(addr, size, "%s", d->src_addr);
	peer->peer_family = d->family == PROXY_AF_INET ? AF_INET : AF_INET6;
	peer->peer_port = d->src_port;
}

/* trusted - may this peer send a header at all? */
static bool trusted(const struct listener_conf *lc,
		    const struct aiosmtpd_session *peer)
{
	/* A UNIX socket's peers are whoever its file mode lets in. */
	if (lc->n_proxy_from == 0 || peer->peer_family == AF_UNIX)
		return true;
	return cidr_match_any(lc->proxy_from, lc->n_proxy_from,
			      peer->peer_addr);
}

struct proxy_recv *proxy_recv_session(int fd, const struct listener *l,
				      struct aiosmtpd_session *peer, char *addr,
				      size_t addr_size, const char *client,
				      const sigset_t *wait_mask,
				      int64_t (*stop)(void))
{
	const struct listener_conf *lc = l->conf;
	struct proxy_recv *pr;
	const char *error;
	int64_t deadline;

	if (!trusted(lc, peer)) {
		log_warning("%s %s proxy refused listener=%s reason=\"peer "
			    "not in proxy_protocol_from\"",
			    peer->id, client, l->bound);
		return NULL;
	}
	pr = xmalloc(sizeof(*pr));
	deadline = sockstream_now() + lc->proxy_timeout_ms;
	if (proxy_recv_header(pr, fd, deadline, wait_mask, stop, &error) < 0) {
		if (pr->closed && pr->have == 0)
			log_info("%s %s closed before the PROXY header "
				 "listener=%s",
				 peer->id, client, l->bound);
		else
			log_warning("%s %s proxy refused listener=%s "
				    "reason=\"%s\"",
				    peer->id, client, l->bound, error);
		free(pr);
		return NULL;
	}
	snprintf(pr->proxy_addr, sizeof(pr->proxy_addr), "%s", peer->peer_addr);
	snprintf(pr->proxy_client, sizeof(pr->proxy_client), "%s", client);
	pr->hdr.data.proxy_addr = pr->proxy_addr;
	pr->hdr.data.proxy_port = peer->peer_port;
	if (proxy_protocol_names_client(&pr->hdr))
		use_client(&pr->hdr, peer, addr, addr_size);
	return pr;
}
