/*
 * fuzz-smtp_addr.c - RFC 5321 paths, parsed as aiosmtpd parses them
 *
 * The input is the text after "FROM:", already stripped or not: the
 * parser must take anything.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "smtp_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *address = NULL;
	size_t rest = 0;
	enum smtp_addr_result r;

	r = smtp_addr_parse((const char *)data, size, &address, &rest);
	if (r == SMTP_ADDR_OK) {
		FUZZ_CHECK(address != NULL);
		FUZZ_CHECK(rest <= size);
		FUZZ_CHECK(memchr(address, '\0', strlen(address) + 1) ==
			   address + strlen(address));
		free(address);
	} else {
		FUZZ_CHECK(address == NULL);
	}
	return 0;
}
