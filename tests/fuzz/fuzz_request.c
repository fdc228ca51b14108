/* SPDX-License-Identifier: MIT */
/* Fuzzes request_parse() (proto/request.h), the first code any local client reaches. Each
 * input is parsed three times: with no secret buffer (a password is refused), with a small
 * one (a long password is refused) and with one the size the daemon uses. Besides memory
 * safety it checks what the daemon relies on: after a failure the secret buffer holds no byte
 * of a password; after a success the password is NUL-terminated at secret_len, holds no NUL
 * and nothing was written past it (ops.c wipes only secret_len + 1 bytes); the three parses
 * agree wherever the buffer cannot matter. */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "proto/request.h"

#define SMALL_SECRET 8

static bool all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* Parses data with the secret buffer secret[0..secret_size) (all zero on entry) and checks
 * the result. window is how much of the buffer is checked; the parse cannot reach further
 * than the input is long. */
static enum proto_error parse(const uint8_t *data, size_t size, char *secret, size_t secret_size,
		size_t window, struct request *req)
{
	const char *msg = "unset";
	enum proto_error err;

	*req = (struct request){.secret = secret, .secret_size = secret_size};
	err = request_parse((const char *)data, size, req, &msg);

	FUZZ_CHECK(req->secret == secret && req->secret_size == secret_size);
	FUZZ_CHECK(terminated(req->id, sizeof(req->id)));
	FUZZ_CHECK(terminated(req->username, sizeof(req->username)));
	FUZZ_CHECK(terminated(req->mfa, sizeof(req->mfa)));

	if (err != PROTO_OK) {
		FUZZ_CHECK(err == PROTO_E_BAD_REQUEST || err == PROTO_E_UNSUPPORTED_VERSION ||
				err == PROTO_E_UNKNOWN_OP);
		FUZZ_CHECK(msg && msg[0] != '\0');
		FUZZ_CHECK(!req->has_secret && req->secret_len == 0);
		FUZZ_CHECK(!secret || all_zero(secret, window));
		FUZZ_CHECK(all_zero(req->mfa, sizeof(req->mfa)));
		return err;
	}

	FUZZ_CHECK(msg == NULL);
	FUZZ_CHECK(proto_op_name(req->op) != NULL);
	FUZZ_CHECK(req->has_id || req->id[0] == '\0');
	FUZZ_CHECK(strlen(req->id) <= PROTO_MAX_ID);
	FUZZ_CHECK(req->min_valid >= -1 && req->wait >= -1);
	if (!secret) {
		FUZZ_CHECK(!req->has_secret && req->secret_len == 0);
		return err;
	}
	if (req->has_secret) {
		FUZZ_CHECK(req->secret_len < secret_size);
		FUZZ_CHECK(strlen(secret) == req->secret_len);
		FUZZ_CHECK(all_zero(secret + req->secret_len, window - req->secret_len));
	} else {
		FUZZ_CHECK(req->secret_len == 0);
		FUZZ_CHECK(all_zero(secret, window));
	}
	return err;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Like the daemon's guarded buffer: PROTO_MAX_LINE bytes, allocated once. */
	static char *big;
	char *small;
	struct request r_none, r_small, r_big;
	enum proto_error e_none, e_small, e_big;
	size_t big_window;

	if (!big) {
		big = calloc(1, PROTO_MAX_LINE);
		FUZZ_CHECK(big);
	}
	/* Exactly sized, so that ASan sees a write past its end. */
	small = calloc(1, SMALL_SECRET);
	FUZZ_CHECK(small);
	big_window = min_size(PROTO_MAX_LINE, 2 * size + 16);

	e_none = parse(data, size, NULL, 0, 0, &r_none);
	e_small = parse(data, size, small, SMALL_SECRET, SMALL_SECRET, &r_small);
	e_big = parse(data, size, big, PROTO_MAX_LINE, big_window, &r_big);

	/* A bigger buffer can only turn a failure into a success, never the other way. */
	if (e_big != PROTO_OK)
		FUZZ_CHECK(e_small != PROTO_OK && e_none != PROTO_OK);
	if (e_small == PROTO_OK)
		FUZZ_CHECK(e_big == PROTO_OK);
	/* Without a password the buffer plays no part: all three agree. */
	if (e_big == PROTO_OK && !r_big.has_secret) {
		FUZZ_CHECK(e_none == PROTO_OK && e_small == PROTO_OK);
		FUZZ_CHECK(r_none.op == r_big.op && r_small.op == r_big.op);
		FUZZ_CHECK(strcmp(r_none.id, r_big.id) == 0 && strcmp(r_small.id, r_big.id) == 0);
	}
	if (e_big == PROTO_OK && r_big.has_secret) {
		/* A password is refused without a buffer, and when it does not fit. */
		FUZZ_CHECK(e_none == PROTO_E_BAD_REQUEST);
		FUZZ_CHECK((e_small == PROTO_OK) == (r_big.secret_len < SMALL_SECRET));
		if (e_small == PROTO_OK)
			FUZZ_CHECK(strcmp(small, big) == 0);
	}

	explicit_bzero(big, big_window);
	explicit_bzero(small, SMALL_SECRET);
	free(small);
	return 0;
}
