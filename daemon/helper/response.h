/* Reading RegScale's answer to a login. Runs only inside the login helper, on untrusted
 * server data; fuzzed. */
#pragma once

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
