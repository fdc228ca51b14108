/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"

struct tmpdir {
	char path[128]; /* physical path, as getcwd() reports it */
	char conf[160]; /* path/x.conf, the file most tests write */
};

static int tmpdir_setup(void **state)
{
	struct tmpdir *d = calloc(1, sizeof(*d));
	char tmpl[] = "/tmp/test-config-XXXXXX", real[PATH_MAX];

	if (!d || !mkdtemp(tmpl) || !realpath(tmpl, real) || strlen(real) >= sizeof(d->path))
		return -1;
	strcpy(d->path, real);
	snprintf(d->conf, sizeof(d->conf), "%s/x.conf", d->path);
	*state = d;
	return 0;
}

static int tmpdir_teardown(void **state)
{
	struct tmpdir *d = *state;
	char *cmd;

	if (asprintf(&cmd, "rm -rf '%s'", d->path) < 0)
		return -1;
	if (system(cmd) != 0)
		return -1;
	free(cmd);
	free(d);
	return 0;
}

static void write_at(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Writes content to d->conf and loads it into *c. */
static int load(const struct tmpdir *d, const char *content, struct config *c, char *errbuf,
		size_t errlen)
{
	write_at(d->conf, content, strlen(content));
	return config_load(c, d->conf, errbuf, errlen);
}

/* Expects content to fail with -EINVAL and exactly "CONF:line: message". */
static void expect_error(
		const struct tmpdir *d, const char *content, unsigned line, const char *message)
{
	struct config c;
	char err[512], want[1024];

	config_init(&c);
	assert_int_equal(load(d, content, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:%u: %s", d->conf, line, message);
	assert_string_equal(err, want);
	/* nothing was taken over */
	assert_null(c.path);
	assert_null(c.url);
	assert_null(c.allow_users);
	config_done(&c);
}

/* Loads "[section]\nkey = value\n" and returns the error message after "[section] key: ",
 * or NULL on success (the config is then in *c). */
static const char *try_value(const struct tmpdir *d, const char *section, const char *key,
		const char *value, struct config *c)
{
	static char err[512];
	char *content, prefix[256];
	int r;

	assert_true(asprintf(&content, "[%s]\n%s = %s\n", section, key, value) > 0);
	config_init(c);
	r = load(d, content, c, err, sizeof(err));
	free(content);
	if (r == 0)
		return NULL;
	assert_int_equal(r, -EINVAL);
	snprintf(prefix, sizeof(prefix), "%s:2: [%s] %s: ", d->conf, section, key);
	assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
	return err + strlen(prefix);
}

static void test_defaults(void **state)
{
	struct config c;

	config_init(&c);
	assert_null(c.path);
	assert_null(c.url);
	assert_null(c.username);
	assert_null(c.password_file);
	assert_null(c.token_file);
	assert_null(c.ca_file);
	assert_null(c.proxy);
	assert_int_equal(c.login_api, LOGIN_API_V1);
	assert_int_equal(c.connect_timeout_sec, 10);
	assert_int_equal(c.total_timeout_sec, 30);
	assert_int_equal(c.default_lifetime_sec, 86400);
	assert_null(c.socket);
	assert_null(c.allow_users);
	assert_null(c.allow_groups);
	assert_null(c.admin_users);
	assert_null(c.admin_groups);
	config_done(&c);
	config_done(&c); /* twice is fine */
}

static void test_full(void **state)
{
	const char *path = TEST_DATA_DIR "/config-full.conf";
	struct config c;
	char err[256] = "untouched";

	config_init(&c);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(c.path, path);
	assert_string_equal(c.url, "https://regscale.example.com");
	assert_string_equal(c.username, "svc-tokend@example.com");
	assert_string_equal(c.password_file, TEST_DATA_DIR "/secrets/password");
	assert_null(c.token_file);
	assert_string_equal(c.ca_file, TEST_DATA_DIR "/ca.pem");
	assert_string_equal(c.proxy, "http://proxy.example.com:3128");
	assert_int_equal(c.login_api, LOGIN_API_V2);
	assert_int_equal(c.connect_timeout_sec, 5);
	assert_int_equal(c.total_timeout_sec, 120);
	assert_int_equal(c.default_lifetime_sec, 12 * 3600);
	assert_string_equal(c.socket, "/run/regscale-token/test.sock");
	assert_non_null(c.allow_users);
	assert_string_equal(c.allow_users[0], "alice");
	assert_string_equal(c.allow_users[1], "bob");
	assert_string_equal(c.allow_users[2], "carol");
	assert_null(c.allow_users[3]);
	assert_string_equal(c.allow_groups[0], "regscale");
	assert_null(c.allow_groups[1]);
	assert_string_equal(c.admin_users[0], "root");
	assert_null(c.admin_users[1]);
	assert_string_equal(c.admin_groups[0], "wheel");
	assert_string_equal(c.admin_groups[1], "adm");
	assert_null(c.admin_groups[2]);

	config_done(&c);
	assert_null(c.path);
	assert_null(c.url);
	assert_null(c.allow_users);
	assert_int_equal(c.connect_timeout_sec, 10);
}

static void test_relative_paths(void **state)
{
	const struct tmpdir *d = *state;
	char old[PATH_MAX], sub[256], want[256];
	const char *content = "[regscale]\ntoken_file = tok\nca_file = ../ca.pem\n"
			      "[daemon]\nsocket = run/x.sock\n";
	struct config c;

	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(chdir(d->path), 0);
	snprintf(sub, sizeof(sub), "%s/sub", d->path);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_at("sub/x.conf", content, strlen(content));
	write_at("y.conf", content, strlen(content));

	/* relative to the file's directory, not to the working directory */
	config_init(&c);
	assert_int_equal(config_load(&c, "sub/x.conf", NULL, 0), 0);
	assert_string_equal(c.path, "sub/x.conf");
	snprintf(want, sizeof(want), "%s/sub/tok", d->path);
	assert_string_equal(c.token_file, want);
	snprintf(want, sizeof(want), "%s/sub/../ca.pem", d->path);
	assert_string_equal(c.ca_file, want);
	snprintf(want, sizeof(want), "%s/sub/run/x.sock", d->path);
	assert_string_equal(c.socket, want);
	config_done(&c);

	/* a bare file name: the working directory, made absolute */
	config_init(&c);
	assert_int_equal(config_load(&c, "y.conf", NULL, 0), 0);
	snprintf(want, sizeof(want), "%s/tok", d->path);
	assert_string_equal(c.token_file, want);
	config_done(&c);

	/* an absolute file */
	config_init(&c);
	snprintf(sub, sizeof(sub), "%s/sub/x.conf", d->path);
	assert_int_equal(config_load(&c, sub, NULL, 0), 0);
	snprintf(want, sizeof(want), "%s/sub/tok", d->path);
	assert_string_equal(c.token_file, want);
	config_done(&c);

	/* relative to / as the working directory: no double slash */
	assert_int_equal(chdir("/"), 0);
	snprintf(sub, sizeof(sub), "%s/y.conf", d->path + 1);
	config_init(&c);
	assert_int_equal(config_load(&c, sub, NULL, 0), 0);
	snprintf(want, sizeof(want), "%s/tok", d->path);
	assert_string_equal(c.token_file, want);
	config_done(&c);

	assert_int_equal(chdir(old), 0);

	/* ~ is not expanded by anyone, so it is refused */
	assert_string_equal(try_value(d, "regscale", "ca_file", "~/ca.pem", &c),
			"~ is not expanded; use an absolute path");
	config_done(&c);
}

static void test_keeps_previous(void **state)
{
	const struct tmpdir *d = *state;
	struct config c;
	char err[256];

	config_init(&c);
	assert_int_equal(
			load(d,
					"[regscale]\nurl = https://a.example\nconnect_timeout = 3\n"
					"[daemon]\nallow_users = alice\n",
					&c, err, sizeof(err)),
			0);

	/* keys the second file does not set keep their values */
	assert_int_equal(load(d, "[regscale]\nproxy = http://bob:3128\nconnect_timeout = 4\n", &c,
					 err, sizeof(err)),
			0);
	assert_string_equal(c.url, "https://a.example");
	assert_string_equal(c.proxy, "http://bob:3128");
	assert_int_equal(c.connect_timeout_sec, 4);
	assert_string_equal(c.allow_users[0], "alice");
	assert_string_equal(c.path, d->conf);

	/* a file with an error changes nothing, not even the keys before the error */
	assert_int_equal(load(d,
					 "[regscale]\nurl = https://b.example\nproxy = "
					 "http://carol\n"
					 "connect_timeout = 0\n",
					 &c, err, sizeof(err)),
			-EINVAL);
	assert_string_equal(c.url, "https://a.example");
	assert_string_equal(c.proxy, "http://bob:3128");
	assert_int_equal(c.connect_timeout_sec, 4);

	/* an empty file is fine and changes nothing */
	assert_int_equal(load(d, "", &c, err, sizeof(err)), 0);
	assert_string_equal(c.url, "https://a.example");
	assert_int_equal(load(d, "[regscale]\n[daemon]\n; nothing\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.proxy, "http://bob:3128");
	config_done(&c);
}

static void test_url(void **state)
{
	static const struct {
		const char *value, *url, *error;
	} cases[] = {
			{"https://regscale.example.com", "https://regscale.example.com", NULL},
			{"https://regscale.example.com///", "https://regscale.example.com", NULL},
			{"https://x.example:8443/base/", "https://x.example:8443/base", NULL},
			{"HTTPS://X.example", "HTTPS://X.example", NULL},
			{"https://[2001:db8::1]:443/", "https://[2001:db8::1]:443", NULL},
			{"http://127.0.0.1:8080/", "http://127.0.0.1:8080", NULL},
			{"http://127.1.2.3", "http://127.1.2.3", NULL},
			{"http://localhost:1/apis", "http://localhost:1/apis", NULL},
			{"https://x.example/api/v2", "https://x.example/api/v2", NULL},
			{"https://x.example/myapi", "https://x.example/myapi", NULL},
			{"https://api", "https://api", NULL}, /* a host named api */
			{"https://api/", "https://api", NULL},
			{"https://api:8443", "https://api:8443", NULL},
			{"https://x.example.com/api", NULL,
					"ends in /api, which the daemon adds itself; give the base "
					"URL without it: https://x.example.com"},
			{"https://x.example.com/api/", NULL,
					"ends in /api, which the daemon adds itself; give the base "
					"URL without it: https://x.example.com"},
			{"https://x.example.com//API//", NULL,
					"ends in /api, which the daemon adds itself; give the base "
					"URL without it: https://x.example.com"},
			{"http://localhost:1/api", NULL,
					"ends in /api, which the daemon adds itself; give the base "
					"URL without it: http://localhost:1"},
			{"https://x.example.com/regscale/api", NULL,
					"ends in /api, which the daemon adds itself; give the base "
					"URL without it: https://x.example.com/regscale"},
			{"https://api/api", NULL,
					"ends in /api, which the daemon adds itself; give the base "
					"URL without it: https://api"},
			{"http://LocalHost", "http://LocalHost", NULL},
			{"http://[::1]:9000/", "http://[::1]:9000", NULL},
			{"http://[0:0:0:0:0:0:0:1]", "http://[0:0:0:0:0:0:0:1]", NULL},
			{"http://regscale.example.com", NULL,
					"http:// is only allowed for 127.0.0.1, localhost or "
					"[::1]; use https://"},
			{"http://128.0.0.1", NULL,
					"http:// is only allowed for 127.0.0.1, localhost or "
					"[::1]; use https://"},
			{"http://127.0.0.1.example.com", NULL,
					"http:// is only allowed for 127.0.0.1, localhost or "
					"[::1]; use https://"},
			{"http://localhost.example.com", NULL,
					"http:// is only allowed for 127.0.0.1, localhost or "
					"[::1]; use https://"},
			{"http://[::2]", NULL,
					"http:// is only allowed for 127.0.0.1, localhost or "
					"[::1]; use https://"},
			{"regscale.example.com", NULL,
					"must start with https:// (or http:// for a loopback "
					"address)"},
			{"ftp://x", NULL,
					"must start with https:// (or http:// for a loopback "
					"address)"},
			{"https:/x", NULL,
					"must start with https:// (or http:// for a loopback "
					"address)"},
			{"https://", NULL, "no host"},
			{"https:///path", NULL, "no host"},
			{"https://:443", NULL, "no host"},
			{"https://x:", NULL, "empty port"},
			{"https://x:0", NULL, "port out of range"},
			{"https://x:65536", NULL, "port out of range"},
			{"https://x:8a", NULL, "port is not a number"},
			{"https://[::1", NULL, "unterminated [ in host"},
			{"https://[::1]x", NULL, "bad host"},
			{"https://[nope]", NULL, "bad IPv6 address in []"},
			{"https://user:pw@x", NULL,
					"must not contain user information (user@ or "
					"user:password@)"},
			{"https://x/?a=b", NULL, "must not contain a query or fragment (? or #)"},
			{"https://x/#f", NULL, "must not contain a query or fragment (? or #)"},
			{"https://x y", NULL, "must not contain whitespace"},
	};
	const struct tmpdir *d = *state;
	struct config c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *e = try_value(d, "regscale", "url", cases[i].value, &c);
		if (cases[i].error) {
			assert_non_null(e);
			assert_string_equal(e, cases[i].error);
		} else {
			assert_null(e);
			assert_string_equal(c.url, cases[i].url);
		}
		config_done(&c);
	}
}

static void test_durations(void **state)
{
	static const struct {
		const char *value;
		uint64_t sec;
		const char *error;
	} cases[] = {
			{"30", 30, NULL},
			{"30s", 30, NULL},
			{"5m", 300, NULL},
			{"24h", 86400, NULL},
			{"007", 7, NULL},
			{"8760h", 31536000, NULL},
			{"31536000", 31536000, NULL},
			{"0", 0, "must be positive"},
			{"0h", 0, "must be positive"},
			{"8761h", 0, "too large (at most 365d)"},
			{"31536001", 0, "too large (at most 365d)"},
			{"99999999999999999999999", 0, "too large (at most 365d)"},
			{"-5", 0, "not a number (expected e.g. 30, 30s, 5m, 24h or 7d)"},
			{"+5", 0, "not a number (expected e.g. 30, 30s, 5m, 24h or 7d)"},
			{"abc", 0, "not a number (expected e.g. 30, 30s, 5m, 24h or 7d)"},
			{"s", 0, "not a number (expected e.g. 30, 30s, 5m, 24h or 7d)"},
			{"d", 0, "not a number (expected e.g. 30, 30s, 5m, 24h or 7d)"},
			{"5x", 0, "bad unit (expected s, m, h or d)"},
			{"5ms", 0, "bad unit (expected s, m, h or d)"},
			{"5 m", 0, "bad unit (expected s, m, h or d)"},
			{"1.5h", 0, "bad unit (expected s, m, h or d)"},
			{"1d", 86400, NULL},
			{"5d", 432000, NULL},
			{"365d", 31536000, NULL},
			{"366d", 0, "too large (at most 365d)"},
			{"1.5d", 0, "bad unit (expected s, m, h or d)"},
			{"1dd", 0, "bad unit (expected s, m, h or d)"},
			{"1D", 0, "bad unit (expected s, m, h or d)"},
	};
	/* Every duration key of the file: each takes every unit, d included. */
	static const struct {
		const char *section, *name;
	} keys[] = {
			{"regscale", "connect_timeout"},
			{"regscale", "total_timeout"},
			{"regscale", "default_lifetime"},
			{"daemon", "idle_timeout"},
	};
	const struct tmpdir *d = *state;
	struct config c;

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const char *e = try_value(
					d, keys[k].section, keys[k].name, cases[i].value, &c);
			if (cases[i].error) {
				assert_non_null(e);
				assert_string_equal(e, cases[i].error);
			} else {
				uint64_t got = k == 0   ? c.connect_timeout_sec
					       : k == 1 ? c.total_timeout_sec
					       : k == 2 ? c.default_lifetime_sec
							: c.idle_timeout_sec;
				assert_null(e);
				assert_int_equal(got, cases[i].sec);
			}
			config_done(&c);
		}
}

static void test_max_connections_per_user(void **state)
{
	static const struct {
		const char *value;
		uint64_t n;
		const char *error;
	} cases[] = {
			{"1", 1, NULL},
			{"32", 32, NULL},
			{"007", 7, NULL},
			{"128", 128, NULL},
			{"0", 0, "must be at least 1"},
			{"000", 0, "must be at least 1"},
			{"129", 0, "too large (at most 128)"},
			{"99999999999999999999999", 0, "too large (at most 128)"},
			{"-1", 0, "not a number (expected a whole number from 1 to 128)"},
			{"+1", 0, "not a number (expected a whole number from 1 to 128)"},
			{"abc", 0, "not a number (expected a whole number from 1 to 128)"},
			{"5x", 0, "not a number (expected a whole number from 1 to 128)"},
			{"1.5", 0, "not a number (expected a whole number from 1 to 128)"},
			{"30s", 0, "not a number (expected a whole number from 1 to 128)"},
			{"4 4", 0, "not a number (expected a whole number from 1 to 128)"},
	};
	const struct tmpdir *d = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(c.max_connections_per_user, 32);
	config_done(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *e = try_value(
				d, "daemon", "max_connections_per_user", cases[i].value, &c);
		if (cases[i].error) {
			assert_non_null(e);
			assert_string_equal(e, cases[i].error);
			assert_int_equal(c.max_connections_per_user, 32);
		} else {
			assert_null(e);
			assert_int_equal(c.max_connections_per_user, cases[i].n);
		}
		config_done(&c);
	}
	/* In [regscale] it is unknown; twice is a duplicate; an error keeps the old value. */
	expect_error(d, "[regscale]\nmax_connections_per_user = 4\n", 2,
			"unknown key \"max_connections_per_user\" in [regscale]");
	expect_error(d, "[daemon]\nmax_connections_per_user = 4\nmax_connections_per_user = 5\n", 3,
			"[daemon] max_connections_per_user: duplicate key (already set on line 2)");
	config_init(&c);
	assert_int_equal(load(d, "[daemon]\nmax_connections_per_user = 4\n", &c, NULL, 0), 0);
	assert_int_equal(load(d, "[daemon]\nmax_connections_per_user = 0\n", &c, NULL, 0), -EINVAL);
	assert_int_equal(c.max_connections_per_user, 4);
	config_done(&c);
}

/* metrics_file is for another program to find: absolute only, named in the error. */
static void test_metrics_file(void **state)
{
	const struct tmpdir *d = *state;
	struct config c;
	const char *e;

	assert_null(try_value(d, "daemon", "metrics_file", "/var/lib/x/regscale-token.prom", &c));
	assert_string_equal(c.metrics_file, "/var/lib/x/regscale-token.prom");
	config_done(&c);
	assert_null(c.metrics_file);
	for (int i = 0; i < 3; i++) {
		e = try_value(d, "daemon", "metrics_file",
				(const char *[]){"x.prom", "./x.prom", "~/x.prom"}[i], &c);
		assert_non_null(e);
		assert_string_equal(e, "must be an absolute path (a file in node_exporter's "
				       "textfile directory, e.g. "
				       "/var/lib/prometheus/node-exporter/regscale-token.prom)");
		assert_null(c.metrics_file);
		config_done(&c);
	}
	expect_error(d, "[regscale]\nmetrics_file = /x.prom\n", 2,
			"unknown key \"metrics_file\" in [regscale]");
}

static void test_login_api(void **state)
{
	const struct tmpdir *d = *state;
	struct config c;

	assert_null(try_value(d, "regscale", "login_api", "v1", &c));
	assert_int_equal(c.login_api, LOGIN_API_V1);
	config_done(&c);
	assert_null(try_value(d, "regscale", "login_api", "v2", &c));
	assert_int_equal(c.login_api, LOGIN_API_V2);
	config_done(&c);
	assert_string_equal(try_value(d, "regscale", "login_api", "v3", &c), "must be v1 or v2");
	config_done(&c);
	assert_string_equal(try_value(d, "regscale", "login_api", "V2", &c), "must be v1 or v2");
	config_done(&c);
}

static void test_lists(void **state)
{
	static const char *const keys[] = {
			"allow_users", "allow_groups", "admin_users", "admin_groups"};
	const struct tmpdir *d = *state;
	struct config c;

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		char **l;

		assert_null(try_value(d, "daemon", keys[k], ",alice, bob  carol,,dave\t eve,", &c));
		l = k == 0   ? c.allow_users
		    : k == 1 ? c.allow_groups
		    : k == 2 ? c.admin_users
			     : c.admin_groups;
		assert_non_null(l);
		assert_string_equal(l[0], "alice");
		assert_string_equal(l[1], "bob");
		assert_string_equal(l[2], "carol");
		assert_string_equal(l[3], "dave");
		assert_string_equal(l[4], "eve");
		assert_null(l[5]);
		config_done(&c);

		assert_null(try_value(d, "daemon", keys[k], "1000", &c));
		l = k == 0   ? c.allow_users
		    : k == 1 ? c.allow_groups
		    : k == 2 ? c.admin_users
			     : c.admin_groups;
		assert_string_equal(l[0], "1000");
		assert_null(l[1]);
		config_done(&c);

		assert_string_equal(try_value(d, "daemon", keys[k], ", ,,", &c), "empty list");
		config_done(&c);
	}
}

static void test_strings(void **state)
{
	const struct tmpdir *d = *state;
	struct config c;

	/* inline comments go, as in every INI file */
	config_init(&c);
	assert_int_equal(
			load(d, "[regscale]\nurl = https://x\nusername = some user ; the account\n",
					&c, NULL, 0),
			0);
	assert_string_equal(c.username, "some user");
	config_done(&c);

	assert_null(try_value(d, "regscale", "proxy", "socks5h://127.0.0.1:1080", &c));
	assert_string_equal(c.proxy, "socks5h://127.0.0.1:1080");
	config_done(&c);
	assert_string_equal(try_value(d, "regscale", "proxy", "http://a b", &c),
			"must not contain whitespace");
	config_done(&c);

	assert_string_equal(try_value(d, "regscale", "username", "a\x01z", &c),
			"contains a control character");
	config_done(&c);
	assert_string_equal(try_value(d, "daemon", "allow_users", "a\x1b[31m", &c),
			"contains a control character");
	config_done(&c);
	assert_string_equal(try_value(d, "regscale", "token_file", "/a\tb", &c),
			"contains a control character");
	config_done(&c);
	assert_string_equal(try_value(d, "regscale", "username", "", &c), "empty value");
	config_done(&c);
	assert_string_equal(try_value(d, "daemon", "socket", "", &c), "empty value");
	config_done(&c);
}

static void test_errors(void **state)
{
	const struct tmpdir *d = *state;

	expect_error(d, "[regscale]\nurl = https://x\nfoo = 1\n", 3,
			"unknown key \"foo\" in [regscale]");
	expect_error(d, "[daemon]\nurl = https://x\n", 2, "unknown key \"url\" in [daemon]");
	expect_error(d, "[regscale]\nURL = https://x\n", 2, "unknown key \"URL\" in [regscale]");
	expect_error(d, "[regscale]\n\x1b[2Jx = 1\n", 2, "unknown key \"?[2Jx\" in [regscale]");
	expect_error(d, "[regscal]\nurl = https://x\n", 2,
			"unknown section [regscal] (key \"url\")");
	expect_error(d, "url = https://x\n", 1, "key \"url\" outside of any section");
	expect_error(d, "# comment\n\n[regscale]\n; comment\nurl = https://a\n\nurl = https://b\n",
			7, "[regscale] url: duplicate key (already set on line 5)");
	/* the same section twice is fine, the same key twice is not */
	expect_error(d,
			"[regscale]\nurl=https://a\n[daemon]\nsocket=/s\n[regscale]\nurl=https://"
			"a\n",
			6, "[regscale] url: duplicate key (already set on line 2)");
	expect_error(d, "[regscale]\nconnect_timeout = 5\nconnect_timeout = 5\n", 3,
			"[regscale] connect_timeout: duplicate key (already set on line 2)");
	expect_error(d, "[regscale]\nusername = a\n\n\n[regscale]\nconnect_timeout = soon\n", 6,
			"[regscale] connect_timeout: not a number (expected e.g. 30, 30s, 5m, 24h "
			"or 7d)");
	expect_error(d, "[daemon]\nallow_users =\n", 2, "[daemon] allow_users: empty value");

	/* lines inih itself refuses */
	expect_error(d, "[regscale]\nurl\n", 2, "syntax error (expected [section] or key = value)");
	/* inih also takes "key: value", so this is a key named "url https" */
	expect_error(d, "[regscale]\nurl https://x\n", 2,
			"unknown key \"url https\" in [regscale]");
	expect_error(d, "[regscale\nurl = https://x\n", 1,
			"syntax error (expected [section] or key = value)");
	/* the first error wins, whoever finds it */
	expect_error(d, "[regscale]\nnot a line\nfoo = 1\n", 2,
			"syntax error (expected [section] or key = value)");
	expect_error(d, "[regscale]\nfoo = 1\nnot a line\n", 2,
			"unknown key \"foo\" in [regscale]");
	/* an indented line is not a continuation of the previous value */
	expect_error(d, "[daemon]\nallow_users = alice\n  bob\n", 3,
			"syntax error (expected [section] or key = value)");
}

static void test_line_numbers(void **state)
{
	const struct tmpdir *d = *state;
	char *content, *long_value;
	struct config c;
	char err[512], want[1024];
	size_t n = 0;

	/* CRLF, comments, blank and indented lines all count */
	expect_error(d, "[regscale]\r\n; comment\r\n\r\n  url = https://x\r\n\tfoo = 1\r\n", 5,
			"unknown key \"foo\" in [regscale]");
	/* a UTF-8 byte order mark is skipped */
	expect_error(d, "\xef\xbb\xbf[regscale]\nbar = 1\n", 2,
			"unknown key \"bar\" in [regscale]");
	/* no newline at the end */
	expect_error(d, "[regscale]\n\nurl = ftp://x", 3,
			"[regscale] url: must start with https:// (or http:// for a loopback "
			"address)");

	/* the 200th line */
	content = calloc(1, 64 * 1024);
	assert_non_null(content);
	n += (size_t)sprintf(content + n, "[regscale]\n");
	for (int i = 2; i < 200; i++)
		n += (size_t)sprintf(content + n, i % 2 ? "\n" : "# line %d\n", i);
	sprintf(content + n, "login_api = v9\n");
	expect_error(d, content, 200, "[regscale] login_api: must be v1 or v2");

	/* a line too long for inih's buffer is an error, never split */
	long_value = malloc(1001);
	assert_non_null(long_value);
	memset(long_value, 'a', 1000);
	long_value[1000] = '\0';
	snprintf(content, 64 * 1024, "[regscale]\n\nusername = %s\nfoo = 1\n", long_value);
	config_init(&c);
	assert_int_equal(load(d, content, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: line too long (at most ", d->conf);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	config_done(&c);

	/* a long line that fits is fine */
	long_value[150] = '\0';
	snprintf(content, 64 * 1024, "[regscale]\nurl = https://x\nusername = %s\n", long_value);
	config_init(&c);
	assert_int_equal(load(d, content, &c, err, sizeof(err)), 0);
	assert_string_equal(c.username, long_value);
	config_done(&c);
	free(long_value);

	/* a NUL byte */
	write_at(d->conf, "[regscale]\nusername = a\0b\n", 26);
	config_init(&c);
	assert_int_equal(config_load(&c, d->conf, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", d->conf);
	assert_string_equal(err, want);
	config_done(&c);
	free(content);
}

static void test_file_errors(void **state)
{
	const struct tmpdir *d = *state;
	char path[256], err[512], want[512];
	struct config c;

	config_init(&c);
	snprintf(path, sizeof(path), "%s/missing.conf", d->path);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
	assert_string_equal(err, want);
	assert_null(c.path);

	assert_int_equal(config_load(&c, d->path, err, sizeof(err)), -EISDIR);
	snprintf(want, sizeof(want), "%s: cannot read: Is a directory", d->path);
	assert_string_equal(err, want);

	snprintf(path, sizeof(path), "%s/fifo", d->path);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(config_load(&c, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file", path);
	assert_string_equal(err, want);

	/* a small or absent error buffer */
	snprintf(path, sizeof(path), "%s/missing.conf", d->path);
	memset(err, 'x', sizeof(err));
	assert_int_equal(config_load(&c, path, err, 8), -ENOENT);
	assert_int_equal(strlen(err), 7);
	assert_int_equal(err[8], 'x');
	assert_int_equal(config_load(&c, path, NULL, 0), -ENOENT);
	assert_int_equal(load(d, "[x]\ny = 1\n", &c, err, 1), -EINVAL);
	assert_string_equal(err, "");
	config_done(&c);
}

#define NEEDS_URL                                                                                  \
	": needs url, the RegScale server to log in to; add its base URL, e.g. \"url = "           \
	"https://regscale.example.com\", to [regscale]"
#define NOT_WITH_TOKEN_FILE(key, line)                                                             \
	"[regscale] " key ": does not go with token_file (line " #line "): a token file is "       \
	"served as it is, " key " is for password login; remove one of the two"

/* Keys that only work together, checked on the whole file whatever their order. */
static const struct {
	const char *content;
	unsigned line;
	const char *error; /* NULL: loads */
} mode_cases[] = {
		/* password login */
		{"[regscale]\nurl = https://x\nusername = u\npassword_file = pw\n", 0, NULL},
		{"[regscale]\nusername = u\npassword_file = pw\nurl = https://x\n", 0, NULL},
		{"[regscale]\nurl = https://x\nusername = u\n", 0, NULL}, /* password by login */
		{"[regscale]\nurl = https://x\n", 0, NULL},               /* all by login */
		{"", 0, NULL},                                            /* no url, no account */
		{"[daemon]\nsocket = /s\n", 0, NULL},
		{"[regscale]\nusername = u\n", 2, "[regscale] username" NEEDS_URL},
		{"[regscale]\nca_file = /ca\n\nusername = u\npassword_file = pw\n", 4,
				"[regscale] username" NEEDS_URL},
		{"[regscale]\npassword_file = pw\n", 2, "[regscale] password_file" NEEDS_URL},
		{"[regscale]\nurl = https://x\n; comment\npassword_file = pw\n", 4,
				"[regscale] password_file: needs username, the account whose "
				"password "
				"it holds; add \"username = NAME\" to [regscale]"},
		/* service token */
		{"[regscale]\ntoken_file = t\n", 0, NULL},
		{"[regscale]\nurl = https://x\ntoken_file = t\n", 0, NULL},
		{"[regscale]\ntoken_file = t\nusername = u\n", 3,
				NOT_WITH_TOKEN_FILE("username", 2)},
		{"[regscale]\nusername = u\nurl = https://x\ntoken_file = t\n", 2,
				NOT_WITH_TOKEN_FILE("username", 4)},
		{"[regscale]\npassword_file = pw\n\n\ntoken_file = t\n", 2,
				NOT_WITH_TOKEN_FILE("password_file", 5)},
		{"[regscale]\ntoken_file = t\npassword_file = pw\nusername = u\n", 4,
				NOT_WITH_TOKEN_FILE("username", 2)},
		/* an error in a value comes first */
		{"[regscale]\nusername = u\nconnect_timeout = 0\n", 3,
				"[regscale] connect_timeout: must be positive"},
		{"[regscale]\ntoken_file = t\nusername = u\nurl = https://x/api\n", 4,
				"[regscale] url: ends in /api, which the daemon adds itself; give "
				"the "
				"base URL without it: https://x"},
};

static void test_modes(void **state)
{
	const struct tmpdir *d = *state;
	struct config c;

	assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
	for (size_t i = 0; i < sizeof(mode_cases) / sizeof(mode_cases[0]); i++) {
		if (mode_cases[i].error) {
			expect_error(d, mode_cases[i].content, mode_cases[i].line,
					mode_cases[i].error);
			continue;
		}
		config_init(&c);
		assert_int_equal(load(d, mode_cases[i].content, &c, NULL, 0), 0);
		config_done(&c);
	}
}

/* The systemd credential "token" is service mode too: no url needed for a username there,
 * which the daemon ignores. The credential "password" changes nothing. */
static void test_modes_credentials(void **state)
{
	const struct tmpdir *d = *state;
	char creds[200], path[256];
	struct config c;

	snprintf(creds, sizeof(creds), "%s/creds", d->path);
	assert_int_equal(mkdir(creds, 0700), 0);
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", creds, 1), 0);
	snprintf(path, sizeof(path), "%s/password", creds);
	write_at(path, "pw", 2);
	expect_error(d, "[regscale]\nusername = u\n", 2, "[regscale] username" NEEDS_URL);

	snprintf(path, sizeof(path), "%s/token", creds);
	write_at(path, "x.y.z", 5);
	config_init(&c);
	assert_int_equal(load(d, "[regscale]\nusername = u\n", &c, NULL, 0), 0);
	assert_int_equal(load(d, "[regscale]\npassword_file = pw\n", &c, NULL, 0), 0);
	config_done(&c);
	expect_error(d, "[regscale]\ntoken_file = t\nusername = u\n", 3,
			NOT_WITH_TOKEN_FILE("username", 2));

	/* a relative directory is no credential directory (source.c ignores it too) */
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", "creds", 1), 0);
	expect_error(d, "[regscale]\nusername = u\n", 2, "[regscale] username" NEEDS_URL);
	assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_defaults),
			cmocka_unit_test(test_full),
			cmocka_unit_test_setup_teardown(
					test_relative_paths, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(
					test_keeps_previous, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(test_url, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(
					test_durations, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(
					test_login_api, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(test_max_connections_per_user, tmpdir_setup,
					tmpdir_teardown),
			cmocka_unit_test_setup_teardown(test_lists, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(
					test_metrics_file, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(
					test_strings, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(test_errors, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(
					test_line_numbers, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(
					test_file_errors, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(test_modes, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(
					test_modes_credentials, tmpdir_setup, tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
