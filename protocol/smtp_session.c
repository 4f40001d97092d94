/*
 * smtp_session.c - the SMTP and LMTP session state machine
 *
 * The main loop reads a line, applies aiosmtpd's checks in aiosmtpd's order
 * (syntax, ASCII, length, TLS, call limit, unknown-command budget) and
 * dispatches through a command table.  Each command first checks, then
 * acts; the checks return aiosmtpd's replies word for word.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alloc.h"
#include "log.h"
#include "sbuf.h"
#include "smtp_addr.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "smtp_param.h"
#include "smtp_session.h"

/* aiosmtpd's StreamReader limit: a longer line is "too long" whatever the
 * command's own limit. */
#define READER_LINE_LIMIT 1001
/* aiosmtpd's BOGUS_LIMIT: the fifth unknown command ends the session. */
#define BOGUS_LIMIT 5

struct string_list {
	char **items;
	size_t n;
	size_t cap;
};

struct call_count {
	char *verb;
	long left;
};

struct smtp_session {
	const struct smtp_settings *set;
	const struct aiosmtpd_handler *handler;
	void *ctx;
	struct smtp_io *io;
	struct spool *spool;

	struct aiosmtpd_session info; /* the handlers' view of the session */
	char *id;
	char *peer_addr;
	char *client; /* "addr:port" for log lines */
	char *host_name;

	struct aiosmtpd_envelope env; /* the handlers' view of the envelope */
	char *mail_from;
	struct string_list mail_options;
	struct string_list rcpt_tos;
	struct string_list rcpt_options;

	char *line; /* the current command line, parsed in place */
	size_t line_limit;
	size_t mail_extra; /* room the last EHLO granted to MAIL */
	int bogus_budget;
	struct call_count *calls;
	size_t n_calls;
	bool tls_active;
	/* XXX Nothing sets tls_refused yet: handler.h keeps a place for
	 * handle_STARTTLS (reserved_starttls) but the hook is not defined.
	 * Defining it means calling it in reset_after_tls() with the TLS
	 * state filled in and setting this when it refuses, as aiosmtpd's
	 * connection_made() does; gate() already answers 554 then. */
	bool tls_refused; /* a STARTTLS hook refused the handshake */
	struct smtp_tls_state tls;
	const struct smtp_tls_ops *tls_ops;
	void *tls_ctx;
	bool authenticated;
	char *auth_user;
	unsigned auth_failures;
	const struct smtp_auth_ops *auth_ops;
	void *auth_ctx;
	bool data_non_ascii;

	bool ended;
	enum smtp_session_end end;
	struct smtp_session_stats stats;
};

struct command {
	const char *verb;
	const char *syntax;	/* HELP text; NULL: not listed */
	const char *syntax_ext; /* appended after EHLO/LHLO */
	unsigned flags;
	void (*run)(struct smtp_session *s, const char *arg);
};

#define CMD_SMTP 0x01u
#define CMD_LMTP 0x02u
#define CMD_BOTH (CMD_SMTP | CMD_LMTP)
#define CMD_TLS 0x04u /* listed by HELP only when TLS is configured */

static void cmd_auth(struct smtp_session *s, const char *arg);
static void cmd_data(struct smtp_session *s, const char *arg);
static void cmd_ehlo(struct smtp_session *s, const char *arg);
static void cmd_expn(struct smtp_session *s, const char *arg);
static void cmd_helo(struct smtp_session *s, const char *arg);
static void cmd_help(struct smtp_session *s, const char *arg);
static void cmd_mail(struct smtp_session *s, const char *arg);
static void cmd_noop(struct smtp_session *s, const char *arg);
static void cmd_not_lmtp(struct smtp_session *s, const char *arg);
static void cmd_quit(struct smtp_session *s, const char *arg);
static void cmd_rcpt(struct smtp_session *s, const char *arg);
static void cmd_rset(struct smtp_session *s, const char *arg);
static void cmd_starttls(struct smtp_session *s, const char *arg);
static void cmd_vrfy(struct smtp_session *s, const char *arg);
static enum smtp_session_end io_end(const struct smtp_session *s,
				    enum smtp_io_status st);

/* Sorted by verb: HELP lists the commands in table order. */
static const struct command commands[] = {
	{"AUTH", "AUTH <mechanism>", NULL, CMD_BOTH, cmd_auth},
	{"DATA", "DATA", NULL, CMD_BOTH, cmd_data},
	{"EHLO", "EHLO hostname", NULL, CMD_SMTP, cmd_ehlo},
	{"EHLO", NULL, NULL, CMD_LMTP, cmd_not_lmtp},
	{"EXPN", NULL, NULL, CMD_BOTH, cmd_expn},
	{"HELO", "HELO hostname", NULL, CMD_SMTP, cmd_helo},
	{"HELO", NULL, NULL, CMD_LMTP, cmd_not_lmtp},
	{"HELP", "HELP [command]", NULL, CMD_BOTH, cmd_help},
	{"LHLO", "LHLO hostname", NULL, CMD_LMTP, cmd_ehlo},
	{"MAIL", "MAIL FROM: <address>", " [SP <mail-parameters>]", CMD_BOTH,
	 cmd_mail},
	{"NOOP", "NOOP [ignored]", NULL, CMD_BOTH, cmd_noop},
	{"QUIT", "QUIT", NULL, CMD_BOTH, cmd_quit},
	{"RCPT", "RCPT TO: <address>", " [SP <mail-parameters>]", CMD_BOTH,
	 cmd_rcpt},
	{"RSET", "RSET", NULL, CMD_BOTH, cmd_rset},
	{"STARTTLS", "STARTTLS", NULL, CMD_BOTH | CMD_TLS, cmd_starttls},
	{"VRFY", "VRFY <address>", NULL, CMD_BOTH, cmd_vrfy},
};

static const char *const end_names[] = {
	[SMTP_END_QUIT] = "quit",     [SMTP_END_EOF] = "eof",
	[SMTP_END_TIMEOUT] = "timeout", [SMTP_END_ERROR] = "error",
	[SMTP_END_LIMIT] = "limit",   [SMTP_END_SHUTDOWN] = "shutdown",
	[SMTP_END_TLS] = "tls",
	[SMTP_END_REFUSED] = "refused",
};

const char *smtp_session_end_name(enum smtp_session_end end)
{
	return end_names[end];
}

void smtp_settings_init(struct smtp_settings *set)
{
	memset(set, 0, sizeof(*set));
	set->data_size_limit = 33554432;
	set->command_size_limit = 512;
	set->auth_require_tls = true;
	set->auth_max_failures = 3;
}

/* --- small helpers ------------------------------------------------------ */

static void list_add(struct string_list *list, char *item)
{
	if (list->n == list->cap) {
		list->cap = list->cap == 0 ? 4 : list->cap * 2;
		list->items = xrealloc(list->items,
				       list->cap * sizeof(*list->items));
	}
	list->items[list->n++] = item;
}

static void list_clear(struct string_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		free(list->items[i]);
	list->n = 0;
}

static void list_free(struct string_list *list)
{
	list_clear(list);
	XFREE(list->items);
	list->cap = 0;
}

static void reply(struct smtp_session *s, const char *text)
{
	smtp_io_replys(s->io, text);
}

/* end_session - stop the loop after the replies queued so far */
static void end_session(struct smtp_session *s, enum smtp_session_end end)
{
	if (!s->ended) {
		s->ended = true;
		s->end = end;
	}
}

/* accepted - a hook's reply that lets the command take effect */
static bool accepted(const char *status)
{
	return status == NULL || status[0] == '2';
}

/* sync_envelope - point the handlers' view at the current envelope */
static void sync_envelope(struct smtp_session *s)
{
	s->env.mail_from = s->mail_from;
	s->env.mail_options = (const char *const *)s->mail_options.items;
	s->env.n_mail_options = s->mail_options.n;
	s->env.rcpt_tos = (const char *const *)s->rcpt_tos.items;
	s->env.n_rcpt_tos = s->rcpt_tos.n;
	s->env.rcpt_options = (const char *const *)s->rcpt_options.items;
	s->env.n_rcpt_options = s->rcpt_options.n;
	s->info.host_name = s->host_name;
}

/* reset_envelope - aiosmtpd's _set_rset_state(): a new, empty envelope */
static void reset_envelope(struct smtp_session *s)
{
	XFREE(s->mail_from);
	list_clear(&s->mail_options);
	list_clear(&s->rcpt_tos);
	list_clear(&s->rcpt_options);
	s->env.smtp_utf8 = false;
	s->env.content = NULL;
	s->env.content_size = 0;
	sync_envelope(s);
}

/* need_helo - aiosmtpd's check_helo_needed() */
static bool need_helo(struct smtp_session *s, const char *helo)
{
	if (s->host_name != NULL)
		return false;
	smtp_io_replyf(s->io, "503 Error: send %s first", helo);
	return true;
}

/* need_auth - aiosmtpd's check_auth_needed() */
static bool need_auth(struct smtp_session *s)
{
	if (!s->set->auth_required || s->authenticated)
		return false;
	reply(s, "530 5.7.0 Authentication required");
	return true;
}

static void session_log(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void session_log(struct smtp_session *s, const char *fmt, ...)
{
	char details[1024];
	va_list ap;

	if (!log_enabled(LOG_LEVEL_INFO))
		return;
	va_start(ap, fmt);
	vsnprintf(details, sizeof(details), fmt, ap);
	va_end(ap);
	log_info("%s %s %s", s->id, s->client, details);
}

/* --- paths -------------------------------------------------------------- */

/* utf8_seq_len - length of a valid UTF-8 sequence at p, or 0 */
static size_t utf8_seq_len(const unsigned char *p, size_t len)
{
	size_t n;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1fu;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0fu;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07u;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0u) != 0x80u)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* char_count - len(s) of the Python string that surrogateescape decoding
 * makes of these octets: each invalid octet is one character */
static size_t char_count(const char *p, size_t len)
{
	size_t count = 0, i = 0, n;

	while (i < len) {
		n = utf8_seq_len((const unsigned char *)p + i, len - i);
		i += n == 0 ? 1 : n;
		count++;
	}
	return count;
}

/* local_part_too_long - aiosmtpd's local_part_limit check */
static bool local_part_too_long(struct smtp_session *s, const char *address)
{
	const char *at = strrchr(address, '@');

	if (s->set->local_part_limit == 0 || at == NULL)
		return false;
	return char_count(address, (size_t)(at - address)) >
	       s->set->local_part_limit;
}

/*
 * get_address - aiosmtpd's _getaddr(): parse a path
 *
 * Replies itself to a path that does not parse (with bad_reply, or the
 * IndexError reply aiosmtpd gives for some inputs) and returns false.
 * Otherwise *address_r is "" for an empty argument or the allocated
 * address, and *rest_r the parameter text after it.
 */
static bool get_address(struct smtp_session *s, const char *arg,
			const char *bad_reply, char **address_r,
			const char **rest_r)
{
	size_t rest = 0;
	enum smtp_addr_result r;

	r = smtp_addr_parse(arg, strlen(arg), address_r, &rest);
	switch (r) {
	case SMTP_ADDR_EMPTY:
		*address_r = xstrdup("");
		*rest_r = arg + strlen(arg);
		return true;
	case SMTP_ADDR_INDEX_ERROR:
		reply(s, "500 Error: (IndexError) string index out of range");
		return false;
	case SMTP_ADDR_LIST_INDEX_ERROR:
		reply(s, "500 Error: (IndexError) list index out of range");
		return false;
	case SMTP_ADDR_ATTRIBUTE_ERROR:
		reply(s, "500 Error: (AttributeError) 'InvalidHeaderDefect' "
			 "object has no attribute 'value'");
		return false;
	case SMTP_ADDR_MALFORMED:
		reply(s, bad_reply);
		return false;
	case SMTP_ADDR_OK:
		break;
	}
	if (local_part_too_long(s, *address_r)) {
		XFREE(*address_r);
		reply(s, bad_reply);
		return false;
	}
	*rest_r = arg + rest;
	return true;
}

/* strip_keyword - aiosmtpd's _strip_command_keyword(): the text after
 * "FROM:" or "TO:" (any case), stripped; NULL when the keyword is absent */
static const char *strip_keyword(struct smtp_session *s, const char *arg,
				 const char *keyword, size_t *len_r)
{
	size_t klen = strlen(keyword);
	const char *rest;
	size_t len;

	if (arg == NULL || strncasecmp(arg, keyword, klen) != 0)
		return NULL;
	rest = arg + klen;
	len = strlen(rest);
	smtp_pystrip(&rest, &len, s->set->smtputf8);
	*len_r = len;
	return rest;
}

/* syntax_error - "501 Syntax: ..." with the parameter hint after EHLO */
static void syntax_error(struct smtp_session *s, const char *syntax)
{
	smtp_io_replyf(s->io, "501 Syntax: %s%s", syntax,
		       s->info.extended_smtp ? " [SP <mail-parameters>]" : "");
}

/*
 * parse_path_command - the part MAIL and RCPT share
 *
 * Returns false after replying when the argument is not "KEYWORD path
 * [params]" as aiosmtpd wants it; otherwise fills *address_r (allocated)
 * and *params (to be freed with smtp_params_free()).
 */
static bool parse_path_command(struct smtp_session *s, const char *arg,
			       const char *keyword, const char *syntax,
			       char **address_r, struct smtp_params *params)
{
	const char *text, *rest;
	char *copy;
	size_t len;

	memset(params, 0, sizeof(*params));
	if ((text = strip_keyword(s, arg, keyword, &len)) == NULL) {
		syntax_error(s, syntax);
		return false;
	}
	copy = xmemdup(text, len);
	if (!get_address(s, copy, "553 5.1.3 Error: malformed address",
			 address_r, &rest)) {
		free(copy);
		return false;
	}
	if (**address_r == '\0' || (!s->info.extended_smtp && *rest != '\0')) {
		syntax_error(s, syntax);
		goto fail;
	}
	if (strcmp(keyword, "FROM:") == 0 && s->mail_from != NULL) {
		reply(s, "503 Error: nested MAIL command");
		goto fail;
	}
	if (smtp_params_parse(rest, strlen(rest), s->set->smtputf8, params) <
	    0) {
		smtp_params_free(params);
		syntax_error(s, syntax);
		goto fail;
	}
	free(copy);
	return true;
fail:
	free(copy);
	XFREE(*address_r);
	return false;
}

/* --- MAIL and RCPT ------------------------------------------------------ */

/* size_exceeds - SIZE=digits above limit, for any number of digits */
static bool size_exceeds(const char *digits, uint64_t limit)
{
	uint64_t value = 0;

	while (*digits == '0')
		digits++;
	if (strlen(digits) > 19)
		return true;
	for (; *digits != '\0'; digits++)
		value = value * 10 + (uint64_t)(*digits - '0');
	return value > limit;
}

static bool all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
	}
	return true;
}

/* check_mail_params - BODY, SMTPUTF8 and SIZE, as aiosmtpd pops them */
static bool check_mail_params(struct smtp_session *s, struct smtp_params *p)
{
	const char *value;

	if (!s->set->decode_data && smtp_params_take(p, "BODY", &value) &&
	    (value == NULL ||
	     (strcmp(value, "7BIT") != 0 && strcmp(value, "8BITMIME") != 0))) {
		reply(s, "501 Error: BODY can only be one of 7BIT, 8BITMIME");
		return false;
	}
	if (smtp_params_take(p, "SMTPUTF8", &value)) {
		if (value != NULL) {
			reply(s, "501 Error: SMTPUTF8 takes no arguments");
			return false;
		}
		if (!s->set->smtputf8) {
			reply(s, "501 Error: SMTPUTF8 disabled");
			return false;
		}
		s->env.smtp_utf8 = true;
	}
	if (smtp_params_take(p, "SIZE", &value)) {
		if (value == NULL || !all_digits(value)) {
			syntax_error(s, "MAIL FROM: <address>");
			return false;
		}
		if (s->set->data_size_limit != 0 &&
		    size_exceeds(value, s->set->data_size_limit)) {
			reply(s, "552 Error: message size exceeds fixed "
				 "maximum message size");
			return false;
		}
	}
	if (smtp_params_left(p) > 0) {
		reply(s, "555 MAIL FROM parameters not recognized or not "
			 "implemented");
		return false;
	}
	return true;
}

/* take_options - move the parameter words into an options list */
static void take_options(struct smtp_params *p, struct string_list *list)
{
	size_t n;
	char **words = smtp_params_steal_words(p, &n);

	for (size_t i = 0; i < n; i++)
		list_add(list, words[i]);
	free(words);
}

static void cmd_mail(struct smtp_session *s, const char *arg)
{
	struct smtp_params params;
	const char *status = NULL;
	char *address;

	if (need_helo(s, "HELO") || need_auth(s))
		return;
	if (!parse_path_command(s, arg, "FROM:", "MAIL FROM: <address>",
				&address, &params))
		return;
	if (!check_mail_params(s, &params)) {
		smtp_params_free(&params);
		free(address);
		return;
	}
	if (s->handler->handle_MAIL != NULL) {
		status = s->handler->handle_MAIL(
			s->ctx, &s->info, &s->env, address,
			(const char *const *)params.words, params.n_words);
	}
	if (accepted(status)) {
		s->mail_from = address;
		take_options(&params, &s->mail_options);
		sync_envelope(s);
	} else {
		free(address);
	}
	smtp_params_free(&params);
	reply(s, status != NULL ? status : "250 OK");
}

/* too_many_recipients - max_recipients per message (not aiosmtpd's: off
 * unless configured); RFC 5321 4.5.3.1.10 names the reply */
static bool too_many_recipients(struct smtp_session *s)
{
	if (s->set->max_recipients == 0 ||
	    s->rcpt_tos.n < s->set->max_recipients)
		return false;
	reply(s, "452 4.5.3 Too many recipients");
	return true;
}

static void cmd_rcpt(struct smtp_session *s, const char *arg)
{
	struct smtp_params params;
	const char *status = NULL;
	char *address;

	if (need_helo(s, "HELO") || need_auth(s))
		return;
	if (s->mail_from == NULL) {
		reply(s, "503 Error: need MAIL command");
		return;
	}
	if (!parse_path_command(s, arg, "TO:", "RCPT TO: <address>", &address,
				&params))
		return;
	if (params.n_params > 0) {
		reply(s, "555 RCPT TO parameters not recognized or not "
			 "implemented");
		goto done;
	}
	if (too_many_recipients(s))
		goto done;
	if (s->handler->handle_RCPT != NULL) {
		status = s->handler->handle_RCPT(
			s->ctx, &s->info, &s->env, address,
			(const char *const *)params.words, params.n_words);
	}
	if (accepted(status)) {
		list_add(&s->rcpt_tos, address);
		address = NULL;
		take_options(&params, &s->rcpt_options);
		sync_envelope(s);
	}
	reply(s, status != NULL ? status : "250 OK");
done:
	free(address);
	smtp_params_free(&params);
}

/* --- greetings ---------------------------------------------------------- */

static void set_host_name(struct smtp_session *s, const char *name)
{
	free(s->host_name);
	s->host_name = xstrdup(name);
	s->info.host_name = s->host_name;
	session_log(s, "helo=%s", name);
}

static void cmd_helo(struct smtp_session *s, const char *arg)
{
	const char *status = NULL;

	if (arg == NULL) {
		reply(s, "501 Syntax: HELO hostname");
		return;
	}
	reset_envelope(s);
	s->info.extended_smtp = false;
	s->mail_extra = 0;
	if (s->handler->handle_HELO != NULL)
		status = s->handler->handle_HELO(s->ctx, &s->info, &s->env,
						 arg);
	if (accepted(status))
		set_host_name(s, arg);
	if (status != NULL)
		reply(s, status);
	else
		smtp_io_replyf(s->io, "250 %s", s->set->hostname);
}

/* mechanisms - what AUTH offers now; NULL when there is nothing */
static const char *mechanisms(const struct smtp_session *s)
{
	const char *list;

	if (s->auth_ops == NULL)
		return NULL;
	list = s->auth_ops->mechanisms(s->auth_ctx);
	return list != NULL && *list != '\0' ? list : NULL;
}

/* auth_allowed_now - AUTH is offered and accepted only under TLS, unless
 * auth_require_tls is off (implicit TLS counts: fix, aiosmtpd counts only
 * STARTTLS) */
static bool auth_allowed_now(const struct smtp_session *s)
{
	return !s->set->auth_require_tls || s->tls_active;
}

/* ehlo_lines - the EHLO/LHLO reply in aiosmtpd's order; the extra room
 * for MAIL is granted here, once per EHLO (fix: aiosmtpd adds it again at
 * every EHLO) */
static void ehlo_lines(struct smtp_session *s, struct sbuf *sb)
{
	const struct smtp_settings *set = s->set;
	const char *mechs;

	s->mail_extra = 0;
	sbuf_printf(sb, "250-%s", set->hostname);
	if (set->data_size_limit != 0) {
		sbuf_printf(sb, "\r\n250-SIZE %llu",
			      (unsigned long long)set->data_size_limit);
		s->mail_extra += 26;
	}
	if (!set->decode_data)
		sbuf_puts(sb, "\r\n250-8BITMIME");
	if (set->smtputf8) {
		sbuf_puts(sb, "\r\n250-SMTPUTF8");
		s->mail_extra += 10;
	}
	if (set->tls_available && !s->tls_active)
		sbuf_puts(sb, "\r\n250-STARTTLS");
	if (auth_allowed_now(s) && (mechs = mechanisms(s)) != NULL)
		sbuf_printf(sb, "\r\n250-AUTH %s", mechs);
	sbuf_puts(sb, "\r\n250 HELP");
}

static void cmd_ehlo(struct smtp_session *s, const char *arg)
{
	const char *status = NULL;
	struct sbuf sb;

	if (arg == NULL) {
		reply(s, "501 Syntax: EHLO hostname");
		return;
	}
	reset_envelope(s);
	s->info.extended_smtp = true;
	sbuf_init(&sb, 256);
	ehlo_lines(s, &sb);
	if (s->handler->handle_EHLO != NULL)
		status = s->handler->handle_EHLO(s->ctx, &s->info, &s->env,
						 arg, sb.data);
	if (accepted(status))
		set_host_name(s, arg);
	reply(s, status != NULL ? status : sb.data);
	sbuf_free(&sb);
}

/* cmd_not_lmtp - HELO and EHLO on an LMTP session (aiosmtpd's LMTP class
 * defines them to say so, which also makes them known commands) */
static void cmd_not_lmtp(struct smtp_session *s, const char *arg)
{
	(void)arg;
	smtp_io_replyf(s->io, "500 Error: command \"%s\" not recognized",
		       s->line);
}

/* --- the small commands ------------------------------------------------- */

static void cmd_noop(struct smtp_session *s, const char *arg)
{
	const char *status = NULL;

	if (s->handler->handle_NOOP != NULL)
		status = s->handler->handle_NOOP(s->ctx, &s->info, &s->env,
						 arg != NULL ? arg : "");
	reply(s, status != NULL ? status : "250 OK");
}

static void cmd_quit(struct smtp_session *s, const char *arg)
{
	const char *status = NULL;

	if (arg != NULL) {
		reply(s, "501 Syntax: QUIT");
		return;
	}
	if (s->handler->handle_QUIT != NULL)
		status = s->handler->handle_QUIT(s->ctx, &s->info, &s->env);
	reply(s, status != NULL ? status : "221 Bye");
	end_session(s, SMTP_END_QUIT);
}

static void cmd_rset(struct smtp_session *s, const char *arg)
{
	const char *status = NULL;

	if (arg != NULL) {
		reply(s, "501 Syntax: RSET");
		return;
	}
	reset_envelope(s);
	if (s->handler->handle_RSET != NULL)
		status = s->handler->handle_RSET(s->ctx, &s->info, &s->env);
	reply(s, status != NULL ? status : "250 OK");
}

static void cmd_expn(struct smtp_session *s, const char *arg)
{
	(void)arg;
	reply(s, "502 EXPN not implemented");
}

static void cmd_vrfy(struct smtp_session *s, const char *arg)
{
	const char *status = NULL;
	const char *rest;
	struct sbuf bad;
	char *address;
	bool ok;

	if (need_auth(s))
		return;
	if (arg == NULL) {
		reply(s, "501 Syntax: VRFY <address>");
		return;
	}
	sbuf_init(&bad, 64);
	sbuf_printf(&bad, "502 Could not VRFY %s", arg);
	ok = get_address(s, arg, bad.data, &address, &rest);
	sbuf_free(&bad);
	if (!ok)
		return;
	if (s->handler->handle_VRFY != NULL)
		status = s->handler->handle_VRFY(s->ctx, &s->info, &s->env,
						 address);
	reply(s, status != NULL ? status
				: "252 Cannot VRFY user, but will accept "
				  "message and attempt delivery");
	free(address);
}

/* command_offered - does this session know the command at all? */
static bool command_offered(const struct smtp_session *s,
			    const struct command *cmd)
{
	return (cmd->flags & (s->set->lmtp ? CMD_LMTP : CMD_SMTP)) != 0;
}

/* help_listed - aiosmtpd lists a command whose method has a @syntax, and
 * STARTTLS only when a TLS context is configured */
static bool help_listed(const struct smtp_session *s,
			const struct command *cmd)
{
	if (!command_offered(s, cmd) || cmd->syntax == NULL)
		return false;
	return (cmd->flags & CMD_TLS) == 0 || s->set->tls_available;
}

static void cmd_help(struct smtp_session *s, const char *arg)
{
	struct sbuf sb;

	if (need_auth(s))
		return;
	for (size_t i = 0; arg != NULL && i < N_ELEMENTS(commands); i++) {
		const struct command *cmd = &commands[i];

		if (strcasecmp(cmd->verb, arg) != 0 || !help_listed(s, cmd))
			continue;
		smtp_io_replyf(s->io, "250 Syntax: %s%s", cmd->syntax,
			       s->info.extended_smtp && cmd->syntax_ext != NULL
				       ? cmd->syntax_ext
				       : "");
		return;
	}
	sbuf_init(&sb, 128);
	sbuf_printf(&sb, "%d Supported commands:", arg != NULL ? 501 : 250);
	for (size_t i = 0; i < N_ELEMENTS(commands); i++) {
		if (help_listed(s, &commands[i]))
			sbuf_printf(&sb, " %s", commands[i].verb);
	}
	reply(s, sb.data);
	sbuf_free(&sb);
}

/* reset_after_tls - RFC 3207 sec. 4.2: the client starts over, and
 * nothing it said or proved in plaintext survives */
static void reset_after_tls(struct smtp_session *s)
{
	XFREE(s->host_name);
	reset_envelope(s);
	s->info.extended_smtp = false;
	s->mail_extra = 0;
	s->authenticated = false;
	XFREE(s->auth_user);
	s->info.auth_user = NULL;
	s->tls_active = true;
	s->info.tls_version = s->tls.version;
	s->info.tls_cipher = s->tls.cipher;
	s->info.tls_bits = s->tls.bits;
}

/*
 * start_tls - answer, then drop every octet the client sent after the
 * command before the handshake: plaintext pipelined behind STARTTLS must
 * never be read as a command (CVE-2011-0411, RFC 3207 sec. 5)
 */
static void start_tls(struct smtp_session *s)
{
	const struct smtp_stream_ops *ops;
	void *stream;

	reply(s, "220 Ready to start TLS");
	if (smtp_io_flush(s->io) < 0) {
		end_session(s, SMTP_END_ERROR);
		return;
	}
	smtp_io_discard_input(s->io);
	if (s->tls_ops->starttls(s->tls_ctx, &ops, &stream, &s->tls) < 0) {
		end_session(s, SMTP_END_TLS);
		return;
	}
	smtp_io_set_stream(s->io, ops, stream);
	reset_after_tls(s);
}

static void cmd_starttls(struct smtp_session *s, const char *arg)
{
	if (arg != NULL) {
		reply(s, "501 Syntax: STARTTLS");
		return;
	}
	/* Fix: inside TLS aiosmtpd answers 220 and drops the connection. */
	if (s->tls_active) {
		reply(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	if (!s->set->tls_available || s->tls_ops == NULL) {
		reply(s, "454 TLS not available");
		return;
	}
	start_tls(s);
}

/* count_words - str.split() word count, for AUTH's argument */
static size_t count_words(const char *arg, bool utf8)
{
	size_t len = strlen(arg), i = 0, n, words = 0;

	while (i < len) {
		if ((n = smtp_pyspace_len(arg + i, len - i, utf8)) > 0) {
			i += n;
			continue;
		}
		words++;
		while (i < len && smtp_pyspace_len(arg + i, len - i, utf8) == 0)
			i++;
	}
	return words;
}

/* offered - is mechanism one of the list's words?  Case matters, as in
 * aiosmtpd (RFC 4422's mechanism names are upper case) */
static bool offered(const char *list, const char *mechanism)
{
	size_t len = strlen(mechanism);

	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, " ");

		if (n == len && strncmp(p, mechanism, n) == 0)
			return true;
		p += n;
		p += *p == ' ';
	}
	return false;
}

static void auth_succeeded(struct smtp_session *s, const char *mechanism)
{
	const char *user = s->auth_ops->user(s->auth_ctx);

	s->authenticated = true;
	s->auth_user = xstrdup(user != NULL ? user : "");
	s->info.auth_user = s->auth_user;
	session_log(s, "auth mechanism=%s user=%s", mechanism, s->auth_user);
	reply(s, smtp_auth_reply(SMTP_AUTH_OK));
}

/* auth_failed - wrong credentials: the back end may slow the client
 * down, and past the limit the session ends */
static void auth_failed(struct smtp_session *s, const char *mechanism)
{
	unsigned limit = s->set->auth_max_failures;

	s->auth_failures++;
	session_log(s, "auth failed mechanism=%s failures=%u", mechanism,
		    s->auth_failures);
	if (s->auth_ops->failed != NULL)
		s->auth_ops->failed(s->auth_ctx, s->auth_failures);
	if (limit != 0 && s->auth_failures >= limit) {
		log_warning("%s %s too many authentication failures", s->id,
			    s->client);
		reply(s, "421 4.7.0 Too many authentication failures");
		end_session(s, SMTP_END_LIMIT);
		return;
	}
	reply(s, smtp_auth_reply(SMTP_AUTH_BADAUTH));
}

/* authenticate - "MECHANISM [initial-response]", already checked to be
 * at most two words */
static void authenticate(struct smtp_session *s, const char *arg)
{
	bool utf8 = s->set->smtputf8;
	enum smtp_auth_status st;
	enum smtp_io_status io_st;
	const char *response;
	char *mechanism;
	size_t len = 0, n;

	while (arg[len] != '\0' &&
	       smtp_pyspace_len(arg + len, strlen(arg + len), utf8) == 0)
		len++;
	mechanism = xstrndup(arg, len);
	response = arg + len;
	while ((n = smtp_pyspace_len(response, strlen(response), utf8)) > 0)
		response += n;
	if (!offered(mechanisms(s), mechanism)) {
		reply(s, "504 5.5.4 Unrecognized authentication type");
		free(mechanism);
		return;
	}
	st = smtp_auth_exchange(s->io, s->auth_ops, s->auth_ctx, mechanism,
				*response != '\0' ? response : NULL, &io_st);
	if (st == SMTP_AUTH_IO)
		end_session(s, io_end(s, io_st));
	else if (st == SMTP_AUTH_OK)
		auth_succeeded(s, mechanism);
	else if (st == SMTP_AUTH_BADAUTH)
		auth_failed(s, mechanism);
	else
		reply(s, smtp_auth_reply(st));
	free(mechanism);
}

static void cmd_auth(struct smtp_session *s, const char *arg)
{
	if (need_helo(s, "EHLO"))
		return;
	if (!s->info.extended_smtp) {
		reply(s, "500 Error: command 'AUTH' not recognized");
		return;
	}
	if (s->set->auth_require_tls && !s->tls_active) {
		reply(s, "538 5.7.11 Encryption required for requested "
			 "authentication mechanism");
		return;
	}
	if (s->authenticated) {
		reply(s, "503 Already authenticated");
		return;
	}
	if (arg == NULL) {
		reply(s, "501 Not enough value");
		return;
	}
	if (count_words(arg, s->set->smtputf8) > 2) {
		reply(s, "501 Too many values");
		return;
	}
	authenticate(s, arg);
}

/* --- DATA --------------------------------------------------------------- */

static bool has_non_ascii(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)data[i] >= 0x80)
			return true;
	}
	return false;
}

/* content_sink - the DATA reader's output: checked for aiosmtpd's strict
 * ASCII mode, and stored when the handler will read it */
static void content_sink(void *ctx, const char *data, size_t len)
{
	struct smtp_session *s = ctx;

	if (s->set->decode_data && !s->data_non_ascii)
		s->data_non_ascii = has_non_ascii(data, len);
	if (s->handler->handle_DATA != NULL)
		(void)spool_write(s->spool, data, len);
}

/*
 * read_data - read the message up to the final dot
 *
 * Returns false when the connection failed before the final dot; the
 * session has then ended and nothing may be replied.  Every data line
 * restarts the idle timer, so a long transfer is not cut off (fix:
 * aiosmtpd limits the whole transfer to the timeout).
 */
static bool read_data(struct smtp_session *s, struct smtp_data_reader *rd)
{
	enum smtp_io_status st;
	uint64_t counted = 0;
	const char *data;
	bool done = false, needed;
	size_t len, n;

	spool_begin(s->spool, &s->info, &s->env);
	s->data_non_ascii = false;
	needed = s->handler->handle_DATA != NULL ||
		 (s->set->decode_data && !s->set->smtputf8);
	smtp_data_begin(rd, s->set->data_size_limit,
			needed ? content_sink : NULL, s);
	while (!done) {
		st = smtp_io_peek(s->io, &data, &len);
		if (st != SMTP_IO_OK) {
			end_session(s, st == SMTP_IO_EOF ? SMTP_END_EOF
				    : smtp_io_errno(s->io) == ETIMEDOUT
					    ? SMTP_END_TIMEOUT
					    : SMTP_END_ERROR);
			return false;
		}
		n = smtp_data_feed(rd, data, len, &done);
		smtp_io_consume(s->io, n);
		if (rd->counted != counted || done) {
			counted = rd->counted;
			smtp_io_restart_timer(s->io);
		}
	}
	return true;
}

/* data_problem - the reply for a message that cannot be handed on, or
 * NULL when it can */
static const char *data_problem(struct smtp_session *s,
				const struct smtp_data_reader *rd)
{
	if (rd->status == SMTP_DATA_TOO_LONG)
		return "500 Line too long (see RFC5321 4.5.3.1.6)";
	if (rd->status == SMTP_DATA_TOO_MUCH)
		return "552 Error: Too much mail data";
	if (spool_failed(s->spool)) {
		errno = spool_errno(s->spool);
		log_error("%s %s cannot store message content: %m", s->id,
			  s->client);
		return "451 4.3.0 Error: local error in processing";
	}
	if (s->set->decode_data && !s->set->smtputf8 && s->data_non_ascii)
		return "500 Error: strict ASCII mode";
	return NULL;
}

/* count_replies - final reply lines ("250 ...", not "250-...") */
static size_t count_replies(const char *text)
{
	size_t n = 0;

	for (const char *line = text; line != NULL;) {
		if (strlen(line) < 4 || line[3] != '-')
			n++;
		line = strstr(line, "\r\n");
		if (line != NULL)
			line += 2;
	}
	return n;
}

/* data_reply - one reply, or on LMTP one per recipient (fix: aiosmtpd
 * sends one reply whatever the number of recipients, RFC 2033 wants one
 * per recipient in RCPT order) */
static void data_reply(struct smtp_session *s, const char *status)
{
	size_t n = s->set->lmtp ? s->rcpt_tos.n : 1;

	if (count_replies(status) != 1)
		n = 1; /* the handler answered per recipient itself */
	for (size_t i = 0; i < n; i++)
		reply(s, status);
}

static void log_message(struct smtp_session *s, const char *status)
{
	size_t len = strcspn(status, "\r\n");

	session_log(s, "message from=<%s> nrcpt=%zu size=%llu result=\"%.*s\"",
		    s->mail_from, s->rcpt_tos.n,
		    (unsigned long long)s->env.content_size, (int)len, status);
}

static void cmd_data(struct smtp_session *s, const char *arg)
{
	struct smtp_data_reader rd;
	const char *status;

	if (need_helo(s, "HELO") || need_auth(s))
		return;
	if (s->rcpt_tos.n == 0) {
		reply(s, "503 Error: need RCPT command");
		return;
	}
	if (arg != NULL) {
		reply(s, "501 Syntax: DATA");
		return;
	}
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	if (!read_data(s, &rd))
		return;

	status = data_problem(s, &rd);
	s->env.content_size = rd.content;
	if (status == NULL && s->handler->handle_DATA != NULL) {
		s->env.content = spool_content(s->spool);
		spool_rewind(s->spool);
		status = s->handler->handle_DATA(s->ctx, &s->info, &s->env);
	}
	if (status == NULL)
		status = "250 OK";
	if (status[0] == '2')
		s->stats.messages++;
	else
		s->stats.rejected++;
	/* A message the handler did not take leaves nothing behind. */
	spool_reset(s->spool);
	log_message(s, status);
	data_reply(s, status);
	/* Fix: every final dot ends the transaction, whatever the reply
	 * (RFC 5321 4.1.1.4); aiosmtpd keeps the envelope after some. */
	reset_envelope(s);
}

/* --- the command loop --------------------------------------------------- */

static const struct command *find_command(const struct smtp_session *s,
					  const char *verb)
{
	for (size_t i = 0; i < N_ELEMENTS(commands); i++) {
		if (strcmp(commands[i].verb, verb) == 0 &&
		    command_offered(s, &commands[i]))
			return &commands[i];
	}
	return NULL;
}

/* call_budget - the counter of verb for command_call_limit, created with
 * the configured or default limit at its first use */
static struct call_count *call_budget(struct smtp_session *s,
				      const char *verb)
{
	const struct smtp_settings *set = s->set;
	struct call_count *c;
	long limit = set->call_limit_default;

	for (size_t i = 0; i < s->n_calls; i++) {
		if (strcmp(s->calls[i].verb, verb) == 0)
			return &s->calls[i];
	}
	for (size_t i = 0; i < set->n_call_limits; i++) {
		if (strcmp(set->call_limits[i].verb, verb) == 0)
			limit = set->call_limits[i].limit;
	}
	s->calls = xrealloc(s->calls, (s->n_calls + 1) * sizeof(*s->calls));
	c = &s->calls[s->n_calls++];
	c->verb = xstrdup(verb);
	c->left = limit;
	return c;
}

/* over_call_limit - aiosmtpd's command_call_limit: every verb, known or
 * not, may be sent only so often */
static bool over_call_limit(struct smtp_session *s, const char *verb)
{
	struct call_count *c;

	if (!s->set->call_limit_enabled)
		return false;
	c = call_budget(s, verb);
	if (c->left < 1) {
		log_warning("%s %s over the call limit for %s", s->id,
			    s->client, verb);
		smtp_io_replyf(s->io, "421 4.7.0 %s sent too many times", verb);
		end_session(s, SMTP_END_LIMIT);
		return true;
	}
	c->left--;
	return false;
}

/* unknown_command - aiosmtpd's bogus budget */
static void unknown_command(struct smtp_session *s, const char *verb)
{
	if (--s->bogus_budget < 1) {
		log_warning("%s %s too many unrecognized commands", s->id,
			    s->client);
		reply(s, "502 5.5.1 Too many unrecognized commands, goodbye.");
		end_session(s, SMTP_END_LIMIT);
		return;
	}
	smtp_io_replyf(s->io, "500 Error: command \"%s\" not recognized",
		       verb);
}

/* command_limit - the longest line this command may be */
static size_t command_limit(const struct smtp_session *s, const char *verb)
{
	size_t limit = s->set->command_size_limit;

	if (s->info.extended_smtp && strcmp(verb, "MAIL") == 0)
		limit += s->mail_extra;
	return limit;
}

/* gate - the checks between a well-formed line and its command */
static bool gate(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const char *verb = cmd->verb;

	if (cmd->line_len > command_limit(s, verb)) {
		reply(s, "500 Command line too long");
		return false;
	}
	if (s->tls_refused && strcmp(verb, "QUIT") != 0) {
		reply(s, "554 Command refused due to lack of security");
		return false;
	}
	if (s->set->require_starttls && !s->tls_active &&
	    strcmp(verb, "NOOP") != 0 && strcmp(verb, "EHLO") != 0 &&
	    strcmp(verb, "STARTTLS") != 0 && strcmp(verb, "QUIT") != 0) {
		reply(s, "530 Must issue a STARTTLS command first");
		return false;
	}
	return !over_call_limit(s, verb);
}

/* handle_line - one command line, from syntax checks to the command */
static void handle_line(struct smtp_session *s, const char *line, size_t len)
{
	const struct command *command;
	struct smtp_cmd cmd;

	memcpy(s->line, line, len);
	switch (smtp_cmd_parse(s->line, len, s->set->smtputf8, &cmd)) {
	case SMTP_CMD_EMPTY:
	case SMTP_CMD_BAD_VERB:
		reply(s, "500 Error: bad syntax");
		return;
	case SMTP_CMD_NOT_ASCII:
		reply(s, "500 Error: strict ASCII mode");
		return;
	case SMTP_CMD_OK:
		break;
	}
	if (!gate(s, &cmd))
		return;
	if ((command = find_command(s, cmd.verb)) == NULL) {
		unknown_command(s, cmd.verb);
		return;
	}
	s->stats.commands++;
	smtp_io_restart_timer(s->io);
	command->run(s, cmd.arg);
}

static enum smtp_session_end io_end(const struct smtp_session *s,
				    enum smtp_io_status st)
{
	if (st == SMTP_IO_EOF)
		return SMTP_END_EOF;
	switch (smtp_io_errno(s->io)) {
	case ETIMEDOUT:
		return SMTP_END_TIMEOUT;
	case ECANCELED:
		return SMTP_END_SHUTDOWN;
	default:
		return SMTP_END_ERROR;
	}
}

enum smtp_session_end smtp_session_run(struct smtp_session *s)
{
	enum smtp_io_status st;
	const char *line;
	size_t len;

	smtp_io_replyf(s->io, "220 %s %s", s->set->hostname, s->set->ident);
	while (!s->ended) {
		st = smtp_io_read_line(s->io, s->line_limit, &line, &len);
		if (st == SMTP_IO_TOO_LONG) {
			reply(s, "500 Command line too long");
			continue;
		}
		if (st != SMTP_IO_OK) {
			end_session(s, io_end(s, st));
			break;
		}
		handle_line(s, line, len);
	}
	if (s->end == SMTP_END_SHUTDOWN)
		reply(s, "421 4.3.2 Service shutting down");
	if (s->end != SMTP_END_ERROR && s->end != SMTP_END_TIMEOUT &&
	    s->end != SMTP_END_TLS)
		(void)smtp_io_flush(s->io);
	return s->end;
}

/* --- life cycle ---------------------------------------------------------- */

/* client_name - "addr:port", "[v6addr]:port" or "unix" for log lines */
static char *client_name(const struct aiosmtpd_session *peer)
{
	struct sbuf sb;

	sbuf_init(&sb, 64);
	if (peer->peer_family == AF_INET6)
		sbuf_printf(&sb, "[%s]:%u", peer->peer_addr, peer->peer_port);
	else if (peer->peer_family == AF_INET)
		sbuf_printf(&sb, "%s:%u", peer->peer_addr, peer->peer_port);
	else
		sbuf_puts(&sb, "unix");
	return sbuf_detach(&sb);
}

struct smtp_session *smtp_session_new(const struct smtp_settings *set,
				      const struct aiosmtpd_handler *handler,
				      void *handler_ctx, struct smtp_io *io,
				      struct spool *spool,
				      const struct aiosmtpd_session *peer)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	size_t longest = set->command_size_limit + 36;

	s->set = set;
	s->handler = handler;
	s->ctx = handler_ctx;
	s->io = io;
	s->spool = spool;
	s->id = xstrdup(peer->id != NULL ? peer->id : "-");
	s->peer_addr = xstrdup(peer->peer_addr != NULL ? peer->peer_addr : "");
	s->client = client_name(peer);
	s->info = *peer;
	s->info.id = s->id;
	s->info.peer_addr = s->peer_addr;
	s->info.host_name = NULL;
	s->info.extended_smtp = false;
	s->info.lmtp = set->lmtp;
	s->info.decode_data = set->decode_data;
	s->info.local_name = set->hostname;
	s->info.auth_user = NULL;
	s->tls_active = peer->tls_version != NULL;
	s->tls = (struct smtp_tls_state){peer->tls_version, peer->tls_cipher,
					 peer->tls_bits};
	s->bogus_budget = BOGUS_LIMIT;
	s->line_limit = longest > READER_LINE_LIMIT ? longest
						    : READER_LINE_LIMIT;
	s->line = xmalloc(s->line_limit + 2);
	sync_envelope(s);
	return s;
}

void smtp_session_set_tls(struct smtp_session *s,
			  const struct smtp_tls_ops *ops, void *ctx)
{
	s->tls_ops = ops;
	s->tls_ctx = ctx;
}

void smtp_session_set_auth(struct smtp_session *s,
			   const struct smtp_auth_ops *ops, void *ctx)
{
	s->auth_ops = ops;
	s->auth_ctx = ctx;
}

bool smtp_session_proxy(struct smtp_session *s,
			const struct aiosmtpd_proxy_data *proxy)
{
	s->info.proxy = proxy;
	if (s->handler->handle_PROXY == NULL)
		return true;
	return s->handler->handle_PROXY(s->ctx, &s->info, proxy);
}

const struct smtp_session_stats *
smtp_session_stats(const struct smtp_session *s)
{
	return &s->stats;
}

void smtp_session_free(struct smtp_session **sp)
{
	struct smtp_session *s = *sp;

	if (s == NULL)
		return;
	if (s->handler->handle_CLOSE != NULL)
		s->handler->handle_CLOSE(s->ctx, &s->info);
	reset_envelope(s);
	list_free(&s->mail_options);
	list_free(&s->rcpt_tos);
	list_free(&s->rcpt_options);
	for (size_t i = 0; i < s->n_calls; i++)
		free(s->calls[i].verb);
	free(s->calls);
	free(s->host_name);
	free(s->auth_user);
	free(s->line);
	free(s->id);
	free(s->peer_addr);
	free(s->client);
	free(s);
	*sp = NULL;
}
