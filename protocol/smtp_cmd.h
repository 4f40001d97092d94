/*
 * smtp_cmd.h - splitting a command line into its verb and argument
 *
 * The rules are aiosmtpd's: trailing CRs and LFs are stripped; the verb is
 * the text before the first space (only a space separates, so "NOOP<TAB>x"
 * is the verb "NOOP<TAB>X"), upper-cased and ASCII; the argument is the rest
 * with surrounding ASCII white space removed, and must be ASCII unless
 * SMTPUTF8 is enabled.  Also here: Python's idea of white space, which the
 * argument parsers need because aiosmtpd strips and splits Python strings.
 */
#ifndef AIOSMTPD_SMTP_CMD_H
#define AIOSMTPD_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>

enum smtp_cmd_result {
	SMTP_CMD_OK,
	SMTP_CMD_EMPTY,	    /* "500 Error: bad syntax" */
	SMTP_CMD_BAD_VERB,  /* non-ASCII verb: "500 Error: bad syntax" */
	SMTP_CMD_NOT_ASCII, /* "500 Error: strict ASCII mode" */
};

struct smtp_cmd {
	const char *verb; /* upper-cased in place, NUL-terminated */
	size_t verb_len;
	const char *arg; /* NULL when there is none; NUL-terminated */
	size_t arg_len;
	size_t line_len; /* the stripped line, for the command size limit */
};

/*
 * smtp_cmd_parse - split line (len octets, no LF) in place
 *
 * The line is modified: the verb is upper-cased and NULs are written after
 * the verb and the argument, so line needs room for one more octet.
 */
enum smtp_cmd_result smtp_cmd_parse(char *line, size_t len, bool utf8,
				    struct smtp_cmd *cmd);

/*
 * smtp_pyspace_len - length of the Python white space character at p
 *
 * Python's str.isspace(): ASCII 9-13, 28-32 and, when utf8 is set, the
 * UTF-8 forms of U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
 * U+202F, U+205F and U+3000.  Returns 0 when p does not start with one.
 */
size_t smtp_pyspace_len(const char *p, size_t len, bool utf8);

/* smtp_pystrip - the span of p without Python white space at either end,
 * like str.strip() */
void smtp_pystrip(const char **p, size_t *len, bool utf8);

/* smtp_upper_ascii - upper-case a-z in place */
void smtp_upper_ascii(char *p, size_t len);

#endif
