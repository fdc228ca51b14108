/* SPDX-License-Identifier: MIT */
/* The stable wire names of the ops, states and error codes in proto.h, and the time format of
 * "expires". */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto/proto.h"

static const char *const op_names[_PROTO_OP_MAX] = {
		[PROTO_OP_PING] = "ping",
		[PROTO_OP_GET] = "get",
		[PROTO_OP_STATUS] = "status",
		[PROTO_OP_LOGIN] = "login",
		[PROTO_OP_LOGOUT] = "logout",
		[PROTO_OP_REFRESH] = "refresh",
		[PROTO_OP_METRICS] = "metrics",
};

static const char *const state_names[_PROTO_STATE_MAX] = {
		[PROTO_STATE_NO_TOKEN] = "no_token",
		[PROTO_STATE_LOGGING_IN] = "logging_in",
		[PROTO_STATE_VALID] = "valid",
		[PROTO_STATE_REFRESHING] = "refreshing",
		[PROTO_STATE_RETRYING] = "retrying",
		[PROTO_STATE_EXPIRED] = "expired",
		[PROTO_STATE_CREDENTIALS_REJECTED] = "credentials_rejected",
		[PROTO_STATE_LOGIN_REQUIRED] = "login_required",
};

/* Returns the index of name in names[0..n), or -EINVAL. */
static int lookup(const char *const *names, int n, const char *name)
{
	if (!name)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], name) == 0)
			return i;
	return -EINVAL;
}

const char *proto_op_name(enum proto_op op)
{
	/* Compare as unsigned so that a negative value cast to the enum is out of range too. */
	return (unsigned)op < _PROTO_OP_MAX ? op_names[op] : NULL;
}

int proto_op_from_name(const char *name)
{
	return lookup(op_names, _PROTO_OP_MAX, name);
}

const char *proto_state_name(enum proto_state state)
{
	return (unsigned)state < _PROTO_STATE_MAX ? state_names[state] : NULL;
}

int proto_state_from_name(const char *name)
{
	return lookup(state_names, _PROTO_STATE_MAX, name);
}

static const char *const error_names[_PROTO_E_MAX] = {
		[PROTO_OK] = "ok",
		[PROTO_E_BAD_REQUEST] = "bad_request",
		[PROTO_E_UNSUPPORTED_VERSION] = "unsupported_version",
		[PROTO_E_UNKNOWN_OP] = "unknown_op",
		[PROTO_E_TOO_LARGE] = "too_large",
		[PROTO_E_TOO_MANY_CLIENTS] = "too_many_clients",
		[PROTO_E_IDLE_TIMEOUT] = "idle_timeout",
		[PROTO_E_PERMISSION_DENIED] = "permission_denied",
		[PROTO_E_NO_TOKEN] = "no_token",
		[PROTO_E_TOKEN_EXPIRED] = "token_expired",
		[PROTO_E_LOGIN_FAILED] = "login_failed",
		[PROTO_E_CREDENTIALS_REJECTED] = "credentials_rejected",
		[PROTO_E_LOGIN_REQUIRED] = "login_required",
		[PROTO_E_MFA_REQUIRED] = "mfa_required",
		[PROTO_E_TIMEOUT] = "timeout",
		[PROTO_E_INTERNAL] = "internal",
};

const char *proto_error_name(enum proto_error err)
{
	/* Compare as unsigned so that a negative value cast to the enum is out of range too. */
	if ((unsigned)err >= _PROTO_E_MAX)
		return error_names[PROTO_E_INTERNAL];
	return error_names[err];
}

int proto_error_from_name(const char *name)
{
	/* "ok" is not an error code on the wire, so PROTO_OK is never the answer. */
	int r = lookup(error_names, _PROTO_E_MAX, name);

	return r == PROTO_OK ? -EINVAL : r;
}

char *proto_format_time(long long t, char *buf, size_t size)
{
	int n;
	time_t tt = (time_t)t;
	struct tm tm;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	if ((long long)tt != t || !gmtime_r(&tt, &tm))
		return buf;
	/* Not strftime(): it calls tzset(), which reads /etc/localtime, for a UTC time. */
	n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
			tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n < 0 || (size_t)n >= size)
		buf[0] = '\0'; /* never a truncated time */
	return buf;
}
