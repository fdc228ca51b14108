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

/* A connection with no complete request for this long is closed ("idle_timeout"). */
#define PROTO_IDLE_TIMEOUT_SEC 30

/* Deepest JSON nesting accepted in a request. */
#define PROTO_MAX_DEPTH 8

/* Longest JWT the daemon stores or serves, in bytes. */
#define PROTO_MAX_TOKEN JWT_MAX_LEN /* 16384 */

/* Longest "op" name. */
#define PROTO_MAX_OP 32

/* Error codes. Stable: scripts match on the string form, never on the number. */
enum proto_error {
	PROTO_OK = 0,
	PROTO_E_BAD_REQUEST,         /* not a JSON object, wrong field type, bad UTF-8 */
	PROTO_E_UNSUPPORTED_VERSION, /* "v" is not PROTO_VERSION */
	PROTO_E_UNKNOWN_OP,          /* "op" names no request */
	PROTO_E_TOO_LARGE,           /* line longer than PROTO_MAX_LINE; connection closed */
	PROTO_E_TOO_MANY_CLIENTS,    /* PROTO_MAX_CLIENTS reached; connection closed */
	PROTO_E_IDLE_TIMEOUT,        /* no request within PROTO_IDLE_TIMEOUT_SEC; connection closed */
	PROTO_E_PERMISSION_DENIED,   /* peer not allowed this request */
	PROTO_E_NO_TOKEN,            /* the daemon holds no token */
	PROTO_E_TOKEN_EXPIRED,       /* the held token has expired; never served stale */
	PROTO_E_LOGIN_FAILED,        /* a login attempt failed (server, network, protocol) */
	PROTO_E_CREDENTIALS_REJECTED, /* the server rejected the credentials; needs new ones */
	PROTO_E_TIMEOUT,             /* the daemon could not answer in time */
	PROTO_E_INTERNAL,            /* a bug or resource exhaustion in the daemon */
	_PROTO_E_MAX,
};

/* Returns the stable wire name of err ("bad_request"...), or "internal" if out of range. */
const char *proto_error_name(enum proto_error err);

/* Returns the error whose wire name is name, or -EINVAL if there is none. */
int proto_error_from_name(const char *name);
