/* SPDX-License-Identifier: MIT */
/* The login helper's side of the pipe contract: the request regscale-tokend writes
 * (daemon/helper/pipe.h) as read and checked by regscale-token-login, the
 * answer it sends back, and the JSON body it posts to RegScale. No libcurl here, so the
 * whole of it is unit-tested. (daemon/helper_proc.c is the daemon's side.) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "daemon/helper/pipe.h"
#include "daemon/helper/response.h"

/* For _cleanup_: frees (and wipes) sodium memory. */
static inline void sodium_freep(void *p)
{
	sodium_free(*(void **)p);
}

/* A secret value inside the request message, which is sodium memory: not copied. */
struct secret_ref {
	const char *data;
	size_t len;
};

struct helper_request {
	bool validate, v2;
	char mode[16], api[8], url[2048], ca_file[4096], proxy[2048], version[32], username[256];
	int64_t connect_timeout, total_timeout;
	struct secret_ref password, mfa, token;
};

struct helper_answer {
	enum helper_outcome outcome;
	long http_status;
	int64_t retry_after, expires_in;
	char user_id[PIPE_MAX_USER_ID + 1];
	char message[PIPE_MAX_MESSAGE];
	char *token; /* PIPE_MAX_TOKEN + 1 bytes of sodium memory, the caller's (main()) */
	size_t token_len;
};

/* Sets a->outcome and a one-line a->message (every byte outside printable ASCII becomes
 * '?'); returns nothing. */
__attribute__((format(printf, 3, 4))) void helper_answer_set(
		struct helper_answer *a, enum helper_outcome outcome, const char *fmt, ...);

/* Fills *req from the fields in msg[0..len); its secrets point into msg, which must outlive
 * req. Returns 0, or -EINVAL with HELPER_CONFIG and a message set in *a. */
int helper_request_parse(
		const char *msg, size_t len, struct helper_request *req, struct helper_answer *a);

/* Returns the JSON body to POST for req in new sodium memory (the caller sodium_free()s it)
 * and its length in *ret_len, or NULL when out of memory. */
char *helper_request_body(const struct helper_request *req, size_t *ret_len);
