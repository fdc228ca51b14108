/* SPDX-License-Identifier: MIT */
/* The wire contract between regscale-tokend and its clients; see proto/PROTOCOL.md.
 * Everything here is part of the protocol: change it only together with PROTOCOL.md. */
#pragma once

#include <stddef.h>

#include "common/jwt.h"

/* Protocol version carried as "v" in every reply and accepted in requests. */
#define PROTO_VERSION 1

/* Longest request or reply line in bytes, newline included. */
#define PROTO_MAX_LINE (64 * 1024)

/* Connections served at once; more are answered "too_many_clients" and closed. */
#define PROTO_MAX_CLIENTS 128

/* A connection with no complete request for this long is closed ("idle_timeout"). The
 * daemon's idle_timeout key changes it; this is the default. */
#define PROTO_DEFAULT_IDLE_TIMEOUT_SEC 30

/* Deepest JSON nesting accepted in a request. */
#define PROTO_MAX_DEPTH 8

/* Most top-level fields in a reply (a status reply with an "id" has 19); a client may refuse
 * one with more. */
#define PROTO_MAX_REPLY_FIELDS 32

/* Longest JWT the daemon stores or serves, in bytes. */
#define PROTO_MAX_TOKEN JWT_MAX_LEN /* 16384 */

/* Longest "op" name. */
#define PROTO_MAX_OP 32

/* Longest "id" (UTF-8 bytes, or digits of an integer), "username" and "mfa" in a request. */
#define PROTO_MAX_ID       64
#define PROTO_MAX_USERNAME 256
#define PROTO_MAX_MFA      16

/* Longest "wait" a request is granted, in seconds (a larger one is cut to this), and the
 * wait of a "get" with "min_valid" but no "wait". */
#define PROTO_MAX_WAIT_SEC     300
#define PROTO_DEFAULT_WAIT_SEC 30

/* Requests: the "op" field. */
enum proto_op {
	PROTO_OP_PING,
	PROTO_OP_GET,
	PROTO_OP_STATUS,
	PROTO_OP_LOGIN,
	PROTO_OP_LOGOUT,
	PROTO_OP_REFRESH,
	PROTO_OP_METRICS, /* the counters and state in Prometheus text format */
	_PROTO_OP_MAX,
};

/* Returns the wire name of op ("get"...), or NULL if out of range. */
const char *proto_op_name(enum proto_op op);

/* Returns the op whose wire name is name, or -EINVAL if there is none. */
int proto_op_from_name(const char *name);

/* What the daemon is doing about its token: the "state" reply field. See PROTOCOL.md. */
enum proto_state {
	PROTO_STATE_NO_TOKEN,   /* no token, no login running */
	PROTO_STATE_LOGGING_IN, /* no valid token yet; a login is running */
	PROTO_STATE_VALID,      /* a valid token is held */
	PROTO_STATE_REFRESHING, /* a valid token is held; its successor is being fetched */
	PROTO_STATE_RETRYING,   /* the last login failed for a passing reason */
	PROTO_STATE_EXPIRED,    /* the held token expired and nothing can replace it */
	PROTO_STATE_CREDENTIALS_REJECTED, /* RegScale refused the credentials */
	PROTO_STATE_LOGIN_REQUIRED,       /* a valid token no background login can renew (MFA) */
	_PROTO_STATE_MAX,
};

/* Returns the wire name of state ("valid"...), or NULL if out of range. */
const char *proto_state_name(enum proto_state state);

/* Returns the state whose wire name is name, or -EINVAL if there is none. */
int proto_state_from_name(const char *name);

/* Values of the "kind" reply field: where the token came from. */
#define PROTO_KIND_SERVICE "service"
#define PROTO_KIND_LOGIN   "login"
#define PROTO_KIND_PASTED  "pasted" /* a token a person copied from RegScale: login "token" */

/* Request field names. */
#define PROTO_F_OP        "op"
#define PROTO_F_V         "v"
#define PROTO_F_ID        "id"
#define PROTO_F_MIN_VALID "min_valid"
#define PROTO_F_WAIT      "wait"
#define PROTO_F_USERNAME  "username"
#define PROTO_F_PASSWORD  "password"
#define PROTO_F_MFA       "mfa"
/* login: a pasted token instead of a password ("Bearer " before it is allowed); its name is
 * PROTO_F_TOKEN. */

/* Reply field names (PROTOCOL.md "Replies" and each request's table). */
#define PROTO_F_OK              "ok"
#define PROTO_F_ERROR           "error"
#define PROTO_F_MESSAGE         "message"
#define PROTO_F_PONG            "pong"
#define PROTO_F_TOKEN           "token"
#define PROTO_F_STATE           "state"
#define PROTO_F_KIND            "kind"
#define PROTO_F_USER_ID         "user_id"
#define PROTO_F_URL             "url"
#define PROTO_F_EXPIRES_AT      "expires_at"
#define PROTO_F_EXPIRES         "expires"
#define PROTO_F_EXPIRES_IN      "expires_in"
#define PROTO_F_LAST_REFRESH    "last_refresh"
#define PROTO_F_NEXT_REFRESH    "next_refresh"
#define PROTO_F_LAST_ERROR      "last_error"
#define PROTO_F_RETRIES         "retries"
#define PROTO_F_LOGIN_IN_FLIGHT "login_in_flight"
#define PROTO_F_REFRESH_LATE    "refresh_late"
#define PROTO_F_VERSION         "version"
#define PROTO_F_PID             "pid"
#define PROTO_F_UPTIME          "uptime"
#define PROTO_F_CONFIGURED_USER "configured_username"
#define PROTO_F_FORMAT          "format"  /* metrics: PROTO_METRICS_FORMAT */
#define PROTO_F_METRICS         "metrics" /* metrics: the exposition text */

/* The "format" of a metrics reply: Prometheus text exposition format, version 0.0.4. */
#define PROTO_METRICS_FORMAT "prometheus-0.0.4"

/* Error codes. Stable: scripts match on the string form, never on the number. */
enum proto_error {
	PROTO_OK = 0,
	PROTO_E_BAD_REQUEST,          /* not a JSON object, wrong field type, bad UTF-8 */
	PROTO_E_UNSUPPORTED_VERSION,  /* "v" is not PROTO_VERSION */
	PROTO_E_UNKNOWN_OP,           /* "op" names no request */
	PROTO_E_TOO_LARGE,            /* line longer than PROTO_MAX_LINE; connection closed */
	PROTO_E_TOO_MANY_CLIENTS,     /* PROTO_MAX_CLIENTS reached; connection closed */
	PROTO_E_IDLE_TIMEOUT,         /* no request within the idle timeout; connection closed */
	PROTO_E_PERMISSION_DENIED,    /* peer not allowed this request */
	PROTO_E_NO_TOKEN,             /* the daemon holds no token */
	PROTO_E_TOKEN_EXPIRED,        /* the held token has expired; never served stale */
	PROTO_E_LOGIN_FAILED,         /* a login attempt failed (server, network, protocol) */
	PROTO_E_CREDENTIALS_REJECTED, /* the server rejected the credentials; needs new ones */
	PROTO_E_LOGIN_REQUIRED,       /* only a person can renew the token (MFA): run login */
	PROTO_E_MFA_REQUIRED,         /* RegScale asks for a one-time MFA code and none came */
	PROTO_E_TIMEOUT,              /* the daemon could not answer in time */
	PROTO_E_INTERNAL,             /* a bug or resource exhaustion in the daemon */
	_PROTO_E_MAX,
};

/* Returns the stable wire name of err ("bad_request"...), or "internal" if out of range. */
const char *proto_error_name(enum proto_error err);

/* Returns the error whose wire name is name, or -EINVAL if there is none. */
int proto_error_from_name(const char *name);

/* Formats unix seconds t as ISO 8601 UTC ("2026-11-29T14:00:00Z") into buf (>= 21 bytes).
 * Returns buf. */
char *proto_format_time(long long t, char *buf, size_t size);
