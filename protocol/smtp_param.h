/*
 * smtp_param.h - ESMTP parameters of MAIL and RCPT, the aiosmtpd way
 *
 * aiosmtpd upper-cases the text after the path, splits it on white space
 * (these words are the envelope's mail_options/rcpt_options), then reads
 * each word as KEY or KEY=VALUE: the key must be alphanumeric and a value,
 * when '=' is present, must not be empty, or the whole command is a syntax
 * error.  A repeated key keeps its last value.
 */
#ifndef AIOSMTPD_SMTP_PARAM_H
#define AIOSMTPD_SMTP_PARAM_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_param {
	char *key;
	char *value; /* NULL for a bare KEY; points into the word */
	bool used;   /* set by smtp_params_take() */
};

struct smtp_params {
	char **words; /* upper-cased words, in order (the options list) */
	size_t n_words;
	struct smtp_param *params; /* one per word; repeated keys shadowed */
	size_t n_params;
};

/*
 * smtp_params_parse - split and check text (may be empty)
 *
 * Returns 0, or -1 for a syntax error.  Either way *p must be released
 * with smtp_params_free(); on success the words may be moved out first
 * with smtp_params_steal_words().
 */
int smtp_params_parse(const char *text, size_t len, bool utf8,
		      struct smtp_params *p);
void smtp_params_free(struct smtp_params *p);

/*
 * smtp_params_take - like dict.pop(key): the last value given for key
 *
 * Returns false when key is absent.  Otherwise *value_r is the value or
 * NULL for a bare KEY, and every occurrence of key is marked used.
 */
bool smtp_params_take(struct smtp_params *p, const char *key,
		      const char **value_r);
/* smtp_params_left - number of distinct keys not taken */
size_t smtp_params_left(const struct smtp_params *p);
/* smtp_params_steal_words - hand the words array to the caller */
char **smtp_params_steal_words(struct smtp_params *p, size_t *n_r);

#endif
