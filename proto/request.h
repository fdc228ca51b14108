/* SPDX-License-Identifier: MIT */
/* Parsing of request lines: one JSON object per line, see PROTOCOL.md "Requests".
 * The parser is our own strict, allocation-free JSON reader (proto/json.h) rather than
 * json-c so that secret fields (a password sent by "login") are decoded straight into memory
 * the caller owns and wipes, and no copy is left on the ordinary heap. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct request {
	enum proto_op op;
	/* "id": any string or integer the client chose, echoed verbatim in the reply
	 * (integers are kept in their decimal text form). Empty when absent. */
	char id[PROTO_MAX_ID + 1];
	bool has_id;
	/* "min_valid" (get, refresh): seconds the token must stay valid; -1 when absent. */
	int64_t min_valid;
	/* "wait" (get, refresh): seconds the client will wait for a refresh; -1 when absent. */
	int64_t wait;
	/* "username", "mfa" (login). Empty when absent. */
	char username[PROTO_MAX_USERNAME + 1];
	char mfa[PROTO_MAX_MFA + 1];
	/* "password" or "token" (login; a request with both is bad_request): decoded into the
	 * caller's buffer secret[0..secret_size), which the caller sets before parsing (NULL =
	 * either is refused as bad_request). secret_len is its length; the buffer is always
	 * NUL-terminated on success. secret_is_token: it was the "token" field. */
	char *secret;
	size_t secret_size;
	size_t secret_len;
	bool has_secret;
	bool secret_is_token;
	/* A "password" or "token" came but there was no buffer for it (secret NULL): the parse
	 * failed with bad_request. A caller that gives memory to secrets only when one comes
	 * sets secret and parses again. */
	bool wants_secret;
};

/* Parses one request line (without its newline; need not be NUL-terminated) into *req,
 * whose secret/secret_size the caller has set. Returns PROTO_OK, or the error to answer
 * with and a static human-readable reason in *ret_message. Unknown fields are ignored;
 * on failure any secret bytes already written to req->secret are wiped. */
enum proto_error request_parse(
		const char *line, size_t len, struct request *req, const char **ret_message);
