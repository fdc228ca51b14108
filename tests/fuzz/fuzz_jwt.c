/* SPDX-License-Identifier: MIT */
/* Fuzzes jwt_parse() (common/jwt.h), which reads every token the daemon is given: from a
 * token file, a systemd credential or the login helper. Each input is tried three ways: as the
 * token itself, and base64url-encoded as the payload and as the header of an otherwise valid
 * token, so that mutations reach the JSON claims without having to keep the base64url intact.
 * Besides memory safety it checks that a failure leaves *ret alone and names a reason, and
 * that a success only comes from a well-formed token and yields a printable user id. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <sodium.h>

#include "common/jwt.h"
#include "fuzz.h"
#include "proto/proto.h"

#define HEADER  "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define PAYLOAD "{\"id\":\"u-1\",\"exp\":2000000000,\"iat\":1700000000}"
#define SIG     "c2lnbmF0dXJl"

static void check(const char *token, size_t len)
{
	struct jwt_claims c, before;
	const char *msg = NULL;
	int r;

	memset(&c, 0x5a, sizeof(c));
	before = c;
	r = jwt_parse(token, len, &c, &msg);
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
		FUZZ_CHECK(msg && msg[0] != '\0');
		FUZZ_CHECK(memcmp(&c, &before, sizeof(c)) == 0);
		return;
	}

	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(jwt_well_formed(token, len));
	FUZZ_CHECK(memchr(c.user_id, '\0', sizeof(c.user_id)) != NULL);
	for (const char *s = c.user_id; *s; s++)
		FUZZ_CHECK(*s >= 0x20 && *s <= 0x7e);
	if (c.has_exp)
		FUZZ_CHECK(c.exp != INT64_MAX && c.exp != INT64_MIN);
	if (c.has_iat)
		FUZZ_CHECK(c.iat != INT64_MAX && c.iat != INT64_MIN);
}

/* Checks "b64(header).b64(payload).SIG" where one of the two comes from the input. */
static void check_parts(const uint8_t *header, size_t hlen, const uint8_t *payload, size_t plen)
{
	size_t hsize = sodium_base64_ENCODED_LEN(hlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	size_t psize = sodium_base64_ENCODED_LEN(plen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	size_t len;
	char *t;

	/* Both parts, two dots, the signature; the encoded lengths count a NUL each. */
	t = malloc(hsize + psize + sizeof(SIG));
	FUZZ_CHECK(t);
	sodium_bin2base64(t, hsize, header, hlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	len = strlen(t);
	t[len++] = '.';
	sodium_bin2base64(t + len, psize, payload, plen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	len += strlen(t + len);
	t[len++] = '.';
	memcpy(t + len, SIG, sizeof(SIG) - 1);
	len += sizeof(SIG) - 1;

	check(t, len);
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* libFuzzer hands over an exactly sized heap copy: ASan sees any read past its end. */
	check((const char *)data, size);

	/* Empty parts are not base64url of anything: both are covered by the raw form. */
	if (size > 0 && size <= PROTO_MAX_TOKEN) {
		check_parts((const uint8_t *)HEADER, strlen(HEADER), data, size);
		check_parts(data, size, (const uint8_t *)PAYLOAD, strlen(PAYLOAD));
	}
	return 0;
}
