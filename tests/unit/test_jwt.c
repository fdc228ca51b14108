/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/jwt.h"
#include "proto/proto.h"

#define HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define SIG    "c2lnbmF0dXJlLWJ5dGVz"

static char *b64url(const char *bin, size_t len)
{
	size_t size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *s = malloc(size);

	assert_non_null(s);
	sodium_bin2base64(s, size, (const unsigned char *)bin, len,
			sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return s;
}

/* Returns a malloc'ed "b64(header).b64(payload).sig". */
static char *make_token_raw(
		const char *header, size_t hlen, const char *payload, size_t plen, const char *sig)
{
	char *h = b64url(header, hlen), *p = b64url(payload, plen), *t;

	assert_true(asprintf(&t, "%s.%s.%s", h, p, sig) > 0);
	free(h);
	free(p);
	return t;
}

static char *make_token(const char *header, const char *payload)
{
	return make_token_raw(header, strlen(header), payload, strlen(payload), SIG);
}

/* Parses a token built from header and payload; expects -EINVAL with message. */
static void expect_error(const char *header, const char *payload, const char *message)
{
	char *t = make_token(header, payload);
	struct jwt_claims c = {.has_exp = true, .exp = 4242};
	const char *m = NULL;

	assert_int_equal(jwt_parse(t, strlen(t), &c, &m), -EINVAL);
	assert_non_null(m);
	assert_string_equal(m, message);
	/* ret_* is written only on success */
	assert_true(c.has_exp);
	assert_int_equal(c.exp, 4242);
	free(t);
}

static void parse_ok(const char *header, const char *payload, struct jwt_claims *c)
{
	char *t = make_token(header, payload);
	const char *m = NULL;

	assert_true(jwt_well_formed(t, strlen(t)));
	assert_int_equal(jwt_parse(t, strlen(t), c, &m), 0);
	assert_null(m);
	free(t);
}

static void expect_raw_error(const char *t, const char *message)
{
	struct jwt_claims c;
	const char *m = NULL;

	assert_int_equal(jwt_parse(t, strlen(t), &c, &m), -EINVAL);
	assert_non_null(m);
	assert_string_equal(m, message);
}

static void test_good(void **state)
{
	struct jwt_claims c;

	parse_ok(HEADER,
			"{\"id\":\"8f2c-41aa\",\"sub\":\"alice\",\"exp\":1764430000,"
			"\"iat\":1764400000,\"rol\":[\"Administrator\"],\"nested\":{\"a\":[1]}}",
			&c);
	assert_true(c.has_exp);
	assert_int_equal(c.exp, 1764430000);
	assert_true(c.has_iat);
	assert_int_equal(c.iat, 1764400000);
	assert_string_equal(c.user_id, "8f2c-41aa");
}

static void test_integer_id(void **state)
{
	struct jwt_claims c;

	parse_ok(HEADER, "{\"id\":42,\"exp\":1}", &c);
	assert_string_equal(c.user_id, "42");
	parse_ok(HEADER, "{\"id\":-7}", &c);
	assert_string_equal(c.user_id, "-7");
	parse_ok(HEADER, "{\"id\":9223372036854775806}", &c);
	assert_string_equal(c.user_id, "9223372036854775806");
	expect_error(HEADER, "{\"id\":9223372036854775808}", "user id out of range");
}

static void test_sub_fallback(void **state)
{
	struct jwt_claims c;

	parse_ok(HEADER, "{\"sub\":\"alice@example.com\",\"exp\":2}", &c);
	assert_string_equal(c.user_id, "alice@example.com");
	parse_ok(HEADER, "{\"sub\":17}", &c);
	assert_string_equal(c.user_id, "17");
	/* id wins over sub, wherever it is */
	parse_ok(HEADER, "{\"sub\":\"alice\",\"id\":\"u1\"}", &c);
	assert_string_equal(c.user_id, "u1");
}

static void test_missing_claims(void **state)
{
	struct jwt_claims c;

	parse_ok(HEADER, "{\"id\":\"x\",\"iat\":5}", &c);
	assert_false(c.has_exp);
	assert_true(c.has_iat);
	assert_int_equal(c.iat, 5);

	parse_ok(HEADER, "{}", &c);
	assert_false(c.has_exp);
	assert_false(c.has_iat);
	assert_string_equal(c.user_id, "");

	parse_ok(HEADER, " { \"exp\" : 3 } \n", &c);
	assert_true(c.has_exp);
	assert_int_equal(c.exp, 3);
	assert_false(c.has_iat);
}

static void test_numbers(void **state)
{
	struct jwt_claims c;

	parse_ok(HEADER, "{\"exp\":1764430000.9,\"iat\":-1.5}", &c);
	assert_int_equal(c.exp, 1764430000);
	assert_int_equal(c.iat, -1);
	parse_ok(HEADER, "{\"exp\":1.7e9}", &c);
	assert_int_equal(c.exp, 1700000000);
	parse_ok(HEADER, "{\"exp\":0}", &c);
	assert_true(c.has_exp);
	assert_int_equal(c.exp, 0);
	parse_ok(HEADER, "{\"exp\":9223372036854775806,\"iat\":-9223372036854775807}", &c);
	assert_int_equal(c.exp, INT64_MAX - 1);
	assert_int_equal(c.iat, INT64_MIN + 1);
}

static void test_exp_not_number(void **state)
{
	expect_error(HEADER, "{\"exp\":\"1764430000\"}", "exp is not a number");
	expect_error(HEADER, "{\"exp\":true}", "exp is not a number");
	expect_error(HEADER, "{\"exp\":null}", "exp is not a number");
	expect_error(HEADER, "{\"exp\":[1]}", "exp is not a number");
	expect_error(HEADER, "{\"exp\":{}}", "exp is not a number");
	expect_error(HEADER, "{\"exp\":1,\"iat\":\"x\"}", "iat is not a number");
}

static void test_exp_huge(void **state)
{
	expect_error(HEADER, "{\"exp\":9223372036854775807}", "exp is out of range");
	expect_error(HEADER, "{\"exp\":9223372036854775808}", "exp is out of range");
	expect_error(HEADER, "{\"exp\":99999999999999999999999}", "exp is out of range");
	expect_error(HEADER, "{\"exp\":-9223372036854775809}", "exp is out of range");
	expect_error(HEADER, "{\"exp\":1e30}", "exp is out of range");
	expect_error(HEADER, "{\"exp\":-1e300}", "exp is out of range");
	expect_error(HEADER, "{\"exp\":9.3e18}", "exp is out of range");
	expect_error(HEADER, "{\"exp\":1,\"iat\":1e19}", "iat is out of range");
}

static void test_bad_user_id(void **state)
{
	char payload[512], id[JWT_MAX_USER_ID + 2];
	struct jwt_claims c;

	memset(id, 'u', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	snprintf(payload, sizeof(payload), "{\"id\":\"%s\"}", id);
	expect_error(HEADER, payload, "user id too long");

	id[JWT_MAX_USER_ID] = '\0'; /* exactly the maximum */
	snprintf(payload, sizeof(payload), "{\"id\":\"%s\"}", id);
	parse_ok(HEADER, payload, &c);
	assert_string_equal(c.user_id, id);

	expect_error(HEADER, "{\"id\":\"a\\u0001b\"}", "user id is not printable ASCII");
	expect_error(HEADER, "{\"id\":\"a\\nb\"}", "user id is not printable ASCII");
	expect_error(HEADER, "{\"id\":\"a\\u0000b\"}", "user id is not printable ASCII");
	expect_error(HEADER, "{\"sub\":\"j\xc3\xa9r\xc3\xb4me\"}",
			"user id is not printable ASCII");
	expect_error(HEADER, "{\"sub\":\"x\\u007f\"}", "user id is not printable ASCII");
	expect_error(HEADER, "{\"id\":{\"a\":1}}", "id is not a string or integer");
	expect_error(HEADER, "{\"id\":true}", "id is not a string or integer");
	expect_error(HEADER, "{\"id\":1.5}", "id is not a string or integer");
	expect_error(HEADER, "{\"sub\":null}", "sub is not a string or integer");
}

static void test_header(void **state)
{
	expect_error("{\"typ\":\"JWT\"}", "{}", "header has no \"alg\"");
	expect_error("{\"alg\":1}", "{}", "header has no \"alg\"");
	expect_error("{\"alg\":null}", "{}", "header has no \"alg\"");
	expect_error("[\"alg\"]", "{}", "header is not a JSON object");
	expect_error("alg", "{}", "header is not a JSON object");
	expect_error("{\"alg\":\"HS256\"} x", "{}", "header is not a JSON object");
	/* an empty header encodes to an empty part */
	expect_error("", "{}", "not a JWT (expected three base64url parts separated by dots)");
}

static void test_payload_not_object(void **state)
{
	static const char *const bad[] = {
			"hello",
			"[1,2]",
			"[]",
			"42",
			"\"str\"",
			"null",
			"{\"a\":1",
			"{\"a\":1}x",
			"{\"a\":1}{}",
			"{\"a\":01}",
			"{\"a\":\"\xff\"}",
			"{\"a\":1,}",
			"{\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
	};
	char *t;
	const char *m;
	struct jwt_claims c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(HEADER, bad[i], "payload is not a JSON object");

	/* An empty payload encodes to an empty part. */
	t = make_token(HEADER, "");
	assert_int_equal(jwt_parse(t, strlen(t), &c, &m), -EINVAL);
	assert_false(jwt_well_formed(t, strlen(t)));
	free(t);

	/* A NUL inside the decoded payload */
	t = make_token_raw(HEADER, strlen(HEADER), "{\"a\":1}\0", 8, SIG);
	m = NULL;
	assert_int_equal(jwt_parse(t, strlen(t), &c, &m), -EINVAL);
	assert_string_equal(m, "payload is not a JSON object");
	free(t);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
			"",
			"abc",
			"abc.def",
			"abc.def.ghi.jkl",
			"abc.def.ghi.",
			".def.ghi",
			"abc..ghi",
			"abc.def.",
			"..",
			"...",
			"abc.de f.ghi",
			"abc.def.ghi\n",
			" abc.def.ghi",
			"abc.d+f.ghi",
			"abc.d/f.ghi",
			"abc.def=.ghi",
			"abc.def.gh=",
			"ab\xc3\xa9.def.ghi",
	};
	struct jwt_claims c;
	const char *m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(jwt_well_formed(bad[i], strlen(bad[i])));
		m = NULL;
		assert_int_equal(jwt_parse(bad[i], strlen(bad[i]), &c, &m), -EINVAL);
		assert_non_null(m);
	}
	expect_raw_error("", "token is empty");
	expect_raw_error("abc.def", "not a JWT (expected three base64url parts separated by dots)");
	expect_raw_error("abc.def.ghi.jkl",
			"not a JWT (expected three base64url parts separated by dots)");

	/* NULL and a NUL inside the length */
	assert_false(jwt_well_formed(NULL, 0));
	assert_int_equal(jwt_parse(NULL, 0, &c, NULL), -EINVAL);
	assert_false(jwt_well_formed("abc.d\0f.ghi", 11));
	assert_int_equal(jwt_parse("abc.d\0f.ghi", 11, &c, NULL), -EINVAL);

	/* The length is honoured: the bytes after it do not count. */
	assert_true(jwt_well_formed("abc.def.ghi.jkl", 11));
	assert_false(jwt_well_formed("abc.def.ghi", 8));
}

static void test_bad_base64(void **state)
{
	char *t, *h, *p;

	p = b64url("{}", 2);
	/* 12 bytes: 16 base64url characters, so one more makes a length of 1 mod 4 */
	h = b64url("{\"alg\":\"xy\"}", 12);
	assert_int_equal(strlen(h), 16);

	/* 1 mod 4 in the header */
	assert_true(asprintf(&t, "%sA.%s.%s", h, p, SIG) > 0);
	expect_raw_error(t, "header is not valid base64url");
	assert_true(jwt_well_formed(t, strlen(t))); /* the shape is right, the content is not */
	free(t);

	/* 1 mod 4 in the payload: "e30" is "{}", "e30A" decodes, "e30AB" cannot */
	assert_true(asprintf(&t, "%s.e30AB.%s", h, SIG) > 0);
	expect_raw_error(t, "payload is not valid base64url");
	free(t);

	/* 1 mod 4 in the signature */
	assert_true(asprintf(&t, "%s.%s.abcde", h, p) > 0);
	expect_raw_error(t, "signature is not valid base64url");
	free(t);

	/* non-canonical trailing bits: "e31" would decode to "{}" plus stray bits */
	assert_true(asprintf(&t, "%s.e31.%s", h, SIG) > 0);
	expect_raw_error(t, "payload is not valid base64url");
	free(t);

	/* '=' padding is outside the alphabet: refused by shape already */
	assert_true(asprintf(&t, "%s.e30=.%s", h, SIG) > 0);
	expect_raw_error(t, "not a JWT (expected three base64url parts separated by dots)");
	free(t);

	/* standard base64 characters */
	assert_true(asprintf(&t, "%s.e3+/.%s", h, SIG) > 0);
	expect_raw_error(t, "not a JWT (expected three base64url parts separated by dots)");
	free(t);

	free(h);
	free(p);
}

static void test_truncated(void **state)
{
	char *t = make_token(HEADER, "{\"id\":\"8f2c\",\"exp\":1764430000,\"iat\":1764400000}");
	size_t len = strlen(t), second_dot = (size_t)(strrchr(t, '.') - t);

	for (size_t l = 0; l < len; l++) {
		/* an exact-size copy without NUL, so a sanitizer sees any read past len */
		char *copy = malloc(l ? l : 1);
		struct jwt_claims c;
		const char *m = NULL;
		int r;

		assert_non_null(copy);
		memcpy(copy, t, l);
		r = jwt_parse(copy, l, &c, &m);
		if (l <= second_dot + 1) {
			/* cut before or right after the second dot: never a JWT */
			assert_int_equal(r, -EINVAL);
			assert_non_null(m);
			assert_false(jwt_well_formed(copy, l));
		} else if ((l - second_dot - 1) % 4 == 1) {
			/* only the signature was cut, to a length base64url cannot have */
			assert_int_equal(r, -EINVAL);
			assert_string_equal(m, "signature is not valid base64url");
		} else {
			/* only the signature was cut; it is never verified */
			assert_int_equal(r, 0);
			assert_int_equal(c.exp, 1764430000);
			assert_string_equal(c.user_id, "8f2c");
		}
		free(copy);
	}
	free(t);
}

static void test_huge(void **state)
{
	/* Find a padding claim and signature length that make the token exactly the limit. */
	for (size_t target = PROTO_MAX_TOKEN; target <= PROTO_MAX_TOKEN + 1; target++) {
		char *payload, *t = NULL, *sig;
		size_t pad = PROTO_MAX_TOKEN * 3 / 4 - 200;

		for (;; pad++) {
			char *filler = malloc(pad + 1), *h, *p;
			size_t base, siglen;

			assert_non_null(filler);
			memset(filler, 'x', pad);
			filler[pad] = '\0';
			assert_true(asprintf(&payload, "{\"exp\":7,\"pad\":\"%s\"}", filler) > 0);
			free(filler);
			h = b64url(HEADER, strlen(HEADER));
			p = b64url(payload, strlen(payload));
			base = strlen(h) + 1 + strlen(p) + 1;
			free(h);
			free(p);
			assert_true(base < target);
			siglen = target - base;
			if (siglen >= 4 && siglen % 4 != 1) {
				sig = malloc(siglen + 1);
				assert_non_null(sig);
				memset(sig, 'A', siglen);
				sig[siglen] = '\0';
				t = make_token_raw(HEADER, strlen(HEADER), payload, strlen(payload),
						sig);
				free(sig);
				free(payload);
				break;
			}
			free(payload);
		}
		assert_int_equal(strlen(t), target);

		struct jwt_claims c;
		const char *m = NULL;
		if (target == PROTO_MAX_TOKEN) {
			assert_true(jwt_well_formed(t, target));
			assert_int_equal(jwt_parse(t, target, &c, &m), 0);
			assert_int_equal(c.exp, 7);
		} else {
			assert_false(jwt_well_formed(t, target));
			assert_int_equal(jwt_parse(t, target, &c, &m), -EINVAL);
			assert_string_equal(m, "token is too long");
		}
		free(t);
	}

	/* Far beyond the limit, without building anything valid */
	size_t big = 4 * PROTO_MAX_TOKEN;
	char *t = malloc(big);
	struct jwt_claims c;
	assert_non_null(t);
	memset(t, 'A', big);
	t[100] = '.';
	t[200] = '.';
	assert_false(jwt_well_formed(t, big));
	assert_int_equal(jwt_parse(t, big, &c, NULL), -EINVAL);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_good),
			cmocka_unit_test(test_integer_id),
			cmocka_unit_test(test_sub_fallback),
			cmocka_unit_test(test_missing_claims),
			cmocka_unit_test(test_numbers),
			cmocka_unit_test(test_exp_not_number),
			cmocka_unit_test(test_exp_huge),
			cmocka_unit_test(test_bad_user_id),
			cmocka_unit_test(test_header),
			cmocka_unit_test(test_payload_not_object),
			cmocka_unit_test(test_malformed),
			cmocka_unit_test(test_bad_base64),
			cmocka_unit_test(test_truncated),
			cmocka_unit_test(test_huge),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
