/* SPDX-License-Identifier: MIT */
/* Writing reply lines: {"ok":true,"v":1,...} or {"ok":false,"v":1,"error":"<code>",
 * "message":"<text>"}, one JSON object per line (PROTOCOL.md "Replies"), with the JSON
 * writer of jsonw.h into the caller's buffer: nothing is allocated. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "proto/jsonw.h"
#include "proto/proto.h"

/* Starts a reply in buf[0..size): {"ok":<ok>,"v":1 and "id" when id is non-empty. The caller
 * adds fields and ends it with jsonw_end(). */
void reply_begin(struct jsonw *w, char *buf, size_t size, bool ok, const char *id);

/* Writes the whole error reply line for err with a human-readable message (and "id" when
 * non-empty, "kind" when not NULL) into buf[0..size). Returns its length (newline
 * included), or -ENOBUFS or -EILSEQ (message not UTF-8). */
int reply_write_error(char *buf, size_t size, enum proto_error err, const char *message,
		const char *id, const char *kind);
