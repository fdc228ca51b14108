/* SPDX-License-Identifier: MIT */
/* Writing JSON lines (requests in the client, replies in the daemon): a small JSON object writer
 * into a buffer the caller owns. A login request carries the password, and json-c would leave
 * copies of it on the ordinary heap; this writer escapes it straight into the caller's (locked,
 * wiped) memory instead. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jsonw {
	char *buf;   /* the caller's buffer; always NUL-terminated while size > 0 */
	size_t size; /* bytes in buf */
	size_t len;  /* bytes written, without the NUL */
	int err;     /* first error: 0, -ENOBUFS (does not fit) or -EILSEQ (not UTF-8, or NUL) */
	bool fields; /* a field was written, so the next one needs a comma */
};

/* Continues an object written elsewhere: every field appended to buf[0..size) is preceded by
 * a comma, and nothing opens or (but jsonw_end()) closes it. For a run of fields to be
 * copied into a line later. */
void jsonw_fragment(struct jsonw *w, char *buf, size_t size);

/* Appends s[0..n) as it is: JSON written elsewhere (a fragment), or a value's plain bytes. */
void jsonw_raw(struct jsonw *w, const char *s, size_t n);

/* Returns the most bytes a string of len bytes takes once escaped and quoted. */
size_t jsonw_string_max(size_t len);

/* Starts an object ("{") in buf[0..size). Nothing is allocated; buf stays the caller's. */
void jsonw_begin(struct jsonw *w, char *buf, size_t size);

/* Appends "key":"value" with value = s[0..len) escaped as JSON requires. key is a plain
 * ASCII name that needs no escaping. Errors are kept in w->err for jsonw_end(). */
void jsonw_string(struct jsonw *w, const char *key, const char *s, size_t len);

/* Appends "key":v. */
void jsonw_int(struct jsonw *w, const char *key, int64_t v);

/* Appends "key":true or "key":false. */
void jsonw_bool(struct jsonw *w, const char *key, bool v);

/* Appends "key":null. */
void jsonw_null(struct jsonw *w, const char *key);

/* Appends "key":"s" for a non-empty s (NUL-terminated), else "key":null. */
void jsonw_string_or_null(struct jsonw *w, const char *key, const char *s);

/* Writes the decimal digits of v into buf (>= 21 bytes), NUL-terminated, without stdio.
 * Returns their number. */
size_t jsonw_format_u64(uint64_t v, char *buf);

/* Closes the object and appends the newline. Returns 0 and the line's length (newline
 * included) in *ret_len, or the first error met while writing. */
int jsonw_end(struct jsonw *w, size_t *ret_len);
