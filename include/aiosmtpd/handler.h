/*
 * aiosmtpd/handler.h - the handler interface of aiosmtpd-c
 *
 * A handler decides what happens to a session's commands and messages, as
 * a handler object does for Python's aiosmtpd.  It is a table of optional
 * hooks, one per SMTP command, in the image of aiosmtpd's handle_HELO,
 * handle_MAIL, handle_DATA and so on.  The built-in handlers (Debugging,
 * Sink, Mailbox, ...) use this table, and so can a handler of your own.
 *
 * Every hook returns either NULL, for the default behaviour (what aiosmtpd
 * does when a handler has no such hook), or a complete reply such as
 * "250 OK" or "550 5.7.1 Unable to relay".  A reply of several lines is one
 * string with the lines joined by "\r\n" and no final CRLF.  The string
 * must stay valid until the next hook call on the same session; a string
 * literal or a buffer in the handler's per-session data are both fine.
 *
 * For MAIL, RCPT, HELO, EHLO and LHLO the outcome follows the reply: NULL
 * or a 2xx reply accepts (the sender or recipient joins the envelope, the
 * greeting is remembered), anything else rejects and leaves the state as
 * it was.  For DATA the reply is what the client gets after the final dot;
 * on an LMTP session a single-line reply is repeated once per recipient,
 * while a reply of exactly as many lines as recipients is sent as it is.
 *
 * Hooks run in a worker process, one session at a time; they may block.
 * A hook must not keep pointers into the session or envelope after it
 * returns, except through the session's handler_data.
 *
 * A handler of your own is a shared object that defines
 *
 *	const struct aiosmtpd_handler aiosmtpd_handler = {
 *		.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
 *		.name = "mine",
 *		.handle_RCPT = my_rcpt,
 *	};
 *
 * built with "cc -shared -fPIC -o mine.so mine.c" and loaded with
 * "aiosmtpd -c /path/to/mine.so ARGS..." or, in aiosmtpd.conf,
 * handler = { type = "plugin"; path = "/path/to/mine.so"; args = [...]; }.
 * The daemon checks abi_version when it loads the object and refuses to
 * start when it differs from its own.  A handler may call only the
 * functions declared here; the daemon exports nothing else.
 */
#ifndef AIOSMTPD_HANDLER_H
#define AIOSMTPD_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Raised whenever a field or hook changes place or meaning; the daemon
 * refuses, at start, a handler whose abi_version is not its own. */
#define AIOSMTPD_HANDLER_ABI_VERSION 1

/* The name of the struct aiosmtpd_handler a shared object exports. */
#define AIOSMTPD_HANDLER_SYMBOL "aiosmtpd_handler"

/* The message content, readable during handle_DATA. */
struct aiosmtpd_content;

/*
 * What a PROXY protocol header said, on a listener that takes one
 * (proxy_protocol_timeout).  The numbers are aiosmtpd's ProxyData's, and
 * so the header's: v2 carries them as they are, v1's "UNKNOWN" is UNSPEC.
 * When the header names a client (v1 TCP4/TCP6, or v2 PROXY over INET or
 * INET6) the session's peer_* fields already hold that client; the proxy
 * itself is in proxy_addr/proxy_port.  Everything stays valid for the
 * whole session.
 */
struct aiosmtpd_proxy_data {
	int version;  /* 1 or 2 */
	int command;  /* 0 LOCAL (a health check), 1 PROXY; v1 is PROXY */
	int family;   /* 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX */
	int protocol; /* 0 UNSPEC, 1 STREAM, 2 DGRAM */
	/* INET/INET6: "192.0.2.1", "2001:db8::1"; UNIX: the path up to
	 * its first NUL; NULL for UNSPEC */
	const char *src_addr;
	const char *dst_addr;
	unsigned src_port; /* 0 unless INET/INET6 */
	unsigned dst_port;
	/* v1: the text after "UNKNOWN"; v2: the octets after the
	 * addresses (the TLVs), or the whole tail for UNSPEC */
	const unsigned char *rest;
	size_t rest_len;
	const unsigned char *whole_raw; /* the header as received */
	size_t whole_len;
	const char *proxy_addr; /* the connection's own peer: the proxy */
	unsigned proxy_port;
};

struct aiosmtpd_session {
	const char *id;	       /* session id, as in the log lines */
	int peer_family;       /* AF_INET, AF_INET6 or AF_UNIX */
	const char *peer_addr; /* "127.0.0.1", "::1"; "" for AF_UNIX */
	unsigned peer_port;    /* 0 for AF_UNIX */
	const char *host_name; /* HELO/EHLO/LHLO argument; NULL before */
	bool extended_smtp;    /* EHLO or LHLO was accepted */
	bool lmtp;	       /* the listener speaks LMTP */
	bool decode_data;      /* content is text (aiosmtpd's decode_data) */
	const char *tls_version; /* NULL unless the session is encrypted */
	const char *tls_cipher;
	int tls_bits;
	const char *auth_user; /* NULL unless authenticated */
	void *handler_data;    /* free for the handler's own use */
	const char *local_name; /* our host name, as in the greeting */
	/* NULL unless the listener takes PROXY protocol headers */
	const struct aiosmtpd_proxy_data *proxy;
	/* New fields are added here, at the end. */
};

struct aiosmtpd_envelope {
	const char *mail_from; /* NULL before MAIL; "<>" for a null path */
	const char *const *mail_options; /* upper-cased, as aiosmtpd */
	size_t n_mail_options;
	bool smtp_utf8;
	const char *const *rcpt_tos;
	size_t n_rcpt_tos;
	const char *const *rcpt_options;
	size_t n_rcpt_options;
	struct aiosmtpd_content *content; /* during handle_DATA, else NULL */
	uint64_t content_size; /* octets, dots removed, CRLFs kept */
};

struct aiosmtpd_handler {
	unsigned abi_version; /* AIOSMTPD_HANDLER_ABI_VERSION */
	const char *name;

	/* Called once in the daemon's master process, before any session,
	 * with the handler's arguments (the words after the handler name on
	 * the command line, or the configuration's args).  Returns the
	 * handler's context, or NULL with *error_r set to a message that
	 * the daemon prints before it stops. */
	void *(*init)(int argc, char *const argv[], const char **error_r);
	void (*cleanup)(void *ctx);

	const char *(*handle_HELO)(void *ctx, struct aiosmtpd_session *session,
				   struct aiosmtpd_envelope *envelope,
				   const char *hostname);
	/* responses: the EHLO/LHLO reply built so far, lines joined by
	 * "\r\n"; return a replacement or NULL to send it unchanged. */
	const char *(*handle_EHLO)(void *ctx, struct aiosmtpd_session *session,
				   struct aiosmtpd_envelope *envelope,
				   const char *hostname, const char *responses);
	const char *(*handle_NOOP)(void *ctx, struct aiosmtpd_session *session,
				   struct aiosmtpd_envelope *envelope,
				   const char *arg);
	const char *(*handle_QUIT)(void *ctx, struct aiosmtpd_session *session,
				   struct aiosmtpd_envelope *envelope);
	const char *(*handle_VRFY)(void *ctx, struct aiosmtpd_session *session,
				   struct aiosmtpd_envelope *envelope,
				   const char *address);
	const char *(*handle_MAIL)(void *ctx, struct aiosmtpd_session *session,
				   struct aiosmtpd_envelope *envelope,
				   const char *address,
				   const char *const *options,
				   size_t n_options);
	const char *(*handle_RCPT)(void *ctx, struct aiosmtpd_session *session,
				   struct aiosmtpd_envelope *envelope,
				   const char *address,
				   const char *const *options,
				   size_t n_options);
	/* Without this hook the content is not even stored (aiosmtpd's
	 * Sink has none). */
	const char *(*handle_DATA)(void *ctx, struct aiosmtpd_session *session,
				   struct aiosmtpd_envelope *envelope);
	const char *(*handle_RSET)(void *ctx, struct aiosmtpd_session *session,
				   struct aiosmtpd_envelope *envelope);
	/* Called when a session ends, however it ends: release what
	 * handler_data holds.  (aiosmtpd has no such hook.) */
	void (*handle_CLOSE)(void *ctx, struct aiosmtpd_session *session);

	/* Places kept for hooks still to come (handle_AUTH,
	 * handle_STARTTLS, handle_exception); leave them NULL, as a
	 * designated initializer does. */
	void (*reserved_auth)(void);
	void (*reserved_starttls)(void);
	/* Called on a listener with proxy_protocol_timeout once a valid
	 * PROXY header has arrived, before the greeting; session->proxy
	 * holds it.  Returning false closes the connection without a word,
	 * as a falsy return of aiosmtpd's handle_PROXY does.  Without this
	 * hook every valid header is accepted (aiosmtpd would close: its
	 * built-in handlers have no handle_PROXY, which would make the
	 * option useless with them).  It takes the place kept for it. */
	bool (*handle_PROXY)(void *ctx, struct aiosmtpd_session *session,
			     const struct aiosmtpd_proxy_data *proxy);
	void (*reserved[5])(void);
};

/*
 * aiosmtpd_content_read - copy the next octets of the message
 *
 * Returns the number copied, 0 at the end, or -1 with errno set.  The first
 * call in handle_DATA starts at the beginning; aiosmtpd_content_rewind()
 * starts over.
 */
ssize_t aiosmtpd_content_read(struct aiosmtpd_content *content, void *buf,
			      size_t len);
int aiosmtpd_content_rewind(struct aiosmtpd_content *content);

enum aiosmtpd_log_level {
	AIOSMTPD_LOG_DEBUG,
	AIOSMTPD_LOG_INFO,
	AIOSMTPD_LOG_WARNING,
	AIOSMTPD_LOG_ERROR,
};

/*
 * aiosmtpd_log - write one line to the daemon's log (stderr or syslog)
 *
 * Start session events with session->id, as the daemon's own lines do.
 * Never log AUTH data or message content.
 */
void aiosmtpd_log(enum aiosmtpd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* PROXY v2 TLV types (haproxy's proxy-protocol.txt, section 2.2). */
#define AIOSMTPD_PP2_TYPE_ALPN 0x01
#define AIOSMTPD_PP2_TYPE_AUTHORITY 0x02
#define AIOSMTPD_PP2_TYPE_CRC32C 0x03
#define AIOSMTPD_PP2_TYPE_NOOP 0x04
#define AIOSMTPD_PP2_TYPE_UNIQUE_ID 0x05
#define AIOSMTPD_PP2_TYPE_SSL 0x20
#define AIOSMTPD_PP2_SUBTYPE_SSL_VERSION 0x21
#define AIOSMTPD_PP2_SUBTYPE_SSL_CN 0x22
#define AIOSMTPD_PP2_SUBTYPE_SSL_CIPHER 0x23
#define AIOSMTPD_PP2_SUBTYPE_SSL_SIG_ALG 0x24
#define AIOSMTPD_PP2_SUBTYPE_SSL_KEY_ALG 0x25
#define AIOSMTPD_PP2_TYPE_NETNS 0x30

/*
 * aiosmtpd_proxy_tlv - the value of one v2 TLV
 *
 * The SSL TLV's sub-TLVs are found by their own types, as aiosmtpd's
 * ProxyTLV flattens them; the SSL value itself starts with its client
 * flags octet and 4-octet verify field.  When a type occurs twice the last
 * one counts.  Returns a pointer into proxy->rest and its length in
 * *len_r, or NULL when the type is absent, the header is v1, or any TLV
 * runs past its end (aiosmtpd's ProxyData.tlv is then None).
 */
const unsigned char *
aiosmtpd_proxy_tlv(const struct aiosmtpd_proxy_data *proxy, unsigned type,
		   size_t *len_r);

#ifdef __cplusplus
}
#endif

#endif
