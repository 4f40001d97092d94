/*
 * debugging.c - the Debugging handler: print each message
 *
 * Prints what aiosmtpd's handlers.Debugging prints, byte for byte: a
 * banner, the mail options when there are any, the content split into
 * lines with an X-Peer line before the first empty one, and a closing
 * banner.  Several workers share the output, so a whole message is
 * written under a lock (fcntl, which is per process, unlike flock on a
 * shared descriptor) and nothing of two messages ever interleaves.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "handler.h"
#include "log.h"
#include "pyfmt.h"
#include "spool.h"
#include "sbuf.h"

#define FLUSH_SIZE (64 * 1024)

struct debugging {
	int fd;	     /* stdout or stderr */
	int lock_fd; /* an anonymous file to take the output lock on */
};

/* print_state - one message being printed */
struct print_state {
	struct debugging *dbg;
	const struct aiosmtpd_session *session;
	struct sbuf out;
	bool in_headers;
	int error; /* errno of a failed write */
};

static void *debugging_init(int argc, char *const argv[],
			    const char **error_r)
{
	struct debugging *dbg;
	int fd = STDOUT_FILENO;

	if (argc > 1 || (argc == 1 && strcmp(argv[0], "stdout") != 0 &&
			 strcmp(argv[0], "stderr") != 0)) {
		*error_r = "Debugging usage: [stdout|stderr]";
		return NULL;
	}
	if (argc == 1 && strcmp(argv[0], "stderr") == 0)
		fd = STDERR_FILENO;
	dbg = xcalloc(1, sizeof(*dbg));
	dbg->fd = fd;
	dbg->lock_fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (dbg->lock_fd < 0)
		log_warning("Debugging: no output lock, messages from "
			    "concurrent sessions may interleave: "
			    "open(/tmp, O_TMPFILE) failed: %m");
	return dbg;
}

static void debugging_cleanup(void *ctx)
{
	struct debugging *dbg = ctx;

	if (dbg->lock_fd >= 0)
		close(dbg->lock_fd);
	free(dbg);
}

static int output_lock(struct debugging *dbg, short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET};

	if (dbg->lock_fd < 0)
		return 0;
	while (fcntl(dbg->lock_fd, F_SETLKW, &fl) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* flush - write what is formatted so far */
static void flush(struct print_state *ps)
{
	const char *p = ps->out.data;
	size_t left = ps->out.len;

	while (left > 0 && ps->error == 0) {
		ssize_t n = write(ps->dbg->fd, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ps->error = errno;
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	sbuf_reset(&ps->out);
}

static int print_line(void *ctx, const char *line, size_t len)
{
	struct print_state *ps = ctx;

	if (ps->in_headers && len == 0) {
		sbuf_puts(&ps->out, "X-Peer: ");
		pyfmt_peer(&ps->out, ps->session->peer_family,
			   ps->session->peer_addr, ps->session->peer_port);
		sbuf_putc(&ps->out, '\n');
		ps->in_headers = false;
	}
	if (ps->session->decode_data)
		sbuf_append(&ps->out, line, len);
	else
		pyfmt_decode_replace(&ps->out, line, len);
	sbuf_putc(&ps->out, '\n');
	if (ps->out.len >= FLUSH_SIZE)
		flush(ps);
	return 0;
}

/* print_content - the message, line by line, as Python's splitlines() */
static int print_content(struct print_state *ps,
			 struct aiosmtpd_envelope *envelope)
{
	struct spool *spool = spool_from_content(envelope->content);
	struct pyfmt_lines lines;
	const char *data;
	size_t len;
	int ret;

	pyfmt_lines_init(&lines, ps->session->decode_data);
	while ((ret = spool_next(spool, &data, &len)) > 0)
		(void)pyfmt_lines_feed(&lines, data, len, print_line, ps);
	if (ret == 0)
		(void)pyfmt_lines_finish(&lines, print_line, ps);
	pyfmt_lines_free(&lines);
	return ret;
}

static const char *debugging_data(void *ctx, struct aiosmtpd_session *session,
				  struct aiosmtpd_envelope *envelope)
{
	struct print_state ps = {
		.dbg = ctx, .session = session, .in_headers = true};
	int ret;

	sbuf_init(&ps.out, FLUSH_SIZE + 4096);
	sbuf_puts(&ps.out, "---------- MESSAGE FOLLOWS ----------\n");
	if (envelope->n_mail_options > 0) {
		sbuf_puts(&ps.out, "mail options: ");
		pyfmt_repr_list(&ps.out, envelope->mail_options,
				envelope->n_mail_options);
		sbuf_puts(&ps.out, "\n\n");
	}
	if (output_lock(ps.dbg, F_WRLCK) < 0)
		log_warning("Debugging: cannot take the output lock: %m");
	ret = print_content(&ps, envelope);
	sbuf_puts(&ps.out, "------------ END MESSAGE ------------\n");
	flush(&ps);
	(void)output_lock(ps.dbg, F_UNLCK);
	sbuf_free(&ps.out);
	if (ret < 0 || ps.error != 0) {
		errno = ret < 0 ? errno : ps.error;
		log_error("%s Debugging: cannot print the message: %m",
			  session->id);
		return "451 4.3.0 Error: local error in processing";
	}
	return NULL;
}

const struct aiosmtpd_handler handler_debugging = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
	.name = "Debugging",
	.init = debugging_init,
	.cleanup = debugging_cleanup,
	.handle_DATA = debugging_data,
};
