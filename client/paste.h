/* SPDX-License-Identifier: MIT */
/* A token a person pasted (from RegScale's profile page, an Authorization header...): found in
 * what was pasted, and checked before it is sent, without ever showing a byte of it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/* Most bytes read for a pasted token: the longest token, "Bearer " and some whitespace. */
#define PASTE_MAX (PROTO_MAX_TOKEN + 256)

/* Checks that token[0..len) is a JWT the daemon can take: at most PROTO_MAX_TOKEN bytes, three
 * non-empty base64url parts separated by dots, whose first two decode to JSON objects, and an
 * "exp" claim, if it has one, after now (unix seconds). Returns 0 and the exp claim in
 * *ret_exp (-1 when it has none or it is no integer), or with the reason, which never quotes
 * the token, in why[0..size): -ESTALE when it has expired, -EINVAL when it is no JWT, -ENOMEM.
 * The decoded parts live in locked memory, wiped after. */
int paste_check(const char *token, size_t len, long long now, int64_t *ret_exp, char *why,
		size_t size);
