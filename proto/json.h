/* SPDX-License-Identifier: MIT */
/* A strict JSON reader (RFC 8259) over one buffer. It never allocates, never recurses
 * (containers are tracked in a small bit stack bounded by PROTO_MAX_DEPTH) and never reads
 * past the end it was given, so any byte string may be thrown at it. request.c builds the
 * request parser on these pieces, reply_read.c the reply reader; proto_json_object_valid()
 * checks a whole line with them.
 * Every reader returns 0, or -EBADMSG with a static reason in ps->msg. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The reasons shared with request.c; the reader's other reasons live in json.c. */
#define JSON_MSG_SYNTAX "request is not valid JSON"

struct json_parser {
	const char *p;   /* next byte to read */
	const char *end; /* one past the last byte */
	const char *msg; /* why parsing failed */
};

/* Where a decoded string goes: buf[0..cap) or nowhere (buf == NULL, only validated). */
struct json_string {
	char *buf;
	size_t cap; /* bytes in buf, the terminating NUL included */
	size_t len; /* decoded length; larger than cap - 1 when the string did not fit */
	bool nul;   /* a \u0000 was decoded */
};

/* What one number looked like. */
struct json_number {
	const char *text; /* points into the parser's buffer */
	size_t len;
	bool negative;
	bool integer;  /* no fraction, no exponent */
	bool overflow; /* magnitude above INT64_MAX */
	uint64_t mag;
};

/* Returns the next byte without consuming it, or -1 at the end. */
static inline int json_peek(const struct json_parser *ps)
{
	return ps->p < ps->end ? (unsigned char)*ps->p : -1;
}

/* Returns true for an ASCII digit (c may be -1). */
static inline bool json_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Records msg (static) as the reason in ps. Returns -EBADMSG. */
static inline int json_fail(struct json_parser *ps, const char *msg)
{
	ps->msg = msg;
	return -EBADMSG;
}

/* Skips JSON whitespace. */
void json_skip_ws(struct json_parser *ps);

/* Skips whitespace, then consumes c. Returns 0, or -EBADMSG if c is not next. */
int json_expect(struct json_parser *ps, char c);

/* Reads the string starting at the opening quote, decoding it into the caller's o (the
 * buffer, if any, is NUL-terminated, truncated when too small). Returns 0 or -EBADMSG. */
int json_parse_string(struct json_parser *ps, struct json_string *o);

/* Reads one number into *n, whose text points into the parser's buffer. Returns 0 or
 * -EBADMSG. */
int json_parse_number(struct json_parser *ps, struct json_number *n);

/* Validates and skips one value of any type found inside depth open containers. Returns 0,
 * or -EBADMSG (also when nesting would exceed PROTO_MAX_DEPTH). */
int json_skip_value(struct json_parser *ps, unsigned depth);

/* Returns true if s[0..len) is exactly one JSON object by the same strict rules as requests
 * (RFC 8259, well-formed UTF-8, no raw control characters or NUL bytes, no unpaired \u
 * surrogates, nested at most PROTO_MAX_DEPTH deep), with only whitespace around it. Used on
 * reply lines, where json-c alone is more lenient. */
bool proto_json_object_valid(const char *s, size_t len);
