#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "daemon/config.h"
#include "proto/proto.h"
#include "proto/util.h"

/* A configuration file is a handful of lines; anything bigger is a mistake. */
#define CONFIG_MAX_SIZE (1024 * 1024)

/* Longest duration accepted: one year. */
#define CONFIG_MAX_DURATION_SEC (365ULL * 24 * 3600)

enum kind {
	KIND_STRING,
	KIND_PATH,
	KIND_URL,
	KIND_LOGIN_API,
	KIND_DURATION,
	KIND_LIST,
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
		{"daemon", "allow_users", KIND_LIST, offsetof(struct config, allow_users)},
		{"daemon", "allow_groups", KIND_LIST, offsetof(struct config, allow_groups)},
		{"daemon", "admin_users", KIND_LIST, offsetof(struct config, admin_users)},
		{"daemon", "admin_groups", KIND_LIST, offsetof(struct config, admin_groups)},
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

static char **list_free(char **l)
{
	if (l)
		for (char **i = l; *i; i++)
			free(*i);
	free(l);
	return NULL;
}

void config_init(struct config *ret)
{
	*ret = (struct config){
			.login_api = LOGIN_API_V1,
			.connect_timeout_sec = 10,
			.idle_timeout_sec = PROTO_IDLE_TIMEOUT_SEC,
			.total_timeout_sec = 30,
			.default_lifetime_sec = 86400,
	};
}

static void field_free(struct config *c, const struct key *k)
{
	switch (k->kind) {
	case KIND_STRING:
	case KIND_PATH:
	case KIND_URL: {
		char **s = field(c, k);
		free(*s);
		*s = NULL;
		break;
	}
	case KIND_LIST: {
		char ***l = field(c, k);
		*l = list_free(*l);
		break;
	}
	case KIND_LOGIN_API:
	case KIND_DURATION:
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
	for (char *i = p->errbuf; *i; i++)
		if ((unsigned char)*i < 0x20 || *i == 0x7f)
			*i = '?';
	return err;
}

/* Parses "30", "30s", "5m", "24h" into seconds. Returns NULL or a reason. */
static const char *parse_duration(const char *v, uint64_t *ret)
{
	uint64_t n = 0, mult = 1;
	const char *s = v;

	if (*s < '0' || *s > '9')
		return "not a number (expected e.g. 30, 30s, 5m or 24h)";
	for (; *s >= '0' && *s <= '9'; s++) {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > CONFIG_MAX_DURATION_SEC)
			return "too large (at most 8760h)";
	}
	if (*s) {
		if (strcmp(s, "s") == 0)
			mult = 1;
		else if (strcmp(s, "m") == 0)
			mult = 60;
		else if (strcmp(s, "h") == 0)
			mult = 3600;
		else
			return "bad unit (expected s, m or h)";
	}
	if (n == 0)
		return "must be positive";
	if (n * mult > CONFIG_MAX_DURATION_SEC)
		return "too large (at most 8760h)";
	*ret = n * mult;
	return NULL;
}

static bool host_is_loopback(const char *host, bool bracketed)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (bracketed)
		return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return strcasecmp(host, "localhost") == 0;
}

/* Checks a RegScale base URL and returns a copy without trailing slashes in *ret, or a
 * reason. */
static const char *parse_url(const char *v, char **ret)
{
	char host[256];
	const char *rest, *auth_end, *host_end, *port = NULL;
	bool https, bracketed = false;
	size_t host_len, len;
	char *url;

	if (strncasecmp(v, "https://", 8) == 0) {
		https = true;
		rest = v + 8;
	} else if (strncasecmp(v, "http://", 7) == 0) {
		https = false;
		rest = v + 7;
	} else {
		return "must start with https:// (or http:// for a loopback address)";
	}
	if (strpbrk(v, " \t"))
		return "must not contain whitespace";
	if (strpbrk(v, "?#"))
		return "must not contain a query or fragment (? or #)";

	auth_end = rest + strcspn(rest, "/");
	if (memchr(rest, '@', (size_t)(auth_end - rest)))
		return "must not contain user information (user@ or user:password@)";

	if (*rest == '[') {
		bracketed = true;
		rest++;
		host_end = memchr(rest, ']', (size_t)(auth_end - rest));
		if (!host_end)
			return "unterminated [ in host";
		if (host_end + 1 < auth_end) {
			if (host_end[1] != ':')
				return "bad host";
			port = host_end + 2;
		}
	} else {
		host_end = memchr(rest, ':', (size_t)(auth_end - rest));
		if (host_end)
			port = host_end + 1;
		else
			host_end = auth_end;
	}
	host_len = (size_t)(host_end - rest);
	if (host_len == 0)
		return "no host";
	if (host_len >= sizeof(host))
		return "host name too long";
	memcpy(host, rest, host_len);
	host[host_len] = '\0';

	if (port) {
		unsigned long n = 0;
		if (port == auth_end)
			return "empty port";
		for (const char *i = port; i < auth_end; i++) {
			if (*i < '0' || *i > '9')
				return "port is not a number";
			n = n * 10 + (unsigned long)(*i - '0');
			if (n > 65535)
				return "port out of range";
		}
		if (n == 0)
			return "port out of range";
	}

	if (bracketed) {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return "bad IPv6 address in []";
	}
	if (!https && !host_is_loopback(host, bracketed))
		return "http:// is only allowed for 127.0.0.1, localhost or [::1]; use https://";

	len = strlen(v);
	while (len > 0 && v[len - 1] == '/')
		len--;
	url = strndup(v, len);
	if (!url)
		return "out of memory";
	*ret = url;
	return NULL;
}

/* Resolves a path relative to the configuration file's directory. */
static const char *parse_path(struct parse *p, const char *v, char **ret)
{
	char *s;

	if (v[0] == '~')
		return "~ is not expanded; use an absolute path";
	if (v[0] == '/')
		s = strdup(v);
	else if (asprintf(&s, "%s%s%s", p->dir, p->dir[strlen(p->dir) - 1] == '/' ? "" : "/", v) <
			0)
		s = NULL;
	if (!s)
		return "out of memory";
	*ret = s;
	return NULL;
}

/* Splits a list on commas and whitespace into a NULL-terminated array. */
static const char *parse_list(const char *v, char ***ret)
{
	static const char sep[] = ", \t";
	size_t n = 0, i = 0;
	char **l;

	for (const char *s = v + strspn(v, sep); *s; s += strspn(s, sep)) {
		n++;
		s += strcspn(s, sep);
	}
	if (n == 0)
		return "empty list";

	l = calloc(n + 1, sizeof(char *));
	if (!l)
		return "out of memory";
	for (const char *s = v + strspn(v, sep); *s; s += strspn(s, sep)) {
		size_t len = strcspn(s, sep);
		l[i] = strndup(s, len);
		if (!l[i]) {
			list_free(l);
			return "out of memory";
		}
		i++;
		s += len;
	}
	*ret = l;
	return NULL;
}

static const char *parse_value(struct parse *p, const struct key *k, const char *v)
{
	void *f = field(&p->tmp, k);

	for (const char *s = v; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			if (!(k->kind == KIND_LIST && *s == '\t'))
				return "contains a control character";
	if (!*v)
		return "empty value";

	switch (k->kind) {
	case KIND_STRING:
		if (strcmp(k->name, "proxy") == 0 && strpbrk(v, " \t"))
			return "must not contain whitespace";
		*(char **)f = strdup(v);
		return *(char **)f ? NULL : "out of memory";
	case KIND_PATH:
		return parse_path(p, v, f);
	case KIND_URL:
		return parse_url(v, f);
	case KIND_LOGIN_API:
		if (strcmp(v, "v1") == 0)
			*(enum login_api *)f = LOGIN_API_V1;
		else if (strcmp(v, "v2") == 0)
			*(enum login_api *)f = LOGIN_API_V2;
		else
			return "must be v1 or v2";
		return NULL;
	case KIND_DURATION:
		return parse_duration(v, f);
	case KIND_LIST:
		return parse_list(v, f);
	}
	return "unknown kind";
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	const struct key *k = NULL;
	const char *reason;
	size_t i;

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

	reason = parse_value(p, k, value);
	if (reason) {
		fail(p, p->line, strcmp(reason, "out of memory") == 0 ? -ENOMEM : -EINVAL,
				"[%s] %s: %s", section, name, reason);
		return 0;
	}
	p->set_line[i] = p->line;
	return 1;
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
	for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
		const struct key *k = &keys[i];
		if (!p.set_line[i])
			continue;
		field_free(c, k);
		switch (k->kind) {
		case KIND_STRING:
		case KIND_PATH:
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
			*(uint64_t *)field(c, k) = *(uint64_t *)field(&p.tmp, k);
			break;
		}
	}
	free(c->path);
	c->path = path_copy;
	config_done(&p.tmp);
	return 0;
}
