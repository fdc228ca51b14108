/* SPDX-License-Identifier: MIT */
/* Reading RegScale's answer to a login. Runs only inside the login helper, on untrusted
 * server data; fuzzed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/helper/pipe.h"

struct helper_response {
	const char *token; /* points into the parsed JSON object's memory; see below */
	size_t token_len;
	char user_id[PIPE_MAX_USER_ID + 1];
	int64_t expires_in; /* -1 when absent */
};

/* Parses a 200 answer body[0..len): v1 {"id":"…","auth_token":"<jwt>"}, v2
 * {"accessToken":{"id":"…","authToken":"<jwt>"}}, or either encoded once more as a JSON
 * string. The token must be a well-formed JWT. On success returns 0 and fills *ret; the
 * token is copied into token_buf[0..token_size) and ret->token points there. Returns
 * -EBADMSG with a static reason in *ret_message otherwise. */
int helper_response_parse(const char *body, size_t len, char *token_buf, size_t token_size,
		struct helper_response *ret, const char **ret_message);

/* Copies the "message" (else "title", "error") string of a JSON error answer body[0..len)
 * into buf[0..size) as one line of printable ASCII ('?' for anything else), cut to fit.
 * Returns its length, or 0 (buf "") when the body holds no such string. */
size_t helper_response_error_message(const char *body, size_t len, char *buf, size_t size);

/* Returns true if an error message from RegScale asks for a one-time MFA code: it names MFA
 * (or two-factor, 2FA, OTP, one-time) and says it is required or missing. */
bool helper_response_wants_mfa(const char *message);
