/*
 * proxy_protocol.h - PROXY protocol v1 and v2 headers, parsed from memory
 *
 * A load balancer such as HAProxy (send-proxy, send-proxy-v2) opens each
 * connection with a header that names the original client.  This module
 * parses such a header from the octets received so far and never reads
 * itself, so the daemon decides how many octets to take from the socket:
 * exactly the header's, never one of the SMTP or TLS bytes that follow.
 *
 * The checks, their order and the error texts are aiosmtpd 1.4's
 * (aiosmtpd/proxy_protocol.py), with haproxy's proxy-protocol.txt where
 * Python lets through what the specification forbids: a v1 protocol must be
 * exactly TCP4 or TCP6 (aiosmtpd takes anything that starts with "TCP" and
 * ends in 4 or 6), a port only ASCII digits (Python's int() also takes
 * "1_0" and trailing white space), and a TLV needs its full 3-octet head.
 * Where aiosmtpd fails with a Python exception instead of a reason (too
 * few v1 fields, an SSL TLV shorter than its fixed part) the reason here
 * says so.
 */
#ifndef AIOSMTPD_PROXY_PROTOCOL_H
#define AIOSMTPD_PROXY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

#include "aiosmtpd/handler.h"

/* The longest v1 header, CRLF included (the specification's worst case,
 * aiosmtpd's limit). */
#define PROXY_PROTOCOL_V1_MAX 107
/* The longest v2 header: 16 fixed octets and a 16-bit length. */
#define PROXY_PROTOCOL_V2_MAX (16 + 65535)
/* The shortest header of either version ("PROXY UNKNOWN\r\n"). */
#define PROXY_PROTOCOL_MIN 15

enum proxy_protocol_result {
	PROXY_PROTOCOL_OK,      /* a whole, valid header */
	PROXY_PROTOCOL_MORE,    /* the header goes on past the octets given */
	PROXY_PROTOCOL_INVALID, /* not a header aiosmtpd would accept */
};

/* aiosmtpd's AF and PROTO numbers: v2's nibbles. */
enum proxy_protocol_family {
	PROXY_AF_UNSPEC = 0,
	PROXY_AF_INET = 1,
	PROXY_AF_INET6 = 2,
	PROXY_AF_UNIX = 3,
};

enum proxy_protocol_proto {
	PROXY_PROTO_UNSPEC = 0,
	PROXY_PROTO_STREAM = 1,
	PROXY_PROTO_DGRAM = 2,
};

struct proxy_protocol_header {
	/* The handlers' view; its pointers point into this struct and into
	 * the buffer that was parsed, which must outlive it.  proxy_addr
	 * and proxy_port are left for the caller. */
	struct aiosmtpd_proxy_data data;
	size_t length;    /* octets of the header */
	size_t tlv_start; /* offset of the first TLV; 0 when there is none */
	char src[109];    /* address texts, or UNIX paths (108 octets) */
	char dst[109];
};

/*
 * proxy_protocol_parse - parse the first len octets of a connection
 *
 * OK: *hdr describes the header, which is hdr->length octets long (the
 * octets after it are the client's and were not looked at).  MORE: the
 * header needs more octets; every one of the len octets belongs to it, so
 * the caller may consume them all, and *need_r says how many octets in all
 * the parser could use next (more than len; the header may be shorter).
 * INVALID: *error_r is a static text such as "PROXYv1 malformed".
 * Only *need_r, *hdr or *error_r, as the result says, is set.
 */
enum proxy_protocol_result
proxy_protocol_parse(const unsigned char *buf, size_t len,
		     struct proxy_protocol_header *hdr, size_t *need_r,
		     const char **error_r);

/* proxy_protocol_names_client - does the header carry the client's own
 * address (v1 TCP4/TCP6, v2 PROXY over INET/INET6)?  Otherwise (v1
 * UNKNOWN, v2 LOCAL, UNSPEC or UNIX) the connection's endpoints stand. */
bool proxy_protocol_names_client(const struct proxy_protocol_header *hdr);

/*
 * proxy_protocol_tlvs_valid - is every TLV within its area?
 *
 * The area is a v2 header's rest.  Each TLV (and each sub-TLV of the SSL
 * TLV, after its 5 fixed octets) must fit; aiosmtpd's ProxyTLV.from_raw
 * refuses the whole area otherwise.
 */
bool proxy_protocol_tlvs_valid(const unsigned char *tlvs, size_t len);

/*
 * proxy_protocol_tlv_find - the last TLV of a type in an area
 *
 * Sub-TLVs of SSL count as TLVs of their own types.  The walk stops at the
 * first TLV that does not fit, so what comes before it can still be found
 * (aiosmtpd's ProxyTLV.parse with partial_ok).  Returns a pointer into
 * tlvs and the value's length in *len_r, or NULL.
 */
const unsigned char *proxy_protocol_tlv_find(const unsigned char *tlvs,
					     size_t len, unsigned type,
					     size_t *len_r);

/* proxy_protocol_tlv_name - "ALPN", "SSL_CN", ... as aiosmtpd names the
 * types; NULL for a type without a name */
const char *proxy_protocol_tlv_name(unsigned type);

#endif
