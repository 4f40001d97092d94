/*
 * fuzz-smtp_param.c - ESMTP parameters after the path
 *
 * The first octet picks SMTPUTF8; the rest is the parameter text.  Every
 * parse is taken apart as cmd_mail does it.
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "smtp_param.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"BODY", "SMTPUTF8", "SIZE", "AUTH"};
	struct smtp_params p;
	const char *value;
	char **words;
	size_t n;

	if (size < 1)
		return 0;
	if (smtp_params_parse((const char *)data + 1, size - 1, data[0] & 1,
			      &p) == 0) {
		size_t left = smtp_params_left(&p);

		FUZZ_CHECK(p.n_params <= p.n_words);
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (smtp_params_take(&p, keys[i], &value))
				FUZZ_CHECK(smtp_params_left(&p) < left);
			left = smtp_params_left(&p);
		}
		words = smtp_params_steal_words(&p, &n);
		for (size_t i = 0; i < n; i++) {
			FUZZ_CHECK(words[i][0] != '\0');
			free(words[i]);
		}
		free(words);
	}
	smtp_params_free(&p);
	return 0;
}
