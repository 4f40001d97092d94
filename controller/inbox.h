/*
 * inbox.h - the messages of a Record Maildir, in the order they arrived
 *
 * The daemon's Record handler puts each message into DIR/new as one file
 * whose name sorts by arrival time.  An inbox reads the files it has not
 * seen yet at each refresh and appends them, so a message keeps its
 * index until the inbox is cleared.
 */
#ifndef AIOSMTPD_CONTROLLER_INBOX_H
#define AIOSMTPD_CONTROLLER_INBOX_H

#include <stddef.h>
#include <sys/types.h>

#include "aiosmtpd/controller.h"

struct aiosmtpd_inbox;

/* aiosmtpd_inbox_new - an empty inbox over the Maildir dir (copied);
 * NULL when out of memory */
struct aiosmtpd_inbox *aiosmtpd_inbox_new(const char *dir);
void aiosmtpd_inbox_free(struct aiosmtpd_inbox **inbox);

/*
 * aiosmtpd_inbox_refresh - read the files that arrived since the last
 * refresh; returns how many messages the inbox holds, or -1 with
 * *error_r set (the messages read before stay)
 */
ssize_t aiosmtpd_inbox_refresh(struct aiosmtpd_inbox *inbox,
			       struct aiosmtpd_error *error_r);

/* aiosmtpd_inbox_count - how many messages the last refresh left */
size_t aiosmtpd_inbox_count(const struct aiosmtpd_inbox *inbox);

/* aiosmtpd_inbox_get - message i, NULL past the end */
const struct aiosmtpd_message *
aiosmtpd_inbox_get(const struct aiosmtpd_inbox *inbox, size_t i);

/*
 * aiosmtpd_inbox_clear - delete every file in DIR/new, read or not, and
 * forget every message; 0, or -1 with *error_r set
 */
int aiosmtpd_inbox_clear(struct aiosmtpd_inbox *inbox,
			 struct aiosmtpd_error *error_r);

#endif
