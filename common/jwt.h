/* SPDX-License-Identifier: MIT */
/* Reading the claims of a JWT (header.payload.signature, base64url). The signature is not
 * verified: the daemon is not the audience, RegScale is; it only needs exp, iat and the
 * user id to know when the token stops being useful. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest JWT accepted, in bytes (proto/proto.h serves the same limit). */
#define JWT_MAX_LEN 16384

#define JWT_MAX_USER_ID 128
/* Longest username taken from a claim (proto/proto.h's PROTO_MAX_USERNAME). */
#define JWT_MAX_USERNAME 256

struct jwt_claims {
	bool has_exp;
	int64_t exp; /* unix seconds */
	bool has_iat;
	int64_t iat; /* unix seconds */
	/* "id" claim (RegScale's user id), else "sub", else empty; printable ASCII only. */
	char user_id[JWT_MAX_USER_ID + 1];
	/* The account's name: "unique_name", else "sub" when "id" holds the user id (RegScale
	 * puts the username in "sub"); empty when neither, or when it is no UTF-8 text without
	 * control characters (a name is shown, never needed). */
	char username[JWT_MAX_USERNAME + 1];
};

/* Returns true if token[0..len) has the shape of a JWT: three non-empty base64url parts
 * separated by two dots, nothing else, at most JWT_MAX_LEN bytes. */
bool jwt_well_formed(const char *token, size_t len);

/* Parses the claims of token[0..len). Returns 0 and fills *ret, or -EINVAL with a static
 * reason in *ret_message (not well formed, bad base64url, header or payload not a JSON
 * object, exp/iat not a number). Never copies the token itself to the heap. */
int jwt_parse(const char *token, size_t len, struct jwt_claims *ret, const char **ret_message);
