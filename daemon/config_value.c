/* SPDX-License-Identifier: MIT */
/* The value parsers behind config_load(): each checks one value from the file and converts it,
 * returning 0, or -errno and a static reason that config.c puts after "[section] key: ". */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/duration.h"
#include "daemon/config_value.h"
#include "proto/proto.h"

/* Longest duration accepted: one year. */
#define CONFIG_MAX_DURATION_SEC (365ULL * 24 * 3600)

/* Sets *ret_reason to why and returns err, for one-line failures. */
static int fail(const char **ret_reason, int err, const char *why)
{
	*ret_reason = why;
	return err;
}

char **config_value_list_free(char **l)
{
	if (l)
		for (char **i = l; *i; i++)
			free(*i);
	free(l);
	return NULL;
}

int config_value_duration(const char *v, uint64_t *ret, const char **ret_reason)
{
	uint64_t n;
	int r;

	r = duration_parse(v, CONFIG_MAX_DURATION_SEC, &n);
	if (r == -ERANGE)
		return fail(ret_reason, -EINVAL, "too large (at most 365d)");
	if (r < 0 && (*v < '0' || *v > '9'))
		return fail(ret_reason, -EINVAL,
				"not a number (expected e.g. 30, 30s, 5m, 24h or 7d)");
	if (r < 0)
		return fail(ret_reason, -EINVAL, "bad unit (expected s, m, h or d)");
	if (n == 0)
		return fail(ret_reason, -EINVAL, "must be positive");
	*ret = n;
	return 0;
}

/* PROTO_MAX_CLIENTS as text, for the static reasons below. */
#define STR_(x)         #x
#define STR(x)          STR_(x)
#define MAX_CLIENTS_STR STR(PROTO_MAX_CLIENTS)

int config_value_connections(const char *v, uint64_t *ret, const char **ret_reason)
{
	uint64_t n = 0;

	for (const char *s = v; *s; s++) {
		if (*s < '0' || *s > '9')
			return fail(ret_reason, -EINVAL,
					"not a number (expected a whole number from 1 "
					"to " MAX_CLIENTS_STR ")");
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > PROTO_MAX_CLIENTS)
			return fail(ret_reason, -EINVAL, "too large (at most " MAX_CLIENTS_STR ")");
	}
	if (n == 0)
		return fail(ret_reason, -EINVAL, "must be at least 1");
	*ret = n;
	return 0;
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

int config_value_url(const char *v, char **ret, const char **ret_reason)
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
		return fail(ret_reason, -EINVAL,
				"must start with https:// (or http:// for a loopback address)");
	}
	if (strpbrk(v, " \t"))
		return fail(ret_reason, -EINVAL, "must not contain whitespace");
	if (strpbrk(v, "?#"))
		return fail(ret_reason, -EINVAL, "must not contain a query or fragment (? or #)");

	auth_end = rest + strcspn(rest, "/");
	if (memchr(rest, '@', (size_t)(auth_end - rest)))
		return fail(ret_reason, -EINVAL,
				"must not contain user information (user@ or user:password@)");

	if (*rest == '[') {
		bracketed = true;
		rest++;
		host_end = memchr(rest, ']', (size_t)(auth_end - rest));
		if (!host_end)
			return fail(ret_reason, -EINVAL, "unterminated [ in host");
		if (host_end + 1 < auth_end) {
			if (host_end[1] != ':')
				return fail(ret_reason, -EINVAL, "bad host");
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
		return fail(ret_reason, -EINVAL, "no host");
	if (host_len >= sizeof(host))
		return fail(ret_reason, -EINVAL, "host name too long");
	memcpy(host, rest, host_len);
	host[host_len] = '\0';

	if (port) {
		unsigned long n = 0;
		if (port == auth_end)
			return fail(ret_reason, -EINVAL, "empty port");
		for (const char *i = port; i < auth_end; i++) {
			if (*i < '0' || *i > '9')
				return fail(ret_reason, -EINVAL, "port is not a number");
			n = n * 10 + (unsigned long)(*i - '0');
			if (n > 65535)
				return fail(ret_reason, -EINVAL, "port out of range");
		}
		if (n == 0)
			return fail(ret_reason, -EINVAL, "port out of range");
	}

	if (bracketed) {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return fail(ret_reason, -EINVAL, "bad IPv6 address in []");
	}
	if (!https && !host_is_loopback(host, bracketed))
		return fail(ret_reason, -EINVAL,
				"http:// is only allowed for 127.0.0.1, localhost or [::1]; use "
				"https://");

	len = strlen(v);
	while (len > 0 && v[len - 1] == '/')
		len--;
	url = strndup(v, len);
	if (!url)
		return fail(ret_reason, -ENOMEM, "out of memory");
	*ret = url;
	return 0;
}

size_t config_value_url_api_base(const char *url)
{
	const char *host = strstr(url, "://"), *path;
	size_t len = strlen(url);

	if (!host)
		return 0;
	path = strchr(host + 3, '/');
	if (!path || len < 4 || url + len - 4 < path || strcasecmp(url + len - 4, "/api") != 0)
		return 0;
	len -= 4;
	while (len > 0 && url[len - 1] == '/')
		len--;
	return len;
}

int config_value_path(const char *dir, const char *v, char **ret, const char **ret_reason)
{
	char *s;

	if (v[0] == '~')
		return fail(ret_reason, -EINVAL, "~ is not expanded; use an absolute path");
	if (v[0] == '/')
		s = strdup(v);
	else if (asprintf(&s, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", v) < 0)
		s = NULL;
	if (!s)
		return fail(ret_reason, -ENOMEM, "out of memory");
	*ret = s;
	return 0;
}

int config_value_list(const char *v, char ***ret, const char **ret_reason)
{
	static const char sep[] = ", \t";
	size_t n = 0, i = 0;
	char **l;

	for (const char *s = v + strspn(v, sep); *s; s += strspn(s, sep)) {
		n++;
		s += strcspn(s, sep);
	}
	if (n == 0)
		return fail(ret_reason, -EINVAL, "empty list");

	l = calloc(n + 1, sizeof(char *));
	if (!l)
		return fail(ret_reason, -ENOMEM, "out of memory");
	for (const char *s = v + strspn(v, sep); *s; s += strspn(s, sep)) {
		size_t len = strcspn(s, sep);
		l[i] = strndup(s, len);
		if (!l[i]) {
			config_value_list_free(l);
			return fail(ret_reason, -ENOMEM, "out of memory");
		}
		i++;
		s += len;
	}
	*ret = l;
	return 0;
}

int config_value_login_api(const char *v, enum login_api *ret, const char **ret_reason)
{
	if (strcmp(v, "v1") == 0)
		*ret = LOGIN_API_V1;
	else if (strcmp(v, "v2") == 0)
		*ret = LOGIN_API_V2;
	else
		return fail(ret_reason, -EINVAL, "must be v1 or v2");
	return 0;
}

int config_value_warn_points(const char *v, struct expiry_points *ret, const char **ret_reason)
{
	static const char sep[] = ", \t";
	struct expiry_points p = {0};
	char one[32];
	uint64_t sec;
	int r;

	for (const char *s = v + strspn(v, sep); *s; s += strspn(s, sep)) {
		size_t len = strcspn(s, sep);

		if (len >= sizeof(one))
			return fail(ret_reason, -EINVAL,
					"not a duration (expected e.g. 30d, 7d, 1d, 1h)");
		memcpy(one, s, len);
		one[len] = '\0';
		r = config_value_duration(one, &sec, ret_reason);
		if (r < 0)
			return r;
		if (expiry_points_add(&p, sec) < 0)
			return fail(ret_reason, -EINVAL, "too many durations (at most 16)");
		s += len;
	}
	if (p.n == 0)
		return fail(ret_reason, -EINVAL, "empty list");
	*ret = p;
	return 0;
}
