/*
 * fuzz-proxy_v1.c - PROXY v1 lines
 *
 * The input follows "PROXY" (so every input is a v1 line); a first octet
 * of 0 feeds it raw instead, which also reaches the signature checks.
 */
#include "config.h"

#include <string.h>

#include "alloc.h"
#include "proxy_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf;

	if (size > 0 && data[0] == 0) {
		check_header(data + 1, size - 1, 200);
		return 0;
	}
	buf = xmalloc(size + 5);
	memcpy(buf, "PROXY", 5);
	memcpy(buf + 5, data, size);
	check_header(buf, size + 5, 200);
	free(buf);
	return 0;
}
