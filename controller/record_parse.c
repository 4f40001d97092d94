/*
 * record_parse.c - a Record file as a struct aiosmtpd_message
 *
 * The file is read whole into one buffer; the header is cut into
 * strings in place (escapes undone), and the content is the rest of the
 * buffer, so a message costs one buffer and one array of pointers.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "record_parse.h"

#define MAGIC "aiosmtpd-record 1"
#define MAGIC_NAME "aiosmtpd-record "

enum list_id { LIST_MAIL_OPTION, LIST_RCPT_TO, LIST_RCPT_OPTION, N_LISTS };

struct record {
	struct aiosmtpd_message msg; /* first: what callers see */
	char *data;
	char *file;
	const char **lists; /* the three lists, each NULL-terminated */
};

struct field {
	const char *key;
	char *value;
};

enum key_kind { KEY_STRING, KEY_PORT, KEY_SIZE, KEY_LIST };

struct key {
	const char *name;
	enum key_kind kind;
	size_t offset;     /* KEY_STRING: the field in the message */
	enum list_id list; /* KEY_LIST */
};

#define STRING_KEY(name, field)                                                \
	{                                                                      \
		name, KEY_STRING, offsetof(struct aiosmtpd_message, field), 0  \
	}

static const struct key keys[] = {
	STRING_KEY("session", session),
	STRING_KEY("helo", helo),
	STRING_KEY("peer_address", peer_address),
	STRING_KEY("tls", tls),
	STRING_KEY("auth_user", auth_user),
	STRING_KEY("mail_from", mail_from),
	{"peer_port", KEY_PORT, 0, 0},
	{"size", KEY_SIZE, 0, 0},
	{"mail_option", KEY_LIST, 0, LIST_MAIL_OPTION},
	{"rcpt_to", KEY_LIST, 0, LIST_RCPT_TO},
	{"rcpt_option", KEY_LIST, 0, LIST_RCPT_OPTION},
};

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	}
	return NULL; /* a newer writer's key: skipped */
}

/* --- the header ---------------------------------------------------------- */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* unescape - %XX back to the octet, in place; -1 on a broken escape */
static int unescape(char *s)
{
	char *out = s;

	for (; *s != '\0'; s++) {
		int hi, lo;

		if (*s != '%') {
			*out++ = *s;
			continue;
		}
		if ((hi = hex_digit(s[1])) < 0 || (lo = hex_digit(s[2])) < 0)
			return -1;
		*out++ = (char)(hi * 16 + lo);
		s += 2;
	}
	*out = '\0';
	return 0;
}

static int parse_number(const char *s, uint64_t max, uint64_t *value_r)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' ||
		    v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*value_r = v;
	return 0;
}

/* split_fields - the header's lines as key and value, in place; the
 * first line is the format's name and version */
static int split_fields(char *header, struct field *fields, size_t *n_r,
			struct aiosmtpd_error *error_r)
{
	char *line = header, *end, *space;
	size_t n = 0, lineno = 1;

	end = strchr(line, '\n');
	*end = '\0';
	if (strcmp(line, MAGIC) != 0)
		return aiosmtpd_error_set(
			error_r, AIOSMTPD_ERROR_FORMAT,
			strncmp(line, MAGIC_NAME, strlen(MAGIC_NAME)) == 0
				? "unsupported version: %.40s"
				: "not a Record file (first line %.40s)",
			line);
	for (line = end + 1; *line != '\n'; line = end + 1) {
		lineno++;
		end = strchr(line, '\n');
		*end = '\0';
		if ((space = strchr(line, ' ')) == NULL)
			return aiosmtpd_error_set(
				error_r, AIOSMTPD_ERROR_FORMAT,
				"line %zu has no value", lineno);
		*space = '\0';
		if (unescape(space + 1) < 0)
			return aiosmtpd_error_set(
				error_r, AIOSMTPD_ERROR_FORMAT,
				"line %zu: broken %% escape", lineno);
		fields[n++] = (struct field){line, space + 1};
	}
	*n_r = n;
	return 0;
}

/* make_lists - one array for the three lists, each NULL-terminated */
static int make_lists(struct record *r, const struct field *fields, size_t n,
		      struct aiosmtpd_error *error_r)
{
	size_t count[N_LISTS] = {0}, at[N_LISTS], total = 0;
	const struct key *k;

	for (size_t i = 0; i < n; i++) {
		if ((k = find_key(fields[i].key)) != NULL &&
		    k->kind == KEY_LIST)
			count[k->list]++;
	}
	for (int l = 0; l < N_LISTS; l++) {
		at[l] = total;
		total += count[l] + 1;
	}
	if ((r->lists = calloc(total, sizeof(*r->lists))) == NULL)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "out of memory");
	for (size_t i = 0; i < n; i++) {
		if ((k = find_key(fields[i].key)) != NULL &&
		    k->kind == KEY_LIST)
			r->lists[at[k->list]++] = fields[i].value;
	}
	r->msg.mail_options =
		r->lists + at[LIST_MAIL_OPTION] - count[LIST_MAIL_OPTION];
	r->msg.n_mail_options = count[LIST_MAIL_OPTION];
	r->msg.rcpt_tos = r->lists + at[LIST_RCPT_TO] - count[LIST_RCPT_TO];
	r->msg.n_rcpt_tos = count[LIST_RCPT_TO];
	r->msg.rcpt_options =
		r->lists + at[LIST_RCPT_OPTION] - count[LIST_RCPT_OPTION];
	r->msg.n_rcpt_options = count[LIST_RCPT_OPTION];
	return 0;
}

/* set_field - one field of the message; a single field given twice is
 * an error, as is a number out of range */
static int set_field(struct record *r, const struct field *f, uint64_t *size_r,
		     struct aiosmtpd_error *error_r)
{
	const struct key *k = find_key(f->key);
	uint64_t v;
	const char **slot;

	if (k == NULL || k->kind == KEY_LIST)
		return 0;
	if (k->kind == KEY_STRING) {
		slot = (const char **)((char *)&r->msg + k->offset);
		if (*slot != NULL)
			return aiosmtpd_error_set(error_r,
						  AIOSMTPD_ERROR_FORMAT,
						  "'%s' appears twice", f->key);
		*slot = f->value;
		return 0;
	}
	if (parse_number(f->value, k->kind == KEY_PORT ? 65535 : SIZE_MAX, &v) <
	    0)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_FORMAT,
					  "'%s' is not a valid number: %.40s",
					  f->key, f->value);
	if (k->kind == KEY_PORT)
		r->msg.peer_port = (unsigned)v;
	else
		*size_r = v;
	return 0;
}

static int set_fields(struct record *r, const struct field *fields, size_t n,
		      uint64_t *size_r, struct aiosmtpd_error *error_r)
{
	*size_r = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		if (set_field(r, &fields[i], size_r, error_r) < 0)
			return -1;
	}
	if (r->msg.mail_from == NULL)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_FORMAT,
					  "no mail_from");
	if (*size_r == UINT64_MAX)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_FORMAT,
					  "no size");
	if (r->msg.helo == NULL)
		r->msg.helo = "";
	if (r->msg.peer_address == NULL)
		r->msg.peer_address = "";
	if (r->msg.session == NULL)
		r->msg.session = "";
	return make_lists(r, fields, n, error_r);
}

/* --- the whole file ------------------------------------------------------ */

static size_t count_lines(const char *p, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += p[i] == '\n';
	return n;
}

/* parse_into - header and content of data into r */
static int parse_into(struct record *r, char *data, size_t len,
		      struct aiosmtpd_error *error_r)
{
	char *end = memmem(data, len, "\n\n", 2);
	struct field *fields;
	size_t header_len, n = 0;
	uint64_t size;
	int ret;

	if (end == NULL || memchr(data, '\0', (size_t)(end - data)) != NULL)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_FORMAT,
					  "no end of the header");
	header_len = (size_t)(end - data) + 2;
	fields = calloc(count_lines(data, header_len), sizeof(*fields));
	if (fields == NULL)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "out of memory");
	ret = split_fields(data, fields, &n, error_r);
	if (ret == 0)
		ret = set_fields(r, fields, n, &size, error_r);
	free(fields);
	if (ret == 0 && size != len - header_len)
		ret = aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_FORMAT,
					 "size %llu, but %zu octets of content",
					 (unsigned long long)size,
					 len - header_len);
	r->msg.content = data + header_len;
	r->msg.content_size = len - header_len;
	data[len] = '\0';
	return ret;
}

struct aiosmtpd_message *aiosmtpd_record_parse(char *data, size_t len,
					       const char *file,
					       struct aiosmtpd_error *error_r)
{
	struct record *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->file = strdup(file)) == NULL) {
		free(r);
		free(data);
		aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
				   "out of memory");
		return NULL;
	}
	r->data = data;
	r->msg.file = r->file;
	if (parse_into(r, data, len, error_r) < 0) {
		struct aiosmtpd_message *m = &r->msg;

		aiosmtpd_record_free(&m);
		return NULL;
	}
	return &r->msg;
}

/* read_all - the file's bytes and one more for a NUL */
static char *read_all(const char *path, size_t *len_r,
		      struct aiosmtpd_error *error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t len = 0;
	char *data = NULL;
	ssize_t n = 1;

	if (fd < 0 || fstat(fd, &st) < 0) {
		aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
				   "cannot read %s: %m", path);
		goto out;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
				   "out of memory for %s", path);
		goto out;
	}
	while (len < (size_t)st.st_size && n > 0) {
		n = read(fd, data + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			n = 1;
		else if (n > 0)
			len += (size_t)n;
	}
	if (n < 0) {
		aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
				   "cannot read %s: %m", path);
		free(data);
		data = NULL;
	}
	*len_r = len;
out:
	if (fd >= 0)
		close(fd);
	return data;
}

struct aiosmtpd_message *aiosmtpd_record_read(const char *path,
					      struct aiosmtpd_error *error_r)
{
	struct aiosmtpd_message *m;
	size_t len = 0;
	char *data;
	int saved;

	if ((data = read_all(path, &len, error_r)) == NULL)
		return NULL;
	if ((m = aiosmtpd_record_parse(data, len, path, error_r)) == NULL &&
	    error_r != NULL && error_r->code == AIOSMTPD_ERROR_FORMAT) {
		/* Say which file, before what is wrong with it. */
		char why[sizeof(error_r->text)];

		saved = errno;
		memcpy(why, error_r->text, sizeof(why));
		aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_FORMAT, "%s: %s",
				   path, why);
		errno = saved;
	}
	return m;
}

void aiosmtpd_record_free(struct aiosmtpd_message **message)
{
	struct record *r = (struct record *)*message;

	if (r == NULL)
		return;
	free(r->data);
	free(r->file);
	free(r->lists);
	free(r);
	*message = NULL;
}
