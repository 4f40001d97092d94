/*
 * cli.h - the command line, compatible with python3 -m aiosmtpd
 *
 * aiosmtpd's options keep their names and meaning (-n, -c CLASSPATH, -s,
 * -u, -d, -l [HOST][:PORT], the TLS files, -v), followed by the handler's
 * own arguments; --config, --check-config and -w are ours.  Errors print
 * the usage and exit 2, as argparse does.
 */
#ifndef AIOSMTPD_CLI_H
#define AIOSMTPD_CLI_H

#include <stdbool.h>
#include <stdint.h>

struct cli {
	bool nosetuid;
	const char *handler; /* NULL: the configuration's */
	char **handler_args;
	int n_handler_args;
	bool size_set;
	uint64_t size;
	bool smtputf8;
	int debug;
	char *listen; /* our address syntax, NULL: the configuration's */
	const char *tlscert, *tlskey, *smtpscert, *smtpskey;
	bool no_requiretls;
	const char *config; /* NULL: the default file, if it exists */
	bool check_config;
	unsigned workers; /* 0: the default */
};

/* cli_parse - fill cli from argv, or print and exit (-h, -v, errors) */
void cli_parse(int argc, char *argv[], struct cli *cli);
/* cli_usage_error - print the usage and "aiosmtpd: error: ...", exit 2 */
void cli_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void cli_free(struct cli *cli);

#endif
