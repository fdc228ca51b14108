/* SPDX-License-Identifier: MIT */
/* The counters and their exposition, see metrics.h. The text format is Prometheus' version
 * 0.0.4: every family has its # HELP and # TYPE line before its samples, once; samples carry
 * no timestamp (node_exporter's textfile collector refuses them). Every sample carries the
 * label profile: the collector merges the files of all daemons on a host and refuses a
 * series two of them write, and a label on an _info series alone would not tell them apart. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/utf8.h"
#include "common/util.h"
#include "daemon/metrics.h"

#define PREFIX "regscale_token_"

struct metrics {
	/* [op][result]: op METRICS_OP_INVALID for lines that were no valid request, result
	 * PROTO_OK or an error code. */
	uint64_t requests[_PROTO_OP_MAX + 1][_PROTO_E_MAX];
	uint64_t logins[_METRICS_LOGIN_MAX];
	uint64_t refused[_METRICS_REFUSED_MAX];
	int64_t last_login_ok; /* unix seconds, 0: none yet */
	unsigned connections;
	int64_t started; /* unix seconds */
	bool changed;    /* since the last metrics_take(): the hook was called */
	char *profile;   /* the label profile: valid UTF-8, not escaped; NULL: "" */
	void (*hook)(void *userdata);
	void *userdata;
};

static const char *const login_results[_METRICS_LOGIN_MAX] = {
		[METRICS_LOGIN_OK] = "ok",
		[METRICS_LOGIN_REJECTED] = "rejected",
		[METRICS_LOGIN_FAILED] = "failed",
};

static const char *const refusal_reasons[_METRICS_REFUSED_MAX] = {
		[METRICS_REFUSED_PERMISSION_DENIED] = "permission_denied",
		[METRICS_REFUSED_PER_USER] = "max_connections_per_user",
		[METRICS_REFUSED_TOO_MANY_CLIENTS] = "too_many_clients",
		[METRICS_REFUSED_IDLE_TIMEOUT] = "idle_timeout",
		[METRICS_REFUSED_EVICTED] = "evicted",
		[METRICS_REFUSED_TOO_LARGE] = "too_large",
};

int metrics_new(struct metrics **ret)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->started = (int64_t)time(NULL);
	*ret = m;
	return 0;
}

struct metrics *metrics_free(struct metrics *m)
{
	if (!m)
		return NULL;
	free(m->profile);
	free(m);
	return NULL;
}

int metrics_set_socket(struct metrics *m, const char *socket_path)
{
	const char *name = strrchr(socket_path, '/');
	size_t len, suffix = strlen(".sock");
	char *p;

	name = name ? name + 1 : socket_path;
	len = strlen(name);
	/* The client's -p NAME is NAME.sock; ".sock" alone is no NAME. */
	if (len > suffix && strcmp(name + len - suffix, ".sock") == 0)
		len -= suffix;
	p = strndup(name, len);
	if (!p)
		return -ENOMEM;
	/* A label value is UTF-8; a path is any bytes. */
	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence_len(p + i, len - i);

		if (n == 0) {
			p[i] = '?';
			n = 1;
		}
		i += n;
	}
	free(m->profile);
	m->profile = p;
	return 0;
}

void metrics_set_hook(struct metrics *m, void (*changed)(void *userdata), void *userdata)
{
	m->hook = changed;
	m->userdata = userdata;
}

/* Something changed: the hook hears of the first change only. */
static void touch(struct metrics *m)
{
	if (m->changed)
		return;
	m->changed = true;
	if (m->hook)
		m->hook(m->userdata);
}

void metrics_count_request(struct metrics *m, enum proto_op op, enum proto_error result)
{
	if (!m || (unsigned)op > METRICS_OP_INVALID || (unsigned)result >= _PROTO_E_MAX)
		return;
	m->requests[op][result]++;
	touch(m);
}

void metrics_count_login(struct metrics *m, enum metrics_login result, int64_t wall)
{
	if (!m || (unsigned)result >= _METRICS_LOGIN_MAX)
		return;
	m->logins[result]++;
	if (result == METRICS_LOGIN_OK)
		m->last_login_ok = wall;
	touch(m);
}

void metrics_count_refusal(struct metrics *m, enum metrics_refusal why)
{
	if (!m || (unsigned)why >= _METRICS_REFUSED_MAX)
		return;
	m->refused[why]++;
	touch(m);
}

void metrics_set_connections(struct metrics *m, unsigned n)
{
	if (!m || m->connections == n)
		return;
	m->connections = n;
	touch(m);
}

int metrics_write_label_value(FILE *f, const char *value)
{
	for (const char *p = value; *p; p++) {
		int r;

		if (*p == '\\')
			r = fputs("\\\\", f);
		else if (*p == '"')
			r = fputs("\\\"", f);
		else if (*p == '\n')
			r = fputs("\\n", f);
		else
			r = fputc(*p, f);
		if (r == EOF)
			return -EIO;
	}
	return 0;
}

/* # HELP and # TYPE of family name (without PREFIX); help holds no backslash or newline. */
static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n", name, help, name, type);
}

/* The start of a sample of family name: its name and the label profile, the braces left
 * open for more labels (",k=\"v\"") and the closing "} VALUE". */
static void series(FILE *f, const struct metrics *m, const char *name)
{
	fprintf(f, PREFIX "%s{profile=\"", name);
	metrics_write_label_value(f, m->profile ? m->profile : "");
	fputc('"', f);
}

static void requests(FILE *f, const struct metrics *m)
{
	family(f, "requests_total", "counter",
			"Requests answered, by op and result: ok or the error code. op "
			"\"invalid\": lines that were no valid request. Errors appear once they "
			"happened.");
	for (int op = 0; op <= METRICS_OP_INVALID; op++)
		for (int res = 0; res < _PROTO_E_MAX; res++) {
			const char *name = op == METRICS_OP_INVALID ? "invalid" : proto_op_name(op);

			/* Every op's ok is there from the start; its errors once they happened. */
			if (m->requests[op][res] == 0 &&
					(res != PROTO_OK || op == METRICS_OP_INVALID))
				continue;
			series(f, m, "requests_total");
			fprintf(f, ",op=\"%s\",result=\"%s\"} %llu\n", name, proto_error_name(res),
					(unsigned long long)m->requests[op][res]);
		}
}

static void put(FILE *f, const struct metrics *m, const char *name, const char *type,
		const char *help, long long v)
{
	family(f, name, type, help);
	series(f, m, name);
	fprintf(f, "} %lld\n", v);
}

int metrics_take(struct metrics *m, const struct lc_info *info, char **ret, size_t *ret_len)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	bool bad;

	f = open_memstream(&text, &len);
	if (!f)
		return -ENOMEM;
	family(f, "info", "gauge",
			"The daemon's version, and the kind of token held: service, login, pasted, "
			"or none.");
	series(f, m, "info");
	fputs(",version=\"", f);
	metrics_write_label_value(f, RT_VERSION);
	fprintf(f, "\",kind=\"%s\"} 1\n", info->has_token && info->kind ? info->kind : "none");

	family(f, "state", "gauge", "The token's state (as in status): 1 for the current one.");
	for (int s = 0; s < _PROTO_STATE_MAX; s++) {
		series(f, m, "state");
		fprintf(f, ",state=\"%s\"} %d\n", proto_state_name(s),
				info->state == (enum proto_state)s);
	}

	put(f, m, "expiry_timestamp_seconds", "gauge",
			"When the held token stops being served, in unix seconds; 0 without a "
			"token "
			"or without a known expiry.",
			info->has_token ? (long long)info->expires_at : 0);
	put(f, m, "next_refresh_timestamp_seconds", "gauge",
			"When the next background login is planned, in unix seconds; 0 when none "
			"is.",
			(long long)info->next_refresh);

	family(f, "logins_total", "counter",
			"Logins to RegScale and checks of pasted tokens, by result: ok, rejected "
			"(RegScale said no) or failed (no usable answer).");
	for (int r = 0; r < _METRICS_LOGIN_MAX; r++) {
		series(f, m, "logins_total");
		fprintf(f, ",result=\"%s\"} %llu\n", login_results[r],
				(unsigned long long)m->logins[r]);
	}
	put(f, m, "last_login_timestamp_seconds", "gauge",
			"When the last successful login (or pasted token's check) ended, in unix "
			"seconds; 0 before the first.",
			(long long)m->last_login_ok);
	put(f, m, "retries", "gauge", "Failed logins since the last successful one.",
			(long long)info->retries);

	requests(f, m);

	family(f, "clients_refused_total", "counter",
			"Connections the daemon refused or closed on its own, by reason.");
	for (int r = 0; r < _METRICS_REFUSED_MAX; r++) {
		series(f, m, "clients_refused_total");
		fprintf(f, ",reason=\"%s\"} %llu\n", refusal_reasons[r],
				(unsigned long long)m->refused[r]);
	}
	put(f, m, "connections", "gauge", "Client connections open.", (long long)m->connections);
	put(f, m, "start_time_seconds", "gauge", "When the daemon started, in unix seconds.",
			(long long)m->started);

	bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		free(text);
		return -ENOMEM;
	}
	m->changed = false;
	*ret = text;
	*ret_len = len;
	return 0;
}
