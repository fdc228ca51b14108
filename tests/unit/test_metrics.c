/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/lifecycle.h"
#include "daemon/metrics.h"
#include "daemon/vault.h"

/* The exposition of m for info, NUL-terminated; checked to be well-formed text format. */
static char *take(struct metrics *m, const struct lc_info *info);

static const struct lc_info no_token = {.state = PROTO_STATE_NO_TOKEN, .last_error = ""};

/* Returns the value of the sample line "series VALUE" in text, or -1 when there is none. */
static long long sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return atoll(p + n + 1);
	return -1;
}

/* Checks the rules of the 0.0.4 text format that the daemon's output must keep: one HELP
 * and one TYPE line per family, both before its samples, which come together; names of
 * [a-zA-Z_:][a-zA-Z0-9_:]*; the label profile first on every sample; a value after one
 * space; every line ends in a newline. */
static void check_format(const char *text)
{
	char family[128] = "", seen[64][128];
	size_t n_seen = 0;
	bool help = false, type = false;

	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	for (const char *p = text; *p;) {
		const char *end = strchr(p, '\n');
		char line[1024], name[128];
		size_t len;

		assert_non_null(end);
		len = (size_t)(end - p);
		assert_true(len < sizeof(line));
		memcpy(line, p, len);
		line[len] = '\0';
		p = end + 1;
		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
			bool is_help = line[2] == 'H';

			assert_int_equal(sscanf(line + 7, "%127s", name), 1);
			if (strcmp(name, family) != 0) {
				/* A new family: never one seen before. */
				for (size_t i = 0; i < n_seen; i++)
					assert_string_not_equal(seen[i], name);
				assert_true(n_seen < 64);
				strcpy(seen[n_seen++], name);
				strcpy(family, name);
				help = type = false;
			}
			assert_false(is_help ? help : type);
			if (is_help)
				help = true;
			else
				type = true;
			continue;
		}
		assert_true(line[0] != '#');
		/* A sample of the current family, after its HELP and TYPE. */
		assert_true(help && type);
		len = strspn(line,
				"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
		assert_true(len > 0 && !(line[0] >= '0' && line[0] <= '9'));
		assert_true(strlen(family) == len && strncmp(line, family, len) == 0);
		assert_memory_equal(line + len, "{profile=\"", strlen("{profile=\""));
		{
			const char *close = strrchr(line, '}');
			assert_non_null(close);
			len = (size_t)(close - line) + 1;
		}
		assert_int_equal(line[len], ' ');
		assert_true(strspn(line + len + 1, "0123456789") == strlen(line + len + 1));
	}
}

static char *take(struct metrics *m, const struct lc_info *info)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(metrics_take(m, info, &text, &len), 0);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	check_format(text);
	return text;
}

/* A new daemon: every family, the state named, counters at 0, no token means 0. */
static void test_fresh(void **state)
{
	struct metrics *m = NULL;
	char *t;

	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_set_socket(m, "/run/regscale-token/prod.sock"), 0);
	t = take(m, &no_token);
	assert_int_equal(sample(t, "regscale_token_info{profile=\"prod\",version=\"" RT_VERSION
				   "\",kind=\"none\"}"),
			1);
	for (int s = 0; s < _PROTO_STATE_MAX; s++) {
		char series[128];

		snprintf(series, sizeof(series),
				"regscale_token_state{profile=\"prod\",state=\"%s\"}",
				proto_state_name(s));
		assert_int_equal(sample(t, series), s == PROTO_STATE_NO_TOKEN);
	}
	assert_int_equal(sample(t, "regscale_token_expiry_timestamp_seconds{profile=\"prod\"}"), 0);
	assert_int_equal(sample(t, "regscale_token_last_login_timestamp_seconds{profile=\"prod\"}"),
			0);
	assert_int_equal(sample(t, "regscale_token_logins_total{profile=\"prod\",result=\"ok\"}"),
			0);
	assert_int_equal(sample(t, "regscale_token_logins_total{profile=\"prod\",result="
				   "\"rejected\"}"),
			0);
	assert_int_equal(sample(t, "regscale_token_logins_total{profile=\"prod\",result="
				   "\"failed\"}"),
			0);
	for (int op = 0; op < _PROTO_OP_MAX; op++) {
		char series[128];

		snprintf(series, sizeof(series),
				"regscale_token_requests_total{profile=\"prod\",op=\"%s\",result="
				"\"ok\"}",
				proto_op_name(op));
		assert_int_equal(sample(t, series), 0);
	}
	/* Errors appear once they happened. */
	assert_null(strstr(t, "result=\"no_token\""));
	assert_null(strstr(t, "op=\"invalid\""));
	assert_int_equal(sample(t, "regscale_token_clients_refused_total{profile=\"prod\",reason="
				   "\"permission_"
				   "denied\"}"),
			0);
	assert_int_equal(sample(t, "regscale_token_connections{profile=\"prod\"}"), 0);
	assert_true(sample(t, "regscale_token_start_time_seconds{profile=\"prod\"}") > 1700000000);
	free(t);
	metrics_free(m);
}

/* What the serving path counts shows up, exactly. */
static void test_counts(void **state)
{
	struct lc_info valid = {
			.state = PROTO_STATE_VALID,
			.has_token = true,
			.kind = PROTO_KIND_LOGIN,
			.expires_at = 1795960800,
			.next_refresh = 1795918000,
			.retries = 2,
	};
	struct metrics *m = NULL;
	char *t;

	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_set_socket(m, "/run/regscale-token/prod.sock"), 0);
	for (int i = 0; i < 3; i++)
		metrics_count_request(m, PROTO_OP_GET, PROTO_OK);
	metrics_count_request(m, PROTO_OP_GET, PROTO_E_NO_TOKEN);
	metrics_count_request(m, PROTO_OP_LOGIN, PROTO_E_PERMISSION_DENIED);
	metrics_count_request(m, METRICS_OP_INVALID, PROTO_E_BAD_REQUEST);
	metrics_count_request(m, METRICS_OP_INVALID, PROTO_E_UNKNOWN_OP);
	metrics_count_request(m, METRICS_OP_INVALID, PROTO_E_UNKNOWN_OP);
	/* Out of range: ignored, never written past the table. */
	metrics_count_request(m, METRICS_OP_INVALID + 1, PROTO_OK);
	metrics_count_request(m, PROTO_OP_GET, _PROTO_E_MAX);
	metrics_count_login(m, METRICS_LOGIN_FAILED, 1795000000);
	metrics_count_login(m, METRICS_LOGIN_OK, 1795000100);
	metrics_count_login(m, METRICS_LOGIN_REJECTED, 1795000200);
	metrics_count_login(m, METRICS_LOGIN_OK, 1795000300);
	metrics_count_refusal(m, METRICS_REFUSED_PERMISSION_DENIED);
	metrics_count_refusal(m, METRICS_REFUSED_TOO_LARGE);
	metrics_count_refusal(m, METRICS_REFUSED_TOO_LARGE);
	metrics_set_connections(m, 5);
	metrics_set_connections(m, 4);
	t = take(m, &valid);
	assert_int_equal(sample(t, "regscale_token_info{profile=\"prod\",version=\"" RT_VERSION
				   "\",kind=\"login\"}"),
			1);
	assert_int_equal(sample(t, "regscale_token_state{profile=\"prod\",state=\"valid\"}"), 1);
	assert_int_equal(sample(t, "regscale_token_state{profile=\"prod\",state=\"no_token\"}"), 0);
	assert_int_equal(sample(t, "regscale_token_expiry_timestamp_seconds{profile=\"prod\"}"),
			1795960800);
	assert_int_equal(sample(t, "regscale_token_next_refresh_timestamp_seconds{profile="
				   "\"prod\"}"),
			1795918000);
	assert_int_equal(sample(t, "regscale_token_retries{profile=\"prod\"}"), 2);
	assert_int_equal(sample(t, "regscale_token_requests_total{profile=\"prod\",op=\"get\","
				   "result=\"ok\"}"),
			3);
	assert_int_equal(sample(t, "regscale_token_requests_total{profile=\"prod\",op=\"get\","
				   "result=\"no_token\"}"),
			1);
	assert_int_equal(sample(t, "regscale_token_requests_total{profile=\"prod\",op=\"login\","
				   "result=\"permission_"
				   "denied\"}"),
			1);
	assert_int_equal(sample(t, "regscale_token_requests_total{profile=\"prod\",op=\"login\","
				   "result=\"ok\"}"),
			0);
	assert_int_equal(sample(t, "regscale_token_requests_total{profile=\"prod\",op=\"invalid\","
				   "result=\"bad_"
				   "request\"}"),
			1);
	assert_int_equal(sample(t, "regscale_token_requests_total{profile=\"prod\",op=\"invalid\","
				   "result=\"unknown_"
				   "op\"}"),
			2);
	assert_int_equal(sample(t, "regscale_token_requests_total{profile=\"prod\",op=\"invalid\","
				   "result=\"ok\"}"),
			-1);
	assert_int_equal(sample(t, "regscale_token_logins_total{profile=\"prod\",result=\"ok\"}"),
			2);
	assert_int_equal(sample(t, "regscale_token_logins_total{profile=\"prod\",result="
				   "\"rejected\"}"),
			1);
	assert_int_equal(sample(t, "regscale_token_logins_total{profile=\"prod\",result="
				   "\"failed\"}"),
			1);
	/* The last successful one, not the last one. */
	assert_int_equal(sample(t, "regscale_token_last_login_timestamp_seconds{profile=\"prod\"}"),
			1795000300);
	assert_int_equal(sample(t, "regscale_token_clients_refused_total{profile=\"prod\",reason="
				   "\"permission_"
				   "denied\"}"),
			1);
	assert_int_equal(sample(t, "regscale_token_clients_refused_total{profile=\"prod\",reason="
				   "\"too_large\"}"),
			2);
	assert_int_equal(sample(t, "regscale_token_clients_refused_total{profile=\"prod\",reason="
				   "\"evicted\"}"),
			0);
	assert_int_equal(sample(t, "regscale_token_connections{profile=\"prod\"}"), 4);
	free(t);

	/* A token without a known expiry, and a service token. */
	valid.expires_at = 0;
	valid.kind = PROTO_KIND_SERVICE;
	t = take(m, &valid);
	assert_int_equal(sample(t, "regscale_token_expiry_timestamp_seconds{profile=\"prod\"}"), 0);
	assert_int_equal(sample(t, "regscale_token_info{profile=\"prod\",version=\"" RT_VERSION
				   "\",kind=\"service\"}"),
			1);
	free(t);
	/* NULL counts nothing and does not crash: a server without metrics. */
	metrics_count_request(NULL, PROTO_OP_GET, PROTO_OK);
	metrics_count_refusal(NULL, METRICS_REFUSED_EVICTED);
	metrics_set_connections(NULL, 3);
	metrics_free(m);
}

static int hook_calls;

static void hook(void *userdata)
{
	assert_ptr_equal(userdata, &hook_calls);
	hook_calls++;
}

/* The hook hears of the first change after a take only: the serving path pays an increment. */
static void test_hook(void **state)
{
	struct metrics *m = NULL;

	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_set_socket(m, "/run/regscale-token/prod.sock"), 0);
	metrics_set_hook(m, hook, &hook_calls);
	hook_calls = 0;
	metrics_count_request(m, PROTO_OP_GET, PROTO_OK);
	metrics_count_request(m, PROTO_OP_GET, PROTO_OK);
	metrics_count_refusal(m, METRICS_REFUSED_IDLE_TIMEOUT);
	metrics_set_connections(m, 1);
	assert_int_equal(hook_calls, 1);
	free(take(m, &no_token));
	/* No change, no call. */
	metrics_set_connections(m, 1);
	assert_int_equal(hook_calls, 1);
	metrics_count_login(m, METRICS_LOGIN_OK, 1);
	metrics_set_connections(m, 0);
	assert_int_equal(hook_calls, 2);
	metrics_set_hook(m, NULL, NULL);
	free(take(m, &no_token));
	metrics_count_request(m, PROTO_OP_GET, PROTO_OK);
	assert_int_equal(hook_calls, 2);
	metrics_free(m);
}

/* Label values escape backslash, double quote and line feed, and nothing else. */
static void test_label_escaping(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(metrics_write_label_value(f, "a\\b\"c\nd\te\xc3\xa9"), 0);
	assert_int_equal(fclose(f), 0);
	assert_string_equal(buf, "a\\\\b\\\"c\\nd\te\xc3\xa9");
	free(buf);
}

/* The series of text: each sample line less its value, "name{labels}", one per line, in a
 * new string. */
static char *series_of(const char *text)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	for (const char *p = text; *p;) {
		const char *end = strchr(p, '\n'), *space = memrchr(p, ' ', (size_t)(end - p));

		if (*p != '#')
			fprintf(f, "%.*s\n", (int)(space - p), p);
		p = end + 1;
	}
	assert_int_equal(fclose(f), 0);
	return out;
}

/* Returns true if line (without its newline) is a line of text, or the start of one up to a
 * space (a sample line less its value). */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; *p; p = strchr(p, '\n') + 1)
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == ' '))
			return true;
	return false;
}

/* The exposition of a fresh m named after socket_path; checked as take() does. */
static char *take_named(const char *socket_path)
{
	struct metrics *m = NULL;
	char *t;

	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_set_socket(m, socket_path), 0);
	t = take(m, &no_token);
	metrics_free(m);
	return t;
}

/* Returns true if every sample line of text starts its labels with {profile="value",... or
 * {profile="value"} (value as written, escaped), and there is at least one. */
static bool all_profile(const char *text, const char *value)
{
	char want[256];
	int n = 0;

	snprintf(want, sizeof(want), "{profile=\"%s\"", value);
	for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
		const char *brace = strchr(p, '{');

		if (*p == '#')
			continue;
		if (!brace || brace > strchr(p, '\n') || strncmp(brace, want, strlen(want)) != 0 ||
				(brace[strlen(want)] != ',' && brace[strlen(want)] != '}'))
			return false;
		n++;
	}
	return n > 0;
}

/* Two daemons on one host (two profiles, two files in one textfile directory): every series
 * carries profile, so the two expositions share no series; node_exporter's collector refuses
 * a series two files hold. The name is the client's: NAME of NAME.sock. */
static void test_profiles(void **state)
{
	char *prod = take_named("/run/regscale-token/prod.sock");
	char *staging = take_named("/run/user/1000/regscale-token/staging.sock");
	char *a = series_of(prod), *b = series_of(staging);
	struct metrics *m = NULL;
	char *t;

	assert_true(all_profile(prod, "prod"));
	assert_true(all_profile(staging, "staging"));
	assert_int_equal(sample(prod, "regscale_token_connections{profile=\"prod\"}"), 0);
	assert_int_equal(sample(staging, "regscale_token_state{profile=\"staging\",state=\"no_"
					 "token\"}"),
			1);
	/* No series of one is a series of the other. */
	for (char *line = strtok(a, "\n"); line; line = strtok(NULL, "\n")) {
		assert_true(has_line(prod, line));
		assert_false(has_line(b, line));
	}
	free(a);
	free(b);
	free(prod);
	free(staging);

	/* The profile each socket path gives, escaped as the format says. */
	static const struct {
		const char *socket, *profile;
	} names[] = {
			/* Not NAME.sock: the whole file name. ".sock" alone names no profile. */
			{"/srv/rt/socket", "socket"},
			{"/srv/rt/prod.sock.old", "prod.sock.old"},
			{"/srv/rt/.sock", ".sock"},
			{"relative.sock", "relative"},
			/* An abstract socket systemd passed (listen_socket_path()): "@NAME". */
			{"@regscale-token/prod.sock", "prod"},
			{"@rt-prod", "@rt-prod"},
			/* Escaped as the format says; UTF-8 kept, other bytes '?'. */
			{"/srv/rt/a\\b\"c\nd.sock", "a\\\\b\\\"c\\nd"},
			{"/srv/rt/caf\xc3\xa9-\xff\xc3.sock", "caf\xc3\xa9-??"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		t = take_named(names[i].socket);
		assert_true(all_profile(t, names[i].profile));
		free(t);
	}

	/* Unnamed: profile="", still on every series; renamed: the new name only. */
	assert_int_equal(metrics_new(&m), 0);
	t = take(m, &no_token);
	assert_true(all_profile(t, ""));
	free(t);
	assert_int_equal(metrics_set_socket(m, "/run/regscale-token/a.sock"), 0);
	assert_int_equal(metrics_set_socket(m, "/run/regscale-token/b.sock"), 0);
	t = take(m, &no_token);
	assert_true(all_profile(t, "b"));
	free(t);
	metrics_free(m);
}

/* The file: replaced by rename (a new inode each time), mode 0644 whatever the umask, the
 * exposition as metrics_take() writes it, nothing left behind, a link at the temporary name
 * never written through. */
static void test_file(void **state)
{
	struct lc_hooks hooks = {0};
	struct metrics_file *f = NULL;
	struct lifecycle *lc = NULL;
	struct metrics *m = NULL;
	struct vault *v = NULL;
	char dir[] = "/tmp/test-metrics-XXXXXX", path[128], tmp[160], victim[160], buf[8192];
	struct stat st1, st2;
	sd_event *e = NULL;
	mode_t old;
	ssize_t n;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/rt.prom", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(vault_new(&v), 0);
	assert_int_equal(lifecycle_new(v, &hooks, &lc), 0);
	assert_int_equal(metrics_new(&m), 0);
	assert_int_equal(metrics_set_socket(m, "/run/regscale-token/prod.sock"), 0);
	assert_int_equal(metrics_file_new(e, m, lc, path, &f), 0);
	assert_string_equal(metrics_file_path(f), path);

	old = umask(077);
	assert_int_equal(metrics_file_write(f), 0);
	assert_int_equal(stat(path, &st1), 0);
	assert_int_equal(st1.st_mode & 07777, 0644);
	assert_int_equal(access(tmp, F_OK), -1);
	metrics_count_request(m, PROTO_OP_STATUS, PROTO_OK);

	/* Someone's link at the temporary name is replaced, not followed. */
	fd = open(victim, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlink(victim, tmp), 0);
	assert_int_equal(metrics_file_write(f), 0);
	umask(old);
	assert_int_equal(stat(victim, &st2), 0);
	assert_int_equal(st2.st_size, 0);
	assert_int_equal(stat(path, &st2), 0);
	assert_true(st2.st_ino != st1.st_ino);
	assert_int_equal(access(tmp, F_OK), -1);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	check_format(buf);
	assert_int_equal(sample(buf, "regscale_token_requests_total{profile=\"prod\",op=\"status\","
				     "result=\"ok\"}"),
			1);
	assert_int_equal(sample(buf, "regscale_token_state{profile=\"prod\",state=\"no_token\"}"),
			1);

	/* A directory that is gone: an error, and the next write works again. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(unlink(victim), 0);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(metrics_file_write(f), -ENOENT);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(metrics_file_write(f), 0);

	/* Freed (the daemon stops): the file goes, but not one that replaced it. */
	metrics_file_free(f);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(metrics_file_new(e, m, lc, path, &f), 0);
	assert_int_equal(metrics_file_write(f), 0);
	assert_int_equal(rename(path, victim), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	close(fd);
	metrics_file_free(f);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(unlink(victim), 0);
	assert_int_equal(rmdir(dir), 0);

	metrics_free(m);
	lifecycle_free(lc);
	vault_free(v);
	sd_event_unref(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_fresh),
			cmocka_unit_test(test_counts),
			cmocka_unit_test(test_hook),
			cmocka_unit_test(test_label_escaping),
			cmocka_unit_test(test_profiles),
			cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
