/*
 * main.c - aiosmtpd: read the command line and the configuration, make
 * them live, and hand over to the master
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "conf.h"
#include "handler.h"
#include "log.h"
#include "master.h"
#include "notify.h"
#include "service.h"

#define DEFAULT_CONFIG SYSCONFDIR "/aiosmtpd.conf"

/* The command line, kept for every reload. */
static struct cli cli;

/* apply_cli - command-line options override the file */
static void apply_cli(struct conf *cfg)
{
	if (cli.listen != NULL)
		conf_set_listener(cfg, cli.listen);
	for (size_t i = 0; i < cfg->n_listeners + 1; i++) {
		struct smtp_settings *set =
			i < cfg->n_listeners ? &cfg->listeners[i].session.smtp
					     : &cfg->session.smtp;

		if (cli.size_set)
			set->data_size_limit = cli.size;
		if (cli.smtputf8)
			set->smtputf8 = true;
	}
	if (cli.handler != NULL || cli.n_handler_args > 0)
		conf_set_handler(cfg,
				 cli.handler != NULL ? cli.handler
						     : cfg->handler.name,
				 cli.n_handler_args, cli.handler_args);
	if (cli.workers != 0) {
		cfg->workers.min = cfg->workers.max = cli.workers;
		cfg->workers.spare = 0;
	}
	if (cli.debug > 0) {
		cfg->log_level = LOG_LEVEL_DEBUG;
		cfg->log_target = LOG_CONF_STDERR;
	}
	/* As aiosmtpd: --tlscert requires STARTTLS unless --no-requiretls;
	 * with --smtpscert too, the listener speaks SMTPS. */
	if (cli.tlscert != NULL)
		conf_set_tls(cfg, TLS_MODE_STARTTLS, cli.tlscert, cli.tlskey,
			     !cli.no_requiretls);
	if (cli.smtpscert != NULL)
		conf_set_tls(cfg, TLS_MODE_IMPLICIT, cli.smtpscert,
			     cli.smtpskey, false);
}

/* load_conf - the file (or the built-in defaults), then the command line;
 * used at start and at every SIGHUP */
static int load_conf(struct conf *cfg, char **error_r)
{
	conf_init(cfg);
	if (conf_load(cfg, cli.config != NULL ? cli.config : DEFAULT_CONFIG,
		      cli.config != NULL, error_r) < 0) {
		conf_free(cfg);
		return -1;
	}
	apply_cli(cfg);
	conf_finish(cfg);
	return 0;
}

/* systemd_sockets - the listening sockets of socket activation: fds 3
 * and up, when LISTEN_PID names this process */
static void systemd_sockets(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int n, *list;

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid())
		return;
	n = atoi(fds);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n <= 0 || n > 1024)
		return;
	list = xmalloc((size_t)n * sizeof(*list));
	for (int i = 0; i < n; i++)
		list[i] = 3 + i;
	service_inherit(list, (size_t)n);
}

/* syslog_listening - whether a syslog daemon takes messages at /dev/log,
 * tried as syslog(3) tries it: datagram, then stream */
static bool syslog_listening(void)
{
	static const int types[] = {SOCK_DGRAM, SOCK_STREAM};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	bool ok = false;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", _PATH_LOG);
	for (size_t i = 0; i < N_ELEMENTS(types) && !ok; i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		close(fd);
	}
	return ok;
}

/* open_log - syslog (facility mail) unless stderr is a terminal or the
 * configuration or -d says stderr.  In auto mode a machine without a
 * syslog daemon (a container, say) gets the log on stderr, as syslog(3)
 * would drop every line without a word; true when that happened. */
static bool open_log(const struct conf *cfg)
{
	enum log_target target = LOG_TARGET_SYSLOG;
	bool no_syslog = false;

	if (cfg->log_target == LOG_CONF_STDERR ||
	    (cfg->log_target == LOG_CONF_AUTO && isatty(STDERR_FILENO))) {
		target = LOG_TARGET_STDERR;
	} else if (cfg->log_target == LOG_CONF_AUTO && !syslog_listening()) {
		target = LOG_TARGET_STDERR;
		no_syslog = true;
	}
	log_open("aiosmtpd", target, cfg->log_level);
	return no_syslog;
}

/* start_failed - say why the service cannot start, as aiosmtpd would
 * where it has an answer, and exit */
static void start_failed(const char *file, enum service_error kind,
			 const char *error)
{
	switch (kind) {
	case SERVICE_ERROR_SETUID:
		fprintf(stderr, "%s\n", error);
		exit(1);
	case SERVICE_ERROR_BIND:
		log_fatal(1, "%s", error);
	case SERVICE_ERROR_HANDLER:
		if (cli.handler != NULL || cli.n_handler_args > 0 ||
		    file == NULL)
			cli_usage_error("%s", error);
		log_fatal(CONF_EXIT_STATUS, "%s: handler: %s", file, error);
	case SERVICE_ERROR_CONFIG:
		if (file != NULL)
			log_fatal(CONF_EXIT_STATUS, "%s: %s", file, error);
		log_fatal(CONF_EXIT_STATUS, "%s", error);
	}
	exit(1);
}

int main(int argc, char *argv[])
{
	struct service *svc = xcalloc(1, sizeof(*svc));
	struct master_opts opts;
	enum service_error kind;
	struct conf cfg;
	char *error = NULL, *file;
	bool no_syslog;
	int status;

	cli_parse(argc, argv, &cli);
	log_open("aiosmtpd", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
	if (load_conf(&cfg, &error) < 0) {
		fprintf(stderr, "aiosmtpd: %s\n", error);
		free(error);
		free(svc);
		cli_free(&cli);
		return CONF_EXIT_STATUS;
	}
	if (cli.handler != NULL && handler_find(cli.handler) == NULL &&
	    strchr(cli.handler, '/') == NULL)
		cli_usage_error("unknown handler class '%s' (built in: %s)",
				cli.handler, handler_names());
	if (cli.check_config) {
		conf_print(&cfg, stdout);
		conf_free(&cfg);
		free(svc);
		cli_free(&cli);
		return 0;
	}

	no_syslog = open_log(&cfg);
	signal(SIGPIPE, SIG_IGN);
	notify_init();
	systemd_sockets();
	file = cfg.file != NULL ? xstrdup(cfg.file) : NULL;
	if (service_open(svc, &cfg, cli.nosetuid, NULL, &error, &kind) < 0)
		start_failed(file, kind, error);
	free(file);
	/* Said once the service runs: a usage error prints only usage. */
	if (no_syslog)
		log_warning("no syslog daemon listens at %s: logging to "
			    "standard error",
			    _PATH_LOG);
	if (cli.nosetuid && geteuid() == 0)
		log_info("sessions run as root (-n)");

	opts = (struct master_opts){
		.service = svc,
		.keep_user = cli.nosetuid,
		.load = load_conf,
	};
	status = master_run(&opts);
	cli_free(&cli);
	return status;
}
