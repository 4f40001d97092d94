/*
 * replay.c - run a fuzz target over its corpus, for make check
 *
 * Built with the normal compiler and the build's sanitizers, linked with
 * one fuzz-<name>.c.  Every file in the directories given (the seed
 * corpus, with the inputs that once broke something) goes through
 * LLVMFuzzerTestOneInput(); a broken property aborts.  Prints TAP: one
 * "ok" line per directory.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* read_file - the whole file; NULL when it cannot be read */
static uint8_t *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (len == cap) {
			cap = cap == 0 ? 4096 : cap * 2;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	*len_r = len;
	return buf;
}

/* replay_dir - every regular file of dir; -1 when dir cannot be read */
static int replay_dir(const char *dir, unsigned *count)
{
	char path[4096];
	struct dirent *de;
	DIR *d = opendir(dir);
	uint8_t *buf;
	size_t len;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((buf = read_file(path, &len)) == NULL)
			continue;
		LLVMFuzzerTestOneInput(buf, len);
		free(buf);
		(*count)++;
	}
	closedir(d);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dirs[] = {FUZZ_CORPUS};
	int failed = 0;

	printf("1..%zu\n", sizeof(dirs) / sizeof(dirs[0]));
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		unsigned count = 0;

		if (replay_dir(dirs[i], &count) < 0 || count == 0) {
			printf("not ok %zu - %s: %s\n", i + 1, dirs[i],
			       count == 0 ? "no inputs" : strerror(errno));
			failed = 1;
			continue;
		}
		printf("ok %zu - %s: %u inputs\n", i + 1, dirs[i], count);
	}
	return failed;
}
