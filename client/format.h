/* What the client prints: the token in the formats "get" offers, the human summary of
 * "status", durations. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

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
	FORMAT_JSON,   /* the daemon's reply line as received */
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

/* Writes seconds (negative counts as 0) as a short duration with at most two units
 * ("42s", "5m 12s", "15h 58m", "3d 2h") into buf. Returns buf. */
char *format_duration(long long seconds, char *buf, size_t size);

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

/* Prints the human summary of a status reply r (aligned "label: value" lines) to f, with
 * relative times computed against now (unix seconds): state, token, refresh times, the last
 * error, retries (when > 0), a login in flight, and a hint line for a state that needs the
 * user. Returns 0, or -EBADMSG when r has no string "state". */
int format_status(FILE *f, const struct reply_read *r, long long now);
