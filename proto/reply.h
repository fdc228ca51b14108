/* Building and reading reply lines with json-c. A reply is one JSON object per line:
 * {"ok":true,"v":1,...} or {"ok":false,"v":1,"error":"<code>","message":"<text>"}. */
#pragma once

#include <json-c/json.h>
#include <stddef.h>

#include "proto/proto.h"

/* Returns a new {"ok":true,"v":1} object (with "id" when id is non-empty), owned by the
 * caller (json_object_put), or NULL on allocation failure. */
struct json_object *reply_new_ok(const char *id);

/* Returns a new error reply object for err with a human-readable message (and "id" when
 * non-empty), owned by the caller, or NULL on allocation failure. */
struct json_object *reply_new_error(enum proto_error err, const char *message, const char *id);

/* Serialises obj as one compact line ending in '\n' into buf[0..size). Returns the length
 * written (without a NUL terminator, which is added), or -ENOBUFS if it does not fit. */
int reply_format(struct json_object *obj, char *buf, size_t size);

/* Parses a reply line (without newline). Returns 0 and the object in *ret (owned by the
 * caller), or -EBADMSG if the line is not a JSON object with a boolean "ok". */
int reply_parse(const char *line, size_t len, struct json_object **ret);

/* Returns PROTO_OK for an "ok":true reply, the error code of an error reply, or
 * PROTO_E_INTERNAL for an unknown code; *ret_message gets the message (owned by obj)
 * or "" when none. */
enum proto_error reply_error(struct json_object *obj, const char **ret_message);
