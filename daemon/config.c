/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "common/escape.h"
#include "common/util.h"
#include "daemon/config.h"
#include "daemon/config_value.h"
#include "proto/proto.h"

/* A configuration file is a handful of lines; anything bigger is a mistake. */
#define CONFIG_MAX_SIZE (1024 * 1024)

enum kind {
	KIND_STRING,
	KIND_PATH,
	KIND_ABSOLUTE_PATH,
	KIND_URL,
	KIND_LOGIN_API,
	KIND_DURATION,
	KIND_COUNT,
	KIND_LIST,
	KIND_WARN_POINTS,
};

struct key {
	const char *section;
	const char *name;
	enum kind kind;
	size_t offset; /* of the field in struct config */
};

static const struct key keys[] = {
		{"regscale", "url", KIND_URL, offsetof(struct config, url)},
		{"regscale", "username", KIND_STRING, offsetof(struct config, username)},
		{"regscale", "password_file", KIND_PATH, offsetof(struct config, password_file)},
		{"regscale", "token_file", KIND_PATH, offsetof(struct config, token_file)},
		{"regscale", "ca_file", KIND_PATH, offsetof(struct config, ca_file)},
		{"regscale", "proxy", KIND_STRING, offsetof(struct config, proxy)},
		{"regscale", "login_api", KIND_LOGIN_API, offsetof(struct config, login_api)},
		{"regscale", "connect_timeout", KIND_DURATION,
				offsetof(struct config, connect_timeout_sec)},
		{"regscale", "total_timeout", KIND_DURATION,
				offsetof(struct config, total_timeout_sec)},
		{"regscale", "default_lifetime", KIND_DURATION,
				offsetof(struct config, default_lifetime_sec)},
		{"daemon", "socket", KIND_PATH, offsetof(struct config, socket)},
		{"daemon", "idle_timeout", KIND_DURATION,
				offsetof(struct config, idle_timeout_sec)},
		{"daemon", "max_connections_per_user", KIND_COUNT,
				offsetof(struct config, max_connections_per_user)},
		{"daemon", "allow_users", KIND_LIST, offsetof(struct config, allow_users)},
		{"daemon", "allow_groups", KIND_LIST, offsetof(struct config, allow_groups)},
		{"daemon", "admin_users", KIND_LIST, offsetof(struct config, admin_users)},
		{"daemon", "admin_groups", KIND_LIST, offsetof(struct config, admin_groups)},
		{"daemon", "warn_before", KIND_WARN_POINTS, offsetof(struct config, warn_before)},
		{"daemon", "metrics_file", KIND_ABSOLUTE_PATH,
				offsetof(struct config, metrics_file)},
};

struct parse {
	const char *path; /* as given, for messages */
	char *dir;        /* absolute directory of the file, for relative paths */

	/* The reader's state: the file in memory and the line it handed to inih last. inih
	 * calls the reader once per line and the handler right after, so p->line is the
	 * line of the key being handled (inih itself reports no line to the handler). */
	const char *buf;
	size_t len;
	size_t pos;
	unsigned line;

	unsigned set_line[ELEMENTSOF(keys)]; /* where each key was set, 0 if not */
	struct config tmp;

	unsigned error_line; /* first error, 0 if none */
	int error;           /* its -errno */
	char *errbuf;
	size_t errlen;
};

static void *field(struct config *c, const struct key *k)
{
	return (char *)c + k->offset;
}

void config_init(struct config *ret)
{
	*ret = (struct config){
			.login_api = LOGIN_API_V1,
			.connect_timeout_sec = 10,
			.idle_timeout_sec = PROTO_DEFAULT_IDLE_TIMEOUT_SEC,
			.max_connections_per_user = PROTO_MAX_CLIENTS / 4,
			.total_timeout_sec = 30,
			.default_lifetime_sec = 86400,
	};
	expiry_points_default(&ret->warn_before);
}

static void field_free(struct config *c, const struct key *k)
{
	switch (k->kind) {
	case KIND_STRING:
	case KIND_PATH:
	case KIND_ABSOLUTE_PATH:
	case KIND_URL: {
		char **s = field(c, k);
		free(*s);
		*s = NULL;
		break;
	}
	case KIND_LIST: {
		char ***l = field(c, k);
		*l = config_value_list_free(*l);
		break;
	}
	case KIND_LOGIN_API:
	case KIND_DURATION:
	case KIND_COUNT:
	case KIND_WARN_POINTS:
		break;
	}
}

void config_done(struct config *c)
{
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		field_free(c, &keys[i]);
	free(c->path);
	config_init(c);
}

static int fail(struct parse *p, unsigned line, int err, const char *fmt, ...)
		__attribute__((format(printf, 4, 5)));

/* Records the first error: "FILE:LINE: message" (or "FILE: message" for line 0) into errbuf.
 * Returns the first error's err. */
static int fail(struct parse *p, unsigned line, int err, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (p->error)
		return p->error;
	p->error = err;
	p->error_line = line;
	if (!p->errbuf || p->errlen == 0)
		return err;

	if (line > 0)
		n = snprintf(p->errbuf, p->errlen, "%s:%u: ", p->path, line);
	else
		n = snprintf(p->errbuf, p->errlen, "%s: ", p->path);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->errbuf + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	/* Key and section names come from the file: keep the message one printable line. */
	escape_controls(p->errbuf);
	return err;
}

/* Checks and stores one value. Returns 0, or -EINVAL/-ENOMEM with a static reason. */
static int parse_value(struct parse *p, const struct key *k, const char *v, const char **ret_reason)
{
	void *f = field(&p->tmp, k);

	*ret_reason = "contains a control character";
	for (const char *s = v; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			if (!(k->kind == KIND_LIST && *s == '\t'))
				return -EINVAL;
	*ret_reason = "empty value";
	if (!*v)
		return -EINVAL;

	switch (k->kind) {
	case KIND_STRING:
		*ret_reason = "must not contain whitespace";
		if (strcmp(k->name, "proxy") == 0 && strpbrk(v, " \t"))
			return -EINVAL;
		*ret_reason = "out of memory";
		*(char **)f = strdup(v);
		return *(char **)f ? 0 : -ENOMEM;
	case KIND_PATH:
		return config_value_path(p->dir, v, f, ret_reason);
	case KIND_ABSOLUTE_PATH:
		/* Written by the daemon for another program to find: where is no guess. */
		*ret_reason = "must be an absolute path (a file in node_exporter's textfile "
			      "directory, e.g. "
			      "/var/lib/prometheus/node-exporter/regscale-token.prom)";
		if (v[0] != '/')
			return -EINVAL;
		return config_value_path(p->dir, v, f, ret_reason);
	case KIND_URL:
		return config_value_url(v, f, ret_reason);
	case KIND_LOGIN_API:
		return config_value_login_api(v, f, ret_reason);
	case KIND_DURATION:
		return config_value_duration(v, f, ret_reason);
	case KIND_COUNT:
		return config_value_connections(v, f, ret_reason);
	case KIND_LIST:
		return config_value_list(v, f, ret_reason);
	case KIND_WARN_POINTS:
		return config_value_warn_points(v, f, ret_reason);
	}
	*ret_reason = "unknown kind";
	return -EINVAL;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	const struct key *k = NULL;
	const char *reason = NULL;
	size_t i;
	int r;

	if (p->error)
		return 0;

	if (!*section) {
		fail(p, p->line, -EINVAL, "key \"%s\" outside of any section", name);
		return 0;
	}
	if (strcmp(section, "regscale") != 0 && strcmp(section, "daemon") != 0) {
		fail(p, p->line, -EINVAL, "unknown section [%s] (key \"%s\")", section, name);
		return 0;
	}
	for (i = 0; i < ELEMENTSOF(keys); i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0) {
			k = &keys[i];
			break;
		}
	if (!k) {
		fail(p, p->line, -EINVAL, "unknown key \"%s\" in [%s]", name, section);
		return 0;
	}
	if (p->set_line[i]) {
		fail(p, p->line, -EINVAL, "[%s] %s: duplicate key (already set on line %u)",
				section, name, p->set_line[i]);
		return 0;
	}

	r = parse_value(p, k, value, &reason);
	if (r < 0) {
		fail(p, p->line, r, "[%s] %s: %s", section, name, reason);
		return 0;
	}
	p->set_line[i] = p->line;
	if (k->kind == KIND_URL) {
		/* The daemon appends /api/authentication/...: a URL copied from the API docs
		 * would post to /api/api/... and fail at the first login. */
		const char *url = *(char **)field(&p->tmp, k);
		size_t n = config_value_url_api_base(url);
		if (n > 0) {
			fail(p, p->line, -EINVAL,
					"[%s] %s: ends in /api, which the daemon adds itself; "
					"give the base URL without it: %.*s",
					section, name, (int)n, url);
			return 0;
		}
	}
	return 1;
}

/* Returns the line where the file set [regscale] name, 0 if it did not. */
static unsigned line_of(const struct parse *p, const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		if (strcmp(keys[i].section, "regscale") == 0 && strcmp(keys[i].name, name) == 0)
			return p->set_line[i];
	return 0;
}

/* Whether systemd passed the credential "token", which makes the daemon serve it (service
 * mode) when no token_file is set: source_new() decides the same way. */
static bool token_credential(void)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	_cleanup_(freep) char *path = NULL;

	if (!creds || creds[0] != '/' || asprintf(&path, "%s/token", creds) < 0)
		return false;
	return access(path, F_OK) == 0;
}

/* Checks the keys of the file that only work together (README "Configuration"): the keys of
 * one mode, and a url for password login. Returns 0, or the error recorded with fail(). */
static int check_keys(struct parse *p)
{
	unsigned url = line_of(p, "url"), token = line_of(p, "token_file");
	unsigned user = line_of(p, "username"), pw = line_of(p, "password_file");
	unsigned login = user ? user : pw;
	const char *key = user ? "username" : "password_file";

	if (token && login)
		return fail(p, login, -EINVAL,
				"[regscale] %s: does not go with token_file (line %u): a token "
				"file is served as it is, %s is for password login; remove one of "
				"the two",
				key, token, key);
	if (token || token_credential())
		return 0;
	/* Password login: without a url the first login could only fail. */
	if (login && !url)
		return fail(p, login, -EINVAL,
				"[regscale] %s: needs url, the RegScale server to log in to; add "
				"its base URL, e.g. \"url = https://regscale.example.com\", to "
				"[regscale]",
				key);
	if (pw && !user)
		return fail(p, pw, -EINVAL,
				"[regscale] password_file: needs username, the account whose "
				"password it holds; add \"username = NAME\" to [regscale]");
	return 0;
}

/* Hands inih one line of the file per call, so that p->line is the current line. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	const char *line, *nl;
	size_t n;

	if (p->error || p->pos >= p->len)
		return NULL;

	line = p->buf + p->pos;
	nl = memchr(line, '\n', p->len - p->pos);
	n = nl ? (size_t)(nl - line) + 1 : p->len - p->pos;
	p->pos += n;
	p->line++;

	if (memchr(line, '\0', n)) {
		fail(p, p->line, -EINVAL, "NUL byte in line");
		return NULL;
	}
	/* inih reads an indented line as the continuation of the previous value; we have no
	 * multi-line values, so indentation is only indentation. */
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	/* Room for the line, "\r\n" and the NUL: inih would otherwise split a long line. */
	if (num < 3 || n + 1 > (size_t)num) {
		fail(p, p->line, -EINVAL, "line too long (at most %d characters)", num - 3);
		return NULL;
	}
	memcpy(str, line, n);
	str[n] = '\0';
	return str;
}

static int read_file(const char *path, char **ret, size_t *ret_len)
{
	_cleanup_(closep) int fd = -EBADF;
	_cleanup_(freep) char *buf = NULL;
	struct stat st;
	size_t n;
	ssize_t k;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size > CONFIG_MAX_SIZE)
		return -EFBIG;

	buf = malloc(CONFIG_MAX_SIZE + 1);
	if (!buf)
		return -ENOMEM;
	k = loop_read(fd, buf, CONFIG_MAX_SIZE + 1);
	if (k < 0)
		return (int)k;
	n = (size_t)k;
	if (n > CONFIG_MAX_SIZE)
		return -EFBIG;

	*ret = buf;
	buf = NULL;
	*ret_len = n;
	return 0;
}

/* Returns the absolute directory of path in *ret. */
static int config_dir(const char *path, char **ret)
{
	const char *slash = strrchr(path, '/');
	_cleanup_(freep) char *cwd = NULL;
	char *dir;

	if (slash == path)
		dir = strdup("/");
	else if (path[0] == '/')
		dir = strndup(path, (size_t)(slash - path));
	else {
		cwd = getcwd(NULL, 0);
		if (!cwd)
			return -errno;
		if (!slash)
			dir = strdup(cwd);
		else if (asprintf(&dir, "%s%s%.*s", cwd, strcmp(cwd, "/") == 0 ? "" : "/",
					 (int)(slash - path), path) < 0)
			dir = NULL;
	}
	if (!dir)
		return -ENOMEM;
	*ret = dir;
	return 0;
}

int config_load(struct config *c, const char *path, char *errbuf, size_t errlen)
{
	_cleanup_(freep) char *buf = NULL;
	_cleanup_(freep) char *dir = NULL;
	struct parse p = {
			.path = path,
			.errbuf = errbuf,
			.errlen = errlen,
	};
	char *path_copy;
	size_t len = 0;
	int r;

	if (errbuf && errlen > 0)
		errbuf[0] = '\0';
	config_init(&p.tmp);

	r = read_file(path, &buf, &len);
	if (r == -EFBIG)
		return fail(&p, 0, r, "too large (more than %d bytes)", CONFIG_MAX_SIZE);
	if (r == -EINVAL)
		return fail(&p, 0, r, "not a regular file");
	if (r < 0)
		return fail(&p, 0, r, "cannot read: %s", strerror(-r));
	r = config_dir(path, &dir);
	if (r < 0)
		return fail(&p, 0, r, "cannot resolve directory: %s", strerror(-r));

	p.buf = buf;
	p.len = len;
	p.dir = dir;
	r = ini_parse_stream(reader, &p, handler, &p);
	if (r == -2)
		fail(&p, 0, -ENOMEM, "out of memory");
	else if (r > 0 && (!p.error || (unsigned)r < p.error_line)) {
		/* A line that is neither "[section]" nor "key = value", before any other error. */
		p.error = 0;
		fail(&p, (unsigned)r, -EINVAL, "syntax error (expected [section] or key = value)");
	} else if (r != 0 && !p.error)
		fail(&p, 0, -EINVAL, "cannot parse");
	if (!p.error)
		check_keys(&p);
	if (p.error) {
		config_done(&p.tmp);
		return p.error;
	}

	path_copy = strdup(path);
	if (!path_copy) {
		config_done(&p.tmp);
		return fail(&p, 0, -ENOMEM, "out of memory");
	}

	/* Only now touch *c: a file with an error leaves the previous configuration alone. */
	c->keys_read = 0;
	for (size_t i = 0; i < ELEMENTSOF(keys); i++)
		c->keys_read += p.set_line[i] ? 1 : 0;
	for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
		const struct key *k = &keys[i];
		if (!p.set_line[i])
			continue;
		field_free(c, k);
		switch (k->kind) {
		case KIND_STRING:
		case KIND_PATH:
		case KIND_ABSOLUTE_PATH:
		case KIND_URL:
			*(char **)field(c, k) = *(char **)field(&p.tmp, k);
			*(char **)field(&p.tmp, k) = NULL;
			break;
		case KIND_LIST:
			*(char ***)field(c, k) = *(char ***)field(&p.tmp, k);
			*(char ***)field(&p.tmp, k) = NULL;
			break;
		case KIND_LOGIN_API:
			*(enum login_api *)field(c, k) = *(enum login_api *)field(&p.tmp, k);
			break;
		case KIND_DURATION:
		case KIND_COUNT:
			*(uint64_t *)field(c, k) = *(uint64_t *)field(&p.tmp, k);
			break;
		case KIND_WARN_POINTS:
			*(struct expiry_points *)field(c, k) =
					*(struct expiry_points *)field(&p.tmp, k);
			break;
		}
	}
	free(c->path);
	c->path = path_copy;
	config_done(&p.tmp);
	return 0;
}
