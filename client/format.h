/* SPDX-License-Identifier: MIT */
/* What the client prints: the token in the formats "get" offers, the human summary of
 * "status", durations. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/uio.h>

#include "proto/proto.h"
#include "proto/reply_read.h"
#include "proto/request.h"

/* Room for a reply string about to be shown: twice what any line shows of one, so that a
 * longer string is still cut, with "...", by format_sanitize() and not before. */
#define FORMAT_FIELD_MAX 1024

enum format_token {
	FORMAT_RAW,    /* "<jwt>" */
	FORMAT_BEARER, /* "Bearer <jwt>" */
	FORMAT_HEADER, /* "Authorization: Bearer <jwt>" */
	FORMAT_JSON,   /* the daemon's reply line, with "socket" and "profile" added */
	FORMAT_ENV,    /* export lines of the variables exec sets (struct format_env) */
	_FORMAT_MAX,
};

/* Returns the token format called name ("raw"...), or -EINVAL if there is none. */
int format_token_from_name(const char *name);

/* Returns true if token[0..len) is 1..PROTO_MAX_TOKEN bytes of the JWT alphabet (base64url,
 * '.', '='), i.e. safe to print on a line or put in an HTTP header. */
bool format_token_valid(const char *token, size_t len);

/* Writes one line to fd: the token in format fmt, or for FORMAT_JSON the reply line[0..
 * line_len). Uses write(2) directly so no stdio buffer keeps a copy of the token.
 * Returns 0 or -errno. */
int format_token_write(int fd, enum format_token fmt, const char *token, size_t len,
		const char *line, size_t line_len);

/* The variables "exec" sets for its command and "get --format env" prints, in this order. */
enum format_env_var {
	FORMAT_ENV_TOKEN,           /* token: "Bearer <jwt>", regscale-cli's Authorization header */
	FORMAT_ENV_DOMAIN,          /* domain: the RegScale URL, for regscale-cli */
	FORMAT_ENV_USER_ID,         /* userId: the user id, for regscale-cli */
	FORMAT_ENV_REGSCALE_TOKEN,  /* REGSCALE_TOKEN: the JWT alone */
	FORMAT_ENV_REGSCALE_DOMAIN, /* REGSCALE_DOMAIN: the URL */
	FORMAT_ENV_REGSCALE_USER_ID, /* REGSCALE_USER_ID: the user id */
	_FORMAT_ENV_MAX,
};

/* Longest URL or user id the variables take, NUL included. */
#define FORMAT_ENV_VALUE_MAX 2048

/* The values of those variables, read from a get reply. */
struct format_env {
	const char *token; /* the JWT, in the reply line (not NUL-terminated) */
	size_t token_len;
	const char *url;     /* url_buf, or NULL when the daemon has none */
	const char *user_id; /* user_id_buf, or NULL when the token has none */
	char url_buf[FORMAT_ENV_VALUE_MAX];
	char user_id_buf[FORMAT_ENV_VALUE_MAX];
};

/* Returns the name of variable v ("token", "REGSCALE_DOMAIN"...). */
const char *format_env_name(enum format_env_var v);

/* Fills *ret from the get reply r, whose token token[0..len) is checked already; ret->token
 * points into the reply. Returns 0, or -EBADMSG when "url" or "user_id" is a string holding
 * \u0000, is FORMAT_ENV_VALUE_MAX bytes or longer, or is neither a string nor null. */
int format_env_read(
		const struct reply_read *r, const char *token, size_t len, struct format_env *ret);

/* Points iov[0..2) at the value of variable v in e, nothing copied. Returns how many of
 * the two it used (1 or 2), or 0 when e has no value for v. */
int format_env_value(const struct format_env *e, enum format_env_var v, struct iovec iov[2]);

/* Writes every variable of e to fd as a POSIX shell line: "export NAME='value'", quoted so
 * that any value reads back as it is, or "unset NAME" for a value e does not have. The token
 * goes out with writev(2), never through a buffer of ours. Returns 0 or -errno. */
int format_env_write(int fd, const struct format_env *e);

/* Writes a time relative to now: "in 15h 58m" for delta > 0, "now", or "5m ago".
 * Returns buf. */
char *format_relative(long long delta, char *buf, size_t size);

/* Unescapes the string field key of reply r into buf[0..size) (cut to fit, see
 * reply_read_string()). Returns buf, or NULL when the field is absent, null, not a string or
 * holds \u0000. */
const char *format_reply_str(const struct reply_read *r, const char *key, char *buf, size_t size);

/* Copies s into buf for printing on one terminal line: control characters (C0, DEL, C1)
 * become '?', and a string that does not fit is cut at a UTF-8 boundary and ends in "...".
 * NULL prints as "". Returns buf. */
char *format_sanitize(const char *s, char *buf, size_t size);

/* Writes how long the token of a get/login/refresh/status reply r is valid: "valid until
 * 2026-11-29T14:00:00Z (in 15h 58m)" from "expires_at" (and "expires_in", else now), or
 * "without an expiry time" when it has none. Returns buf. */
char *format_validity(const struct reply_read *r, long long now, char *buf, size_t size);

/* Prints "label value" as format_status() does, value sanitized for a terminal ("-" for NULL). */
void format_line(FILE *f, const char *label, const char *value);

/* Returns what kind (PROTO_KIND_*) of token means in words: "password login", "pasted token",
 * "service-account token", or NULL for another or no kind. */
const char *format_kind_words(const char *kind);

/* Prints the human summary of a status reply r (aligned "label: value" lines) to f, with
 * relative times computed against now (unix seconds): state, whose token (username when known,
 * user id, URL, kind), its expiry, refresh times, the last
 * error, retries (when > 0), a login in flight, and a hint line for a state that needs the
 * user. Returns 0, or -EBADMSG when r has no string "state". */
int format_status(FILE *f, const struct reply_read *r, long long now);
