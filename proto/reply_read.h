/* SPDX-License-Identifier: MIT */
/* Reading reply lines without json-c. One pass of the strict reader (proto/json.h) over the
 * line checks it by the rules proto_json_object_valid() applies and notes where each top-level
 * field is; the accessors then read a field out of the line itself. Nothing is allocated and
 * nothing leaves the line unless the caller asks for it in a buffer of its own: the token of a
 * "get" reply is printed from the line it arrived in, and wiped there.
 *
 * Beyond JSON, a reply names each field once (a second "token" or "ok" is refused, not
 * resolved), has at most PROTO_MAX_REPLY_FIELDS fields and a boolean "ok". Names are compared
 * after unescaping, as in requests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/* Longest name, unescaped, of a field whose name is written with escapes. The daemon never
 * escapes a name; one written plainly is read in the line, whatever its length. */
#define REPLY_MAX_ESCAPED_KEY 32

enum reply_type {
	REPLY_NULL,
	REPLY_BOOL,
	REPLY_NUMBER,
	REPLY_STRING,
	REPLY_OBJECT,
	REPLY_ARRAY,
};

/* One top-level field, pointing into the line; read it through the functions below. */
struct reply_field {
	const char *key;  /* the name as written, between its quotes */
	size_t key_len;   /* the unescaped name's length */
	bool key_escaped; /* the name had escapes: its unescaped form is key_buf */
	enum reply_type type;
	const char *text; /* the value as written; a string's without its quotes */
	size_t text_len;
	bool plain;    /* a string without escapes: text is its value */
	bool nul;      /* a string holding \u0000 */
	bool boolean;  /* a boolean's value */
	bool integer;  /* a number without fraction or exponent */
	bool overflow; /* an integer whose magnitude is above INT64_MAX */
	int64_t value; /* an integer's value, unless it overflowed */
	char key_buf[REPLY_MAX_ESCAPED_KEY + 1];
};

/* A reply line as read; it points into the line, which must stay unchanged while it is used. */
struct reply_read {
	bool ok; /* the value of "ok" */
	size_t n_fields;
	struct reply_field fields[PROTO_MAX_REPLY_FIELDS];
};

/* Reads the reply line[0..len) (without its newline; need not be NUL-terminated) into *r.
 * Returns 0, or -EBADMSG when the line is longer than PROTO_MAX_LINE, is not exactly one JSON
 * object by the rules of proto_json_object_valid(), names a field twice, has more than
 * PROTO_MAX_REPLY_FIELDS fields, a name holding \u0000 or an escaped one longer than
 * REPLY_MAX_ESCAPED_KEY, or no boolean "ok". */
int reply_read_parse(struct reply_read *r, const char *line, size_t len);

/* Returns the field called key (owned by r), or NULL when the reply has none. */
const struct reply_field *reply_read_field(const struct reply_read *r, const char *key);

/* Returns true if the reply has a field key whose value is null. */
bool reply_read_is_null(const struct reply_read *r, const char *key);

/* Reads the boolean field key. Returns 0 and its value in *ret, -ENOENT when there is no such
 * field, or -EINVAL when it is not a boolean (null included). */
int reply_read_bool(const struct reply_read *r, const char *key, bool *ret);

/* Reads the integer field key. Returns 0 and its value in *ret, -ENOENT when there is no such
 * field, -EINVAL when it is not an integer (null, another type, a number with a fraction or an
 * exponent), or -ERANGE when it is an integer beyond +-INT64_MAX. */
int reply_read_int64(const struct reply_read *r, const char *key, int64_t *ret);

/* Unescapes the string field key into buf[0..size), NUL-terminated; a string that does not
 * fit is cut at a UTF-8 character boundary. Returns 0 and the whole string's length in
 * *ret_len (if not NULL; size or more when it was cut), -ENOENT when there is no such field,
 * -EINVAL when it is not a string (null included), or -EILSEQ when it holds \u0000 (buf is
 * then ""). buf may be NULL when size is 0. */
int reply_read_string(const struct reply_read *r, const char *key, char *buf, size_t size,
		size_t *ret_len);

/* Points *ret at the string field key as it stands in the line (not NUL-terminated), *ret_len
 * bytes, which is its value when it has no escapes: nothing is copied. Returns 0, -ENOENT when
 * there is no such field, -EINVAL when it is not a string (null included), or -EILSEQ when it
 * has escapes. */
int reply_read_span(const struct reply_read *r, const char *key, const char **ret, size_t *ret_len);

/* Returns PROTO_OK for an "ok":true reply, the error code of an error reply, or
 * PROTO_E_INTERNAL when its "error" is missing, not a string or names no code we know. With
 * message (size > 0), the "message" string is unescaped into it as reply_read_string() does,
 * or "" when there is none. */
enum proto_error reply_read_error(const struct reply_read *r, char *message, size_t size);
