/*
 * fuzz-proxy_v2.c - PROXY v2 headers and their TLVs
 *
 * The input follows the 12-octet signature: version and command, family
 * and protocol, length, addresses, TLVs.  A first octet of 0 feeds it
 * raw instead.
 */
#include "config.h"

#include <string.h>

#include "alloc.h"
#include "proxy_check.h"

static const unsigned char signature[12] = "\r\n\r\n\0\r\nQUIT\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf;

	if (size > 0 && data[0] == 0) {
		check_header(data + 1, size - 1, 64);
		return 0;
	}
	buf = xmalloc(size + 12);
	memcpy(buf, signature, 12);
	memcpy(buf + 12, data, size);
	check_header(buf, size + 12, 64);
	free(buf);
	return 0;
}
