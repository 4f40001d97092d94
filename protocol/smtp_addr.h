/*
 * smtp_addr.h - RFC 5321 paths, parsed as leniently as aiosmtpd parses them
 *
 * aiosmtpd hands the text after "FROM:"/"TO:" (and the VRFY argument) to
 * Python's email._header_value_parser: get_angle_addr() when the text starts
 * with '<' after leading white space, get_addr_spec() otherwise.  The address
 * it keeps is the parse tree's addr_spec property; whatever the parser did
 * not consume is the ESMTP parameter text.  This module reproduces that
 * parser, including its leniency ("<anne@example.com" without '>', obsolete
 * routes, comments, quoted local parts, RFC 2047 encoded words) and the
 * inputs where Python raises IndexError instead of HeaderParseError, which
 * aiosmtpd turns into a different reply.
 *
 * The input is the argument as aiosmtpd sees it: bytes that are ASCII, or
 * UTF-8 when SMTPUTF8 is enabled (invalid UTF-8 bytes count as one
 * character each, as surrogateescape decoding makes them).  No I/O.
 */
#ifndef AIOSMTPD_SMTP_ADDR_H
#define AIOSMTPD_SMTP_ADDR_H

#include <stddef.h>

enum smtp_addr_result {
	/* Parsed: *address_r and *rest_r are set. */
	SMTP_ADDR_OK,
	/* Empty argument: aiosmtpd's _getaddr() returns ('', ''). */
	SMTP_ADDR_EMPTY,
	/* Python raised HeaderParseError: "553 5.1.3 Error: malformed
	 * address" (or "502 Could not VRFY ...").  Also returned for the
	 * two results this interface cannot carry: an address containing
	 * NUL, and a rest that is not a suffix of arg (an encoded word in
	 * the local part decoded to text the parser stopped in). */
	SMTP_ADDR_MALFORMED,
	/* Python raised IndexError (it indexed an empty string, e.g. for
	 * "<" or "a@"): aiosmtpd answers
	 * "500 Error: (IndexError) string index out of range". */
	SMTP_ADDR_INDEX_ERROR,
	/* Python raised IndexError on an empty token list (an encoded word
	 * decoding to nothing, e.g. "=?utf-8?q??=@b"): aiosmtpd answers
	 * "500 Error: (IndexError) list index out of range". */
	SMTP_ADDR_LIST_INDEX_ERROR,
	/* Python raised AttributeError on the defect it puts into an
	 * unterminated domain literal ("<a@[1.2.3.4"): aiosmtpd answers
	 * "500 Error: (AttributeError) 'InvalidHeaderDefect' object has no
	 * attribute 'value'". */
	SMTP_ADDR_ATTRIBUTE_ERROR,
};

/*
 * smtp_addr_parse - parse one path argument like aiosmtpd's _getaddr()
 *
 * arg/len is the text after the keyword, already stripped of surrounding
 * white space by the caller as aiosmtpd does.  On SMTP_ADDR_OK, *address_r
 * is a newly allocated NUL-terminated string that the caller frees (the
 * addr_spec: "<>" for an empty path, local parts re-quoted where Python
 * re-quotes them, encoded words decoded), and *rest_r is the offset in arg
 * where the unparsed remainder starts.  Nothing is allocated otherwise.
 */
enum smtp_addr_result smtp_addr_parse(const char *arg, size_t len,
				      char **address_r, size_t *rest_r);

#endif
