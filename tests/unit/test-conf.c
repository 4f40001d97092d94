/*
 * test-conf.c - loading and checking the configuration file
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "alloc.h"
#include "cfgread.h"
#include "conf.h"

static char path[64];

static int setup(void **state)
{
	int fd;

	strcpy(path, "/tmp/test-conf.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	return 0;
}

/* load - write text to the file and load it; returns the error or NULL */
static char *load(struct conf *cfg, const char *text)
{
	FILE *f = fopen(path, "w");
	char *error = NULL;

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	conf_init(cfg);
	if (conf_load(cfg, path, true, &error) == 0)
		return NULL;
	assert_non_null(error);
	return error;
}

struct error_case {
	const char *text;
	const char *error; /* after "PATH:" */
};

static const struct error_case errors[] = {
	{"tiemout = 10;\n", "1: unknown setting 'tiemout' (did you mean "
			    "'timeout'?)"},
	{"\n\ntimeout = \"ten\";\n", "3: 'timeout' must be an integer, not a "
				     "string"},
	{"timeout = 0;\n", "1: 'timeout' must be between 1 and 86400, not 0"},
	{"smtputf8 = 1;\n", "1: 'smtputf8' must be true or false, not an "
			    "integer"},
	{"data_size_limit = \"12X\";\n",
	 "1: 'data_size_limit' must be a size such as 33554432, \"512k\" or "
	 "\"32M\""},
	{"listeners = ( { address = \"127.0.0.1:25\"; protocl = \"smtp\"; } );",
	 "1: unknown setting 'protocl' in a listener (did you mean "
	 "'protocol'?)"},
	{"listeners = ( { protocol = \"smtp\"; } );",
	 "1: a listener needs an 'address'"},
	{"listeners = ( { address = \"x:1\"; protocol = \"esmtp\"; } );",
	 "1: 'protocol' must be \"smtp\" or \"lmtp\", not \"esmtp\""},
	{"listeners = ( { address = \"127.0.0.1:65536\"; } );",
	 "1: 'address' \"127.0.0.1:65536\": the port must be a number from 0 "
	 "to 65535"},
	{"listeners = ( { address = \"unix:relative\"; } );",
	 "1: 'address' \"unix:relative\": a UNIX socket needs an absolute "
	 "path"},
	{"workers = { min = 5; max = 2; };", "1: 'workers': min (5) must not "
					     "exceed max (2)"},
	{"workers = { spar = 5; };", "1: unknown setting 'spar' in 'workers' "
				    "(did you mean 'spare'?)"},
	{"workers = {\n scheduling = \"fifo\"; };",
	 "2: 'scheduling' must be \"batch\" or \"inherit\", not \"fifo\""},
	{"workers = { scheduling = 1; };",
	 "1: 'scheduling' must be a string, not an integer"},
	{"log = { level = \"loud\"; };",
	 "1: 'level' must be \"debug\", \"info\", \"warning\" or \"error\", "
	 "not \"loud\""},
	{"pid_file = \"run/x.pid\";", "1: 'pid_file' must be an absolute path"},
	{"listeners = ( { address = \"x:1\"; handler = { type = \"maildir\"; "
	 "}; } );",
	 "1: this handler needs 'path'"},
	{"handler = { type = \"mbox\"; };\n",
	 "1: unknown handler type \"mbox\" (known: \"debugging\", \"sink\", "
	 "\"mailbox\", \"maildir\", \"lmtp\", \"proxy\", \"plugin\", "
	 "\"record\")"},
	{"handler = { type = \"lmtp\"; target = \"/x\"; port = 24; };\n",
	 "1: unknown setting 'port' in 'handler'"},
	{"handler = { type = \"lmtp\"; target = \"/x\"; timeuot = 2; };\n",
	 "1: unknown setting 'timeuot' in 'handler' (did you mean "
	 "'timeout'?)"},
	{"handler = { type = \"proxy\"; host = \"a\"; };\n",
	 "1: this handler needs 'port'"},
	{"handler = { type = \"plugin\"; path = \"x.so\"; };\n",
	 "1: 'path' of a plugin must be absolute"},
	{"handler = { type = \"plugin\"; path = \"/x.so\"; args = 1; };\n",
	 "1: 'args' must be a string or a list of strings, not an integer"},
	{"handler = { type = \"maildir\"; };\n", "1: this handler needs 'path'"},
	{"timeout = 10\nident = ;\n", "2: syntax error"},
	{"command_call_limit = { NOOP = \"5\"; };\n",
	 "1: 'NOOP' must be an integer, not a string"},
	/* TLS and AUTH */
	{"tls = \"startls\";\n",
	 "1: 'tls' must be \"none\", \"starttls\" or \"implicit\", not "
	 "\"startls\""},
	{"tls = 1;\n", "1: 'tls' must be \"none\", \"starttls\", \"implicit\" "
			"or a group, not an integer"},
	{"tls = {\n cerd = \"x\"; };\n",
	 "2: unknown setting 'cerd' in 'tls' (did you mean 'cert'?)"},
	{"tls = { min_version = \"TLSv1.1\"; };\n",
	 "1: 'min_version' must be \"TLSv1.2\" or \"TLSv1.3\", not "
	 "\"TLSv1.1\""},
	{"tls = { cert = \"\"; };\n", "1: 'cert' must not be empty"},
	{"auth = true;\n",
	 "1: 'auth' must be a group such as { required = true; }, not true or "
	 "false"},
	{"auth = { requird = true; };\n",
	 "1: unknown setting 'requird' in 'auth' (did you mean 'required'?)"},
	{"auth = { mechanisms = [\"plain\"]; };\n",
	 "1: 'mechanisms': \"plain\" is not a SASL mechanism name (upper "
	 "case, such as \"PLAIN\")"},
	{"auth = { exclude = 5; };\n",
	 "1: 'exclude' must be a string or a list of strings, not an "
	 "integer"},
	{"auth = { max_failures = -1; };\n",
	 "1: 'max_failures' must be between 0 and 1000, not -1"},
	{"auth = { sasl = { options = { sasldb_pat = \"/x\"; }; }; };\n",
	 "1: unknown setting 'sasldb_pat' in 'sasl.options' (did you mean "
	 "'sasldb_path'?)"},
	{"auth = { sasl = { options = { mech_list = [\"A\"]; }; }; };\n",
	 "1: 'mech_list' must be a string, an integer or a boolean, not an "
	 "array"},
	{"listeners = ( { address = \"x:1\"; auth = { sasl = { servce = 1; }; "
	 "}; } );\n",
	 "1: unknown setting 'servce' in 'sasl' (did you mean 'service'?)"},
	{"command_call_limit = -1;\n",
	 "1: 'command_call_limit' must be between 0 and 2147483647, not -1"},
	{"command_call_limit = { ABCDEFGHIJKLMNOPQ = 1; };\n",
	 "1: 'ABCDEFGHIJKLMNOPQ' is not a command"},
	{"max_recipients = -1;\n",
	 "1: 'max_recipients' must be between 0 and 2147483647, not -1"},
	{"max_recipients = \"100\";\n",
	 "1: 'max_recipients' must be an integer, not a string"},
	{"max_connections_per_client = 100001;\n",
	 "1: 'max_connections_per_client' must be between 0 and 100000, not "
	 "100001"},
	{"stress_timeout = 0;\n",
	 "1: 'stress_timeout' must be between 1 and 86400, not 0"},
	{"queue_timeout = \"30s\";\n",
	 "1: 'queue_timeout' must be an integer, not a string"},
	{"listeners = ( { address = \"x:1\"; proxy_protocol_timeout = 0; } );",
	 "1: 'proxy_protocol_timeout' must be between 0.001 and 3600 seconds, "
	 "not 0"},
	{"listeners = ( { address = \"x:1\";\n"
	 "  proxy_protocol_timeout = -1.5; } );",
	 "2: 'proxy_protocol_timeout' must be between 0.001 and 3600 seconds, "
	 "not -1.5"},
	{"listeners = ( { address = \"x:1\"; proxy_protocol_timeout = \"5\"; } );",
	 "1: 'proxy_protocol_timeout' must be a number of seconds, not a "
	 "string"},
	{"listeners = ( { address = \"x:1\"; proxy_protocol_timeot = 5; } );",
	 "1: unknown setting 'proxy_protocol_timeot' in a listener (did you "
	 "mean 'proxy_protocol_timeout'?)"},
	{"listeners = ( { address = \"x:1\"; proxy_protocol_timeout = 5;\n"
	 "  proxy_protocol_from = [ \"10.0.0.0/8\", \"10.1.2.3/33\" ]; } );",
	 "2: 'proxy_protocol_from': \"10.1.2.3/33\" is not an address or a "
	 "network such as \"192.0.2.0/24\""},
	{"listeners = ( { address = \"x:1\"; proxy_protocol_timeout = 5;\n"
	 "  proxy_protocol_from = [ ]; } );",
	 "2: 'proxy_protocol_from' must not be empty (leave it out to trust "
	 "every peer)"},
	{"listeners = ( { address = \"x:1\"; proxy_protocol_timeout = 5;\n"
	 "  proxy_protocol_from = 10; } );",
	 "2: 'proxy_protocol_from' must be a string or a list of strings, not "
	 "an integer"},
	{"listeners = ( { address = \"x:1\";\n"
	 "  proxy_protocol_from = [ \"10.0.0.1\" ]; } );",
	 "1: 'proxy_protocol_from' needs 'proxy_protocol_timeout'"},
	/* PROXY belongs to how a listener is reached, not to sessions */
	{"proxy_protocol_timeout = 5;\n",
	 "1: unknown setting 'proxy_protocol_timeout'"},
};

static void test_errors(void **state)
{
	char want[512];

	for (size_t i = 0; i < N_ELEMENTS(errors); i++) {
		struct conf cfg;
		char *error = load(&cfg, errors[i].text);

		snprintf(want, sizeof(want), "%s:%s", path, errors[i].error);
		assert_non_null(error);
		assert_string_equal(error, want);
		free(error);
		conf_free(&cfg);
	}
}

static void test_missing_file(void **state)
{
	struct conf cfg;
	char *error = NULL;

	conf_init(&cfg);
	/* the default file may be absent */
	assert_int_equal(conf_load(&cfg, "/nonexistent/aiosmtpd.conf", false,
				   &error),
			 0);
	/* a file named on the command line may not */
	assert_int_equal(conf_load(&cfg, "/nonexistent/aiosmtpd.conf", true,
				   &error),
			 -1);
	assert_string_equal(error, "/nonexistent/aiosmtpd.conf: cannot read: "
				   "No such file or directory");
	free(error);
	conf_free(&cfg);
}

static void test_values(void **state)
{
	struct conf cfg;
	const struct smtp_settings *l0, *l1;
	char *error = load(&cfg,
			   "hostname = \"mx.example.org\";\n"
			   "data_size_limit = \"10M\";\n"
			   "timeout = 60;\n"
			   "command_call_limit = { default = 7; noop = 3; };\n"
			   "listeners = (\n"
			   "  { address = \"127.0.0.1:2525\"; },\n"
			   "  { address = \"unix:/tmp/x.sock\";\n"
			   "    protocol = \"lmtp\"; smtputf8 = true;\n"
			   "    data_size_limit = 0; }\n"
			   ");\n"
			   "handler = { type = \"maildir\"; path = \"/m\"; };\n"
			   "workers = { min = 3; scheduling = \"inherit\"; };\n");

	assert_null(error);
	conf_finish(&cfg);
	assert_int_equal(cfg.workers.min, 3);
	assert_int_equal(cfg.workers.scheduling, WORKER_SCHED_INHERIT);
	assert_int_equal(cfg.n_listeners, 2);
	l0 = &cfg.listeners[0].session.smtp;
	l1 = &cfg.listeners[1].session.smtp;
	assert_string_equal(l0->hostname, "mx.example.org");
	assert_int_equal(l0->data_size_limit, 10 * 1024 * 1024);
	assert_false(l0->lmtp);
	assert_true(l0->call_limit_enabled);
	assert_int_equal(l0->call_limit_default, 7);
	assert_int_equal(l0->n_call_limits, 1);
	assert_string_equal(l0->call_limits[0].verb, "NOOP");
	assert_int_equal(l0->call_limits[0].limit, 3);
	assert_int_equal(cfg.listeners[0].session.timeout, 60);
	assert_true(l1->lmtp);
	assert_true(l1->smtputf8);
	assert_int_equal(l1->data_size_limit, 0);
	assert_int_equal(l1->n_call_limits, 1);
	assert_string_equal(cfg.handler.name, "maildir");
	assert_int_equal(cfg.handler.n_args, 1);
	assert_string_equal(cfg.handler.args[0], "/m");
	conf_free(&cfg);
}

/* handler_case - a handler group and the words it becomes */
struct handler_case {
	const char *text;
	const char *handler;
	const char *args; /* joined by '|' */
};

static const struct handler_case handlers[] = {
	{"handler = { type = \"lmtp\"; target = \"unix:/run/lmtp\"; "
	 "timeout = 5; starttls = \"may\"; tls_verify = false; };",
	 "lmtp", "unix:/run/lmtp|timeout=5|starttls=may|tls_verify=no"},
	{"handler = { type = \"proxy\"; host = \"mx\"; port = 25; };", "proxy",
	 "mx|25"},
	{"handler = { type = \"plugin\"; path = \"/p/x.so\"; "
	 "args = [ \"a.example\", \"b.example\" ]; };",
	 "/p/x.so", "a.example|b.example"},
	{"handler = { type = \"debugging\"; };", "debugging", ""},
	{"handler = { type = \"maildir\"; path = \"/m/%d/%u\"; };", "maildir",
	 "/m/%d/%u"},
	{"handler = { type = \"record\"; path = \"/var/tmp/r\"; };", "record",
	 "/var/tmp/r"},
};

static void test_handlers(void **state)
{
	for (size_t i = 0; i < N_ELEMENTS(handlers); i++) {
		struct conf cfg;
		char *error = load(&cfg, handlers[i].text);
		char joined[256] = "";

		assert_null(error);
		assert_string_equal(cfg.handler.name, handlers[i].handler);
		for (size_t j = 0; j < cfg.handler.n_args; j++) {
			if (j > 0)
				strcat(joined, "|");
			strcat(joined, cfg.handler.args[j]);
		}
		assert_string_equal(joined, handlers[i].args);
		conf_free(&cfg);
	}
}

/* test_tls_auth - the global groups, a listener's overrides (which must
 * not reach the global settings or the other listeners), what
 * conf_finish() derives, and the command line's conf_set_tls() */
static void test_tls_auth(void **state)
{
	struct conf cfg;
	const struct session_conf *g, *l0, *l1;
	char *error = load(&cfg,
			   "tls = { cert = \"/c.pem\"; key = \"/k.pem\";\n"
			   "  require_starttls = true; };\n"
			   "auth = { require_tls = false; max_failures = 5;\n"
			   "  mechanisms = [\"PLAIN\", \"LOGIN\"];\n"
			   "  exclude = [\"LOGIN\"];\n"
			   "  sasl = { realm = \"test.local\";\n"
			   "    options = { sasldb_path = \"/db\";\n"
			   "      log_level = 3; auto_transition = false; }; };"
			   " };\n"
			   "listeners = (\n"
			   "  { address = \"a:1\"; tls = \"starttls\"; },\n"
			   "  { address = \"a:2\";\n"
			   "    tls = { mode = \"implicit\";\n"
			   "      cert = \"/o.pem\"; min_version = "
			   "\"TLSv1.3\"; };\n"
			   "    auth = { enabled = false; sasl = {\n"
			   "      realm = \"other\"; }; }; }\n"
			   ");\n");

	assert_null(error);
	conf_finish(&cfg);
	g = &cfg.session;
	l0 = &cfg.listeners[0].session;
	l1 = &cfg.listeners[1].session;
	assert_int_equal(g->tls.mode, TLS_MODE_NONE);
	assert_false(g->smtp.tls_available);
	assert_false(g->smtp.require_starttls); /* needs STARTTLS */
	assert_true(g->auth.enabled);
	assert_int_equal(l0->tls.mode, TLS_MODE_STARTTLS);
	assert_true(l0->smtp.tls_available);
	assert_true(l0->smtp.require_starttls);
	assert_string_equal(l0->tls.cert, "/c.pem");
	assert_int_equal(l0->tls.min_version, 12);
	assert_true(l0->auth.enabled);
	assert_false(l0->smtp.auth_require_tls);
	assert_int_equal(l0->smtp.auth_max_failures, 5);
	assert_int_equal(l0->auth.n_mechanisms, 2);
	assert_string_equal(l0->auth.exclude[0], "LOGIN");
	assert_string_equal(l0->auth.realm, "test.local");
	assert_int_equal(l0->auth.n_options, 3);
	assert_string_equal(l0->auth.options[1].name, "log_level");
	assert_string_equal(l0->auth.options[1].value, "3");
	assert_string_equal(l0->auth.options[2].value, "no");
	assert_int_equal(l1->tls.mode, TLS_MODE_IMPLICIT);
	assert_false(l1->smtp.tls_available);
	assert_false(l1->smtp.require_starttls);
	assert_string_equal(l1->tls.cert, "/o.pem");
	assert_string_equal(l1->tls.key, "/k.pem");
	assert_int_equal(l1->tls.min_version, 13);
	assert_false(l1->auth.enabled);
	assert_string_equal(l1->auth.realm, "other");
	assert_string_equal(g->auth.realm, "test.local");
	assert_string_equal(g->tls.cert, "/c.pem");

	conf_set_tls(&cfg, TLS_MODE_STARTTLS, "/cli.pem", "/cli.key", false);
	conf_finish(&cfg);
	for (size_t i = 0; i < cfg.n_listeners; i++) {
		const struct session_conf *sc = &cfg.listeners[i].session;

		assert_int_equal(sc->tls.mode, TLS_MODE_STARTTLS);
		assert_string_equal(sc->tls.cert, "/cli.pem");
		assert_string_equal(sc->tls.origin, "--tlscert");
		assert_false(sc->smtp.require_starttls);
	}
	conf_free(&cfg);
}

/* test_limits - command_call_limit as a number and as a group, per
 * listener; max_recipients and max_connections_per_client; the PROXY
 * protocol keys; the stress settings and their defaults */
static void test_limits(void **state)
{
	struct conf cfg;
	const struct listener_conf *l0, *l1, *l2;
	char *error = load(&cfg,
			   "command_call_limit = 9;\n"
			   "max_recipients = 100;\n"
			   "max_connections_per_client = 10;\n"
			   "stress_timeout = 3;\n"
			   "listeners = (\n"
			   "  { address = \"127.0.0.1:2525\"; },\n"
			   "  { address = \"127.0.0.1:2526\";\n"
			   "    command_call_limit = { default = 4; RSET = 2; };\n"
			   "    max_recipients = 0;\n"
			   "    max_connections_per_client = 0;\n"
			   "    proxy_protocol_timeout = 2.5; },\n"
			   "  { address = \"[::1]:2527\";\n"
			   "    proxy_protocol_timeout = 5;\n"
			   "    proxy_protocol_from = [ \"127.0.0.1\",\n"
			   "                            \"2001:db8::/32\" ]; }\n"
			   ");\n");

	assert_null(error);
	conf_finish(&cfg);
	l0 = &cfg.listeners[0];
	l1 = &cfg.listeners[1];
	l2 = &cfg.listeners[2];
	assert_true(l0->session.smtp.call_limit_enabled);
	assert_int_equal(l0->session.smtp.call_limit_default, 9);
	assert_int_equal(l0->session.smtp.n_call_limits, 0);
	assert_int_equal(l0->session.smtp.max_recipients, 100);
	assert_int_equal(l0->session.max_connections_per_client, 10);
	assert_int_equal(l1->session.max_connections_per_client, 0);
	assert_int_equal(cfg.stress_timeout, 3);
	assert_int_equal(cfg.queue_timeout, 30);
	assert_int_equal(l0->proxy_timeout_ms, 0);
	assert_int_equal(l1->session.smtp.call_limit_default, 4);
	assert_int_equal(l1->session.smtp.n_call_limits, 1);
	assert_string_equal(l1->session.smtp.call_limits[0].verb, "RSET");
	assert_int_equal(l1->session.smtp.call_limits[0].limit, 2);
	assert_int_equal(l1->session.smtp.max_recipients, 0);
	assert_int_equal(l1->proxy_timeout_ms, 2500);
	assert_int_equal(l1->n_proxy_from, 0);
	assert_int_equal(l2->proxy_timeout_ms, 5000);
	assert_int_equal(l2->n_proxy_from, 2);
	assert_true(cidr_match(&l2->proxy_from[0], "127.0.0.1"));
	assert_true(cidr_match(&l2->proxy_from[1], "2001:db8::7"));
	assert_false(cidr_match_any(l2->proxy_from, 2, "127.0.0.2"));
	conf_free(&cfg);
}

/* test_print_proxy - --check-config shows the new keys as they are
 * written, and what it prints loads back the same */
static void test_print_proxy(void **state)
{
	struct conf cfg;
	char *error = load(&cfg,
			   "listeners = ( { address = \"127.0.0.1:2526\";\n"
			   "    proxy_protocol_timeout = 0.3;\n"
			   "    proxy_protocol_from = \"10.0.0.0/8\"; } );\n"
			   "max_recipients = 7;\n");
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	assert_null(error);
	conf_finish(&cfg);
	conf_print(&cfg, out);
	fclose(out);
	assert_non_null(strstr(text, "    proxy_protocol_timeout = 0.3;\n"
				     "    proxy_protocol_from = [ "
				     "\"10.0.0.0/8\" ];\n"));
	assert_non_null(strstr(text, "max_recipients = 7;\n"));
	conf_free(&cfg);
	error = load(&cfg, text);
	assert_null(error);
	assert_int_equal(cfg.listeners[0].proxy_timeout_ms, 300);
	assert_int_equal(cfg.listeners[0].n_proxy_from, 1);
	assert_int_equal(cfg.session.smtp.max_recipients, 7);
	conf_free(&cfg);
	free(text);
}

static void test_sizes(void **state)
{
	uint64_t v;

	assert_int_equal(cfgread_parse_size("33554432", &v), 0);
	assert_int_equal(v, 33554432);
	assert_int_equal(cfgread_parse_size("512k", &v), 0);
	assert_int_equal(v, 512 * 1024);
	assert_int_equal(cfgread_parse_size("2G", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(cfgread_parse_size("", &v), -1);
	assert_int_equal(cfgread_parse_size("-1", &v), -1);
	assert_int_equal(cfgread_parse_size("1MB", &v), -1);
	assert_int_equal(cfgread_parse_size("99999999999999999999", &v), -1);
}

static void test_defaults(void **state)
{
	struct conf cfg;

	conf_init(&cfg);
	conf_finish(&cfg);
	assert_int_equal(cfg.n_listeners, 1);
	assert_string_equal(cfg.listeners[0].address, "localhost:8025");
	assert_string_equal(cfg.handler.name, "debugging");
	assert_int_equal(cfg.session.smtp.data_size_limit, 33554432);
	assert_int_equal(cfg.session.timeout, 300);
	assert_false(cfg.session.smtp.call_limit_enabled);
	assert_non_null(cfg.hostname);
	assert_int_equal(cfg.workers.scheduling, WORKER_SCHED_BATCH);
	conf_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test_setup_teardown(test_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handlers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_auth, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_print_proxy, setup,
						teardown),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_defaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
