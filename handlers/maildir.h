/*
 * maildir.h - Maildir delivery, stored the way aiosmtpd's Mailbox stores
 *
 * aiosmtpd's handlers.Mailbox parses each message with Python's email
 * package, appends X-Peer, X-MailFrom and X-RcptTo after the headers and
 * writes it back through mailbox.Maildir: LF line ends, an mbox "From "
 * line dropped, header lines re-emitted as "Name: value".  The renderer
 * here produces the same bytes in one streaming pass over the content.
 *
 * Delivery is durable before it reports success: exclusive create in
 * tmp/, write, fsync, rename into new/, fsync of new/.  Only then may the
 * session answer 250.  The Mailbox handler writes into an unnamed file
 * in tmp/ while the message arrives, through a spool tap, so the content
 * is written once and an unfinished message leaves nothing behind.
 */
#ifndef AIOSMTPD_MAILDIR_H
#define AIOSMTPD_MAILDIR_H

#include <stddef.h>

#include "aiosmtpd/handler.h"
#include "spool.h"

/* maildir_create - make dir with tmp, new and cur (mode 0700), and any
 * missing parents; 0, or -1 with *error_r set (a static string) */
int maildir_create(const char *dir, const char **error_r);

typedef int maildir_out_fn(void *ctx, const char *data, size_t len);

/*
 * maildir_render - the file content for a message
 *
 * Reads envelope->content from its start and passes the rendered bytes to
 * out in pieces.  Returns 0, or -1 when reading the content or a call of
 * out failed (out returns non-zero to fail).
 */
int maildir_render(const struct aiosmtpd_session *session,
		   const struct aiosmtpd_envelope *envelope,
		   maildir_out_fn *out, void *ctx);

/* maildir_writer_fn - write a message's file content through out */
typedef int maildir_writer_fn(void *ctx, maildir_out_fn *out, void *out_ctx);

/*
 * maildir_store - store one message in dir/new, durably
 *
 * Exclusive create in dir/tmp under a new unique name, writer, fsync,
 * close, link into dir/new (rename where links are refused), fsync of
 * dir/new.  Returns 0 with *path_r the new file's path (allocated), or -1
 * with errno set, the failing step logged under log_id and no file left
 * behind.
 */
int maildir_store(const char *dir, const char *log_id,
		  maildir_writer_fn *writer, void *ctx, char **path_r);

/*
 * maildir_store_named - maildir_store() under a name the caller chose
 *
 * The name must be unique in dir: when tmp/NAME exists already, nothing is
 * written and -1 is returned with errno EEXIST.
 */
int maildir_store_named(const char *dir, const char *name,
			const char *log_id, maildir_writer_fn *writer,
			void *ctx, char **path_r);

/*
 * maildir_store_link - store a message already delivered elsewhere in
 * dir/new too, as a hard link to existing (a file in another Maildir)
 *
 * Returns 0 with *path_r set, or -1 with errno set; EXDEV means another
 * file system, where the caller writes a copy instead.
 */
int maildir_store_link(const char *dir, const char *log_id,
		       const char *existing, char **path_r);

/*
 * maildir_deliver - store one message in dir/new
 *
 * On success returns 0 and, when name_r is not NULL, the new file's name
 * (allocated).  On failure returns -1 with errno set, leaves no file
 * behind in tmp/ or new/, and logs the failing step.
 */
int maildir_deliver(const char *dir, const struct aiosmtpd_session *session,
		    const struct aiosmtpd_envelope *envelope, char **name_r);

/*
 * maildir_open_unnamed - an unnamed file (O_TMPFILE) in dir/tmp to write
 * a message into; it vanishes with its last descriptor unless linked.
 * -1 where the file system or a missing /proc cannot do this.
 */
int maildir_open_unnamed(const char *dir);
/*
 * maildir_commit_unnamed - the written unnamed file fd made durable: fsync,
 * link as dir/new/NAME under a new unique name, fsync of dir/new.
 * Returns 0 with *path_r set (allocated), or -1 with errno set and the
 * failing step logged under log_id.  fd stays open.
 */
int maildir_commit_unnamed(const char *dir, int fd, const char *log_id,
			   char **path_r);
/* maildir_log_failure - "<log_id> Maildir <step> of a message in
 * <dir>/tmp failed: <errno>", the line for a failed step */
void maildir_log_failure(const char *log_id, const char *step,
			 const char *dir);
/* maildir_write - all of data to fd; 0, or -1 with errno set */
int maildir_write(int fd, const char *data, size_t len);

/*
 * maildir_mailbox_tap - the Mailbox handler's spool tap (see spool.h):
 * the message is rendered into an unnamed file (O_TMPFILE) in tmp/ while
 * it arrives, and handle_DATA only finishes it: fsync, link into new/
 * under a new unique name, fsync of new/.  A message that does not reach
 * handle_DATA, even in a worker that is killed, leaves no file behind.
 * Its context is the handler's.
 */
extern const struct spool_tap maildir_mailbox_tap;

#endif
