/*
 * proxy_protocol.c - PROXY protocol v1 and v2 headers, parsed from memory
 *
 * The parser is re-run from the first octet each time more have arrived;
 * a header is at most 64 KiB and arrives in one or two segments, so
 * keeping state between calls would buy nothing but bugs.
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy_protocol.h"

static const unsigned char v1_signature[5] = "PROXY";
static const unsigned char v2_signature[12] = "\r\n\r\n\0\r\nQUIT\n";

/* The v2 fixed part: signature, version and command, family and
 * protocol, length. */
#define V2_FIXED 16
/* The SSL TLV's value starts with a client octet and a verify field. */
#define SSL_FIXED 5

/* A span of the v1 line, and a cursor that splits it on single spaces as
 * Python's bytes.split(b" ") does: "a  b" has an empty field between. */
struct field {
	const char *p;
	size_t len;
};

struct fields {
	const char *p;
	const char *end;
	bool done;
};

/* next_field - the next field, or false when the line has no more */
static bool next_field(struct fields *fs, struct field *f)
{
	const char *space;

	if (fs->done)
		return false;
	space = memchr(fs->p, ' ', (size_t)(fs->end - fs->p));
	f->p = fs->p;
	if (space == NULL) {
		f->len = (size_t)(fs->end - fs->p);
		fs->done = true;
	} else {
		f->len = (size_t)(space - fs->p);
		fs->p = space + 1;
	}
	return true;
}

static bool field_is(const struct field *f, const char *text)
{
	return f->len == strlen(text) && memcmp(f->p, text, f->len) == 0;
}

/*
 * v1_address - aiosmtpd's get_ap(RE_ADDR_ALLOWCHARS) and ip_address()
 *
 * Returns 4 or 6 for an IPv4 or IPv6 address, written to text in its
 * canonical form (as Python's str() of the address), or 0.  glibc's
 * inet_pton() takes what Python's ipaddress takes: dotted quads without
 * leading zeros, and IPv6 with at most one "::" and an IPv4 tail.
 */
static int v1_address(const struct field *f, char *text, size_t size)
{
	unsigned char bin[16];
	char copy[64];

	if (f->len == 0 || f->len >= sizeof(copy))
		return 0;
	for (size_t i = 0; i < f->len; i++) {
		if (strchr("0123456789abcdefABCDEF.:", f->p[i]) == NULL ||
		    f->p[i] == '\0')
			return 0;
	}
	memcpy(copy, f->p, f->len);
	copy[f->len] = '\0';
	if (inet_pton(AF_INET, copy, bin) == 1) {
		inet_ntop(AF_INET, bin, text, (socklen_t)size);
		return 4;
	}
	if (inet_pton(AF_INET6, copy, bin) == 1) {
		inet_ntop(AF_INET6, bin, text, (socklen_t)size);
		return 6;
	}
	return 0;
}

/* v1_port - digits without a leading zero (aiosmtpd's
 * RE_PORT_NOLEADZERO); values past 65535 are kept as 65536 for the bounds
 * check that follows, as aiosmtpd checks them after both ports parsed */
static bool v1_port(const struct field *f, unsigned *port)
{
	unsigned long v = 0;

	if (f->len == 0 || (f->p[0] == '0' && f->len > 1))
		return false;
	for (size_t i = 0; i < f->len; i++) {
		if (f->p[i] < '0' || f->p[i] > '9')
			return false;
		if (v <= 65535)
			v = v * 10 + (unsigned long)(f->p[i] - '0');
	}
	*port = v > 65535 ? 65536 : (unsigned)v;
	return true;
}

/* v1_protocol - the family from the protocol word, as aiosmtpd picks it:
 * by its last character first, then by its "TCP" start */
static const char *v1_protocol(const struct field *f, int *family)
{
	if (f->len > 0 && f->p[f->len - 1] == '4')
		*family = PROXY_AF_INET;
	else if (f->len > 0 && f->p[f->len - 1] == '6')
		*family = PROXY_AF_INET6;
	else
		return "PROXYv1 unrecognized family";
	if (!field_is(f, *family == PROXY_AF_INET ? "TCP4" : "TCP6"))
		return "PROXYv1 unrecognized protocol";
	return NULL;
}

/* v1_endpoints - "SRC DST SPORT DPORT" and nothing after them */
static const char *v1_endpoints(struct fields *fs,
				struct proxy_protocol_header *hdr)
{
	struct aiosmtpd_proxy_data *d = &hdr->data;
	struct field src, dst, sport, dport;
	int want = d->family == PROXY_AF_INET ? 4 : 6, sv, dv;

	if (!next_field(fs, &src) || !next_field(fs, &dst))
		return "PROXYv1 too few fields";
	sv = v1_address(&src, hdr->src, sizeof(hdr->src));
	dv = v1_address(&dst, hdr->dst, sizeof(hdr->dst));
	if (sv == 0 || dv == 0)
		return "PROXYv1 address malformed";
	if (sv != want || dv != want)
		return want == 4 ? "PROXYv1 address not IPv4"
				 : "PROXYv1 address not IPv6";
	if (!next_field(fs, &sport) || !next_field(fs, &dport))
		return "PROXYv1 too few fields";
	if (!v1_port(&sport, &d->src_port) || !v1_port(&dport, &d->dst_port))
		return "PROXYv1 port malformed";
	if (d->src_port > 65535)
		return "PROXYv1 src port out of bounds";
	if (d->dst_port > 65535)
		return "PROXYv1 dst port out of bounds";
	if (!fs->done)
		return "PROXYv1 unrecognized extraneous data";
	d->src_addr = hdr->src;
	d->dst_addr = hdr->dst;
	return NULL;
}

/* v1_fields - everything between "PROXY" and the CRLF */
static const char *v1_fields(const unsigned char *buf, size_t line_len,
			     struct proxy_protocol_header *hdr)
{
	struct aiosmtpd_proxy_data *d = &hdr->data;
	struct fields fs = {.p = (const char *)buf + 5,
			    .end = (const char *)buf + line_len - 2};
	struct field f;
	const char *error;

	/* Text right after "PROXY" makes a first field that is not empty. */
	if (!next_field(&fs, &f) || f.len != 0)
		return "PROXYv1 wrong signature";
	if (!next_field(&fs, &f))
		return "PROXYv1 too few fields";
	if (field_is(&f, "UNKNOWN")) {
		d->rest = (const unsigned char *)f.p + f.len;
		d->rest_len = (size_t)(fs.end - (f.p + f.len));
		return NULL;
	}
	if ((error = v1_protocol(&f, &d->family)) != NULL)
		return error;
	d->protocol = PROXY_PROTO_STREAM;
	return v1_endpoints(&fs, hdr);
}

/* parse_v1 - the line must end in CRLF within 107 octets */
static enum proxy_protocol_result parse_v1(const unsigned char *buf, size_t len,
					   struct proxy_protocol_header *hdr,
					   size_t *need_r, const char **error_r)
{
	size_t window =
		len < PROXY_PROTOCOL_V1_MAX ? len : PROXY_PROTOCOL_V1_MAX;
	const unsigned char *lf = memchr(buf, '\n', window);
	struct proxy_protocol_header h;
	size_t line_len;

	if (lf == NULL) {
		if (len >= PROXY_PROTOCOL_V1_MAX) {
			*error_r = "PROXYv1 header too long";
			return PROXY_PROTOCOL_INVALID;
		}
		*need_r = PROXY_PROTOCOL_V1_MAX;
		return PROXY_PROTOCOL_MORE;
	}
	line_len = (size_t)(lf - buf) + 1;
	if (lf[-1] != '\r') {
		*error_r = "PROXYv1 malformed";
		return PROXY_PROTOCOL_INVALID;
	}
	memset(&h, 0, sizeof(h));
	h.data.version = 1;
	h.data.command = 1;
	if ((*error_r = v1_fields(buf, line_len, &h)) != NULL)
		return PROXY_PROTOCOL_INVALID;
	h.length = line_len;
	*hdr = h;
	return PROXY_PROTOCOL_OK;
}

/* v2_fixed - aiosmtpd's checks of the four octets after the signature */
static const char *v2_fixed(const unsigned char *buf,
			    struct aiosmtpd_proxy_data *d)
{
	if ((buf[12] & 0xf0) != 0x20)
		return "PROXYv2 illegal version";
	d->command = buf[12] & 0x0f;
	if (d->command > 1)
		return "PROXYv2 unsupported command";
	d->family = buf[13] >> 4;
	if (d->family > PROXY_AF_UNIX)
		return "PROXYv2 unsupported family";
	d->protocol = buf[13] & 0x0f;
	if (d->protocol > PROXY_PROTO_DGRAM)
		return "PROXYv2 unsupported protocol";
	return NULL;
}

/* v2_inet - the address block of INET (12 octets) or INET6 (36) */
static void v2_inet(const unsigned char *block, size_t alen,
		    struct proxy_protocol_header *hdr)
{
	struct aiosmtpd_proxy_data *d = &hdr->data;
	int af = d->family == PROXY_AF_INET ? AF_INET : AF_INET6;

	inet_ntop(af, block, hdr->src, sizeof(hdr->src));
	inet_ntop(af, block + alen, hdr->dst, sizeof(hdr->dst));
	d->src_port = (unsigned)(block[2 * alen] << 8 | block[2 * alen + 1]);
	d->dst_port =
		(unsigned)(block[2 * alen + 2] << 8 | block[2 * alen + 3]);
}

/* v2_addresses - the address block; false when the tail is too short */
static bool v2_addresses(const unsigned char *tail, size_t tail_len,
			 struct proxy_protocol_header *hdr)
{
	struct aiosmtpd_proxy_data *d = &hdr->data;
	size_t block = d->family == PROXY_AF_INET    ? 12
		       : d->family == PROXY_AF_INET6 ? 36
						     : 216;

	if (tail_len < block)
		return false;
	if (d->family == PROXY_AF_UNIX) {
		memcpy(hdr->src, tail, 108);
		memcpy(hdr->dst, tail + 108, 108);
		hdr->src[108] = hdr->dst[108] = '\0';
	} else {
		v2_inet(tail, d->family == PROXY_AF_INET ? 4 : 16, hdr);
	}
	d->src_addr = hdr->src;
	d->dst_addr = hdr->dst;
	d->rest = tail + block;
	d->rest_len = tail_len - block;
	if (d->rest_len > 0)
		hdr->tlv_start = V2_FIXED + block;
	return true;
}

/* parse_v2 - the fixed part says how long the header is */
static enum proxy_protocol_result parse_v2(const unsigned char *buf, size_t len,
					   struct proxy_protocol_header *hdr,
					   size_t *need_r, const char **error_r)
{
	struct proxy_protocol_header h;
	size_t total;

	if (memcmp(buf, v2_signature, len < 12 ? len : 12) != 0) {
		*error_r = "PROXYv2 wrong signature";
		return PROXY_PROTOCOL_INVALID;
	}
	if (len < V2_FIXED) {
		*need_r = V2_FIXED;
		return PROXY_PROTOCOL_MORE;
	}
	memset(&h, 0, sizeof(h));
	h.data.version = 2;
	if ((*error_r = v2_fixed(buf, &h.data)) != NULL)
		return PROXY_PROTOCOL_INVALID;
	total = V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);
	if (len < total) {
		*need_r = total;
		return PROXY_PROTOCOL_MORE;
	}
	h.length = total;
	h.data.rest = buf + V2_FIXED;
	h.data.rest_len = total - V2_FIXED;
	/* UNSPEC in either nibble: the tail is kept as it is. */
	if (h.data.family != PROXY_AF_UNSPEC &&
	    h.data.protocol != PROXY_PROTO_UNSPEC &&
	    !v2_addresses(buf + V2_FIXED, total - V2_FIXED, &h)) {
		*error_r = "PROXYv2 truncated address";
		return PROXY_PROTOCOL_INVALID;
	}
	*hdr = h;
	return PROXY_PROTOCOL_OK;
}

/* starts_like - do the first len octets (up to sig_len) match sig? */
static bool starts_like(const unsigned char *buf, size_t len,
			const unsigned char *sig, size_t sig_len)
{
	return memcmp(buf, sig, len < sig_len ? len : sig_len) == 0;
}

/* fix_pointers - the copy in *hdr must point into itself, not into the
 * local the parsers filled */
static void fix_pointers(struct proxy_protocol_header *hdr)
{
	struct aiosmtpd_proxy_data *d = &hdr->data;

	if (d->src_addr != NULL)
		d->src_addr = hdr->src;
	if (d->dst_addr != NULL)
		d->dst_addr = hdr->dst;
}

enum proxy_protocol_result
proxy_protocol_parse(const unsigned char *buf, size_t len,
		     struct proxy_protocol_header *hdr, size_t *need_r,
		     const char **error_r)
{
	enum proxy_protocol_result r;

	/* aiosmtpd reads five octets and dispatches on them; fewer that
	 * could still become either signature are simply not enough. */
	if (starts_like(buf, len, v1_signature, sizeof(v1_signature))) {
		if (len < sizeof(v1_signature)) {
			*need_r = V2_FIXED;
			return PROXY_PROTOCOL_MORE;
		}
		r = parse_v1(buf, len, hdr, need_r, error_r);
	} else if (starts_like(buf, len, v2_signature, 5)) {
		if (len < 5) {
			*need_r = V2_FIXED;
			return PROXY_PROTOCOL_MORE;
		}
		r = parse_v2(buf, len, hdr, need_r, error_r);
	} else {
		*error_r = "PROXY unrecognized signature";
		return PROXY_PROTOCOL_INVALID;
	}
	if (r == PROXY_PROTOCOL_OK) {
		fix_pointers(hdr);
		hdr->data.whole_raw = buf;
		hdr->data.whole_len = hdr->length;
	}
	return r;
}

bool proxy_protocol_names_client(const struct proxy_protocol_header *hdr)
{
	const struct aiosmtpd_proxy_data *d = &hdr->data;

	return d->command == 1 && d->src_addr != NULL &&
	       (d->family == PROXY_AF_INET || d->family == PROXY_AF_INET6);
}

/* --- TLVs ---------------------------------------------------------------- */

typedef void tlv_fn(void *ctx, unsigned type, const unsigned char *value,
		    size_t len);

/*
 * tlv_walk - call fn for each TLV of the area, and for the sub-TLVs of an
 * SSL TLV right after it (only at the top: an SSL TLV inside SSL is just
 * a TLV).  Returns false at the first TLV that does not fit.
 */
static bool tlv_walk(const unsigned char *p, size_t len, bool top, tlv_fn *fn,
		     void *ctx)
{
	size_t i = 0, vlen;

	while (i < len) {
		if (len - i < 3)
			return false;
		vlen = (size_t)p[i + 1] << 8 | p[i + 2];
		if (vlen > len - i - 3)
			return false;
		fn(ctx, p[i], p + i + 3, vlen);
		if (top && p[i] == AIOSMTPD_PP2_TYPE_SSL &&
		    (vlen < SSL_FIXED ||
		     !tlv_walk(p + i + 3 + SSL_FIXED, vlen - SSL_FIXED, false,
			       fn, ctx)))
			return false;
		i += 3 + vlen;
	}
	return true;
}

static void tlv_ignore(void *ctx, unsigned type, const unsigned char *value,
		       size_t len)
{
	(void)ctx, (void)type, (void)value, (void)len;
}

bool proxy_protocol_tlvs_valid(const unsigned char *tlvs, size_t len)
{
	return tlv_walk(tlvs, len, true, tlv_ignore, NULL);
}

struct tlv_search {
	unsigned type;
	const unsigned char *value;
	size_t len;
};

static void tlv_match(void *ctx, unsigned type, const unsigned char *value,
		      size_t len)
{
	struct tlv_search *ts = ctx;

	if (type == ts->type) {
		ts->value = value;
		ts->len = len;
	}
}

const unsigned char *proxy_protocol_tlv_find(const unsigned char *tlvs,
					     size_t len, unsigned type,
					     size_t *len_r)
{
	struct tlv_search ts = {.type = type};

	(void)tlv_walk(tlvs, len, true, tlv_match, &ts);
	if (ts.value != NULL)
		*len_r = ts.len;
	return ts.value;
}

const char *proxy_protocol_tlv_name(unsigned type)
{
	static const struct {
		unsigned type;
		const char *name;
	} names[] = {
		{0x01, "ALPN"},        {0x02, "AUTHORITY"},
		{0x03, "CRC32C"},      {0x04, "NOOP"},
		{0x05, "UNIQUE_ID"},   {0x20, "SSL"},
		{0x21, "SSL_VERSION"}, {0x22, "SSL_CN"},
		{0x23, "SSL_CIPHER"},  {0x24, "SSL_SIG_ALG"},
		{0x25, "SSL_KEY_ALG"}, {0x30, "NETNS"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].type == type)
			return names[i].name;
	}
	return NULL;
}

const unsigned char *aiosmtpd_proxy_tlv(const struct aiosmtpd_proxy_data *proxy,
					unsigned type, size_t *len_r)
{
	if (proxy == NULL || proxy->version != 2 ||
	    !proxy_protocol_tlvs_valid(proxy->rest, proxy->rest_len))
		return NULL;
	return proxy_protocol_tlv_find(proxy->rest, proxy->rest_len, type,
				       len_r);
}
