/*
 * smtp_cmd.c - command line splitting
 */
#include "config.h"

#include <string.h>

#include "smtp_cmd.h"

/* bytes.strip() without arguments removes these, and only these. */
static bool is_bytes_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool all_ascii(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)p[i] >= 0x80)
			return false;
	}
	return true;
}

void smtp_upper_ascii(char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] >= 'a' && p[i] <= 'z')
			p[i] = (char)(p[i] - 'a' + 'A');
	}
}

enum smtp_cmd_result smtp_cmd_parse(char *line, size_t len, bool utf8,
				    struct smtp_cmd *cmd)
{
	char *space, *arg;
	size_t arg_len;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	memset(cmd, 0, sizeof(*cmd));
	cmd->line_len = len;
	if (len == 0)
		return SMTP_CMD_EMPTY;

	space = memchr(line, ' ', len);
	cmd->verb = line;
	cmd->verb_len = space != NULL ? (size_t)(space - line) : len;
	if (!all_ascii(line, cmd->verb_len))
		return SMTP_CMD_BAD_VERB;
	smtp_upper_ascii(line, cmd->verb_len);
	if (space == NULL) {
		line[len] = '\0';
		return SMTP_CMD_OK;
	}

	/* aiosmtpd tests the raw argument for emptiness, then strips it:
	 * "QUIT " has no argument, "QUIT  " an empty one; both are falsy
	 * there, so both are "no argument" here. */
	*space = '\0';
	arg = space + 1;
	arg_len = len - cmd->verb_len - 1;
	while (arg_len > 0 && is_bytes_space((unsigned char)arg[0])) {
		arg++;
		arg_len--;
	}
	while (arg_len > 0 && is_bytes_space((unsigned char)arg[arg_len - 1]))
		arg_len--;
	if (!utf8 && !all_ascii(arg, arg_len))
		return SMTP_CMD_NOT_ASCII;
	arg[arg_len] = '\0';
	if (arg_len > 0) {
		cmd->arg = arg;
		cmd->arg_len = arg_len;
	}
	return SMTP_CMD_OK;
}

/* utf8_space_len - U+0085 and up, in UTF-8, that Python calls white space */
static size_t utf8_space_len(const unsigned char *p, size_t len)
{
	if (len >= 2 && p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0))
		return 2;
	if (len < 3)
		return 0;
	if (p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80) /* U+1680 */
		return 3;
	if (p[0] == 0xe2 && p[1] == 0x80 &&
	    (p[2] <= 0x8a || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf) &&
	    p[2] >= 0x80)
		return 3; /* U+2000-200A, U+2028, U+2029, U+202F */
	if (p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f) /* U+205F */
		return 3;
	if (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80) /* U+3000 */
		return 3;
	return 0;
}

size_t smtp_pyspace_len(const char *p, size_t len, bool utf8)
{
	unsigned char c;

	if (len == 0)
		return 0;
	c = (unsigned char)p[0];
	if ((c >= '\t' && c <= '\r') || (c >= 0x1c && c <= ' '))
		return 1;
	if (utf8 && c >= 0xc2)
		return utf8_space_len((const unsigned char *)p, len);
	return 0;
}

/* last_space_len - length of a white space character ending at p + len */
static size_t last_space_len(const char *p, size_t len, bool utf8)
{
	for (size_t n = 1; n <= 3 && n <= len; n++) {
		if (smtp_pyspace_len(p + len - n, n, utf8) == n)
			return n;
	}
	return 0;
}

void smtp_pystrip(const char **p, size_t *len, bool utf8)
{
	size_t n;

	while ((n = smtp_pyspace_len(*p, *len, utf8)) > 0) {
		*p += n;
		*len -= n;
	}
	while ((n = last_space_len(*p, *len, utf8)) > 0)
		*len -= n;
}
