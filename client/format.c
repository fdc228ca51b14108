#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "client/format.h"
#include "common/util.h"
#include "proto/reply_read.h"

static const char *const token_format_names[_FORMAT_MAX] = {
		[FORMAT_RAW] = "raw",
		[FORMAT_BEARER] = "bearer",
		[FORMAT_HEADER] = "header",
		[FORMAT_JSON] = "json",
};

static const char *const token_prefixes[_FORMAT_MAX] = {
		[FORMAT_RAW] = "",
		[FORMAT_BEARER] = "Bearer ",
		[FORMAT_HEADER] = "Authorization: Bearer ",
		[FORMAT_JSON] = "",
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

	if (fmt < 0 || fmt >= _FORMAT_MAX)
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

char *format_duration(long long seconds, char *buf, size_t size)
{
	static const struct {
		long long secs;
		char unit;
	} units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};

	if (seconds < 0)
		seconds = 0;
	for (size_t i = 0; i < ELEMENTSOF(units); i++) {
		long long hi = seconds / units[i].secs;
		long long lo;

		if (hi == 0 && units[i].secs > 1)
			continue;
		if (i + 1 == ELEMENTSOF(units)) {
			snprintf(buf, size, "%llds", hi);
			break;
		}
		lo = (seconds % units[i].secs) / units[i + 1].secs;
		if (lo == 0)
			snprintf(buf, size, "%lld%c", hi, units[i].unit);
		else
			snprintf(buf, size, "%lld%c %lld%c", hi, units[i].unit, lo,
					units[i + 1].unit);
		break;
	}
	return buf;
}

char *format_relative(long long delta, char *buf, size_t size)
{
	char d[32];

	if (delta > 0)
		snprintf(buf, size, "in %s", format_duration(delta, d, sizeof(d)));
	else if (delta == 0)
		snprintf(buf, size, "now");
	else
		snprintf(buf, size, "%s ago",
				format_duration(delta == LLONG_MIN ? LLONG_MAX : -delta, d,
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

static void print_line(FILE *f, const char *label, const char *value)
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
				format_duration(now - t, d, sizeof(d)));
	} else {
		format_relative(t - now, rel, sizeof(rel));
	}
	snprintf(line, sizeof(line), "%s (%s)", iso, rel);
	print_line(f, label, line);
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
	print_line(f, "state:", line);
	print_line(f, "user:", format_reply_str(r, PROTO_F_USER_ID, value, sizeof(value)));
	print_line(f, "url:", format_reply_str(r, PROTO_F_URL, value, sizeof(value)));
	print_line(f, "kind:", kind);

	if (get_int(r, PROTO_F_EXPIRES_AT, &t))
		print_time(f, "expires:", t, now, true);
	else if (!kind)
		print_line(f, "expires:", NULL); /* no token, so no expiry to speak of */
	else
		print_line(f, "expires:", "unknown (the token has no exp claim)");
	if (get_int(r, PROTO_F_LAST_REFRESH, &t) && t > 0)
		print_time(f, "last refresh:", t, now, false);
	if (get_int(r, PROTO_F_NEXT_REFRESH, &t))
		print_time(f, "next refresh:", t, now, false);
	else
		print_line(f, "next refresh:", "none");
	if (reply_read_bool(r, PROTO_F_LOGIN_IN_FLIGHT, &in_flight) == 0 && in_flight)
		print_line(f, "login:", "in progress");
	if (err && *err)
		print_line(f, "last error:", err);
	if (get_int(r, PROTO_F_RETRIES, &n) && n > 0) {
		snprintf(line, sizeof(line), "%lld", n);
		print_line(f, "retries:", line);
	}

	o = snprintf(line, sizeof(line), "regscale-tokend %s",
			format_sanitize(version ? version : "?", clean, 64));
	if (get_int(r, PROTO_F_PID, &n))
		o += snprintf(line + o, sizeof(line) - (size_t)o, ", pid %lld", n);
	if (get_int(r, PROTO_F_UPTIME, &n))
		snprintf(line + o, sizeof(line) - (size_t)o, ", up %s",
				format_duration(n, d, sizeof(d)));
	print_line(f, "daemon:", line);

	hint = state_hint(proto_state_from_name(state), kind);
	if (hint)
		print_line(f, "hint:", hint);
	return 0;
}
