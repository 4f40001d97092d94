/*
 * fuzz-conf.c - the configuration loader on a file
 *
 * The input is written to a memory file and loaded with conf_load(), as
 * the daemon loads /etc/aiosmtpd.conf; what loads is finished and printed
 * (to /dev/null) as --check-config does.  Inputs with @include are
 * skipped: they name other files, and a file such as /dev/zero is the
 * operator's choice, not a parser bug.
 *
 * libconfig 1.5 (Debian 12's libconfig9 1.5-0.4) leaks the text of a
 * string token when a syntax error falls on or after it ('b "z";' loses
 * 64 octets): its bison grammar has no destructor for string values.
 * conf_load() reports the error as it should, and a bad configuration is
 * fatal at start, so the daemon loses those octets at most once.  Our code
 * never allocates through libconfig (values are copied out), so leaks
 * whose stack runs through libconfig's parser are libconfig's and are
 * suppressed below; any other leak still fails the run.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "conf.h"
#include "fuzz.h"
#include "log.h"

/* LeakSanitizer's hook for built-in suppressions (see above). */
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void)
{
	return "leak:libconfig_yylex\n"
	       "leak:libconfig_yyparse\n"
	       "leak:strbuf_append\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	static int fd = -1;
	static char path[64];
	struct conf cfg;
	char *error = NULL;

	if (memmem(data, size, "@include", 8) != NULL)
		return 0;
	if (fd < 0) {
		log_set_level(LOG_LEVEL_ERROR);
		fd = memfd_create("fuzz-conf", 0);
		FUZZ_CHECK(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		devnull = fopen("/dev/null", "w");
		FUZZ_CHECK(devnull != NULL);
	}
	FUZZ_CHECK(ftruncate(fd, 0) == 0);
	FUZZ_CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
	conf_init(&cfg);
	if (conf_load(&cfg, path, true, &error) == 0) {
		FUZZ_CHECK(error == NULL && cfg.n_listeners > 0);
		if (cfg.hostname == NULL) /* no DNS lookups while fuzzing */
			cfg.hostname = xstrdup("fuzz.example");
		conf_finish(&cfg);
		conf_print(&cfg, devnull);
	} else {
		FUZZ_CHECK(error != NULL);
		free(error);
	}
	conf_free(&cfg);
	return 0;
}
