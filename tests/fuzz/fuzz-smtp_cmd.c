/*
 * fuzz-smtp_cmd.c - command line splitting
 *
 * The first octet picks SMTPUTF8; the rest is one line without its LF.
 */
#include "config.h"

#include <string.h>

#include "alloc.h"
#include "fuzz.h"
#include "smtp_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_cmd cmd;
	const char *p;
	size_t len;
	bool utf8;
	char *line;

	if (size < 1)
		return 0;
	utf8 = data[0] & 1;
	len = size - 1;
	line = xmemdup(data + 1, len);
	if (smtp_cmd_parse(line, len, utf8, &cmd) == SMTP_CMD_OK) {
		FUZZ_CHECK(cmd.line_len <= len);
		FUZZ_CHECK(cmd.verb >= line &&
			   cmd.verb + cmd.verb_len <= line + len);
		for (size_t i = 0; i < cmd.verb_len; i++)
			FUZZ_CHECK(cmd.verb[i] != ' ' &&
				   !(cmd.verb[i] >= 'a' && cmd.verb[i] <= 'z'));
		if (cmd.arg != NULL)
			FUZZ_CHECK(cmd.arg > cmd.verb &&
				   cmd.arg + cmd.arg_len <= line + len);
	}
	free(line);

	/* Python's strip on the raw octets: the span stays inside. */
	p = (const char *)data + 1;
	len = size - 1;
	smtp_pystrip(&p, &len, utf8);
	FUZZ_CHECK(p >= (const char *)data + 1 &&
		   p + len <= (const char *)data + size);
	if (len > 0)
		FUZZ_CHECK(smtp_pyspace_len(p, len, utf8) == 0);
	return 0;
}
