/* SPDX-License-Identifier: MIT */
/* Fuzzes helper_response_parse() (daemon/helper/response.h): the login helper's reading of
 * whatever the server (or anyone impersonating it) answers. Each input is parsed with a token
 * buffer of the size the helper uses and with a small one. Besides memory safety it checks
 * that a success carries a well-formed JWT, NUL-terminated inside the caller's buffer, and a
 * printable user id; that a failure names a reason and writes nothing to *ret or the buffer;
 * and that the two buffer sizes disagree only about a token that does not fit. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "common/jwt.h"
#include "daemon/helper/response.h"
#include "fuzz.h"
#include "proto/proto.h"

#define SMALL_TOKEN 32

static bool all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static int parse(const uint8_t *data, size_t size, char *buf, size_t buf_size,
		struct helper_response *ret)
{
	struct helper_response before;
	const char *msg = NULL;
	int r;

	memset(ret, 0x5a, sizeof(*ret));
	before = *ret;
	r = helper_response_parse((const char *)data, size, buf, buf_size, ret, &msg);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG);
		FUZZ_CHECK(msg && msg[0] != '\0');
		FUZZ_CHECK(memcmp(ret, &before, sizeof(before)) == 0);
		return r;
	}

	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(ret->token == buf);
	FUZZ_CHECK(ret->token_len < buf_size && buf[ret->token_len] == '\0');
	FUZZ_CHECK(jwt_well_formed(ret->token, ret->token_len));
	FUZZ_CHECK(memchr(ret->user_id, '\0', sizeof(ret->user_id)) != NULL);
	for (const char *s = ret->user_id; *s; s++)
		FUZZ_CHECK(*s >= 0x20 && *s <= 0x7e);
	FUZZ_CHECK(ret->expires_in >= -1);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* As daemon/helper/http.c does: room for the longest token and its NUL. */
	static char *big;
	char small[SMALL_TOKEN];
	struct helper_response r_big, r_small;
	int k_big, k_small;

	if (!big) {
		big = malloc(PROTO_MAX_TOKEN + 1);
		FUZZ_CHECK(big);
	}
	memset(small, 0, sizeof(small));

	k_big = parse(data, size, big, PROTO_MAX_TOKEN + 1, &r_big);
	k_small = parse(data, size, small, sizeof(small), &r_small);

	if (k_small < 0)
		FUZZ_CHECK(all_zero(small, sizeof(small)));
	if (k_big < 0) {
		FUZZ_CHECK(k_small < 0);
		return 0;
	}
	FUZZ_CHECK((k_small == 0) == (r_big.token_len < sizeof(small)));
	if (k_small == 0) {
		FUZZ_CHECK(r_small.token_len == r_big.token_len);
		FUZZ_CHECK(memcmp(small, big, r_big.token_len + 1) == 0);
		FUZZ_CHECK(strcmp(r_small.user_id, r_big.user_id) == 0);
		FUZZ_CHECK(r_small.expires_in == r_big.expires_in);
	}
	explicit_bzero(big, r_big.token_len);
	return 0;
}
