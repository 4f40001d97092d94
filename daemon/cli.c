/*
 * cli.c - the command line, compatible with python3 -m aiosmtpd
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "sbuf.h"

#define PROG "aiosmtpd"
#define DEFAULT_HOST "localhost"
#define DEFAULT_PORT "8025"

static const char usage_text[] =
	"usage: " PROG " [-h] [-v] [-n] [-c CLASSPATH] [-s SIZE] [-u] [-d]\n"
	"                [-l [HOST][:PORT]] [--smtpscert CERTFILE]\n"
	"                [--smtpskey KEYFILE] [--tlscert CERTFILE]\n"
	"                [--tlskey KEYFILE] [--no-requiretls]\n"
	"                [--config FILE] [--check-config] [-w N]\n"
	"                [CLASSARGS ...]\n";

static const char help_text[] =
	"\nAn RFC 5321 SMTP server with extensions.\n\n"
	"positional arguments:\n"
	"  CLASSARGS             Additional arguments passed to the handler "
	"CLASS.\n\n"
	"options:\n"
	"  -h, --help            show this help message and exit\n"
	"  -v, --version         show program's version number and exit\n"
	"  -n, --nosetuid        Do not setuid to \"nobody\" (needed when "
	"not run as root).\n"
	"  -c CLASSPATH, --class CLASSPATH\n"
	"                        The handler: Debugging [stdout|stderr], "
	"Sink,\n"
	"                        Mailbox DIR (also as aiosmtpd.handlers.X),\n"
	"                        Maildir PATH, LMTP TARGET, Proxy HOST PORT,\n"
	"                        Record DIR, or /path/to/handler.so.\n"
	"                        Default: Debugging.\n"
	"  -s SIZE, --size SIZE  Largest message in bytes (SIZE extension); "
	"0: none.\n"
	"                        Default: 33554432.\n"
	"  -u, --smtputf8        Enable the SMTPUTF8 extension (RFC 6531).\n"
	"  -d, --debug           More log output; repeat for more.\n"
	"  -l [HOST][:PORT], --listen [HOST][:PORT]\n"
	"                        Address to listen on (default "
	"localhost:8025);\n"
	"                        port 0 picks a free port and prints it.\n"
	"                        Also [IPV6]:PORT and unix:/PATH.\n"
	"  --smtpscert CERTFILE  Certificate for SMTPS (with --smtpskey).\n"
	"  --smtpskey KEYFILE    Key for SMTPS (with --smtpscert).\n"
	"  --tlscert CERTFILE    Certificate for STARTTLS (with --tlskey).\n"
	"  --tlskey KEYFILE      Key for STARTTLS (with --tlscert).\n"
	"  --no-requiretls       Do not require STARTTLS before other "
	"commands.\n"
	"  --config FILE         Configuration file (default " SYSCONFDIR
	"/aiosmtpd.conf).\n"
	"  --check-config        Check the configuration, print it, exit.\n"
	"  -w N, --workers N     Worker processes (default 4).\n";

void cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(usage_text, stderr);
	fputs(PROG ": error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* listen_address - aiosmtpd's [HOST][:PORT], split at the last colon */
static char *listen_address(const char *value)
{
	const char *colon = strrchr(value, ':');
	const char *host, *port;
	struct sbuf sb;
	size_t host_len;

	if (strncmp(value, "unix:", 5) == 0)
		return xstrdup(value);
	if (colon == NULL || (value[0] == '[' && colon < strchr(value, ']'))) {
		host = value;
		host_len = strlen(value);
		port = DEFAULT_PORT;
	} else {
		host = value;
		host_len = (size_t)(colon - value);
		port = colon[1] != '\0' ? colon + 1 : DEFAULT_PORT;
	}
	if (host_len == 0) {
		host = DEFAULT_HOST;
		host_len = strlen(DEFAULT_HOST);
	}
	for (const char *p = port; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || p - port > 5)
			cli_usage_error("Invalid port number: %s", port);
	}
	if (atoi(port) > 65535)
		cli_usage_error("Invalid port number: %s", port);
	sbuf_init(&sb, 64);
	sbuf_printf(&sb, "%.*s:%s", (int)host_len, host, port);
	return sbuf_detach(&sb);
}

static uint64_t parse_size(const char *value)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (*value < '0' || *value > '9' || *end != '\0' || errno != 0)
		cli_usage_error("argument -s/--size: invalid int value: '%s'",
				value);
	return v;
}

static unsigned parse_workers(const char *value)
{
	char *end;
	long v = strtol(value, &end, 10);

	if (*end != '\0' || v < 1 || v > 1024)
		cli_usage_error("argument -w/--workers: must be 1 to 1024, "
				"not '%s'",
				value);
	return (unsigned)v;
}

/* check_pair - aiosmtpd's checks on a certificate and key pair */
static void check_pair(const char *cert, const char *key, const char *copt,
		       const char *kopt)
{
	if ((cert == NULL) != (key == NULL))
		cli_usage_error("%s and %s must be specified together", copt,
				kopt);
	if (cert != NULL && access(cert, F_OK) < 0)
		cli_usage_error("Cert file %s not found", cert);
	if (key != NULL && access(key, F_OK) < 0)
		cli_usage_error("Key file %s not found", key);
}

enum arg { ARG_NONE, ARG_REQUIRED, ARG_OPTIONAL };

struct option_def {
	char short_name;
	const char *long_name;
	enum arg arg;
	void (*apply)(struct cli *cli, const char *value);
};

static void opt_help(struct cli *cli, const char *v)
{
	fputs(usage_text, stdout);
	fputs(help_text, stdout);
	exit(0);
}

static void opt_version(struct cli *cli, const char *v)
{
	printf(PROG " (" PACKAGE_NAME ") " PACKAGE_VERSION "\n");
	exit(0);
}

static void opt_nosetuid(struct cli *cli, const char *v)
{
	cli->nosetuid = true;
}

static void opt_class(struct cli *cli, const char *v)
{
	cli->handler = v;
}

static void opt_size(struct cli *cli, const char *v)
{
	cli->size = parse_size(v);
	cli->size_set = true;
}

static void opt_smtputf8(struct cli *cli, const char *v)
{
	cli->smtputf8 = true;
}

static void opt_debug(struct cli *cli, const char *v)
{
	cli->debug++;
}

static void opt_listen(struct cli *cli, const char *v)
{
	free(cli->listen);
	cli->listen = v != NULL ? listen_address(v) : NULL;
}

static void opt_smtpscert(struct cli *cli, const char *v)
{
	cli->smtpscert = v;
}

static void opt_smtpskey(struct cli *cli, const char *v)
{
	cli->smtpskey = v;
}

static void opt_tlscert(struct cli *cli, const char *v)
{
	cli->tlscert = v;
}

static void opt_tlskey(struct cli *cli, const char *v)
{
	cli->tlskey = v;
}

static void opt_no_requiretls(struct cli *cli, const char *v)
{
	cli->no_requiretls = true;
}

static void opt_config(struct cli *cli, const char *v)
{
	cli->config = v;
}

static void opt_check_config(struct cli *cli, const char *v)
{
	cli->check_config = true;
}

static void opt_workers(struct cli *cli, const char *v)
{
	cli->workers = parse_workers(v);
}

static const struct option_def options[] = {
	{'h', "help", ARG_NONE, opt_help},
	{'v', "version", ARG_NONE, opt_version},
	{'n', "nosetuid", ARG_NONE, opt_nosetuid},
	{'c', "class", ARG_REQUIRED, opt_class},
	{'s', "size", ARG_REQUIRED, opt_size},
	{'u', "smtputf8", ARG_NONE, opt_smtputf8},
	{'d', "debug", ARG_NONE, opt_debug},
	{'l', "listen", ARG_OPTIONAL, opt_listen},
	{0, "smtpscert", ARG_REQUIRED, opt_smtpscert},
	{0, "smtpskey", ARG_REQUIRED, opt_smtpskey},
	{0, "tlscert", ARG_REQUIRED, opt_tlscert},
	{0, "tlskey", ARG_REQUIRED, opt_tlskey},
	{0, "no-requiretls", ARG_NONE, opt_no_requiretls},
	{0, "config", ARG_REQUIRED, opt_config},
	{0, "check-config", ARG_NONE, opt_check_config},
	{'w', "workers", ARG_REQUIRED, opt_workers},
};

static const struct option_def *find_option(char short_name,
					    const char *long_name, size_t len)
{
	for (size_t i = 0; i < N_ELEMENTS(options); i++) {
		const struct option_def *o = &options[i];

		if (short_name != 0 && o->short_name == short_name)
			return o;
		if (long_name != NULL && strlen(o->long_name) == len &&
		    strncmp(o->long_name, long_name, len) == 0)
			return o;
	}
	return NULL;
}

static const char *option_label(const struct option_def *o, char *buf,
				size_t size)
{
	if (o->short_name != 0)
		snprintf(buf, size, "-%c/--%s", o->short_name, o->long_name);
	else
		snprintf(buf, size, "--%s", o->long_name);
	return buf;
}

/* take_value - the option's value: attached, or the next argument (an
 * optional value is never taken from something that looks like an
 * option, as argparse does) */
static const char *take_value(const struct option_def *o, const char *attached,
			      int argc, char *argv[], int *i)
{
	char label[64];

	if (attached != NULL)
		return attached;
	if (*i + 1 < argc &&
	    (o->arg == ARG_REQUIRED || argv[*i + 1][0] != '-'))
		return argv[++*i];
	if (o->arg == ARG_OPTIONAL)
		return NULL;
	cli_usage_error("argument %s: expected one argument",
			option_label(o, label, sizeof(label)));
}

static void long_option(struct cli *cli, int argc, char *argv[], int *i)
{
	const char *name = argv[*i] + 2, *eq = strchr(name, '=');
	size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
	const struct option_def *o = find_option(0, name, len);

	if (o == NULL || (eq != NULL && o->arg == ARG_NONE))
		cli_usage_error("unrecognized arguments: %s", argv[*i]);
	o->apply(cli, o->arg == ARG_NONE
			      ? NULL
			      : take_value(o, eq != NULL ? eq + 1 : NULL, argc,
					   argv, i));
}

/* short_options - "-n", "-nd", "-cSink", "-c Sink" */
static void short_options(struct cli *cli, int argc, char *argv[], int *i)
{
	const char *p = argv[*i] + 1;

	for (; *p != '\0'; p++) {
		const struct option_def *o = find_option(*p, NULL, 0);

		if (o == NULL)
			cli_usage_error("unrecognized arguments: %s", argv[*i]);
		if (o->arg == ARG_NONE) {
			o->apply(cli, NULL);
			continue;
		}
		o->apply(cli, take_value(o, p[1] != '\0' ? p + 1 : NULL, argc,
					 argv, i));
		return;
	}
}

void cli_parse(int argc, char *argv[], struct cli *cli)
{
	bool options_done = false;

	memset(cli, 0, sizeof(*cli));
	cli->handler_args = xcalloc((size_t)argc + 1, sizeof(char *));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!options_done && strcmp(a, "--") == 0)
			options_done = true;
		else if (!options_done && a[0] == '-' && a[1] == '-')
			long_option(cli, argc, argv, &i);
		else if (!options_done && a[0] == '-' && a[1] != '\0')
			short_options(cli, argc, argv, &i);
		else
			cli->handler_args[cli->n_handler_args++] = argv[i];
	}
	check_pair(cli->smtpscert, cli->smtpskey, "--smtpscert", "--smtpskey");
	check_pair(cli->tlscert, cli->tlskey, "--tlscert", "--tlskey");
}

void cli_free(struct cli *cli)
{
	free(cli->handler_args);
	free(cli->listen);
}
