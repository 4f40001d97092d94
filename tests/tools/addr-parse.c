/*
 * addr-parse.c - run smtp_addr_parse() over hex-encoded arguments
 *
 * Bridge for the differential test against aiosmtpd: each line on stdin is
 * one argument, hex-encoded so that any byte can be passed; each gets one
 * line on stdout:
 *
 *	OK <hex of address, "-" if empty> <rest offset>
 *	EMPTY | MALFORMED | INDEX | LIST_INDEX | ATTRIBUTE
 *
 * A line that is not valid hex is a usage error and ends the run with
 * exit status 2.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "smtp_addr.h"

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* unhex - decode hex text in place; returns the length or -1 */
static long unhex(char *s, size_t n)
{
	size_t i;
	int hi, lo;

	if (n % 2 != 0)
		return -1;
	for (i = 0; i < n; i += 2) {
		hi = hex_value(s[i]);
		lo = hex_value(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		s[i / 2] = (char)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

static void print_ok(const char *address, size_t rest)
{
	size_t i;

	fputs("OK ", stdout);
	if (address[0] == '\0')
		putchar('-');
	for (i = 0; address[i] != '\0'; i++)
		printf("%02x", (unsigned char)address[i]);
	printf(" %zu\n", rest);
}

static void parse_one(const char *arg, size_t len)
{
	static const char *const names[] = {
	        [SMTP_ADDR_EMPTY] = "EMPTY",
	        [SMTP_ADDR_MALFORMED] = "MALFORMED",
	        [SMTP_ADDR_INDEX_ERROR] = "INDEX",
	        [SMTP_ADDR_LIST_INDEX_ERROR] = "LIST_INDEX",
	        [SMTP_ADDR_ATTRIBUTE_ERROR] = "ATTRIBUTE",
	};
	enum smtp_addr_result res;
	char *address = NULL;
	size_t rest = 0;

	res = smtp_addr_parse(arg, len, &address, &rest);
	if (res == SMTP_ADDR_OK) {
		print_ok(address, rest);
		free(address);
	} else {
		ASSERT(res < N_ELEMENTS(names) && names[res] != NULL);
		puts(names[res]);
	}
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long len;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		len = unhex(line, (size_t)n);
		if (len < 0) {
			fprintf(stderr, "addr-parse: not hex: %.*s\n", (int)n,
			        line);
			free(line);
			return 2;
		}
		parse_one(line, (size_t)len);
	}
	free(line);
	return fflush(stdout) == 0 ? 0 : 1;
}
