/*
 * inbox.c - the messages of a Record Maildir, in the order they arrived
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "inbox.h"
#include "record_parse.h"

struct names {
	char **names;
	size_t n, cap;
};

struct aiosmtpd_inbox {
	char *new_dir; /* DIR/new */
	struct aiosmtpd_message **messages;
	size_t n, cap;
	struct names seen; /* sorted: the files read into messages */
};

static int oom(struct aiosmtpd_error *error_r)
{
	return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
				  "out of memory");
}

/* grow - room for one more element in *array of *cap */
static int grow(void *array, size_t n, size_t *cap, size_t size)
{
	void **p = array, *bigger;
	size_t new_cap = *cap == 0 ? 16 : *cap * 2;

	if (n < *cap)
		return 0;
	if ((bigger = realloc(*p, new_cap * size)) == NULL)
		return -1;
	*p = bigger;
	*cap = new_cap;
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(struct names *names)
{
	for (size_t i = 0; i < names->n; i++)
		free(names->names[i]);
	free(names->names);
	*names = (struct names){0};
}

static bool names_has(const struct names *names, const char *name)
{
	return names->n > 0 && bsearch(&name, names->names, names->n,
				       sizeof(char *), compare_names) != NULL;
}

struct aiosmtpd_inbox *aiosmtpd_inbox_new(const char *dir)
{
	struct aiosmtpd_inbox *inbox = calloc(1, sizeof(*inbox));
	size_t len = strlen(dir) + sizeof("/new");

	if (inbox == NULL || (inbox->new_dir = malloc(len)) == NULL) {
		free(inbox);
		return NULL;
	}
	snprintf(inbox->new_dir, len, "%s/new", dir);
	return inbox;
}

static void forget_all(struct aiosmtpd_inbox *inbox)
{
	for (size_t i = 0; i < inbox->n; i++)
		aiosmtpd_record_free(&inbox->messages[i]);
	inbox->n = 0;
	names_free(&inbox->seen);
}

void aiosmtpd_inbox_free(struct aiosmtpd_inbox **inboxp)
{
	struct aiosmtpd_inbox *inbox = *inboxp;

	if (inbox == NULL)
		return;
	forget_all(inbox);
	free(inbox->messages);
	free(inbox->new_dir);
	free(inbox);
	*inboxp = NULL;
}

/* list_new - the names in DIR/new not read yet, sorted; a missing
 * directory has none (a handler other than Record makes none) */
static int list_new(const struct aiosmtpd_inbox *inbox, struct names *fresh,
		    struct aiosmtpd_error *error_r)
{
	DIR *d = opendir(inbox->new_dir);
	struct dirent *de;
	int ret = 0;

	if (d == NULL)
		return errno == ENOENT
			       ? 0
			       : aiosmtpd_error_set(error_r,
						    AIOSMTPD_ERROR_SYSTEM,
						    "opendir(%s) failed: %m",
						    inbox->new_dir);
	while (ret == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || names_has(&inbox->seen, de->d_name))
			continue;
		if (grow(&fresh->names, fresh->n, &fresh->cap, sizeof(char *)) <
			    0 ||
		    (fresh->names[fresh->n] = strdup(de->d_name)) == NULL)
			ret = oom(error_r);
		else
			fresh->n++;
	}
	closedir(d);
	if (fresh->n > 1)
		qsort(fresh->names, fresh->n, sizeof(char *), compare_names);
	return ret;
}

/* take - read the file name in DIR/new and append its message, which
 * then owns name: 1; a file gone meanwhile is skipped: 0 */
static int take(struct aiosmtpd_inbox *inbox, char *name,
		struct aiosmtpd_error *error_r)
{
	size_t len = strlen(inbox->new_dir) + strlen(name) + 2;
	struct aiosmtpd_message *m;
	char *path = malloc(len);

	if (path == NULL)
		return oom(error_r);
	snprintf(path, len, "%s/%s", inbox->new_dir, name);
	m = aiosmtpd_record_read(path, error_r);
	free(path);
	if (m == NULL)
		return errno == ENOENT ? 0 : -1;
	if (grow(&inbox->messages, inbox->n, &inbox->cap, sizeof(m)) < 0 ||
	    grow(&inbox->seen.names, inbox->seen.n, &inbox->seen.cap,
		 sizeof(char *)) < 0) {
		aiosmtpd_record_free(&m);
		return oom(error_r);
	}
	inbox->messages[inbox->n++] = m;
	inbox->seen.names[inbox->seen.n++] = name;
	return 1;
}

ssize_t aiosmtpd_inbox_refresh(struct aiosmtpd_inbox *inbox,
			       struct aiosmtpd_error *error_r)
{
	struct names fresh = {0};
	int ret = list_new(inbox, &fresh, error_r);

	for (size_t i = 0; i < fresh.n; i++) {
		if (ret >= 0)
			ret = take(inbox, fresh.names[i], error_r);
		if (ret <= 0)
			free(fresh.names[i]); /* not taken */
	}
	free(fresh.names);
	if (inbox->seen.n > 1)
		qsort(inbox->seen.names, inbox->seen.n, sizeof(char *),
		      compare_names);
	return ret < 0 ? -1 : (ssize_t)inbox->n;
}

size_t aiosmtpd_inbox_count(const struct aiosmtpd_inbox *inbox)
{
	return inbox->n;
}

const struct aiosmtpd_message *
aiosmtpd_inbox_get(const struct aiosmtpd_inbox *inbox, size_t i)
{
	return i < inbox->n ? inbox->messages[i] : NULL;
}

int aiosmtpd_inbox_clear(struct aiosmtpd_inbox *inbox,
			 struct aiosmtpd_error *error_r)
{
	DIR *d = opendir(inbox->new_dir);
	struct dirent *de;
	int ret = 0;

	forget_all(inbox);
	if (d == NULL)
		return errno == ENOENT
			       ? 0
			       : aiosmtpd_error_set(error_r,
						    AIOSMTPD_ERROR_SYSTEM,
						    "opendir(%s) failed: %m",
						    inbox->new_dir);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT &&
		    ret == 0)
			ret = aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
						 "unlink(%s/%s) failed: %m",
						 inbox->new_dir, de->d_name);
	}
	closedir(d);
	return ret;
}
