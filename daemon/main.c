/*
 * main.c - aiosmtpd: read the command line and configuration, bind the
 * listeners, drop privileges, start the handler and the master
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "conf.h"
#include "handler.h"
#include "listener.h"
#include "log.h"
#include "master.h"

#define DEFAULT_WORKERS 4
#define DEFAULT_CONFIG SYSCONFDIR "/aiosmtpd.conf"

/* apply_cli - command-line options override the file */
static void apply_cli(const struct cli *cli, struct conf *cfg)
{
	if (cli->size_set)
		cfg->session.smtp.data_size_limit = cli->size;
	if (cli->smtputf8)
		cfg->session.smtp.smtputf8 = true;
	if (cli->listen != NULL)
		conf_set_listener(cfg, cli->listen);
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct smtp_settings *set = &cfg->listeners[i].session.smtp;

		if (cli->size_set)
			set->data_size_limit = cli->size;
		if (cli->smtputf8)
			set->smtputf8 = true;
	}
	if (cli->handler != NULL || cli->n_handler_args > 0)
		conf_set_handler(cfg,
				 cli->handler != NULL ? cli->handler
						      : cfg->handler,
				 cli->n_handler_args, cli->handler_args);
	if (cli->tlscert != NULL || cli->smtpscert != NULL)
		cli_usage_error("STARTTLS and SMTPS are not available in this "
				"version yet");
}

/* drop_privileges - become nobody, as aiosmtpd does without -n */
static void drop_privileges(void)
{
	struct passwd *pw = getpwnam("nobody");

	if (pw == NULL || geteuid() != 0) {
		fprintf(stderr,
			"Cannot setuid \"nobody\"; try running with -n option.\n");
		exit(1);
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		log_fatal(1, "cannot become nobody: %m");
	if (setuid(0) == 0)
		log_fatal(1, "still able to become root after setuid()");
}

static void open_listeners(struct conf *cfg, struct listener **list,
			   size_t *n)
{
	char *error;

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		if (listener_open_all(&cfg->listeners[i], list, n, &error) < 0)
			log_fatal(1, "%s", error);
	}
}

/* start_handler - the handler's init, with its arguments */
static void *start_handler(const struct aiosmtpd_handler *h,
			   const struct conf *cfg, bool from_cli)
{
	const char *error = "cannot start";
	void *ctx = h->init != NULL
			    ? h->init((int)cfg->n_handler_args,
				      cfg->handler_args, &error)
			    : (void *)h;

	if (ctx != NULL)
		return ctx;
	if (from_cli)
		cli_usage_error("%s", error);
	log_fatal(CONF_EXIT_STATUS, "%s: handler %s: %s", cfg->file,
		  cfg->handler, error);
}

int main(int argc, char *argv[])
{
	struct listener *listeners = NULL;
	const struct aiosmtpd_handler *handler;
	size_t n_listeners = 0;
	struct master_opts opts;
	struct cli cli;
	struct conf cfg;
	char *error;
	bool usage;
	void *ctx;
	int status;

	cli_parse(argc, argv, &cli);
	log_open("aiosmtpd", LOG_TARGET_STDERR,
		 cli.debug > 0 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	conf_init(&cfg);
	if (conf_load(&cfg, cli.config != NULL ? cli.config : DEFAULT_CONFIG,
		      cli.config != NULL, &error) < 0) {
		fprintf(stderr, "aiosmtpd: %s\n", error);
		return CONF_EXIT_STATUS;
	}
	apply_cli(&cli, &cfg);
	if ((handler = handler_load(cfg.handler, &error, &usage)) == NULL) {
		if (usage)
			cli_usage_error("%s", error);
		log_fatal(CONF_EXIT_STATUS, "%s", error);
	}
	conf_finish(&cfg);
	if (cli.check_config) {
		conf_print(&cfg, stdout);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	open_listeners(&cfg, &listeners, &n_listeners);
	if (!cli.nosetuid)
		drop_privileges();
	ctx = start_handler(handler, &cfg,
			    cli.handler != NULL || cli.n_handler_args > 0 ||
				    cfg.file == NULL);

	opts = (struct master_opts){
		.listeners = listeners,
		.n_listeners = n_listeners,
		.handler = handler,
		.handler_ctx = ctx,
		.workers = cli.workers != 0 ? cli.workers : DEFAULT_WORKERS,
		.shutdown_timeout = cfg.shutdown_timeout,
	};
	status = master_run(&opts);
	if (handler->cleanup != NULL)
		handler->cleanup(ctx);
	free(listeners);
	conf_free(&cfg);
	cli_free(&cli);
	return status;
}
