/* SPDX-License-Identifier: MIT */
/* Minting test JWTs: a fixed HS256 header, the payload given, a fake signature (the daemon
 * never checks signatures; RegScale does). Include after cmocka.h. */
#pragma once

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* Returns a new JWT (the caller frees) carrying payload, a JSON object. */
static inline char *test_jwt(const char *payload)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char h64[128], p64[512], *token;

	sodium_bin2base64(h64, sizeof(h64), (const unsigned char *)header, strlen(header),
			sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_bin2base64(p64, sizeof(p64), (const unsigned char *)payload, strlen(payload),
			sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_true(asprintf(&token, "%s.%s.c2lnbmF0dXJlLWJ5dGVz", h64, p64) > 0);
	return token;
}
