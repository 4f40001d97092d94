/*
 * maildir.c - Maildir delivery in aiosmtpd's Mailbox format
 *
 * Rendering follows what Python's email parser and BytesGenerator do to a
 * message (compat32 policy, no header wrapping):
 *
 *   - lines split at CRLF, CR or LF and written with LF;
 *   - a first line "From ..." (an mbox envelope line) is dropped, as is a
 *     "From ..." line between headers, a header line with an empty name
 *     and a continuation line with no header before it;
 *   - the header block ends at an empty line (dropped) or at a line that
 *     is not a header (kept as the first body line);
 *   - each header is written as "Name: value", the value re-flowed the way
 *     email.header.Header.encode() re-flows it;
 *   - X-Peer, X-MailFrom and X-RcptTo are appended to the headers.
 *
 * The body is passed through with its line ends normalised.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "handler.h"
#include "log.h"
#include "maildir.h"
#include "pyfmt.h"
#include "spool.h"
#include "sbuf.h"

#define OUT_BLOCK (64 * 1024)

/* --- header values as Header.encode() writes them ------------------------ */

/* One (folding white space, text) pair of email.header._Accumulator. */
struct pair {
	const char *fws;
	size_t fws_len;
	const char *part;
	size_t part_len;
};

struct flow {
	struct pair *pairs; /* the current line */
	size_t n, cap;
	size_t initial;	     /* _Accumulator's initial size: "Name: " */
	struct sbuf lines; /* finished lines, joined by LF */
	bool have_lines;
};

static void flow_push(struct flow *f, const char *fws, size_t fws_len,
		      const char *part, size_t part_len)
{
	if (f->n == f->cap) {
		f->cap = f->cap == 0 ? 8 : f->cap * 2;
		f->pairs = xrealloc(f->pairs, f->cap * sizeof(*f->pairs));
	}
	f->pairs[f->n++] = (struct pair){fws, fws_len, part, part_len};
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool py_isspace(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* flow_feed - _ascii_split(): a line as pairs of a white space run and
 * the text that follows it */
static void flow_feed(struct flow *f, const char *t, size_t len)
{
	size_t i = 0, w, p;

	if (i < len && !is_wsp(t[i])) {
		while (i < len && !is_wsp(t[i]))
			i++;
		flow_push(f, t, 0, t, i);
	}
	while (i < len) {
		for (w = i; i < len && is_wsp(t[i]); i++)
			;
		for (p = i; i < len && !is_wsp(t[i]); i++)
			;
		flow_push(f, t + w, p - w, t + p, i - p);
	}
}

/* flow_newline - _ValueFormatter.newline(): finish the current line,
 * dropping a last pair of exactly one space and no text; a line of white
 * space only is added to the line before it */
static void flow_newline(struct flow *f)
{
	struct sbuf cur;
	bool only_ws;

	if (f->n > 0) {
		struct pair *last = &f->pairs[f->n - 1];

		if (last->fws_len == 1 && last->fws[0] == ' ' &&
		    last->part_len == 0)
			f->n--;
	}
	sbuf_init(&cur, 64);
	for (size_t i = 0; i < f->n; i++) {
		sbuf_append(&cur, f->pairs[i].fws, f->pairs[i].fws_len);
		sbuf_append(&cur, f->pairs[i].part, f->pairs[i].part_len);
	}
	/* is_onlyws(): no initial size and (no pairs or str.isspace()) */
	only_ws = f->initial == 0 && (f->n == 0 || cur.len > 0);
	for (size_t i = 0; only_ws && i < cur.len; i++)
		only_ws = py_isspace(cur.data[i]);
	if (f->initial + cur.len > 0) {
		if (!(only_ws && f->have_lines) && f->have_lines)
			sbuf_putc(&f->lines, '\n');
		f->have_lines = true;
		sbuf_append(&f->lines, cur.data, cur.len);
	}
	sbuf_free(&cur);
	f->n = 0;
	f->initial = 0;
}

/* value_line_end - str.splitlines() separators in an ASCII value */
static size_t value_line_end(const char *t, size_t i, size_t len)
{
	char c = t[i];

	if (c == '\r' && i + 1 < len && t[i + 1] == '\n')
		return 2;
	if (c == '\n' || c == '\r' || c == 0x0b || c == 0x0c ||
	    (c >= 0x1c && c <= 0x1e))
		return 1;
	return 0;
}

/* flow_value - Header(value, header_name=name).encode(maxlinelen=0) for
 * an ASCII value, appended to out */
static void flow_value(struct sbuf *out, size_t name_len, const char *value,
		       size_t len)
{
	struct flow f = {.initial = name_len + 2};
	size_t start = 0, i = 0, n, nlines = 0;

	sbuf_init(&f.lines, len + 16);
	for (;;) {
		n = i < len ? value_line_end(value, i, len) : 0;
		if (i < len && n == 0) {
			i++;
			continue;
		}
		if (i == len && start == len && nlines > 0)
			break; /* no empty line after a final separator */
		if (nlines > 0)
			flow_newline(&f);
		flow_feed(&f, value + start, i - start);
		nlines++;
		if (i == len)
			break;
		i += n;
		start = i;
	}
	if (nlines > 1)
		flow_newline(&f);
	flow_push(&f, " ", 1, "", 0); /* add_transition() */
	flow_newline(&f);
	sbuf_append(out, f.lines.data, f.lines.len);
	sbuf_free(&f.lines);
	free(f.pairs);
}

/* --- rendering ----------------------------------------------------------- */

enum line_kind {
	LINE_FROM,   /* "From ..." */
	LINE_CONT,   /* starts with SP or HTAB */
	LINE_HEADER, /* name of printable non-colon ASCII, then ':' */
	LINE_OTHER,  /* the end of the headers */
};

struct render {
	const struct aiosmtpd_session *session;
	const struct aiosmtpd_envelope *envelope;
	maildir_out_fn *out;
	void *ctx;
	struct pyfmt_lines lines;
	struct sbuf buf;
	bool in_body;
	unsigned lineno;      /* header lines seen */
	struct sbuf header; /* the current header, lines joined by LF */
	size_t name_len;      /* 0: no current header */
	struct sbuf from;   /* a "From " line that may start the body */
	bool have_from;
	int failed;
};

static enum line_kind classify(const char *line, size_t len)
{
	size_t i = 0;

	if (len >= 5 && memcmp(line, "From ", 5) == 0)
		return LINE_FROM;
	if (len > 0 && is_wsp(line[0]))
		return LINE_CONT;
	while (i < len && line[i] >= 0x21 && line[i] <= 0x7e && line[i] != ':')
		i++;
	return i < len && line[i] == ':' ? LINE_HEADER : LINE_OTHER;
}

static void render_flush(struct render *r)
{
	if (r->buf.len > 0 && r->failed == 0 &&
	    r->out(r->ctx, r->buf.data, r->buf.len) != 0)
		r->failed = -1;
	sbuf_reset(&r->buf);
}

static void render_put(struct render *r, const char *data, size_t len)
{
	sbuf_append(&r->buf, data, len);
	if (r->buf.len >= OUT_BLOCK)
		render_flush(r);
}

static bool has_8bit(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)p[i] >= 0x80)
			return true;
	}
	return false;
}

/* put_header - "Name: value" and LF; a value with 8-bit octets is written
 * as it is, as the generator does for undecodable values */
static void put_header(struct render *r, const char *name, size_t name_len,
		       const char *value, size_t len)
{
	struct sbuf sb;

	sbuf_init(&sb, name_len + len + 8);
	sbuf_append(&sb, name, name_len);
	sbuf_puts(&sb, ": ");
	if (has_8bit(value, len))
		sbuf_append(&sb, value, len);
	else
		flow_value(&sb, name_len, value, len);
	sbuf_putc(&sb, '\n');
	render_put(r, sb.data, sb.len);
	sbuf_free(&sb);
}

/* finish_header - write the header collected so far, if any */
static void finish_header(struct render *r)
{
	const char *value;
	size_t len;

	if (r->name_len == 0)
		return;
	/* header_source_parse(): the value starts after the colon, with
	 * leading blanks removed */
	value = r->header.data + r->name_len + 1;
	len = r->header.len - r->name_len - 1;
	while (len > 0 && is_wsp(*value)) {
		value++;
		len--;
	}
	put_header(r, r->header.data, r->name_len, value, len);
	r->name_len = 0;
	sbuf_reset(&r->header);
}

static void put_trace_headers(struct render *r)
{
	const struct aiosmtpd_session *s = r->session;
	const struct aiosmtpd_envelope *e = r->envelope;
	struct sbuf v;

	sbuf_init(&v, 128);
	/* str(session.peer): the tuple's repr, or '' for a UNIX socket */
	if (s->peer_family == AF_INET || s->peer_family == AF_INET6)
		pyfmt_peer(&v, s->peer_family, s->peer_addr, s->peer_port);
	put_header(r, "X-Peer", 6, v.data, v.len);
	put_header(r, "X-MailFrom", 10, e->mail_from, strlen(e->mail_from));
	sbuf_reset(&v);
	for (size_t i = 0; i < e->n_rcpt_tos; i++)
		sbuf_printf(&v, "%s%s", i > 0 ? ", " : "", e->rcpt_tos[i]);
	put_header(r, "X-RcptTo", 8, v.data, v.len);
	sbuf_free(&v);
}

/* start_body - end the header block; a pending "From " line that was the
 * last header line becomes the first body line */
static void start_body(struct render *r)
{
	finish_header(r);
	put_trace_headers(r);
	render_put(r, "\n", 1);
	r->in_body = true;
	if (r->have_from) {
		render_put(r, r->from.data, r->from.len);
		render_put(r, "\n", 1);
		r->have_from = false;
	}
}

static void header_line(struct render *r, const char *line, size_t len)
{
	enum line_kind kind = classify(line, len);

	if (kind == LINE_OTHER) {
		start_body(r);
		if (len > 0) {
			render_put(r, line, len);
			render_put(r, "\n", 1);
		}
		return;
	}
	r->have_from = false; /* a "From " line followed by more headers */
	if (kind == LINE_CONT) {
		if (r->name_len > 0) {
			sbuf_putc(&r->header, '\n');
			sbuf_append(&r->header, line, len);
		}
	} else if (kind == LINE_FROM) {
		finish_header(r);
		if (r->lineno > 0) {
			sbuf_reset(&r->from);
			sbuf_append(&r->from, line, len);
			r->have_from = true;
		}
	} else {
		finish_header(r);
		if (line[0] != ':') {
			sbuf_append(&r->header, line, len);
			r->name_len = (size_t)((char *)memchr(line, ':', len) -
					       line);
		}
	}
	r->lineno++;
}

static int render_line(void *ctx, const char *line, size_t len)
{
	struct render *r = ctx;

	if (!r->in_body) {
		header_line(r, line, len);
		return r->failed;
	}
	render_put(r, line, len);
	render_put(r, "\n", 1);
	return r->failed;
}

/* render_last_line - a last line with no line end keeps none */
static int render_last_line(void *ctx, const char *line, size_t len)
{
	struct render *r = ctx;

	if (!r->in_body)
		return render_line(ctx, line, len);
	render_put(r, line, len);
	return r->failed;
}

/* render_init - a renderer that passes what it makes to out */
static void render_init(struct render *r,
			const struct aiosmtpd_session *session,
			const struct aiosmtpd_envelope *envelope,
			maildir_out_fn *out, void *ctx)
{
	*r = (struct render){.session = session,
			     .envelope = envelope,
			     .out = out,
			     .ctx = ctx};
	pyfmt_lines_init(&r->lines, false);
	sbuf_init(&r->buf, OUT_BLOCK + 4096);
	sbuf_init(&r->header, 256);
	sbuf_init(&r->from, 64);
}

/* render_feed - the next piece of content; 0, or -1 once out failed */
static int render_feed(struct render *r, const char *data, size_t len)
{
	if (r->failed == 0)
		(void)pyfmt_lines_feed(&r->lines, data, len, render_line, r);
	return r->failed;
}

/* render_end - the end of the content: write what is left */
static int render_end(struct render *r)
{
	if (r->failed == 0) {
		(void)pyfmt_lines_finish(&r->lines, render_last_line, r);
		if (!r->in_body)
			start_body(r);
		render_flush(r);
	}
	return r->failed;
}

static void render_free(struct render *r)
{
	pyfmt_lines_free(&r->lines);
	sbuf_free(&r->buf);
	sbuf_free(&r->header);
	sbuf_free(&r->from);
}

int maildir_render(const struct aiosmtpd_session *session,
		   const struct aiosmtpd_envelope *envelope,
		   maildir_out_fn *out, void *ctx)
{
	struct spool *spool = spool_from_content(envelope->content);
	struct render r;
	const char *data;
	size_t len;
	int ret;

	render_init(&r, session, envelope, out, ctx);
	spool_rewind(spool);
	while ((ret = spool_next(spool, &data, &len)) > 0 &&
	       render_feed(&r, data, len) == 0)
		;
	if (ret == 0)
		ret = render_end(&r);
	render_free(&r);
	return ret < 0 || r.failed != 0 ? -1 : 0;
}

/* --- delivery ------------------------------------------------------------ */

/* Python's Maildir._count: deliveries attempted by this process. */
static unsigned long delivery_count = 1;

/* make_dir - mkdir that is content with a directory already there */
static int make_dir(const char *path)
{
	struct stat st;

	int saved;

	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	saved = errno;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	errno = saved;
	return -1;
}

int maildir_create(const char *dir, const char **error_r)
{
	static const char *const subdirs[] = {"tmp", "new", "cur"};
	char path[4096];
	size_t len = strlen(dir);

	if (len == 0 || len + 5 >= sizeof(path)) {
		*error_r = "invalid Maildir path";
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (make_dir(path) < 0)
			goto fail;
		*p = '/';
	}
	if (make_dir(path) < 0)
		goto fail;
	for (size_t i = 0; i < N_ELEMENTS(subdirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
		if (make_dir(path) < 0)
			goto fail;
	}
	return 0;
fail:
	log_error("mkdir(%s) failed: %m", path);
	*error_r = "cannot create the Maildir";
	return -1;
}

/* unique_name - Python's "%d.M%dP%dQ%d.%s": seconds, microseconds, pid,
 * a per-process counter and the host name with '/' and ':' escaped */
static void unique_name(struct sbuf *sb)
{
	struct timespec ts;
	char host[256];

	clock_gettime(CLOCK_REALTIME, &ts);
	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	sbuf_printf(sb, "%lld.M%ldP%dQ%lu.", (long long)ts.tv_sec,
		      ts.tv_nsec / 1000, (int)getpid(), delivery_count++);
	for (const char *h = host; *h != '\0'; h++) {
		if (*h == '/')
			sbuf_puts(sb, "\\057");
		else if (*h == ':')
			sbuf_puts(sb, "\\072");
		else
			sbuf_putc(sb, *h);
	}
}

int maildir_write(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* write_out - maildir_write() as a maildir_out_fn on an int *fd */
static int write_out(void *ctx, const char *data, size_t len)
{
	return maildir_write(*(int *)ctx, data, len);
}

/* create_tmp - a new file in tmp/, named uniquely; *tmp_path is set */
static int create_tmp(const char *dir, struct sbuf *name,
		      struct sbuf *tmp_path)
{
	int fd;

	for (int attempt = 0; attempt < 10; attempt++) {
		sbuf_reset(name);
		unique_name(name);
		sbuf_reset(tmp_path);
		sbuf_printf(tmp_path, "%s/tmp/%s", dir, name->data);
		fd = open(tmp_path->data,
			  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			  0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

/* sync_dir - make a new directory entry durable */
static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = fsync(fd);
	close(fd);
	return ret;
}

/* publish - link tmp/NAME as new/NAME (a clash fails instead of replacing
 * a message), then sync new/; rename where hard links are not allowed */
static int publish(const char *tmp_path, const char *new_path,
		   const char *new_dir)
{
	if (link(tmp_path, new_path) == 0) {
		(void)unlink(tmp_path);
	} else if (errno == EPERM || errno == ENOTSUP || errno == EXDEV) {
		if (rename(tmp_path, new_path) < 0)
			return -1;
	} else {
		return -1;
	}
	return sync_dir(new_dir);
}

/* store_fail - log the failed step, remove the tmp file, keep errno */
static int store_fail(const char *log_id, const char *step, int fd,
		      const char *tmp_path)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	(void)unlink(tmp_path);
	errno = saved;
	log_error("%s Maildir %s of %s failed: %m", log_id, step, tmp_path);
	errno = saved;
	return -1;
}

/* publish_name - tmp/NAME as new/NAME: *new_path_r is set */
static int publish_name(const char *dir, const char *name,
			const char *tmp_path, char **new_path_r)
{
	struct sbuf new_path, new_dir;
	int ret;

	sbuf_init(&new_path, 256);
	sbuf_init(&new_dir, 256);
	sbuf_printf(&new_path, "%s/new/%s", dir, name);
	sbuf_printf(&new_dir, "%s/new", dir);
	ret = publish(tmp_path, new_path.data, new_dir.data);
	sbuf_free(&new_dir);
	if (ret == 0)
		*new_path_r = sbuf_detach(&new_path);
	sbuf_free(&new_path);
	return ret;
}

/* store_tmp - write, sync and publish the open tmp/NAME; no file is left
 * behind on failure */
static int store_tmp(const char *dir, const char *name, const char *tmp_path,
		     int fd, const char *log_id, maildir_writer_fn *writer,
		     void *ctx, char **path_r)
{
	const char *step = "write";
	int ret;

	if (writer(ctx, write_out, &fd) < 0)
		goto fail;
	step = "fsync";
	if (fsync(fd) < 0)
		goto fail;
	step = "close";
	ret = close(fd);
	fd = -1;
	if (ret < 0)
		goto fail;
	step = "link";
	if (publish_name(dir, name, tmp_path, path_r) < 0)
		goto fail;
	return 0;
fail:
	return store_fail(log_id, step, fd, tmp_path);
}

int maildir_store(const char *dir, const char *log_id,
		  maildir_writer_fn *writer, void *ctx, char **path_r)
{
	struct sbuf name, tmp_path;
	int fd, ret = -1;

	sbuf_init(&name, 128);
	sbuf_init(&tmp_path, 256);
	if ((fd = create_tmp(dir, &name, &tmp_path)) < 0)
		log_error("%s Maildir open of %s failed: %m", log_id,
			  tmp_path.data);
	else
		ret = store_tmp(dir, name.data, tmp_path.data, fd, log_id,
				writer, ctx, path_r);
	sbuf_free(&name);
	sbuf_free(&tmp_path);
	return ret;
}

int maildir_store_named(const char *dir, const char *name,
			const char *log_id, maildir_writer_fn *writer,
			void *ctx, char **path_r)
{
	struct sbuf tmp_path;
	int fd, ret = -1;

	sbuf_init(&tmp_path, 256);
	sbuf_printf(&tmp_path, "%s/tmp/%s", dir, name);
	fd = open(tmp_path.data,
		  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		log_error("%s Maildir open of %s failed: %m", log_id,
			  tmp_path.data);
	else
		ret = store_tmp(dir, name, tmp_path.data, fd, log_id, writer,
				ctx, path_r);
	sbuf_free(&tmp_path);
	return ret;
}

/* link_unique - link from (with linkat() flags) as dir/sub/NAME under a
 * new unique name; name and path are set */
static int link_unique(const char *from, int flags, const char *dir,
		       const char *sub, struct sbuf *name, struct sbuf *path)
{
	int ret = -1;

	for (int attempt = 0; attempt < 10 && ret < 0; attempt++) {
		sbuf_reset(name);
		unique_name(name);
		sbuf_reset(path);
		sbuf_printf(path, "%s/%s/%s", dir, sub, name->data);
		ret = linkat(AT_FDCWD, from, AT_FDCWD, path->data, flags);
		if (ret < 0 && errno != EEXIST)
			break;
	}
	return ret;
}

int maildir_store_link(const char *dir, const char *log_id,
		       const char *existing, char **path_r)
{
	struct sbuf name, tmp_path;
	int ret;

	sbuf_init(&name, 128);
	sbuf_init(&tmp_path, 256);
	/* The name is unique in this Maildir; the file is the same. */
	ret = link_unique(existing, 0, dir, "tmp", &name, &tmp_path);
	if (ret == 0 &&
	    (ret = publish_name(dir, name.data, tmp_path.data, path_r)) < 0)
		(void)store_fail(log_id, "link", -1, tmp_path.data);
	sbuf_free(&name);
	sbuf_free(&tmp_path);
	return ret;
}

int maildir_open_unnamed(const char *dir)
{
	static int have_proc = -1; /* linking needs /proc/self/fd */
	char path[4096];

	if (have_proc < 0)
		have_proc = access("/proc/self/fd", X_OK) == 0;
	if (!have_proc)
		return -1;
	snprintf(path, sizeof(path), "%s/tmp", dir);
	return open(path, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
}

/* link_unnamed - the unnamed file fd as dir/new/NAME, then sync new/ */
static int link_unnamed(const char *dir, int fd, char **path_r)
{
	struct sbuf name, new_path, new_dir;
	char fd_path[64];
	int ret;

	snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", fd);
	sbuf_init(&name, 128);
	sbuf_init(&new_path, 256);
	sbuf_init(&new_dir, 256);
	ret = link_unique(fd_path, AT_SYMLINK_FOLLOW, dir, "new", &name,
			  &new_path);
	sbuf_printf(&new_dir, "%s/new", dir);
	if (ret == 0 && (ret = sync_dir(new_dir.data)) < 0) {
		int saved = errno;

		(void)unlink(new_path.data);
		errno = saved;
	}
	if (ret == 0)
		*path_r = sbuf_detach(&new_path);
	sbuf_free(&name);
	sbuf_free(&new_path);
	sbuf_free(&new_dir);
	return ret;
}

int maildir_commit_unnamed(const char *dir, int fd, const char *log_id,
			   char **path_r)
{
	const char *step = "fsync";
	int ret = fsync(fd);

	if (ret == 0) {
		step = "link";
		ret = link_unnamed(dir, fd, path_r);
	}
	if (ret < 0)
		maildir_log_failure(log_id, step, dir);
	return ret;
}

void maildir_log_failure(const char *log_id, const char *step,
			 const char *dir)
{
	log_error("%s Maildir %s of a message in %s/tmp failed: %m", log_id,
		  step, dir);
}

/* render_writer - maildir_render() as a maildir_writer_fn */
struct render_args {
	const struct aiosmtpd_session *session;
	const struct aiosmtpd_envelope *envelope;
};

static int render_writer(void *ctx, maildir_out_fn *out, void *out_ctx)
{
	struct render_args *a = ctx;

	return maildir_render(a->session, a->envelope, out, out_ctx);
}

int maildir_deliver(const char *dir, const struct aiosmtpd_session *session,
		    const struct aiosmtpd_envelope *envelope, char **name_r)
{
	struct render_args args = {session, envelope};
	char *path = NULL;

	if (maildir_store(dir, session->id, render_writer, &args, &path) < 0)
		return -1;
	if (name_r != NULL)
		*name_r = xstrdup(strrchr(path, '/') + 1);
	free(path);
	return 0;
}

/* --- the Mailbox handler ------------------------------------------------- */

struct mailbox {
	char *dir;
};

static void *mailbox_init(int argc, char *const argv[], const char **error_r)
{
	struct mailbox *mb;

	if (argc < 1) {
		*error_r = "The directory for the maildir is required";
		return NULL;
	}
	if (argc > 1) {
		*error_r = "Too many arguments for Mailbox handler";
		return NULL;
	}
	if (maildir_create(argv[0], error_r) < 0)
		return NULL;
	mb = xcalloc(1, sizeof(*mb));
	mb->dir = xstrdup(argv[0]);
	return mb;
}

static void mailbox_cleanup(void *ctx)
{
	struct mailbox *mb = ctx;

	free(mb->dir);
	free(mb);
}

/*
 * The Mailbox tap renders a message into an unnamed file (O_TMPFILE) in
 * tmp/ while it arrives, and links the synced file into new/ through
 * /proc/self/fd.  Until then the file has no name, so neither a rejected
 * message nor a worker killed in the middle of DATA leaves anything
 * behind.  Where the file system or /proc cannot do this, messages are
 * spooled and stored by maildir_store() as before.
 */
struct mailbox_message {
	const char *dir;
	const char *log_id;
	int fd;
	struct render render;
};

static void *mailbox_open(void *ctx, const struct aiosmtpd_session *session,
			  const struct aiosmtpd_envelope *envelope)
{
	struct mailbox *mb = ctx;
	struct mailbox_message *m;
	int fd = maildir_open_unnamed(mb->dir);

	if (fd < 0)
		return NULL; /* spooled instead; handle_DATA stores it */
	m = xcalloc(1, sizeof(*m));
	m->dir = mb->dir;
	m->log_id = session->id;
	m->fd = fd;
	render_init(&m->render, session, envelope, write_out, &m->fd);
	return m;
}

static int mailbox_write(void *state, const char *data, size_t len)
{
	struct mailbox_message *m = state;

	return render_feed(&m->render, data, len) == 0 ? 0 : -1;
}

static void message_free(struct mailbox_message *m)
{
	if (m->fd >= 0)
		close(m->fd);
	render_free(&m->render);
	free(m);
}

/* mailbox_discard - the unnamed file goes with its last descriptor */
static void mailbox_discard(void *state)
{
	message_free(state);
}

const struct spool_tap maildir_mailbox_tap = {
	.open = mailbox_open,
	.write = mailbox_write,
	.discard = mailbox_discard,
};

/* mailbox_finish - the rest of a tapped message, synced and in new/ */
static int mailbox_finish(struct mailbox_message *m, char **path_r)
{
	int ret = -1;

	if (render_end(&m->render) != 0)
		maildir_log_failure(m->log_id, "write", m->dir);
	else
		ret = maildir_commit_unnamed(m->dir, m->fd, m->log_id, path_r);
	message_free(m);
	return ret;
}

static const char *mailbox_data(void *ctx, struct aiosmtpd_session *session,
				struct aiosmtpd_envelope *envelope)
{
	struct mailbox *mb = ctx;
	struct mailbox_message *m =
		spool_take_tap(spool_from_content(envelope->content));
	struct render_args args = {session, envelope};
	char *path = NULL;
	int ret;

	if (m != NULL)
		ret = mailbox_finish(m, &path);
	else
		ret = maildir_store(mb->dir, session->id, render_writer, &args,
				    &path);
	if (ret < 0)
		return "451 4.3.0 Error: local error in processing";
	log_debug("%s delivered to %s", session->id, path);
	free(path);
	return NULL;
}

const struct aiosmtpd_handler handler_mailbox = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION,
	.name = "Mailbox",
	.init = mailbox_init,
	.cleanup = mailbox_cleanup,
	.handle_DATA = mailbox_data,
};
