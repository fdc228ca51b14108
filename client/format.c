/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "client/format.h"
#include "common/duration.h"
#include "common/util.h"
#include "proto/reply_read.h"

static const char *const token_format_names[_FORMAT_MAX] = {
		[FORMAT_RAW] = "raw",
		[FORMAT_BEARER] = "bearer",
		[FORMAT_HEADER] = "header",
		[FORMAT_JSON] = "json",
		[FORMAT_ENV] = "env",
};

static const char *const token_prefixes[_FORMAT_MAX] = {
		[FORMAT_RAW] = "",
		[FORMAT_BEARER] = "Bearer ",
		[FORMAT_HEADER] = "Authorization: Bearer ",
		[FORMAT_JSON] = "",
		[FORMAT_ENV] = "",
};

static const char *const env_names[_FORMAT_ENV_MAX] = {
		[FORMAT_ENV_TOKEN] = "token",
		[FORMAT_ENV_DOMAIN] = "domain",
		[FORMAT_ENV_USER_ID] = "userId",
		[FORMAT_ENV_REGSCALE_TOKEN] = "REGSCALE_TOKEN",
		[FORMAT_ENV_REGSCALE_DOMAIN] = "REGSCALE_DOMAIN",
		[FORMAT_ENV_REGSCALE_USER_ID] = "REGSCALE_USER_ID",
};

int format_token_from_name(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(token_format_names); i++)
		if (strcmp(name, token_format_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

bool format_token_valid(const char *token, size_t len)
{
	if (!token || len == 0 || len > PROTO_MAX_TOKEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = token[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
				    c == '-' || c == '_' || c == '.' || c == '='))
			return false;
	}
	return true;
}

static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* Partial write: skip what went out and go on with the rest. */
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int format_token_write(int fd, enum format_token fmt, const char *token, size_t len,
		const char *line, size_t line_len)
{
	struct iovec iov[3];
	int n = 0;

	if (fmt < 0 || fmt >= _FORMAT_MAX || fmt == FORMAT_ENV)
		return -EINVAL;
	if (fmt == FORMAT_JSON) {
		iov[n++] = (struct iovec){.iov_base = (void *)line, .iov_len = line_len};
	} else {
		iov[n++] = (struct iovec){.iov_base = (void *)token_prefixes[fmt],
				.iov_len = strlen(token_prefixes[fmt])};
		iov[n++] = (struct iovec){.iov_base = (void *)token, .iov_len = len};
	}
	iov[n++] = (struct iovec){.iov_base = (void *)"\n", .iov_len = 1};
	return write_all(fd, iov, n);
}

const char *format_env_name(enum format_env_var v)
{
	return v >= 0 && v < _FORMAT_ENV_MAX ? env_names[v] : NULL;
}

/* Reads the string field key into buf[0..size): *ret is buf, or NULL for null or no field. */
static int env_string(const struct reply_read *r, const char *key, char *buf, size_t size,
		const char **ret)
{
	size_t len;
	int q;

	q = reply_read_string(r, key, buf, size, &len);
	if (q == -ENOENT || (q == -EINVAL && reply_read_is_null(r, key))) {
		*ret = NULL;
		return 0;
	}
	if (q < 0 || len >= size)
		return -EBADMSG;
	*ret = buf;
	return 0;
}

int format_env_read(
		const struct reply_read *r, const char *token, size_t len, struct format_env *ret)
{
	int q;

	ret->token = token;
	ret->token_len = len;
	q = env_string(r, PROTO_F_URL, ret->url_buf, sizeof(ret->url_buf), &ret->url);
	if (q < 0)
		return q;
	return env_string(r, PROTO_F_USER_ID, ret->user_id_buf, sizeof(ret->user_id_buf),
			&ret->user_id);
}

int format_env_value(const struct format_env *e, enum format_env_var v, struct iovec iov[2])
{
	const char *s = NULL;

	switch (v) {
	case FORMAT_ENV_TOKEN:
		/* regscale-cli sends its "token" as the Authorization header, verbatim. */
		iov[0] = (struct iovec){.iov_base = (void *)"Bearer ", .iov_len = 7};
		iov[1] = (struct iovec){.iov_base = (void *)e->token, .iov_len = e->token_len};
		return 2;
	case FORMAT_ENV_REGSCALE_TOKEN:
		iov[0] = (struct iovec){.iov_base = (void *)e->token, .iov_len = e->token_len};
		return 1;
	case FORMAT_ENV_DOMAIN:
	case FORMAT_ENV_REGSCALE_DOMAIN:
		s = e->url;
		break;
	case FORMAT_ENV_USER_ID:
	case FORMAT_ENV_REGSCALE_USER_ID:
		s = e->user_id;
		break;
	case _FORMAT_ENV_MAX:
		break;
	}
	if (!s)
		return 0;
	iov[0] = (struct iovec){.iov_base = (void *)s, .iov_len = strlen(s)};
	return 1;
}

/* Writes s between single quotes into buf, each ' as '\'' (close, escaped quote, open):
 * nothing else is special between single quotes. Returns the length, or 0 if it does not fit. */
static size_t shell_quote(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	if (size < 3)
		return 0;
	buf[o++] = '\'';
	for (; *s; s++) {
		if (o + 4 + 1 > size)
			return 0;
		if (*s == '\'') {
			memcpy(buf + o, "'\\''", 4);
			o += 4;
		} else {
			buf[o++] = *s;
		}
	}
	buf[o++] = '\'';
	return o;
}

int format_env_write(int fd, const struct format_env *e)
{
	/* Per line at most: "export ", name, "=", 'value' in up to three parts, "\n". */
	struct iovec iov[_FORMAT_ENV_MAX * 7];
	char quoted[2][4 * FORMAT_ENV_VALUE_MAX + 3];
	const char *const values[2] = {e->url, e->user_id};
	size_t qlen[2] = {0, 0};
	int n = 0;

	for (size_t i = 0; i < 2; i++)
		if (values[i]) {
			qlen[i] = shell_quote(values[i], quoted[i], sizeof(quoted[i]));
			if (qlen[i] == 0)
				return -EINVAL;
		}
	for (int v = 0; v < _FORMAT_ENV_MAX; v++) {
		const char *name = env_names[v];
		struct iovec val[2];
		int k = format_env_value(e, (enum format_env_var)v, val), q = -1;

		if (v == FORMAT_ENV_DOMAIN || v == FORMAT_ENV_REGSCALE_DOMAIN)
			q = 0;
		else if (v == FORMAT_ENV_USER_ID || v == FORMAT_ENV_REGSCALE_USER_ID)
			q = 1;
		if (k == 0) {
			iov[n++] = (struct iovec){.iov_base = (void *)"unset ", .iov_len = 6};
			iov[n++] = (struct iovec){
					.iov_base = (void *)name, .iov_len = strlen(name)};
			iov[n++] = (struct iovec){.iov_base = (void *)"\n", .iov_len = 1};
			continue;
		}
		iov[n++] = (struct iovec){.iov_base = (void *)"export ", .iov_len = 7};
		iov[n++] = (struct iovec){.iov_base = (void *)name, .iov_len = strlen(name)};
		if (q >= 0) {
			iov[n++] = (struct iovec){.iov_base = (void *)"=", .iov_len = 1};
			iov[n++] = (struct iovec){.iov_base = quoted[q], .iov_len = qlen[q]};
		} else {
			/* The token's alphabet (format_token_valid()) needs no escapes. */
			iov[n++] = (struct iovec){.iov_base = (void *)"='", .iov_len = 2};
			for (int j = 0; j < k; j++)
				iov[n++] = val[j];
			iov[n++] = (struct iovec){.iov_base = (void *)"'", .iov_len = 1};
		}
		iov[n++] = (struct iovec){.iov_base = (void *)"\n", .iov_len = 1};
	}
	return write_all(fd, iov, n);
}

char *format_relative(long long delta, char *buf, size_t size)
{
	char d[32];

	if (delta > 0)
		snprintf(buf, size, "in %s", duration_format(delta, d, sizeof(d)));
	else if (delta == 0)
		snprintf(buf, size, "now");
	else
		snprintf(buf, size, "%s ago",
				duration_format(delta == LLONG_MIN ? LLONG_MAX : -delta, d,
						sizeof(d)));
	return buf;
}

char *format_sanitize(const char *s, char *buf, size_t size)
{
	size_t o = 0, max;
	bool cut = false;

	if (size == 0)
		return buf;
	max = size - 1;
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		unsigned char c = *p;

		if (o == max) {
			cut = true;
			break;
		}
		if (c < 0x20 || c == 0x7f) {
			c = '?';
		} else if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			/* C1 control characters, which some terminals act on. */
			p++;
			c = '?';
		}
		buf[o++] = (char)c;
	}
	if (cut) {
		/* Make room for "...", never splitting a UTF-8 sequence. */
		o = max >= 3 ? max - 3 : 0;
		while (o > 0 && ((unsigned char)buf[o] & 0xc0) == 0x80)
			o--;
		for (int k = 0; k < 3 && o < max; k++)
			buf[o++] = '.';
	}
	buf[o] = '\0';
	return buf;
}

const char *format_reply_str(const struct reply_read *r, const char *key, char *buf, size_t size)
{
	return reply_read_string(r, key, buf, size, NULL) < 0 ? NULL : buf;
}

/* An integer field; returns false when absent, null, not an integer or beyond int64. */
static bool get_int(const struct reply_read *r, const char *key, long long *ret)
{
	int64_t v;

	if (reply_read_int64(r, key, &v) < 0)
		return false;
	*ret = (long long)v;
	return true;
}

void format_line(FILE *f, const char *label, const char *value)
{
	char clean[512];

	fprintf(f, "%-14s%s\n", label, format_sanitize(value ? value : "-", clean, sizeof(clean)));
}

/* "2026-11-29T14:00:00Z (in 8h 2m)" for unix time t. */
static void print_time(FILE *f, const char *label, long long t, long long now, bool expiry)
{
	char iso[32], rel[48], line[96];

	proto_format_time(t, iso, sizeof(iso));
	if (expiry && t <= now) {
		char d[32];
		snprintf(rel, sizeof(rel), "expired %s ago",
				duration_format(now - t, d, sizeof(d)));
	} else {
		format_relative(t - now, rel, sizeof(rel));
	}
	snprintf(line, sizeof(line), "%s (%s)", iso, rel);
	format_line(f, label, line);
}

char *format_validity(const struct reply_read *r, long long now, char *buf, size_t size)
{
	char iso[32], rel[48];
	long long at, in;

	if (!get_int(r, PROTO_F_EXPIRES_AT, &at)) {
		snprintf(buf, size, "without an expiry time");
		return buf;
	}
	/* The daemon's expires_in is measured against its clock, which signed the expiry. */
	if (!get_int(r, PROTO_F_EXPIRES_IN, &in))
		in = at - now;
	proto_format_time(at, iso, sizeof(iso));
	if (in > 0)
		snprintf(buf, size, "valid until %s (%s)", iso,
				format_relative(in, rel, sizeof(rel)));
	else
		snprintf(buf, size, "expired at %s", iso);
	return buf;
}

const char *format_kind_words(const char *kind)
{
	if (!kind)
		return NULL;
	if (strcmp(kind, PROTO_KIND_LOGIN) == 0)
		return "password login";
	if (strcmp(kind, PROTO_KIND_PASTED) == 0)
		return "pasted token";
	if (strcmp(kind, PROTO_KIND_SERVICE) == 0)
		return "service-account token";
	return NULL;
}

/* What the user should do about a state, or NULL when it needs nobody. */
static const char *state_hint(int state, const char *kind)
{
	if (state == PROTO_STATE_CREDENTIALS_REJECTED)
		return "RegScale rejected the credentials; run 'regscale-token login'";
	if (state == PROTO_STATE_EXPIRED && kind && strcmp(kind, PROTO_KIND_LOGIN) == 0)
		return "run 'regscale-token refresh', or 'regscale-token login'";
	return NULL;
}

int format_status(FILE *f, const struct reply_read *r, long long now)
{
	char state_buf[FORMAT_FIELD_MAX], message_buf[FORMAT_FIELD_MAX];
	char version_buf[FORMAT_FIELD_MAX], err_buf[FORMAT_FIELD_MAX], kind_buf[FORMAT_FIELD_MAX];
	char value[FORMAT_FIELD_MAX];
	const char *state = format_reply_str(r, PROTO_F_STATE, state_buf, sizeof(state_buf));
	const char *message =
			format_reply_str(r, PROTO_F_MESSAGE, message_buf, sizeof(message_buf));
	const char *version =
			format_reply_str(r, PROTO_F_VERSION, version_buf, sizeof(version_buf));
	const char *err = format_reply_str(r, PROTO_F_LAST_ERROR, err_buf, sizeof(err_buf));
	const char *kind = format_reply_str(r, PROTO_F_KIND, kind_buf, sizeof(kind_buf));
	const char *hint;
	char line[2 * FORMAT_FIELD_MAX], clean[512], d[32];
	bool in_flight;
	long long t, n;
	int o;

	if (!state)
		return -EBADMSG;

	if (message && *message)
		snprintf(line, sizeof(line), "%s (%s)", state,
				format_sanitize(message, clean, sizeof(clean)));
	else
		snprintf(line, sizeof(line), "%s", state);
	format_line(f, "state:", line);
	if (format_reply_str(r, PROTO_F_USERNAME, value, sizeof(value)) && *value)
		format_line(f, "username:", value);
	format_line(f, "user id:", format_reply_str(r, PROTO_F_USER_ID, value, sizeof(value)));
	format_line(f, "url:", format_reply_str(r, PROTO_F_URL, value, sizeof(value)));
	if (kind && format_kind_words(kind)) {
		snprintf(line, sizeof(line), "%s (%s)", kind, format_kind_words(kind));
		format_line(f, "kind:", line);
	} else {
		format_line(f, "kind:", kind);
	}

	if (get_int(r, PROTO_F_EXPIRES_AT, &t))
		print_time(f, "expires:", t, now, true);
	else if (!kind)
		format_line(f, "expires:", NULL); /* no token, so no expiry to speak of */
	else
		format_line(f, "expires:", "unknown (the token has no exp claim)");
	if (get_int(r, PROTO_F_LAST_REFRESH, &t) && t > 0)
		print_time(f, "last refresh:", t, now, false);
	if (get_int(r, PROTO_F_NEXT_REFRESH, &t))
		print_time(f, "next refresh:", t, now, false);
	else
		format_line(f, "next refresh:", "none");
	if (reply_read_bool(r, PROTO_F_LOGIN_IN_FLIGHT, &in_flight) == 0 && in_flight)
		format_line(f, "login:", "in progress");
	if (err && *err)
		format_line(f, "last error:", err);
	if (get_int(r, PROTO_F_RETRIES, &n) && n > 0) {
		snprintf(line, sizeof(line), "%lld", n);
		format_line(f, "retries:", line);
	}

	o = snprintf(line, sizeof(line), "regscale-tokend %s",
			format_sanitize(version ? version : "?", clean, 64));
	if (get_int(r, PROTO_F_PID, &n))
		o += snprintf(line + o, sizeof(line) - (size_t)o, ", pid %lld", n);
	if (get_int(r, PROTO_F_UPTIME, &n))
		snprintf(line + o, sizeof(line) - (size_t)o, ", up %s",
				duration_format(n, d, sizeof(d)));
	format_line(f, "daemon:", line);

	hint = state_hint(proto_state_from_name(state), kind);
	if (hint)
		format_line(f, "hint:", hint);
	return 0;
}
