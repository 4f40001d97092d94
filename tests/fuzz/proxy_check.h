/*
 * proxy_check.h - the properties both PROXY fuzz targets check
 *
 * The daemon takes octets off the socket on the parser's word, so the
 * parser must be consistent as the input grows: MORE asks for more than
 * it has; once INVALID, it stays INVALID; once OK with a length, it stays
 * OK with the same header whatever follows.  Every proper prefix of a
 * header is MORE (never over-read).  TLV lookups stay inside the header.
 */
#ifndef AIOSMTPD_FUZZ_PROXY_CHECK_H
#define AIOSMTPD_FUZZ_PROXY_CHECK_H

#include <string.h>

#include "fuzz.h"
#include "proxy_protocol.h"

/* same_header - two parses of the same header agree */
static void same_header(const struct proxy_protocol_header *a,
			const struct proxy_protocol_header *b)
{
	const struct aiosmtpd_proxy_data *x = &a->data, *y = &b->data;

	FUZZ_CHECK(a->length == b->length && a->tlv_start == b->tlv_start);
	FUZZ_CHECK(x->version == y->version && x->command == y->command &&
		   x->family == y->family && x->protocol == y->protocol);
	FUZZ_CHECK(x->src_port == y->src_port && x->dst_port == y->dst_port);
	FUZZ_CHECK((x->src_addr == NULL) == (y->src_addr == NULL));
	if (x->src_addr != NULL)
		FUZZ_CHECK(strcmp(x->src_addr, y->src_addr) == 0 &&
			   strcmp(x->dst_addr, y->dst_addr) == 0);
	FUZZ_CHECK(x->rest_len == y->rest_len);
	if (x->rest_len > 0)
		FUZZ_CHECK(memcmp(x->rest, y->rest, x->rest_len) == 0);
}

/* check_tlvs - every lookup points inside the area */
static void check_tlvs(const struct proxy_protocol_header *h)
{
	const struct aiosmtpd_proxy_data *d = &h->data;
	const unsigned char *v;
	size_t len;

	(void)proxy_protocol_tlvs_valid(d->rest, d->rest_len);
	for (unsigned type = 0; type < 0x100; type += 1 + (type >= 0x31) * 7) {
		len = 0;
		v = proxy_protocol_tlv_find(d->rest, d->rest_len, type, &len);
		if (v != NULL)
			FUZZ_CHECK(v >= d->rest &&
				   v + len <= d->rest + d->rest_len);
		(void)proxy_protocol_tlv_name(type);
		(void)aiosmtpd_proxy_tlv(d, type, &len);
	}
}

/* check_header - the whole of buf, then its prefixes (up to max_prefixes
 * of them, and the one just short of the header) */
static void check_header(const unsigned char *buf, size_t len,
			 size_t max_prefixes)
{
	struct proxy_protocol_header h, p;
	const char *error = NULL;
	size_t need = 0, k;
	enum proxy_protocol_result r, rp;

	r = proxy_protocol_parse(buf, len, &h, &need, &error);
	if (r == PROXY_PROTOCOL_MORE)
		FUZZ_CHECK(need > len && need <= PROXY_PROTOCOL_V2_MAX);
	if (r == PROXY_PROTOCOL_INVALID)
		FUZZ_CHECK(error != NULL && strncmp(error, "PROXY", 5) == 0);
	if (r == PROXY_PROTOCOL_OK) {
		FUZZ_CHECK(h.length >= PROXY_PROTOCOL_MIN && h.length <= len);
		FUZZ_CHECK(h.data.whole_raw == buf &&
			   h.data.whole_len == h.length);
		if (h.data.version == 1)
			FUZZ_CHECK(h.length <= PROXY_PROTOCOL_V1_MAX);
		if (h.data.rest_len > 0)
			FUZZ_CHECK(h.data.rest >= buf &&
				   h.data.rest + h.data.rest_len <=
					   buf + h.length);
		(void)proxy_protocol_names_client(&h);
		check_tlvs(&h);
		/* What follows the header changes nothing. */
		FUZZ_CHECK(proxy_protocol_parse(buf, h.length, &p, &need,
						&error) == PROXY_PROTOCOL_OK);
		same_header(&h, &p);
	}
	for (k = 0; k < len && k < max_prefixes; k++) {
		rp = proxy_protocol_parse(buf, k, &p, &need, &error);
		if (r == PROXY_PROTOCOL_OK && k < h.length)
			FUZZ_CHECK(rp == PROXY_PROTOCOL_MORE);
		if (rp == PROXY_PROTOCOL_INVALID)
			FUZZ_CHECK(r == PROXY_PROTOCOL_INVALID);
		if (rp == PROXY_PROTOCOL_OK) {
			FUZZ_CHECK(r == PROXY_PROTOCOL_OK);
			same_header(&h, &p);
		}
	}
	if (r == PROXY_PROTOCOL_OK && h.length > 0)
		FUZZ_CHECK(proxy_protocol_parse(buf, h.length - 1, &p, &need,
						&error) == PROXY_PROTOCOL_MORE);
}

#endif
