/*
 * smtp_addr.c - aiosmtpd's path parser (email._header_value_parser) in C
 *
 * The parse functions below follow Python 3.11's get_*() functions one for
 * one and carry their names, so that the two can be read side by side.
 * Each takes the unparsed text as a struct text, consumes a prefix of it on
 * success and leaves it alone on failure, as Python's (token, value) pairs
 * do.  An enum status stands for the exception Python would raise; which
 * one matters, because aiosmtpd answers each kind differently.
 *
 * Text is held the way Python holds it after decoding the command line with
 * surrogateescape ("internal form"): valid UTF-8 characters as they are,
 * every other byte as the three-byte UTF-8 form of the lone surrogate
 * U+DC80..U+DCFF.  That keeps character boundaries, and so Python's idea of
 * white space, intact when text is cut, unquoted and joined again.  The
 * address is converted back to bytes at the end.
 *
 * Only as much of the token tree is built as the addr_spec property reads:
 * comments and folding white space are kept flat as their str() text, and
 * obsolete routes are checked but not stored.  Nothing recurses deeper than
 * the grammar's fixed nesting, so no input can exhaust the stack.
 *
 * Known differences from Python are marked XXX: deeply nested comments
 * (get_comment), encoded words in other charsets (charset_kind) and the
 * two results the interface cannot express (finish).
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "sbuf.h"
#include "smtp_addr.h"

/* The exception Python would raise; ST_OK when it would not. */
enum status {
	ST_OK,
	ST_PARSE,      /* email.errors.HeaderParseError */
	ST_STR_INDEX,  /* IndexError: string index out of range */
	ST_LIST_INDEX, /* IndexError: list index out of range */
	ST_ATTRIBUTE,  /* AttributeError: a defect has no 'value' */
	ST_UNBOUND,    /* UnboundLocalError in _get_ptext_to_endchars */
};

/* Membership of the parser's ASCII character sets. */
enum {
	C_WSP = 0x01,
	C_SPECIAL = 0x02,
	C_CFWS_LEADER = 0x04,
	C_DOT_ATOM_END = 0x08,
	C_PHRASE_END = 0x10,
};
#define C_ATOM_END (C_WSP | C_SPECIAL)
#define C_ENDS (C_SPECIAL | C_DOT_ATOM_END | C_PHRASE_END)

static const unsigned char cclass[256] = {
        [' '] = C_WSP | C_CFWS_LEADER | C_DOT_ATOM_END,
        ['\t'] = C_WSP | C_CFWS_LEADER | C_DOT_ATOM_END,
        ['('] = C_SPECIAL | C_CFWS_LEADER | C_DOT_ATOM_END,
        ['"'] = C_SPECIAL | C_DOT_ATOM_END,
        ['.'] = C_SPECIAL,
        [')'] = C_ENDS,
        ['<'] = C_ENDS,
        ['>'] = C_ENDS,
        ['@'] = C_ENDS,
        [','] = C_ENDS,
        [':'] = C_ENDS,
        [';'] = C_ENDS,
        ['['] = C_ENDS,
        [']'] = C_ENDS,
        ['\\'] = C_ENDS,
};

/* The unparsed rest of a string: Python's "value". */
struct text {
	const char *s;
	size_t n;
};

enum tok_type {
	/* terminals */
	TT_VALUE,  /* ValueTerminal: atext, vtext, ptext, '@', ... */
	TT_DOT,    /* the DOT ValueTerminal */
	TT_FWS,    /* WhiteSpaceTerminal: value ' ', str as written */
	TT_EW_FWS, /* EWWhiteSpaceTerminal: value and str '' */
	TT_CFWS,   /* CFWSList, kept flat as its str() */
	TT_DEFECT, /* InvalidHeaderDefect that get_domain_literal adds */
	/* token lists */
	TT_LIST, /* plain TokenList */
	TT_ATOM,
	TT_DOT_ATOM,
	TT_DOT_ATOM_TEXT,
	TT_BARE_QS,
	TT_QS,
	TT_EW,
	TT_OBS_LOCAL_PART,
	TT_LOCAL_PART,
	TT_DOMAIN_LITERAL,
	TT_DOMAIN,
	TT_ADDR_SPEC,
};

struct tok {
	enum tok_type type;
	const char *text; /* terminals and TT_CFWS: the str() text */
	size_t len;
	struct tok **kids; /* lists */
	size_t n, cap;
};

/* Python's DOT singleton. */
static struct tok dot_tok = {.type = TT_DOT, .text = ".", .len = 1};

struct chunk {
	struct chunk *next;
	size_t used, size;
	max_align_t data[];
};

/* Everything one parse allocates lives in the arena and dies with it. */
struct ctx {
	struct chunk *chunks;
	struct sbuf cfws; /* get_cfws() builds its text here */
};

typedef enum status parse_fn(struct ctx *c, struct text *v, struct tok **out);

#define ARENA_CHUNK 4096

static void *arena_alloc(struct ctx *c, size_t size)
{
	struct chunk *ch = c->chunks;
	size_t align = sizeof(max_align_t);
	void *p;

	size = (size + align - 1) / align * align;
	if (ch == NULL || ch->size - ch->used < size) {
		size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;

		ch = xmalloc(sizeof(*ch) + cap);
		ch->next = c->chunks;
		ch->used = 0;
		ch->size = cap;
		c->chunks = ch;
	}
	p = (char *)ch->data + ch->used;
	ch->used += size;
	return p;
}

static const char *arena_text(struct ctx *c, const char *s, size_t n)
{
	char *p = arena_alloc(c, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static void arena_free(struct ctx *c)
{
	struct chunk *ch, *next;

	for (ch = c->chunks; ch != NULL; ch = next) {
		next = ch->next;
		free(ch);
	}
	c->chunks = NULL;
}

static struct tok *tok_new(struct ctx *c, enum tok_type type, const char *text,
                           size_t len)
{
	struct tok *t = arena_alloc(c, sizeof(*t));

	memset(t, 0, sizeof(*t));
	t->type = type;
	t->text = text;
	t->len = len;
	return t;
}

static bool is_list(const struct tok *t)
{
	return t->type >= TT_LIST;
}

static void tok_append(struct ctx *c, struct tok *list, struct tok *kid)
{
	if (list->n == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 4;
		struct tok **kids = arena_alloc(c, cap * sizeof(*kids));

		if (list->n > 0)
			memcpy(kids, list->kids, list->n * sizeof(*kids));
		list->kids = kids;
		list->cap = cap;
	}
	list->kids[list->n++] = kid;
}

/* tok_prepend - Python's token[:0] = [kid] */
static void tok_prepend(struct ctx *c, struct tok *list, struct tok *kid)
{
	tok_append(c, list, kid);
	memmove(list->kids + 1, list->kids,
	        (list->n - 1) * sizeof(*list->kids));
	list->kids[0] = kid;
}

/* tok_slice - Python's TokenList(t[from:to]); shares t's kids */
static struct tok *tok_slice(struct ctx *c, const struct tok *t, size_t from,
                             size_t to)
{
	struct tok *s = tok_new(c, TT_LIST, NULL, 0);

	s->kids = t->kids + from;
	s->n = s->cap = to - from;
	return s;
}

static struct tok *tok_last(const struct tok *list)
{
	return list->kids[list->n - 1];
}

/*
 * Characters in internal form
 */

static bool is_cont(unsigned char b)
{
	return b >= 0x80 && b <= 0xbf;
}

/* utf8_len - length of the valid UTF-8 character at s, 0 if none there */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (s[0] == 0xe0 || s[0] == 0xf0)
		lo = s[0] == 0xe0 ? 0xa0 : 0x90; /* overlong forms */
	else if (s[0] == 0xed)
		hi = 0x9f; /* surrogates */
	else if (s[0] == 0xf4)
		hi = 0x8f; /* beyond U+10FFFF */
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (!is_cont(s[i]))
			return 0;
	return len;
}

/* is_escape - does s start with the internal form of an undecodable byte? */
static bool is_escape(const unsigned char *s, size_t n)
{
	return n >= 3 && s[0] == 0xed && (s[1] == 0xb2 || s[1] == 0xb3);
}

static unsigned char escape_byte(const unsigned char *s)
{
	return (unsigned char)(0x80 | (s[1] & 1) << 6 | (s[2] & 0x3f));
}

/* put_escape - append byte b (>= 0x80) as surrogateescape makes it, U+DCxx */
static void put_escape(struct sbuf *sb, unsigned char b)
{
	unsigned int cp = 0xdc00 + b;
	char e[3];

	e[0] = (char)0xed;
	e[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	e[2] = (char)(0x80 | (cp & 0x3f));
	sbuf_append(sb, e, sizeof(e));
}

/* decode_utf8 - bytes.decode('utf-8', 'surrogateescape') into internal form */
static void decode_utf8(struct sbuf *sb, const unsigned char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		k = utf8_len(s + i, n - i);
		if (k > 0) {
			sbuf_append(sb, s + i, k);
			i += k;
		} else {
			put_escape(sb, s[i++]);
		}
	}
}

/* ws_len - length of the white space character (str.isspace()) at s, or 0 */
static size_t ws_len(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;

	if (n == 0)
		return 0;
	if ((s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20))
		return 1;
	if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
		return 2;
	if (n < 3)
		return 0;
	if (s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80)
		return 3; /* U+1680 */
	if (s[0] == 0xe2 && s[1] == 0x80 &&
	    ((s[2] >= 0x80 && s[2] <= 0x8a) || s[2] == 0xa8 || s[2] == 0xa9 ||
	     s[2] == 0xaf))
		return 3; /* U+2000..200A, U+2028, U+2029, U+202F */
	if (s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f)
		return 3; /* U+205F */
	if (s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80)
		return 3; /* U+3000 */
	return 0;
}

/* ws_span - how much str.lstrip() would remove */
static size_t ws_span(const char *s, size_t n)
{
	size_t i = 0, k;

	while ((k = ws_len(s + i, n - i)) > 0)
		i += k;
	return i;
}

static bool is(const struct text *v, unsigned int set)
{
	return v->n > 0 && (cclass[(unsigned char)v->s[0]] & set) != 0;
}

static bool at(const struct text *v, char ch)
{
	return v->n > 0 && v->s[0] == ch;
}

static bool starts_ew(const struct text *v)
{
	return v->n >= 2 && v->s[0] == '=' && v->s[1] == '?';
}

static void skip(struct text *v, size_t k)
{
	v->s += k;
	v->n -= k;
}

/* hex_value - the value of a hex digit (string.hexdigits), or -1 */
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

static bool is_hex(char ch)
{
	return hex_value(ch) >= 0;
}

/* find_qe - the first "?=" in s[0..n), or NULL */
static const char *find_qe(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i++)
		if (s[i] == '?' && s[i + 1] == '=')
			return s + i;
	return NULL;
}

static size_t count_char(const char *s, size_t n, char ch)
{
	size_t i, count = 0;

	for (i = 0; i < n; i++)
		count += s[i] == ch;
	return count;
}

/* quote_string - Python's quote_string(): double quotes, \ and " escaped */
static void quote_string(struct sbuf *sb, const char *s, size_t n)
{
	size_t i;

	sbuf_putc(sb, '"');
	for (i = 0; i < n; i++) {
		if (s[i] == '\\' || s[i] == '"')
			sbuf_putc(sb, '\\');
		sbuf_putc(sb, s[i]);
	}
	sbuf_putc(sb, '"');
}

/*
 * Token properties: value, str() and the address properties
 */

static void tok_str(const struct tok *t, struct sbuf *sb);

static void tok_str_kids(const struct tok *t, struct sbuf *sb)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		tok_str(t->kids[i], sb);
}

/* tok_str - str(token): the canonical text, what obs-local-part reparses */
static void tok_str(const struct tok *t, struct sbuf *sb)
{
	struct sbuf inner;

	switch (t->type) {
	case TT_EW_FWS:
		return;
	case TT_DEFECT:
		/* Defects only occur in domains, which are never str()ed. */
		ASSERT(t->type != TT_DEFECT);
		return;
	case TT_BARE_QS:
		sbuf_init(&inner, 32);
		tok_str_kids(t, &inner);
		quote_string(sb, inner.data, inner.len);
		sbuf_free(&inner);
		return;
	default:
		break;
	}
	if (is_list(t))
		tok_str_kids(t, sb);
	else
		sbuf_append(sb, t->text, t->len);
}

/* tok_value - the value property; ST_ATTRIBUTE where Python fails on it */
static enum status tok_value(const struct tok *t, struct sbuf *sb)
{
	enum status st;
	size_t i;

	switch (t->type) {
	case TT_FWS:
	case TT_CFWS:
		sbuf_putc(sb, ' ');
		return ST_OK;
	case TT_EW_FWS:
		return ST_OK;
	case TT_DEFECT:
		return ST_ATTRIBUTE;
	case TT_BARE_QS:
		tok_str_kids(t, sb);
		return ST_OK;
	case TT_VALUE:
	case TT_DOT:
		sbuf_append(sb, t->text, t->len);
		return ST_OK;
	default:
		break;
	}
	for (i = 0; i < t->n; i++) {
		st = tok_value(t->kids[i], sb);
		if (st != ST_OK)
			return st;
	}
	return ST_OK;
}

/*
 * local_part - LocalPart.local_part: the value with the CFWS around dots
 * left out.  Python indexes into neighbouring token lists here and fails
 * on empty ones (an encoded word that decodes to nothing).
 */
static enum status local_part(struct ctx *c, const struct tok *lp,
                              struct sbuf *sb)
{
	const struct tok *top = lp->kids[0];
	struct tok **res, *tok, *last = &dot_tok;
	bool is_tl, last_is_tl = false;
	size_t i, n = 0;
	enum status st;

	res = arena_alloc(c, (top->n + 2) * sizeof(*res));
	res[n++] = &dot_tok;
	for (i = 0; i <= top->n; i++) {
		tok = i < top->n ? top->kids[i] : &dot_tok;
		if (tok->type == TT_CFWS)
			continue;
		if (last_is_tl && tok->type == TT_DOT) {
			if (last->n == 0)
				return ST_LIST_INDEX;
			if (tok_last(last)->type == TT_CFWS)
				res[n - 1] = tok_slice(c, last, 0, last->n - 1);
		}
		is_tl = is_list(tok);
		if (is_tl && last->type == TT_DOT) {
			if (tok->n == 0)
				return ST_LIST_INDEX;
			if (tok->kids[0]->type == TT_CFWS)
				tok = tok_slice(c, tok, 1, tok->n);
		}
		res[n++] = tok;
		last = tok;
		last_is_tl = is_tl;
	}
	for (i = 1; i + 1 < n; i++) {
		st = tok_value(res[i], sb);
		if (st != ST_OK)
			return st;
	}
	return ST_OK;
}

/* domain - Domain.domain: the value without any white space */
static enum status domain(const struct tok *dom, struct sbuf *sb)
{
	struct sbuf value;
	enum status st;
	size_t i = 0, k;

	sbuf_init(&value, 64);
	st = tok_value(dom, &value);
	while (st == ST_OK && i < value.len) {
		k = ws_len(value.data + i, value.len - i);
		if (k == 0)
			sbuf_putc(sb, value.data[i++]);
		i += k;
	}
	sbuf_free(&value);
	return st;
}

static bool has_dot_atom_end(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cclass[(unsigned char)s[i]] & C_DOT_ATOM_END)
			return true;
	return false;
}

/* addr_spec - AddrSpec.addr_spec: local part, quoted if it must be, @domain */
static enum status addr_spec(struct ctx *c, const struct tok *as,
                             struct sbuf *sb)
{
	struct sbuf lp;
	enum status st;

	sbuf_init(&lp, 64);
	st = local_part(c, as->kids[0], &lp);
	if (st == ST_OK) {
		if (has_dot_atom_end(lp.data, lp.len))
			quote_string(sb, lp.data, lp.len);
		else
			sbuf_append(sb, lp.data, lp.len);
	}
	sbuf_free(&lp);
	if (st == ST_OK && as->n >= 3) {
		sbuf_putc(sb, '@');
		st = domain(as->kids[2], sb);
	}
	return st;
}

/* angle_addr_spec - AngleAddr.addr_spec: "<>" or "" for empty parts */
static enum status angle_addr_spec(struct ctx *c, const struct tok *as,
                                   struct sbuf *sb)
{
	struct sbuf lp;
	enum status st;

	if (as == NULL) {
		sbuf_puts(sb, "<>");
		return ST_OK;
	}
	sbuf_init(&lp, 64);
	st = local_part(c, as->kids[0], &lp);
	if (st == ST_OK && lp.len == 0)
		sbuf_puts(sb, "\"\"");
	sbuf_free(&lp);
	return st == ST_OK ? addr_spec(c, as, sb) : st;
}

/*
 * Encoded words (RFC 2047), as email._encoded_words.decode() does them
 */

enum charset {
	CS_OTHER, /* unknown: bytes.decode('ascii', 'surrogateescape') */
	CS_UTF8,
	CS_UTF8_SIG,
	CS_ASCII,
	CS_LATIN1,
	CS_BAD, /* ValueError: embedded null character */
};

/* Python's encodings.aliases entries for the codecs implemented here. */
static const struct {
	const char *name;
	enum charset cs;
} charset_aliases[] = {
        {"cp65001", CS_UTF8},
        {"u8", CS_UTF8},
        {"utf", CS_UTF8},
        {"utf8", CS_UTF8},
        {"utf8_ucs2", CS_UTF8},
        {"utf8_ucs4", CS_UTF8},
        {"646", CS_ASCII},
        {"ansi_x3.4_1968", CS_ASCII},
        {"ansi_x3.4_1986", CS_ASCII},
        {"ansi_x3_4_1968", CS_ASCII},
        {"cp367", CS_ASCII},
        {"csascii", CS_ASCII},
        {"ibm367", CS_ASCII},
        {"iso646_us", CS_ASCII},
        {"iso_646.irv_1991", CS_ASCII},
        {"iso_ir_6", CS_ASCII},
        {"us", CS_ASCII},
        {"us_ascii", CS_ASCII},
        {"8859", CS_LATIN1},
        {"cp819", CS_LATIN1},
        {"csisolatin1", CS_LATIN1},
        {"ibm819", CS_LATIN1},
        {"iso8859", CS_LATIN1},
        {"iso8859_1", CS_LATIN1},
        {"iso_8859_1", CS_LATIN1},
        {"iso_8859_1_1987", CS_LATIN1},
        {"iso_ir_100", CS_LATIN1},
        {"l1", CS_LATIN1},
        {"latin", CS_LATIN1},
        {"latin1", CS_LATIN1},
};

/* The module names in Python's encodings package for the same codecs. */
static const struct {
	const char *name;
	enum charset cs;
} charset_modules[] = {
        {"utf_8", CS_UTF8},
        {"utf_8_sig", CS_UTF8_SIG},
        {"ascii", CS_ASCII},
        {"latin_1", CS_LATIN1},
};

static enum charset charset_alias(const char *norm)
{
	size_t i;

	for (i = 0; i < N_ELEMENTS(charset_aliases); i++)
		if (strcmp(norm, charset_aliases[i].name) == 0)
			return charset_aliases[i].cs;
	return CS_OTHER;
}

static enum charset charset_module(const char *norm)
{
	size_t i;

	for (i = 0; i < N_ELEMENTS(charset_modules); i++)
		if (strcmp(norm, charset_modules[i].name) == 0)
			return charset_modules[i].cs;
	return CS_OTHER;
}

/*
 * normalize_charset - the codec registry's name normalization: ASCII
 * letters, digits and '.' kept (lowercased), each run of anything else
 * made one '_' when something follows.  Returns false when the result is
 * too long to name any codec handled here.
 */
static bool normalize_charset(const char *s, size_t n, char *norm, size_t size)
{
	size_t i, len = 0;
	bool punct = false;
	char ch;

	for (i = 0; i < n; i++) {
		ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.')) {
			punct = true;
			continue;
		}
		if (len + 2 >= size)
			return false;
		if (punct && len > 0)
			norm[len++] = '_';
		punct = false;
		norm[len++] = ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
	}
	norm[len] = '\0';
	return true;
}

/*
 * charset_kind - the codec bytes.decode(charset) picks: an alias of the
 * normalized name (or of it with '.' made '_'), else the module of that
 * name.  Names that Python cannot even pass to the codec registry fail
 * first: undecodable bytes with UnicodeEncodeError (which decode() turns
 * into the unknown-charset fallback), NUL with ValueError.
 *
 * XXX Only UTF-8, UTF-8 with BOM, ASCII and Latin-1 are implemented.  An
 * encoded word in any other charset that Python has a codec for (such as
 * iso-8859-2, windows-1252, koi8-r or utf-16) is decoded here as unknown
 * bytes, where Python would decode it with that codec.  No real client
 * puts encoded words into an SMTP path; should one matter, the fix is to
 * add the codec with Python's error handling (strict, then
 * surrogateescape) and its names to charset_aliases.
 */
static enum charset charset_kind(const char *s, size_t n)
{
	char norm[32];
	enum charset cs;
	size_t i;

	for (i = 0; i < n; i++)
		if (is_escape((const unsigned char *)s + i, n - i))
			return CS_OTHER;
	if (memchr(s, '\0', n) != NULL)
		return CS_BAD;
	if (!normalize_charset(s, n, norm, sizeof(norm)))
		return CS_OTHER;
	cs = charset_alias(norm);
	if (cs != CS_OTHER)
		return cs;
	if (strchr(norm, '.') == NULL)
		return charset_module(norm);
	for (i = 0; norm[i] != '\0'; i++)
		if (norm[i] == '.')
			norm[i] = '_';
	return charset_alias(norm);
}

/* put_latin1 - append byte b decoded as Latin-1, i.e. as U+0000..U+00FF */
static void put_latin1(struct sbuf *sb, unsigned char b)
{
	if (b >= 0x80) {
		sbuf_putc(sb, (char)(0xc0 | b >> 6));
		b = 0x80 | (b & 0x3f);
	}
	sbuf_putc(sb, (char)b);
}

/* decode_charset - bytes.decode(charset), surrogateescape on failure */
static void decode_charset(struct sbuf *sb, enum charset cs,
                           const unsigned char *s, size_t n)
{
	size_t i;

	switch (cs) {
	case CS_UTF8_SIG:
		if (n >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf) {
			s += 3;
			n -= 3;
		}
		/* fall through */
	case CS_UTF8:
		decode_utf8(sb, s, n);
		return;
	case CS_LATIN1:
		for (i = 0; i < n; i++)
			put_latin1(sb, s[i]);
		return;
	default:
		for (i = 0; i < n; i++) {
			if (s[i] >= 0x80)
				put_escape(sb, s[i]);
			else
				sbuf_putc(sb, (char)s[i]);
		}
		return;
	}
}

/* decode_q - _encoded_words.decode_q(): '_' is a space, =XX a byte */
static void decode_q(struct sbuf *out, const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (s[i] == '=' && i + 2 < n && is_hex((char)s[i + 1]) &&
		    is_hex((char)s[i + 2])) {
			sbuf_putc(out, (char)(hex_value((char)s[i + 1]) << 4 |
			                      hex_value((char)s[i + 2])));
			i += 3;
		} else {
			sbuf_putc(out, s[i] == '_' ? ' ' : (char)s[i]);
			i++;
		}
	}
}

static int b64_digit(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

static void b64_put(struct sbuf *out, int *quad, unsigned int *left, int digit)
{
	unsigned int d = (unsigned int)digit;

	switch ((*quad)++) {
	case 0:
		*left = d;
		return;
	case 1:
		sbuf_putc(out, (char)(*left << 2 | d >> 4));
		*left = d & 0x0f;
		return;
	case 2:
		sbuf_putc(out, (char)(*left << 4 | d >> 2));
		*left = d & 0x03;
		return;
	default:
		sbuf_putc(out, (char)(*left << 6 | d));
		*quad = 0;
		return;
	}
}

/*
 * a2b_base64 - binascii.a2b_base64() as in Python 3.11: padding after two
 * or three digits ends the data, other bytes are skipped unless strict.
 * Returns false where Python raises binascii.Error.
 */
static bool a2b_base64(struct sbuf *out, const unsigned char *s, size_t n,
                       bool strict)
{
	int quad = 0, pads = 0, digit;
	unsigned int left = 0;
	bool padding = false;
	size_t i;

	if (strict && n > 0 && s[0] == '=')
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '=') {
			padding = true;
			if (quad >= 2 && quad + ++pads >= 4)
				return !(strict && i + 1 < n);
			continue;
		}
		digit = b64_digit(s[i]);
		if (digit < 0) {
			if (strict)
				return false;
			continue;
		}
		if (strict && padding)
			return false;
		pads = 0;
		b64_put(out, &quad, &left, digit);
	}
	return quad == 0;
}

/* decode_b - _encoded_words.decode_b(): three tries, then the raw text */
static void decode_b(struct sbuf *out, const unsigned char *s, size_t n)
{
	struct sbuf padded;
	size_t pad = n % 4 ? 4 - n % 4 : 0;
	bool ok;

	sbuf_init(&padded, n + 4);
	sbuf_append(&padded, s, n);
	sbuf_append(&padded, "===", pad);
	ok = a2b_base64(out, (const unsigned char *)padded.data, padded.len,
	                true);
	sbuf_free(&padded);
	if (ok)
		return;
	sbuf_reset(out);
	if (a2b_base64(out, s, n, false))
		return;
	sbuf_reset(out);
	sbuf_init(&padded, n + 2);
	sbuf_append(&padded, s, n);
	sbuf_append(&padded, "==", 2);
	ok = a2b_base64(out, (const unsigned char *)padded.data, padded.len,
	                false);
	sbuf_free(&padded);
	if (ok)
		return;
	sbuf_reset(out);
	sbuf_append(out, s, n);
}

/* text_bytes - str.encode('ascii', 'surrogateescape'); false on error */
static bool text_bytes(struct sbuf *out, const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0;

	while (i < n) {
		if (s[i] < 0x80) {
			sbuf_putc(out, (char)s[i++]);
		} else if (is_escape(s + i, n - i)) {
			sbuf_putc(out, (char)escape_byte(s + i));
			i += 3;
		} else {
			return false;
		}
	}
	return true;
}

/* ew_tokens - the tokens get_encoded_word() makes of the decoded text */
static struct tok *ew_tokens(struct ctx *c, const char *s, size_t n)
{
	struct tok *ew = tok_new(c, TT_EW, NULL, 0);
	enum tok_type type;
	size_t k;

	while (n > 0) {
		if (cclass[(unsigned char)s[0]] & C_WSP) {
			type = TT_FWS;
			k = ws_span(s, n);
		} else {
			type = TT_VALUE;
			for (k = 0; k < n && s[k] != ' ' && s[k] != '\t'; k++)
				;
		}
		tok_append(c, ew, tok_new(c, type, s, k));
		s += k;
		n -= k;
	}
	return ew;
}

/*
 * ew_decode - _encoded_words.decode('=?' + tok + '?='): the text must
 * split at '?' into exactly charset, 'q' or 'b' and ASCII (or escaped)
 * encoded text; any failure is HeaderParseError to the parser.
 */
static enum status ew_decode(struct ctx *c, const struct text *tok,
                             struct tok **out)
{
	const char *q1, *q2, *data, *end = tok->s + tok->n, *star;
	struct sbuf raw, bytes, text;
	enum charset cs;
	char cte;

	if (count_char(tok->s, tok->n, '?') != 2)
		return ST_PARSE;
	q1 = memchr(tok->s, '?', tok->n);
	q2 = memchr(q1 + 1, '?', (size_t)(end - q1 - 1));
	data = q2 + 1;
	cte = q2 - q1 == 2 ? (char)(q1[1] | 0x20) : '\0';
	if (cte != 'q' && cte != 'b')
		return ST_PARSE;
	star = memchr(tok->s, '*', (size_t)(q1 - tok->s));
	cs = charset_kind(tok->s, (size_t)((star ? star : q1) - tok->s));
	sbuf_init(&raw, tok->n);
	if (cs == CS_BAD || !text_bytes(&raw, data, (size_t)(end - data))) {
		sbuf_free(&raw);
		return ST_PARSE;
	}
	sbuf_init(&bytes, raw.len + 1);
	if (cte == 'q')
		decode_q(&bytes, (const unsigned char *)raw.data, raw.len);
	else
		decode_b(&bytes, (const unsigned char *)raw.data, raw.len);
	sbuf_init(&text, bytes.len * 3 + 1);
	decode_charset(&text, cs, (const unsigned char *)bytes.data, bytes.len);
	*out = ew_tokens(c, arena_text(c, text.data, text.len), text.len);
	sbuf_free(&raw);
	sbuf_free(&bytes);
	sbuf_free(&text);
	return ST_OK;
}

/*
 * get_encoded_word - "=?" up to the next "?=", anywhere in the rest of
 * the text; when "?=" is directly followed by two hex digits and the word
 * has fewer than two '?', that "?=" was taken for part of a =XX escape and
 * the word runs on to the next "?=" (or the end).
 */
static enum status get_encoded_word(struct ctx *c, struct text *v,
                                    struct tok **out)
{
	const char *end = v->s + v->n, *q;
	struct text tok, rest;
	enum status st;

	if (!starts_ew(v))
		return ST_PARSE;
	tok.s = v->s + 2;
	q = find_qe(tok.s, v->n - 2);
	if (q == NULL)
		return ST_PARSE;
	tok.n = (size_t)(q - tok.s);
	rest.s = q + 2;
	if (end - rest.s > 1 && is_hex(rest.s[0]) && is_hex(rest.s[1]) &&
	    count_char(tok.s, tok.n, '?') < 2) {
		q = find_qe(rest.s, (size_t)(end - rest.s));
		tok.n = (size_t)((q ? q : end) - tok.s);
		rest.s = q ? q + 2 : end;
	}
	rest.n = (size_t)(end - rest.s);
	st = ew_decode(c, &tok, out);
	if (st == ST_OK)
		*v = rest;
	return st;
}

/*
 * The parser
 */

/* get_fws - folding white space: as much as str.lstrip() takes */
static struct tok *get_fws(struct ctx *c, struct text *v)
{
	size_t k = ws_span(v->s, v->n);
	struct tok *t = tok_new(c, TT_FWS, v->s, k);

	skip(v, k);
	return t;
}

/*
 * ptext_to_endchars - _get_ptext_to_endchars(): the text up to the next
 * space or tab, or an unescaped end character, with quoted pairs undone.
 * A backslash that ends the run is dropped.  Python fails with
 * UnboundLocalError when the run is empty.
 *
 * Python splits off the text up to the white space first; this finds
 * the end in one scan instead and copies only what it consumes, so that
 * a run of nested comments, each ending a few bytes in, costs time and
 * memory linear in the input (splitting first made "(a(a(a..." quadratic
 * in both: 125 MB for a 32 KiB command).
 */
static enum status ptext_to_endchars(struct ctx *c, struct text *v, char end1,
                                     char end2, struct text *out)
{
	size_t pos, len = 0;
	bool escape = false;
	char *buf, ch;

	if (v->n == 0 || v->s[0] == ' ' || v->s[0] == '\t')
		return ST_UNBOUND;
	for (pos = 0; pos < v->n; pos++) {
		ch = v->s[pos];
		if (ch == ' ' || ch == '\t')
			break;
		if (escape)
			escape = false;
		else if (ch == '\\')
			escape = true;
		else if (ch == end1 || ch == end2)
			break;
	}
	buf = arena_alloc(c, pos + 1);
	escape = false;
	for (size_t i = 0; i < pos; i++) {
		ch = v->s[i];
		if (ch == '\\' && !escape) {
			escape = true;
			continue;
		}
		escape = false;
		buf[len++] = ch;
	}
	buf[len] = '\0';
	out->s = buf;
	out->n = len;
	skip(v, pos);
	return ST_OK;
}

static enum status get_ptext_tok(struct ctx *c, struct text *v, char end1,
                                 char end2, struct tok **out)
{
	struct text ptext;
	enum status st = ptext_to_endchars(c, v, end1, end2, &ptext);

	if (st == ST_OK)
		*out = tok_new(c, TT_VALUE, ptext.s, ptext.n);
	return st;
}

static enum status get_qcontent(struct ctx *c, struct text *v, struct tok **out)
{
	return get_ptext_tok(c, v, '"', '"', out);
}

static enum status get_dtext(struct ctx *c, struct text *v, struct tok **out)
{
	return get_ptext_tok(c, v, '[', ']', out);
}

/* put_comment_text - ctext as Comment.quote() writes it back */
static void put_comment_text(struct sbuf *sb, const struct text *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (t->s[i] == '\\' || t->s[i] == '(' || t->s[i] == ')')
			sbuf_putc(sb, '\\');
		sbuf_putc(sb, t->s[i]);
	}
}

/*
 * get_comment - a comment, nested ones included, appended to sb as str()
 * writes it.  Python recurses per level; a depth count does the same here.
 * Comments left open at the end of the text are closed.
 *
 * XXX Python raises RecursionError where nesting exhausts its stack of
 * 1000 frames: str() of a comment (for the obs-local-part reparse) takes
 * about four frames per level, so "<a" + 250 "(" + "x" + 250 ")" + "b@c>",
 * 507 bytes and within the 538 bytes aiosmtpd allows a MAIL line after
 * EHLO, fails in aiosmtpd and parses here.  The exact depth depends on how deep
 * aiosmtpd's own call chain is at that moment, so it cannot be reproduced
 * exactly; if it ever matters, the fix is a fixed depth limit with its own
 * result for "500 Error: (RecursionError) maximum recursion depth
 * exceeded".
 */
static void get_comment(struct ctx *c, struct text *v, struct sbuf *sb)
{
	struct text ptext;
	size_t depth = 0, k;
	enum status st;

	do {
		if (v->s[0] == '(' || v->s[0] == ')') {
			depth = v->s[0] == '(' ? depth + 1 : depth - 1;
			sbuf_putc(sb, v->s[0]);
			skip(v, 1);
		} else if (is(v, C_WSP)) {
			k = ws_span(v->s, v->n);
			sbuf_append(sb, v->s, k);
			skip(v, k);
		} else {
			st = ptext_to_endchars(c, v, '(', ')', &ptext);
			ASSERT(st == ST_OK); /* v starts with ctext */
			put_comment_text(sb, &ptext);
		}
	} while (depth > 0 && v->n > 0);
	for (; depth > 0; depth--)
		sbuf_putc(sb, ')');
}

/* get_cfws - comments and folding white space, as one flat token */
static struct tok *get_cfws(struct ctx *c, struct text *v)
{
	size_t k;

	sbuf_reset(&c->cfws);
	while (is(v, C_CFWS_LEADER)) {
		if (v->s[0] == '(') {
			get_comment(c, v, &c->cfws);
			continue;
		}
		k = ws_span(v->s, v->n);
		sbuf_append(&c->cfws, v->s, k);
		skip(v, k);
	}
	return tok_new(c, TT_CFWS, arena_text(c, c->cfws.data, c->cfws.len),
	               c->cfws.len);
}

/*
 * bqs_item - one piece of quoted-string content.  White space between two
 * encoded words is dropped (EWWhiteSpaceTerminal).
 */
static enum status bqs_item(struct ctx *c, struct text *v, struct tok *bqs,
                            struct tok **out)
{
	enum status st;

	if (is(v, C_WSP)) {
		*out = get_fws(c, v);
		return ST_OK;
	}
	if (!starts_ew(v))
		return get_qcontent(c, v, out);
	st = get_encoded_word(c, v, out);
	if (st == ST_PARSE)
		return get_qcontent(c, v, out);
	if (bqs->n > 1 && tok_last(bqs)->type == TT_FWS &&
	    bqs->kids[bqs->n - 2]->type == TT_EW)
		tok_last(bqs)->type = TT_EW_FWS;
	return st;
}

static enum status get_bare_quoted_string(struct ctx *c, struct text *v,
                                          struct tok **out)
{
	struct text w = *v;
	struct tok *bqs, *t;
	enum status st;

	if (w.n == 0)
		return ST_STR_INDEX;
	if (w.s[0] != '"')
		return ST_PARSE;
	bqs = tok_new(c, TT_BARE_QS, NULL, 0);
	skip(&w, 1);
	if (at(&w, '"')) {
		st = get_qcontent(c, &w, &t);
		if (st != ST_OK)
			return st;
		tok_append(c, bqs, t);
	}
	while (w.n > 0 && w.s[0] != '"') {
		st = bqs_item(c, &w, bqs, &t);
		if (st != ST_OK)
			return st;
		tok_append(c, bqs, t);
	}
	if (w.n > 0)
		skip(&w, 1);
	*v = w;
	*out = bqs;
	return ST_OK;
}

static enum status get_quoted_string(struct ctx *c, struct text *v,
                                     struct tok **out)
{
	struct text w = *v;
	struct tok *qs = tok_new(c, TT_QS, NULL, 0), *t;
	enum status st;

	if (is(&w, C_CFWS_LEADER))
		tok_append(c, qs, get_cfws(c, &w));
	st = get_bare_quoted_string(c, &w, &t);
	if (st != ST_OK)
		return st;
	tok_append(c, qs, t);
	if (is(&w, C_CFWS_LEADER))
		tok_append(c, qs, get_cfws(c, &w));
	*v = w;
	*out = qs;
	return ST_OK;
}

static enum status get_atext(struct ctx *c, struct text *v, struct tok **out)
{
	size_t k = 0;

	while (k < v->n && !(cclass[(unsigned char)v->s[k]] & C_ATOM_END))
		k++;
	if (k == 0)
		return ST_PARSE;
	*out = tok_new(c, TT_VALUE, v->s, k);
	skip(v, k);
	return ST_OK;
}

/* get_ew_or - an encoded word if one starts here and decodes, else fallback */
static enum status get_ew_or(struct ctx *c, struct text *v, struct tok **out,
                             parse_fn *fallback)
{
	enum status st;

	if (starts_ew(v)) {
		st = get_encoded_word(c, v, out);
		if (st != ST_PARSE)
			return st;
	}
	return fallback(c, v, out);
}

static enum status get_atom(struct ctx *c, struct text *v, struct tok **out)
{
	struct text w = *v;
	struct tok *atom = tok_new(c, TT_ATOM, NULL, 0), *t;
	enum status st;

	if (is(&w, C_CFWS_LEADER))
		tok_append(c, atom, get_cfws(c, &w));
	if (is(&w, C_ATOM_END))
		return ST_PARSE;
	st = get_ew_or(c, &w, &t, get_atext);
	if (st != ST_OK)
		return st;
	tok_append(c, atom, t);
	if (is(&w, C_CFWS_LEADER))
		tok_append(c, atom, get_cfws(c, &w));
	*v = w;
	*out = atom;
	return ST_OK;
}

static enum status get_dot_atom_text(struct ctx *c, struct text *v,
                                     struct tok **out)
{
	struct text w = *v;
	struct tok *dat, *t;

	if (w.n == 0 || is(&w, C_ATOM_END))
		return ST_PARSE;
	dat = tok_new(c, TT_DOT_ATOM_TEXT, NULL, 0);
	while (w.n > 0 && !is(&w, C_ATOM_END)) {
		if (get_atext(c, &w, &t) != ST_OK)
			return ST_PARSE; /* not reached: w starts with atext */
		tok_append(c, dat, t);
		if (at(&w, '.')) {
			tok_append(c, dat, &dot_tok);
			skip(&w, 1);
		}
	}
	if (tok_last(dat) == &dot_tok)
		return ST_PARSE;
	*v = w;
	*out = dat;
	return ST_OK;
}

static enum status get_dot_atom(struct ctx *c, struct text *v, struct tok **out)
{
	struct text w = *v;
	struct tok *da, *t;
	enum status st;

	if (w.n == 0)
		return ST_STR_INDEX;
	da = tok_new(c, TT_DOT_ATOM, NULL, 0);
	if (is(&w, C_CFWS_LEADER))
		tok_append(c, da, get_cfws(c, &w));
	st = get_ew_or(c, &w, &t, get_dot_atom_text);
	if (st != ST_OK)
		return st;
	tok_append(c, da, t);
	if (is(&w, C_CFWS_LEADER))
		tok_append(c, da, get_cfws(c, &w));
	*v = w;
	*out = da;
	return ST_OK;
}

static enum status get_word(struct ctx *c, struct text *v, struct tok **out)
{
	struct text w = *v;
	struct tok *leader = NULL, *t;
	enum status st;

	if (w.n == 0)
		return ST_STR_INDEX;
	if (is(&w, C_CFWS_LEADER))
		leader = get_cfws(c, &w);
	if (w.n == 0)
		return ST_PARSE;
	if (w.s[0] == '"')
		st = get_quoted_string(c, &w, &t);
	else if (is(&w, C_SPECIAL))
		return ST_PARSE;
	else
		st = get_atom(c, &w, &t);
	if (st != ST_OK)
		return st;
	if (leader != NULL)
		tok_prepend(c, t, leader);
	*v = w;
	*out = t;
	return ST_OK;
}

/* obs_local_part_item - '.', a misplaced '\', a word or lone CFWS */
static enum status obs_local_part_item(struct ctx *c, struct text *v,
                                       struct tok **out)
{
	enum status st;

	if (v->s[0] == '.' || v->s[0] == '\\') {
		*out = v->s[0] == '.' ? &dot_tok
		                      : tok_new(c, TT_VALUE, v->s, 1);
		skip(v, 1);
		return ST_OK;
	}
	st = get_word(c, v, out);
	if (st != ST_PARSE)
		return st;
	if (!is(v, C_CFWS_LEADER))
		return ST_PARSE;
	*out = get_cfws(c, v);
	return ST_OK;
}

static bool obs_local_part_goes_on(const struct text *v)
{
	return v->n > 0 && (v->s[0] == '\\' || !is(v, C_PHRASE_END));
}

/*
 * get_obs_local_part - words, dots and CFWS.  Python's checks for leading
 * and trailing dots index the token list and fail on one that is empty or
 * holds only CFWS.
 */
static enum status get_obs_local_part(struct ctx *c, struct text *v,
                                      struct tok **out)
{
	struct text w = *v;
	struct tok *obs = tok_new(c, TT_OBS_LOCAL_PART, NULL, 0), *t;
	enum status st;

	while (obs_local_part_goes_on(&w)) {
		st = obs_local_part_item(c, &w, &t);
		if (st != ST_OK)
			return st;
		tok_append(c, obs, t);
	}
	if (obs->n == 0 || (obs->n == 1 && obs->kids[0]->type == TT_CFWS))
		return ST_LIST_INDEX;
	*v = w;
	*out = obs;
	return ST_OK;
}

/*
 * reparse_obs_local_part - Python parses str(local_part) + rest again as
 * obs-local-part.  That string is new text (encoded words in it are
 * decoded, comments re-quoted), so the rest may end up not being a suffix
 * of the input; finish() checks for that.
 */
static enum status reparse_obs_local_part(struct ctx *c, struct text *v,
                                          struct tok *lp)
{
	struct sbuf sb;
	struct text w;
	struct tok *obs;
	enum status st;

	sbuf_init(&sb, v->n + 64);
	tok_str(lp, &sb);
	sbuf_append(&sb, v->s, v->n);
	w.s = arena_text(c, sb.data, sb.len);
	w.n = sb.len;
	sbuf_free(&sb);
	st = get_obs_local_part(c, &w, &obs);
	if (st != ST_OK)
		return st;
	lp->kids[0] = obs;
	*v = w;
	return ST_OK;
}

/* local_part_token - dot-atom, else word, else nothing if obs may follow */
static enum status local_part_token(struct ctx *c, struct text *v,
                                    struct tok **out)
{
	enum status st;

	st = get_dot_atom(c, v, out);
	if (st != ST_PARSE)
		return st;
	st = get_word(c, v, out);
	if (st != ST_PARSE)
		return st;
	if (v->s[0] != '\\' && is(v, C_PHRASE_END))
		return ST_PARSE;
	*out = tok_new(c, TT_LIST, NULL, 0);
	return ST_OK;
}

static enum status get_local_part(struct ctx *c, struct text *v,
                                  struct tok **out)
{
	struct text w = *v;
	struct tok *leader = NULL, *lp, *t;
	enum status st;

	if (w.n == 0)
		return ST_STR_INDEX;
	if (is(&w, C_CFWS_LEADER))
		leader = get_cfws(c, &w);
	if (w.n == 0)
		return ST_PARSE;
	st = local_part_token(c, &w, &t);
	if (st != ST_OK)
		return st;
	if (leader != NULL)
		tok_prepend(c, t, leader);
	lp = tok_new(c, TT_LOCAL_PART, NULL, 0);
	tok_append(c, lp, t);
	if (obs_local_part_goes_on(&w)) {
		st = reparse_obs_local_part(c, &w, lp);
		if (st != ST_OK)
			return st;
	}
	*v = w;
	*out = lp;
	return ST_OK;
}

/*
 * dl_early_end - at the end of the text Python appends a defect object
 * and ']' to the domain literal; the defect makes its value fail later.
 */
static bool dl_early_end(struct ctx *c, const struct text *v, struct tok *dl)
{
	if (v->n > 0)
		return false;
	tok_append(c, dl, tok_new(c, TT_DEFECT, NULL, 0));
	tok_append(c, dl, tok_new(c, TT_VALUE, "]", 1));
	return true;
}

/* domain_literal_body - what follows '[': dtext, ']' and CFWS */
static enum status domain_literal_body(struct ctx *c, struct text *v,
                                       struct tok *dl)
{
	struct tok *t;
	enum status st;

	if (dl_early_end(c, v, dl))
		return ST_OK;
	tok_append(c, dl, tok_new(c, TT_VALUE, "[", 1));
	if (is(v, C_WSP))
		tok_append(c, dl, get_fws(c, v));
	st = get_dtext(c, v, &t);
	if (st != ST_OK)
		return st;
	tok_append(c, dl, t);
	if (dl_early_end(c, v, dl))
		return ST_OK;
	if (is(v, C_WSP))
		tok_append(c, dl, get_fws(c, v));
	if (dl_early_end(c, v, dl))
		return ST_OK;
	if (v->s[0] != ']')
		return ST_PARSE;
	tok_append(c, dl, tok_new(c, TT_VALUE, "]", 1));
	skip(v, 1);
	if (is(v, C_CFWS_LEADER))
		tok_append(c, dl, get_cfws(c, v));
	return ST_OK;
}

static enum status get_domain_literal(struct ctx *c, struct text *v,
                                      struct tok **out)
{
	struct text w = *v;
	struct tok *dl;
	enum status st;

	if (w.n == 0)
		return ST_STR_INDEX;
	dl = tok_new(c, TT_DOMAIN_LITERAL, NULL, 0);
	if (is(&w, C_CFWS_LEADER))
		tok_append(c, dl, get_cfws(c, &w));
	if (!at(&w, '['))
		return ST_PARSE;
	skip(&w, 1);
	st = domain_literal_body(c, &w, dl);
	if (st != ST_OK)
		return st;
	*v = w;
	*out = dl;
	return ST_OK;
}

/* domain_atoms - dot-atom or atom, then obs-domain's ". atom" repeats */
static enum status domain_atoms(struct ctx *c, struct text *v, struct tok *dom,
                                struct tok *leader)
{
	struct tok *t;
	enum status st;

	st = get_dot_atom(c, v, &t);
	if (st == ST_PARSE)
		st = get_atom(c, v, &t);
	if (st != ST_OK)
		return st;
	if (at(v, '@'))
		return ST_PARSE;
	if (leader != NULL)
		tok_prepend(c, t, leader);
	tok_append(c, dom, t);
	while (at(v, '.')) {
		tok_append(c, dom, &dot_tok);
		skip(v, 1);
		st = get_atom(c, v, &t);
		if (st != ST_OK)
			return st;
		tok_append(c, dom, t);
	}
	return ST_OK;
}

/*
 * get_domain - Python also flattens a dot-atom into the domain before
 * obs-domain atoms; that leaves the value, all that is used, unchanged.
 */
static enum status get_domain(struct ctx *c, struct text *v, struct tok **out)
{
	struct text w = *v;
	struct tok *leader = NULL, *dom, *t;
	enum status st;

	if (w.n == 0)
		return ST_STR_INDEX;
	if (is(&w, C_CFWS_LEADER))
		leader = get_cfws(c, &w);
	if (w.n == 0)
		return ST_PARSE;
	dom = tok_new(c, TT_DOMAIN, NULL, 0);
	if (w.s[0] != '[') {
		st = domain_atoms(c, &w, dom, leader);
	} else {
		st = get_domain_literal(c, &w, &t);
		if (st == ST_OK && leader != NULL)
			tok_prepend(c, t, leader);
		if (st == ST_OK)
			tok_append(c, dom, t);
	}
	if (st != ST_OK)
		return st;
	*v = w;
	*out = dom;
	return ST_OK;
}

static enum status get_addr_spec(struct ctx *c, struct text *v,
                                 struct tok **out)
{
	struct text w = *v;
	struct tok *as = tok_new(c, TT_ADDR_SPEC, NULL, 0), *t;
	enum status st;

	st = get_local_part(c, &w, &t);
	if (st != ST_OK)
		return st;
	tok_append(c, as, t);
	if (at(&w, '@')) {
		tok_append(c, as, tok_new(c, TT_VALUE, "@", 1));
		skip(&w, 1);
		st = get_domain(c, &w, &t);
		if (st != ST_OK)
			return st;
		tok_append(c, as, t);
	}
	*v = w;
	*out = as;
	return ST_OK;
}

/* obs_route_more - the ", [CFWS] [@ domain]" repeats of obs-domain-list */
static enum status obs_route_more(struct ctx *c, struct text *v)
{
	struct tok *t;
	enum status st;

	while (at(v, ',')) {
		skip(v, 1);
		if (v->n == 0)
			break;
		if (is(v, C_CFWS_LEADER))
			(void)get_cfws(c, v);
		if (v->n == 0)
			return ST_STR_INDEX;
		if (v->s[0] == '@') {
			skip(v, 1);
			st = get_domain(c, v, &t);
			if (st != ST_OK)
				return st;
		}
	}
	return ST_OK;
}

/* get_obs_route - "@a,@b:" before the address; parsed and thrown away */
static enum status get_obs_route(struct ctx *c, struct text *v)
{
	struct text w = *v;
	struct tok *t;
	enum status st;

	while (at(&w, ',') || is(&w, C_CFWS_LEADER)) {
		if (w.s[0] == ',')
			skip(&w, 1);
		else
			(void)get_cfws(c, &w);
	}
	if (!at(&w, '@'))
		return ST_PARSE;
	skip(&w, 1);
	st = get_domain(c, &w, &t);
	if (st == ST_OK)
		st = obs_route_more(c, &w);
	if (st != ST_OK)
		return st;
	if (!at(&w, ':'))
		return ST_PARSE;
	skip(&w, 1);
	*v = w;
	return ST_OK;
}

/* get_angle_addr - *out is the addr-spec, NULL for "<>" */
static enum status get_angle_addr(struct ctx *c, struct text *v,
                                  struct tok **out)
{
	struct text w = *v;
	struct tok *t = NULL;
	enum status st;

	if (w.n == 0)
		return ST_STR_INDEX;
	if (is(&w, C_CFWS_LEADER))
		(void)get_cfws(c, &w);
	if (!at(&w, '<'))
		return ST_PARSE;
	skip(&w, 1);
	if (w.n == 0)
		return ST_STR_INDEX;
	if (w.s[0] == '>') {
		skip(&w, 1);
		*v = w;
		*out = NULL;
		return ST_OK;
	}
	st = get_addr_spec(c, &w, &t);
	if (st == ST_PARSE) {
		st = get_obs_route(c, &w);
		if (st == ST_OK)
			st = get_addr_spec(c, &w, &t);
	}
	if (st != ST_OK)
		return st;
	if (at(&w, '>'))
		skip(&w, 1);
	if (is(&w, C_CFWS_LEADER))
		(void)get_cfws(c, &w);
	*v = w;
	*out = t;
	return ST_OK;
}

/*
 * getaddr - aiosmtpd's _getaddr() up to the address: angle-addr when the
 * text starts with '<' after white space, addr-spec otherwise.  Leaves the
 * unparsed rest in *v and the address in internal form in sb.
 */
static enum status getaddr(struct ctx *c, struct text *v, struct sbuf *sb)
{
	size_t k = ws_span(v->s, v->n);
	struct tok *t;
	enum status st;

	if (k < v->n && v->s[k] == '<') {
		st = get_angle_addr(c, v, &t);
		return st == ST_OK ? angle_addr_spec(c, t, sb) : st;
	}
	st = get_addr_spec(c, v, &t);
	return st == ST_OK ? addr_spec(c, t, sb) : st;
}

/*
 * Entry point
 */

/* input_text - the argument in internal form; a copy only if needed */
static struct text input_text(struct ctx *c, const char *arg, size_t len)
{
	const unsigned char *s = (const unsigned char *)arg;
	struct sbuf sb;
	struct text t = {arg, len};
	size_t i = 0, k;

	while (i < len && (k = utf8_len(s + i, len - i)) > 0)
		i += k;
	if (i == len)
		return t;
	sbuf_init(&sb, len * 3);
	decode_utf8(&sb, s, len);
	t.s = arena_text(c, sb.data, sb.len);
	t.n = sb.len;
	sbuf_free(&sb);
	return t;
}

/* input_offset - the byte offset in arg of offset off of its internal form */
static size_t input_offset(const char *arg, size_t len, size_t off)
{
	const unsigned char *s = (const unsigned char *)arg;
	size_t i = 0, j = 0, k;

	while (j < off && i < len) {
		k = utf8_len(s + i, len - i);
		i += k > 0 ? k : 1;
		j += k > 0 ? k : 3;
	}
	ASSERT(j == off);
	return i;
}

/* to_bytes - the internal form back to bytes: surrogateescape encoding */
static char *to_bytes(const struct sbuf *sb)
{
	const unsigned char *s = (const unsigned char *)sb->data;
	char *out = xmalloc(sb->len + 1);
	size_t i = 0, n = 0;

	while (i < sb->len) {
		if (is_escape(s + i, sb->len - i)) {
			out[n++] = (char)escape_byte(s + i);
			i += 3;
		} else {
			out[n++] = (char)s[i++];
		}
	}
	out[n] = '\0';
	return out;
}

static enum smtp_addr_result status_result(enum status st)
{
	switch (st) {
	case ST_OK:
		return SMTP_ADDR_OK;
	case ST_STR_INDEX:
		return SMTP_ADDR_INDEX_ERROR;
	case ST_LIST_INDEX:
		return SMTP_ADDR_LIST_INDEX_ERROR;
	case ST_ATTRIBUTE:
		return SMTP_ADDR_ATTRIBUTE_ERROR;
	case ST_UNBOUND:
		/* Only for text that ends in white space, which the caller
		 * has stripped: "[ " at the end of a domain literal. */
	case ST_PARSE:
	default:
		return SMTP_ADDR_MALFORMED;
	}
}

/*
 * finish - hand out the address and the offset of the rest.
 *
 * XXX Two results that Python can produce cannot be expressed through this
 * interface and are reported as SMTP_ADDR_MALFORMED instead.  An address
 * containing NUL (from the input or from an encoded word such as
 * "=?utf-8?q?=00?=") would be cut short by the NUL-terminated string; a
 * rest that is not a suffix of the input (when an encoded word in the
 * local part decodes to text that the obs-local-part reparse stops in,
 * e.g. "<=?utf-8?q?a=3Eb?=.c>x") has no offset.  The fix would be an
 * address length and a rest string in the interface, which no real client
 * needs.
 */
static enum smtp_addr_result finish(const struct text *in, const char *arg,
                                    size_t len, const struct text *rest,
                                    const struct sbuf *addr, char **address_r,
                                    size_t *rest_r)
{
	size_t tail;

	if (rest->n > in->n ||
	    memcmp(in->s + in->n - rest->n, rest->s, rest->n) != 0)
		return SMTP_ADDR_MALFORMED;
	if (memchr(addr->data, '\0', addr->len) != NULL)
		return SMTP_ADDR_MALFORMED;
	tail = in->n - rest->n;
	*rest_r = in->s == arg ? tail : input_offset(arg, len, tail);
	*address_r = to_bytes(addr);
	return SMTP_ADDR_OK;
}

enum smtp_addr_result smtp_addr_parse(const char *arg, size_t len,
                                      char **address_r, size_t *rest_r)
{
	struct ctx c = {NULL, {NULL, 0, 0}};
	struct sbuf addr;
	struct text in, rest;
	enum smtp_addr_result res;
	enum status st;

	if (len == 0)
		return SMTP_ADDR_EMPTY;
	sbuf_init(&c.cfws, 64);
	sbuf_init(&addr, 64);
	in = input_text(&c, arg, len);
	rest = in;
	st = getaddr(&c, &rest, &addr);
	res = status_result(st);
	if (res == SMTP_ADDR_OK)
		res = finish(&in, arg, len, &rest, &addr, address_r, rest_r);
	sbuf_free(&addr);
	sbuf_free(&c.cfws);
	arena_free(&c);
	return res;
}
