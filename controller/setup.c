/*
 * setup.c - the daemon's configuration, sasldb, command line and
 * environment for one controller
 *
 * The options become an aiosmtpd.conf(5) file rather than command-line
 * flags because only the file can say everything (LMTP, TLS, AUTH, the
 * log, the Record handler) and the daemon checks every key in it: a
 * daemon too old for a setting refuses it with its file and line, and
 * the controller hands that back.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "setup.h"

extern char **environ;

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_HOSTNAME "localhost"

int aiosmtpd_setup_check(const struct aiosmtpd_options *o,
			 struct aiosmtpd_error *error_r)
{
	const char *why = NULL;

	if (o->port > 65535)
		why = "port must be 0 to 65535";
	else if ((o->tls_cert == NULL) != (o->tls_key == NULL))
		why = "tls_cert and tls_key go together";
	else if ((o->tls_implicit || o->require_starttls) &&
		 o->tls_cert == NULL)
		why = "tls_implicit and require_starttls need tls_cert";
	else if (o->tls_implicit && o->require_starttls)
		why = "require_starttls is for STARTTLS, not tls_implicit";
	else if ((o->auth_required || o->auth_require_tls) &&
		 o->n_auth_users == 0)
		why = "auth_required and auth_require_tls need auth_users";
	else if (o->handler_args != NULL && o->handler == NULL)
		why = "handler_args need a handler";
	for (size_t i = 0; why == NULL && i < o->n_auth_users; i++) {
		if (o->auth_users[i].name == NULL ||
		    o->auth_users[i].name[0] == '\0' ||
		    o->auth_users[i].password == NULL)
			why = "every auth user needs a name and a password";
	}
	if (why != NULL)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_USAGE, "%s",
					  why);
	return 0;
}

const char *aiosmtpd_setup_daemon(const struct aiosmtpd_options *o)
{
	const char *env = getenv("AIOSMTPD_DAEMON");

	if (o->daemon != NULL)
		return o->daemon;
	if (env != NULL && env[0] != '\0')
		return env;
	return AIOSMTPD_DAEMON_PATH;
}

/* --- the configuration file ---------------------------------------------- */

/* put_string - a libconfig string literal */
static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	     p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void put_setting(FILE *f, const char *key, const char *value)
{
	fprintf(f, "%s = ", key);
	put_string(f, value);
	fputs(";\n", f);
}

/* put_address - HOST:PORT, with brackets around an IPv6 address */
static void put_address(FILE *f, const struct aiosmtpd_options *o)
{
	const char *host = o->host != NULL ? o->host : DEFAULT_HOST;
	char address[300];

	snprintf(address, sizeof(address),
		 strchr(host, ':') != NULL && host[0] != '[' ? "[%s]:%u"
							     : "%s:%u",
		 host, o->port);
	put_string(f, address);
}

static void put_listener(FILE *f, const struct aiosmtpd_options *o)
{
	fputs("listeners = ( { address = ", f);
	put_address(f, o);
	if (o->lmtp)
		fputs("; protocol = \"lmtp\"", f);
	if (o->tls_implicit)
		fputs("; tls = \"implicit\"", f);
	else if (o->tls_cert != NULL)
		fprintf(f,
			"; tls = { mode = \"starttls\"; "
			"require_starttls = %s; }",
			o->require_starttls ? "true" : "false");
	fputs("; } );\n", f);
}

static void put_tls(FILE *f, const struct aiosmtpd_options *o)
{
	fputs("tls = { cert = ", f);
	put_string(f, o->tls_cert);
	fputs("; key = ", f);
	put_string(f, o->tls_key);
	fputs("; };\n", f);
}

static void put_auth(FILE *f, const struct aiosmtpd_options *o, const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/" SETUP_SASLDB, dir);
	fprintf(f, "auth = { required = %s; require_tls = %s;\n",
		o->auth_required ? "true" : "false",
		o->auth_require_tls ? "true" : "false");
	fputs("  sasl = { realm = ", f);
	put_string(f, o->hostname != NULL ? o->hostname : DEFAULT_HOSTNAME);
	fputs("; options = { sasldb_path = ", f);
	put_string(f, path);
	fputs("; }; }; };\n", f);
}

static void put_handler(FILE *f, const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/" SETUP_MAIL, dir);
	fputs("handler = { type = \"record\"; path = ", f);
	put_string(f, path);
	fputs("; };\n", f);
}

static void put_config(FILE *f, const struct aiosmtpd_options *o,
		       const char *dir)
{
	fputs("# Written by libaiosmtpd for one test; removed at its stop.\n",
	      f);
	put_setting(f, "hostname",
		    o->hostname != NULL ? o->hostname : DEFAULT_HOSTNAME);
	fputs("log = { target = \"stderr\"; };\n", f);
	/* A test waits for the stop: sessions left open get a second. */
	fputs("shutdown_timeout = 1;\n", f);
	put_setting(f, "spool_dir", dir);
	if (o->data_size_limit != 0)
		fprintf(f, "data_size_limit = %lluL;\n",
			o->data_size_limit == AIOSMTPD_NO_LIMIT
				? 0ULL
				: (unsigned long long)o->data_size_limit);
	if (o->smtputf8)
		fputs("smtputf8 = true;\n", f);
	if (o->tls_cert != NULL)
		put_tls(f, o);
	if (o->n_auth_users > 0)
		put_auth(f, o, dir);
	put_listener(f, o);
	if (o->handler == NULL)
		put_handler(f, dir);
	if (o->config != NULL)
		fprintf(f, "%s\n", o->config);
}

int aiosmtpd_setup_config(const struct aiosmtpd_options *o, const char *dir,
			  struct aiosmtpd_error *error_r)
{
	char path[4096];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/" SETUP_CONF, dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		if (fd >= 0)
			close(fd);
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "cannot create %s: %m", path);
	}
	put_config(f, o, dir);
	if (ferror(f) | fclose(f))
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "cannot write %s: %m", path);
	return 0;
}

/* --- the sasldb ---------------------------------------------------------- */

/* write_file - a small file of ours, mode 0600 */
static int write_file(const char *path, const char *data,
		      struct aiosmtpd_error *error_r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(data);
	ssize_t n = 0;

	if (fd >= 0)
		n = write(fd, data, len);
	if (fd < 0 || n != (ssize_t)len || close(fd) < 0)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "cannot write %s: %m", path);
	return 0;
}

/* run_saslpasswd2 - add one user; stdin is the password file and the
 * output goes to a file quoted on failure */
static int run_saslpasswd2(char *const argv[], const char *in, const char *out,
			   const char *user, struct aiosmtpd_error *error_r)
{
	posix_spawn_file_actions_t fa;
	char said[512] = "";
	pid_t pid;
	int status = 0, ret;
	FILE *f;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out,
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	ret = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (ret != 0) {
		errno = ret;
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "cannot run %s: %m", argv[0]);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if ((f = fopen(out, "re")) != NULL) {
		size_t n = fread(said, 1, sizeof(said) - 1, f);

		said[n] = '\0';
		fclose(f);
	}
	return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
				  "%s failed for user %s: %s", argv[0], user,
				  said);
}

/* add_user - name or name@realm, as saslpasswd2 wants them apart */
static int add_user(const struct aiosmtpd_user *u, const char *realm,
		    const char *dir, struct aiosmtpd_error *error_r)
{
	char db[4096], in[4096], out[4096], *name = strdup(u->name), *at;
	char *argv[] = {(char *)SASLPASSWD2,
			(char *)"-f",
			db,
			(char *)"-c",
			(char *)"-p",
			(char *)"-u",
			NULL,
			NULL,
			NULL};
	int ret;

	if (name == NULL)
		return aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
					  "out of memory");
	if ((at = strrchr(name, '@')) != NULL) {
		*at = '\0';
		realm = at + 1;
	}
	argv[6] = (char *)realm;
	argv[7] = name;
	snprintf(db, sizeof(db), "%s/" SETUP_SASLDB, dir);
	snprintf(in, sizeof(in), "%s/saslpasswd2.in", dir);
	snprintf(out, sizeof(out), "%s/saslpasswd2.out", dir);
	ret = write_file(in, u->password, error_r);
	if (ret == 0)
		ret = run_saslpasswd2(argv, in, out, u->name, error_r);
	unlink(in);
	unlink(out);
	free(name);
	return ret;
}

int aiosmtpd_setup_sasldb(const struct aiosmtpd_options *o, const char *dir,
			  struct aiosmtpd_error *error_r)
{
	const char *realm =
		o->hostname != NULL ? o->hostname : DEFAULT_HOSTNAME;

	for (size_t i = 0; i < o->n_auth_users; i++) {
		if (add_user(&o->auth_users[i], realm, dir, error_r) < 0)
			return -1;
	}
	return 0;
}

/* --- command line and environment ---------------------------------------- */

void aiosmtpd_setup_free(char ***vector)
{
	if (*vector == NULL)
		return;
	for (char **p = *vector; *p != NULL; p++)
		free(*p);
	free(*vector);
	*vector = NULL;
}

/* vector_add - append a copy of s; -1 when out of memory */
static int vector_add(char **v, size_t *n, const char *s)
{
	if ((v[*n] = strdup(s)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

char **aiosmtpd_setup_argv(const struct aiosmtpd_options *o, const char *daemon,
			   const char *dir)
{
	size_t n_args = 0, n = 0, len = strlen(dir) + sizeof(SETUP_CONF) + 1;
	char **v, *conf = malloc(len);
	int ret = 0;

	for (; o->handler_args != NULL && o->handler_args[n_args] != NULL;
	     n_args++)
		;
	if (conf == NULL || (v = calloc(n_args + 8, sizeof(*v))) == NULL) {
		free(conf);
		return NULL;
	}
	snprintf(conf, len, "%s/" SETUP_CONF, dir);
	ret |= vector_add(v, &n, daemon);
	ret |= vector_add(v, &n, "-n"); /* the test's user, not nobody */
	ret |= vector_add(v, &n, "--config");
	ret |= vector_add(v, &n, conf);
	if (o->handler != NULL) {
		ret |= vector_add(v, &n, "-c");
		ret |= vector_add(v, &n, o->handler);
		ret |= vector_add(v, &n, "--");
	}
	for (size_t i = 0; i < n_args; i++)
		ret |= vector_add(v, &n, o->handler_args[i]);
	free(conf);
	if (ret != 0)
		aiosmtpd_setup_free(&v);
	return v;
}

/* ours - a variable the daemon must not get from us: systemd's, which
 * would make it notify or take sockets in our service's name */
static bool ours(const char *var)
{
	static const char *const names[] = {"NOTIFY_SOCKET=", "LISTEN_PID=",
					    "LISTEN_FDS=", "LISTEN_FDNAMES="};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strncmp(var, names[i], strlen(names[i])) == 0)
			return true;
	}
	return false;
}

char **aiosmtpd_setup_envp(const char *notify_socket)
{
	size_t count = 0, n = 0, len = strlen(notify_socket) + 16;
	char **v, *notify = malloc(len);
	int ret = 0;

	for (; environ[count] != NULL; count++)
		;
	if (notify == NULL || (v = calloc(count + 2, sizeof(*v))) == NULL) {
		free(notify);
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		if (!ours(environ[i]))
			ret |= vector_add(v, &n, environ[i]);
	}
	snprintf(notify, len, "NOTIFY_SOCKET=%s", notify_socket);
	ret |= vector_add(v, &n, notify);
	free(notify);
	if (ret != 0)
		aiosmtpd_setup_free(&v);
	return v;
}

int aiosmtpd_setup_notify(char *name, size_t size,
			  struct aiosmtpd_error *error_r)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len = sizeof(sa_family_t);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	/* Binding only the family makes the kernel pick a unique abstract
	 * name (autobind). */
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, len) < 0 ||
	    (len = sizeof(sun),
	     getsockname(fd, (struct sockaddr *)&sun, &len)) < 0) {
		aiosmtpd_error_set(error_r, AIOSMTPD_ERROR_SYSTEM,
				   "notification socket: %m");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	len -= (socklen_t)offsetof(struct sockaddr_un, sun_path);
	snprintf(name, size, "@%.*s", (int)(len > 0 ? len - 1 : 0),
		 sun.sun_path + 1);
	return fd;
}
