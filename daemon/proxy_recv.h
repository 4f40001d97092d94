/*
 * proxy_recv.h - take a PROXY protocol header off a socket, exactly
 *
 * On a listener with proxy_protocol_timeout the header must arrive before
 * the greeting.  Its octets are looked at with MSG_PEEK and only the
 * header's own are taken from the socket, so what the client sent after
 * it (pipelined SMTP commands, or an implicit-TLS ClientHello) is still
 * there for the session.  An invalid, incomplete or late header, or a
 * peer outside proxy_protocol_from, closes the connection with no reply
 * and a log line.
 */
#ifndef AIOSMTPD_PROXY_RECV_H
#define AIOSMTPD_PROXY_RECV_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "aiosmtpd/handler.h"
#include "listener.h"
#include "proxy_protocol.h"

struct proxy_recv {
	unsigned char buf[PROXY_PROTOCOL_V2_MAX];
	size_t have; /* octets of buf taken from the socket */
	struct proxy_protocol_header hdr;
	char proxy_addr[64];   /* the connection's own peer, for hdr.data */
	char proxy_client[80]; /* the same as log lines name it */
	bool closed; /* the peer hung up (after pr->have octets) */
	char error[128];
};

/*
 * proxy_recv_header - read one header from fd (non-blocking)
 *
 * Waits in ppoll() with wait_mask until deadline (sockstream_now()
 * milliseconds) or until stop() says the daemon stops (stop as
 * sockstream's stop_deadline; NULL for none).  Returns 0 with pr->hdr
 * filled, or -1 with *error_r a text for the log: the parser's reason,
 * "PROXY header timeout", "connection closed during the PROXY header",
 * "daemon stopping" or a failed recv().
 */
int proxy_recv_header(struct proxy_recv *pr, int fd, int64_t deadline,
		      const sigset_t *wait_mask, int64_t (*stop)(void),
		      const char **error_r);

/*
 * proxy_recv_session - the PROXY step of a session, before the greeting
 *
 * Checks the peer in *peer against the listener's proxy_protocol_from,
 * reads the header, and when it names the client rewrites *peer to that
 * client (the address goes into addr, of addr_size octets).  id and
 * client name the session in log lines.  A peer that hangs up before
 * sending anything (a balancer's plain TCP health check) is logged as
 * info, not as a warning.  Returns the reader (free() it
 * after the session; its hdr.data is the handlers' session->proxy), or
 * NULL after logging why the connection must close without a reply.
 */
struct proxy_recv *proxy_recv_session(int fd, const struct listener *l,
				      struct aiosmtpd_session *peer, char *addr,
				      size_t addr_size, const char *client,
				      const sigset_t *wait_mask,
				      int64_t (*stop)(void));

#endif
