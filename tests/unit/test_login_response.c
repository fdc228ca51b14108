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

#include "daemon/helper/response.h"
#include "proto/proto.h"

#define JWT "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImFiYyJ9.c2lnbmF0dXJl"

static char token_buf[PROTO_MAX_TOKEN + 1];

static void expect_ok(const char *body, const char *user_id, int64_t expires_in)
{
	struct helper_response r;
	const char *m = NULL;

	memset(token_buf, 'Z', sizeof(token_buf));
	assert_int_equal(helper_response_parse(
					 body, strlen(body), token_buf, sizeof(token_buf), &r, &m),
			0);
	assert_ptr_equal(r.token, token_buf);
	assert_int_equal(r.token_len, strlen(JWT));
	assert_string_equal(r.token, JWT);
	assert_string_equal(r.user_id, user_id);
	assert_int_equal(r.expires_in, expires_in);
}

static void expect_error_len(const char *body, size_t len, const char *message)
{
	struct helper_response r = {.token = (const char *)0x1, .expires_in = 4242};
	const char *m = NULL;

	memset(token_buf, 'Z', sizeof(token_buf));
	assert_int_equal(helper_response_parse(body, len, token_buf, sizeof(token_buf), &r, &m),
			-EBADMSG);
	assert_non_null(m);
	assert_string_equal(m, message);
	/* Nothing is written on failure. */
	assert_ptr_equal(r.token, (const char *)0x1);
	assert_int_equal(r.expires_in, 4242);
	assert_int_equal(token_buf[0], 'Z');
}

static void expect_error(const char *body, const char *message)
{
	expect_error_len(body, strlen(body), message);
}

static void test_v1(void **state)
{
	expect_ok("{\"id\":\"abc-123\",\"auth_token\":\"" JWT "\"}", "abc-123", -1);
	expect_ok("  {\"auth_token\":\"" JWT "\",\"id\":\"u\",\"extra\":[1,{\"a\":null}]}\n", "u",
			-1);
	/* id absent or null: empty */
	expect_ok("{\"auth_token\":\"" JWT "\"}", "", -1);
	expect_ok("{\"auth_token\":\"" JWT "\",\"id\":null}", "", -1);
	/* escaped characters in the token string are decoded */
	expect_ok("{\"auth_token\":\"eyJhbGciOiJIUzI1NiJ9\\u002eeyJpZCI6ImFiYyJ9.c2lnbmF0dXJl\"}",
			"", -1);
}

static void test_v2(void **state)
{
	expect_ok("{\"accessToken\":{\"id\":\"g-u-i-d\",\"authToken\":\"" JWT "\"}}", "g-u-i-d",
			-1);
	expect_ok("{\"accessToken\":{\"id\":\"x\",\"authToken\":\"" JWT "\",\"expires_in\":3600}}",
			"x", 3600);
	expect_ok("{\"accessToken\":{\"id\":\"x\",\"authToken\":\"" JWT "\"},\"expires_in\":60}",
			"x", 60);
	/* the inner one wins */
	expect_ok("{\"expires_in\":60,\"accessToken\":{\"authToken\":\"" JWT
		  "\",\"expires_in\":5}}",
			"", 5);
}

static void test_double_encoded(void **state)
{
	expect_ok("\"{\\\"id\\\":\\\"abc\\\",\\\"auth_token\\\":\\\"" JWT "\\\"}\"", "abc", -1);
	expect_ok(" \"{\\\"accessToken\\\":{\\\"id\\\":7,\\\"authToken\\\":\\\"" JWT "\\\"}}\" ",
			"7", -1);
	/* encoded twice more: refused */
	expect_error("\"\\\"{\\\\\\\"auth_token\\\\\\\":\\\\\\\"" JWT "\\\\\\\"}\\\"\"",
			"response is encoded as a JSON string more than once");
	expect_error("\"not json\"", "response is a string that does not hold JSON");
	expect_error("\"\"", "response is a string that does not hold JSON");
	expect_error("\"[1]\"", "response is not a JSON object");
	expect_error("\"null\"", "response is not a JSON object");
	expect_error("\"42\"", "response is not a JSON object");
}

static void test_ids(void **state)
{
	expect_ok("{\"id\":42,\"auth_token\":\"" JWT "\"}", "42", -1);
	expect_ok("{\"id\":-42,\"auth_token\":\"" JWT "\"}", "-42", -1);
	expect_ok("{\"id\":18446744073709551615,\"auth_token\":\"" JWT "\"}",
			"18446744073709551615", -1);
	expect_error("{\"id\":1.5,\"auth_token\":\"" JWT "\"}",
			"id in response is not a printable string or an integer");
	expect_error("{\"id\":{},\"auth_token\":\"" JWT "\"}",
			"id in response is not a printable string or an integer");
	expect_error("{\"id\":\"a\\nb\",\"auth_token\":\"" JWT "\"}",
			"id in response is not a printable string or an integer");

	char body[512], id[200];
	memset(id, 'i', 128);
	id[128] = '\0';
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"auth_token\":\"%s\"}", id, JWT);
	expect_ok(body, id, -1);
	id[128] = 'i';
	id[129] = '\0';
	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"auth_token\":\"%s\"}", id, JWT);
	expect_error(body, "id in response is not a printable string or an integer");
}

static void test_expires_in(void **state)
{
	expect_ok("{\"auth_token\":\"" JWT "\",\"expires_in\":86400}", "", 86400);
	expect_ok("{\"auth_token\":\"" JWT "\",\"expires_in\":0}", "", 0);
	expect_ok("{\"auth_token\":\"" JWT "\",\"expires_in\":null}", "", -1);
	expect_error("{\"auth_token\":\"" JWT "\",\"expires_in\":-5}",
			"expires_in in response is not a non-negative integer");
	expect_error("{\"auth_token\":\"" JWT "\",\"expires_in\":\"3600\"}",
			"expires_in in response is not a non-negative integer");
	expect_error("{\"auth_token\":\"" JWT "\",\"expires_in\":36.5}",
			"expires_in in response is not a non-negative integer");
}

static void test_missing_token(void **state)
{
	expect_error("{}", "no auth_token in response");
	expect_error("{\"id\":\"x\"}", "no auth_token in response");
	expect_error("{\"authToken\":\"" JWT "\"}", "no auth_token in response");
	expect_error("{\"accessToken\":\"" JWT "\"}", "no auth_token in response");
	expect_error("{\"accessToken\":{\"auth_token\":\"" JWT "\"}}", "no auth_token in response");
	expect_error("{\"auth_token\":null}", "auth_token is not a string");
	expect_error("{\"auth_token\":42}", "auth_token is not a string");
	expect_error("{\"accessToken\":{\"authToken\":[\"" JWT "\"]}}",
			"auth_token is not a string");
}

static void test_not_jwt(void **state)
{
	expect_error("{\"auth_token\":\"\"}", "token is not a well-formed JWT");
	expect_error("{\"auth_token\":\"abc\"}", "token is not a well-formed JWT");
	expect_error("{\"auth_token\":\"a.b\"}", "token is not a well-formed JWT");
	expect_error("{\"auth_token\":\"a.b.c.d\"}", "token is not a well-formed JWT");
	expect_error("{\"auth_token\":\"a..c\"}", "token is not a well-formed JWT");
	expect_error("{\"auth_token\":\"Bearer " JWT "\"}", "token is not a well-formed JWT");
	expect_error("{\"auth_token\":\"" JWT "\\n\"}", "token is not a well-formed JWT");
	expect_error("{\"auth_token\":\"" JWT "\\u0000\"}", "token is not a well-formed JWT");
}

static void test_not_json(void **state)
{
	expect_error("<html>502 Bad Gateway</html>", "response is not JSON");
	expect_error("{\"auth_token\":\"" JWT "\"", "response is not JSON"); /* truncated */
	expect_error("{\"auth_token\":\"" JWT "\"} x", "response is not JSON");
	expect_error("{\"auth_token\":\"" JWT "\"}{}", "response is not JSON");
	expect_error("{\"auth_token\":\"" JWT "\",}", "response is not JSON");
	expect_error("{\"a\":\"\xff\",\"auth_token\":\"" JWT "\"}", "response is not JSON");
	expect_error("   ", "response is not JSON");
	expect_error_len("", 0, "response is empty");
	/* a NUL byte does not end the document early */
	expect_error_len("{\"auth_token\":\"" JWT "\"}\0garbage", strlen(JWT) + 25,
			"response is not JSON");
}

static void test_not_object(void **state)
{
	expect_error("[\"" JWT "\"]", "response is not a JSON object");
	expect_error("[{\"auth_token\":\"" JWT "\"}]", "response is not a JSON object");
	expect_error("42", "response is not a JSON object");
	expect_error("null", "response is not a JSON object");
	expect_error("true", "response is not a JSON object");
}

static void test_nested(void **state)
{
	char body[256];
	size_t n = 0;

	/* json-c counts the innermost value as a level: depth 16 allows 15 nested containers. */
	for (int i = 0; i < 14; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"a\":");
	n += (size_t)snprintf(body + n, sizeof(body) - n, "1");
	for (int i = 0; i < 14; i++)
		body[n++] = '}';
	body[n] = '\0';
	char ok[512];
	snprintf(ok, sizeof(ok), "{\"auth_token\":\"%s\",\"x\":%s}", JWT, body);
	expect_ok(ok, "", -1);
	snprintf(ok, sizeof(ok), "{\"auth_token\":\"%s\",\"x\":[%s]}", JWT, body);
	expect_error(ok, "response is not JSON");
}

static void test_huge(void **state)
{
	size_t size = 2 * 1024 * 1024;
	char *body = malloc(size + 1);
	int prefix;

	assert_non_null(body);
	/* Valid JSON padded with whitespace past the cap */
	prefix = snprintf(body, size, "{\"auth_token\":\"%s\"}", JWT);
	memset(body + prefix, ' ', size - (size_t)prefix);
	body[size] = '\0';
	expect_error_len(body, size, "response too large");
	/* Just below the cap it is fine. */
	struct helper_response r;
	const char *m;
	assert_int_equal(helper_response_parse(
					 body, 1024 * 1024, token_buf, sizeof(token_buf), &r, &m),
			0);
	/* A huge string value within the cap */
	prefix = snprintf(body, size, "{\"auth_token\":\"%s\",\"junk\":\"", JWT);
	memset(body + prefix, 'x', 1000 * 1000);
	snprintf(body + prefix + 1000 * 1000, 8, "\"}");
	assert_int_equal(helper_response_parse(
					 body, strlen(body), token_buf, sizeof(token_buf), &r, &m),
			0);
	free(body);
}

static void test_token_buffer(void **state)
{
	const char *body = "{\"auth_token\":\"" JWT "\"}";
	struct helper_response r;
	char small[sizeof(JWT)];
	const char *m = NULL;

	/* Exactly enough room for the token and its NUL */
	assert_int_equal(
			helper_response_parse(body, strlen(body), small, sizeof(small), &r, &m), 0);
	assert_string_equal(small, JWT);
	assert_int_equal(
			helper_response_parse(body, strlen(body), small, sizeof(small) - 1, &r, &m),
			-EBADMSG);
	assert_string_equal(m, "token too long");

	/* A token longer than the protocol allows is not a token we serve. */
	size_t len = PROTO_MAX_TOKEN + 1;
	char *big = malloc(len + 64);
	assert_non_null(big);
	int k = snprintf(big, len + 64, "{\"auth_token\":\"aaaa.bbbb.");
	memset(big + k, 'c', len - 10);
	snprintf(big + k + len - 10, 8, "\"}");
	expect_error(big, "token is not a well-formed JWT");
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_v1),
			cmocka_unit_test(test_v2),
			cmocka_unit_test(test_double_encoded),
			cmocka_unit_test(test_ids),
			cmocka_unit_test(test_expires_in),
			cmocka_unit_test(test_missing_token),
			cmocka_unit_test(test_not_jwt),
			cmocka_unit_test(test_not_json),
			cmocka_unit_test(test_not_object),
			cmocka_unit_test(test_nested),
			cmocka_unit_test(test_huge),
			cmocka_unit_test(test_token_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
