/*
 * record_parse.h - reading the files of the daemon's Record handler
 *
 * The format is written by handlers/record.c and documented in
 * aiosmtpd(8) under RECORD FORMAT: a first line "aiosmtpd-record 1",
 * "key value" lines, an empty line, then exactly "size" octets of
 * content.  Keys this reader does not know are skipped, so the writer
 * may add some without a new version.
 */
#ifndef AIOSMTPD_CONTROLLER_RECORD_PARSE_H
#define AIOSMTPD_CONTROLLER_RECORD_PARSE_H

#include <stddef.h>

#include "aiosmtpd/controller.h"

/*
 * aiosmtpd_record_parse - a message from the bytes of its file
 *
 * Takes over data (malloc'd, len octets followed by one more that may be
 * overwritten), which the message points into, and file (copied).
 * Returns the message, or NULL with *error_r set and data freed.
 */
struct aiosmtpd_message *aiosmtpd_record_parse(char *data, size_t len,
					       const char *file,
					       struct aiosmtpd_error *error_r);

/*
 * aiosmtpd_record_read - read and parse the file at path
 *
 * NULL with *error_r set when it cannot be read or parsed; errno is
 * ENOENT when the file is not there (any more).
 */
struct aiosmtpd_message *aiosmtpd_record_read(const char *path,
					      struct aiosmtpd_error *error_r);

/* aiosmtpd_record_free - free a message of _parse() or _read() */
void aiosmtpd_record_free(struct aiosmtpd_message **message);

#endif
