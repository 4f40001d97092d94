/*
 * smtp_param.c - ESMTP parameter parsing
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "smtp_cmd.h"
#include "smtp_param.h"

static bool is_alnum_word(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* split_words - str.upper().split(): words between Python white space */
static void split_words(const char *text, size_t len, bool utf8,
			struct smtp_params *p)
{
	size_t cap = 4, i = 0, n;

	p->words = xmalloc(cap * sizeof(*p->words));
	while (i < len) {
		size_t start;

		if ((n = smtp_pyspace_len(text + i, len - i, utf8)) > 0) {
			i += n;
			continue;
		}
		start = i;
		while (i < len &&
		       smtp_pyspace_len(text + i, len - i, utf8) == 0)
			i++;
		if (p->n_words == cap) {
			cap *= 2;
			p->words = xrealloc(p->words, cap * sizeof(*p->words));
		}
		/* XXX Python upper-cases non-ASCII letters too when SMTPUTF8
		 * is on ("é" becomes "É"); only ASCII is upper-cased here,
		 * which changes option words no real client sends. */
		p->words[p->n_words] = xmemdup(text + start, i - start);
		smtp_upper_ascii(p->words[p->n_words], i - start);
		p->n_words++;
	}
}

int smtp_params_parse(const char *text, size_t len, bool utf8,
		      struct smtp_params *p)
{
	memset(p, 0, sizeof(*p));
	split_words(text, len, utf8, p);
	p->params = xcalloc(p->n_words, sizeof(*p->params));
	for (size_t i = 0; i < p->n_words; i++) {
		char *word = p->words[i];
		char *eq = strchr(word, '=');
		size_t key_len = eq != NULL ? (size_t)(eq - word) : strlen(word);

		if (!is_alnum_word(word, key_len))
			return -1;
		if (eq != NULL && eq[1] == '\0')
			return -1;
		p->params[i].key = xmemdup(word, key_len);
		p->params[i].value = eq != NULL ? eq + 1 : NULL;
	}
	p->n_params = p->n_words;
	return 0;
}

void smtp_params_free(struct smtp_params *p)
{
	for (size_t i = 0; i < p->n_words; i++) {
		if (p->params != NULL)
			free(p->params[i].key);
		if (p->words != NULL)
			free(p->words[i]);
	}
	free(p->words);
	free(p->params);
	memset(p, 0, sizeof(*p));
}

bool smtp_params_take(struct smtp_params *p, const char *key,
		      const char **value_r)
{
	bool found = false;

	for (size_t i = 0; i < p->n_params; i++) {
		if (p->params[i].used || strcmp(p->params[i].key, key) != 0)
			continue;
		p->params[i].used = true;
		*value_r = p->params[i].value;
		found = true;
	}
	return found;
}

size_t smtp_params_left(const struct smtp_params *p)
{
	size_t left = 0;

	for (size_t i = 0; i < p->n_params; i++) {
		if (!p->params[i].used)
			left++;
	}
	return left;
}

char **smtp_params_steal_words(struct smtp_params *p, size_t *n_r)
{
	char **words = p->words;

	*n_r = p->n_words;
	for (size_t i = 0; i < p->n_params; i++)
		free(p->params[i].key);
	free(p->params);
	memset(p, 0, sizeof(*p));
	return words;
}
