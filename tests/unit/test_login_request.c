/* SPDX-License-Identifier: MIT */
/* Unit tests for daemon/helper/request.c: the login helper's request checks and the JSON body
 * it posts. Bodies are compared byte for byte and also read back with json-c, so an escaping
 * mistake shows both as a different string and as a different decoded password. */
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

#include <json-c/json.h>
#include <sodium.h>

#include "common/fields.h"
#include "daemon/helper/request.h"

#define JWT "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6ImFiYyJ9.c2lnbmF0dXJl"

struct kv {
	const char *name;
	const char *value;
	size_t len;
};

/* A field with a literal value, which may hold NUL bytes. */
#define KV(n, v)                                                                                   \
	{                                                                                          \
		n, v, sizeof(v) - 1                                                                \
	}
#define END                                                                                        \
	{                                                                                          \
		NULL, NULL, 0                                                                      \
	}

#define LOGIN_FIELDS KV("mode", "login"), KV("url", "https://regscale.example")

/* The message being parsed; the request's secrets point into it. */
static char msg[16384];
static size_t msg_len;

static void build(const struct kv *f)
{
	msg_len = 0;
	for (; f->name; f++)
		assert_int_equal(fields_put(msg, sizeof(msg), &msg_len, f->name, f->value, f->len),
				0);
}

#define BUILD(...) build((const struct kv[]){__VA_ARGS__, END})

static int parse(struct helper_request *req, struct helper_answer *a)
{
	*a = (struct helper_answer){.outcome = HELPER_TRANSIENT};
	return helper_request_parse(msg, msg_len, req, a);
}

/* Parses msg, builds the body and checks it is exactly expected. */
static void expect_body(const char *expected)
{
	struct helper_request req;
	struct helper_answer a;
	char *body;
	size_t len = 0;

	assert_int_equal(parse(&req, &a), 0);
	assert_int_equal(a.outcome, HELPER_TRANSIENT); /* untouched on success */
	assert_string_equal(a.message, "");
	body = helper_request_body(&req, &len);
	assert_non_null(body);
	assert_int_equal(len, strlen(expected));
	assert_memory_equal(body, expected, len);
	sodium_free(body); /* aborts if it were not sodium memory */
}

/* Parses msg, expects it refused with message. */
static void expect_refused(const char *message)
{
	struct helper_request req;
	struct helper_answer a;

	assert_int_equal(parse(&req, &a), -EINVAL);
	assert_int_equal(a.outcome, HELPER_CONFIG);
	assert_string_equal(a.message, message);
}

static void test_body_v1(void **state)
{
	BUILD(LOGIN_FIELDS, KV("username", "alice"), KV("password", "secret"));
	expect_body("{\"username\":\"alice\",\"password\":\"secret\",\"oldPassword\":\"\"}");

	/* v1 is the default; naming it changes nothing. */
	BUILD(LOGIN_FIELDS, KV("login_api", "v1"), KV("username", "alice"),
			KV("password", "secret"));
	expect_body("{\"username\":\"alice\",\"password\":\"secret\",\"oldPassword\":\"\"}");
}

static void test_body_v2(void **state)
{
	BUILD(LOGIN_FIELDS, KV("login_api", "v2"), KV("username", "alice"),
			KV("password", "secret"));
	expect_body("{\"username\":\"alice\",\"password\":\"secret\",\"oldPassword\":\"\","
		    "\"appId\":1}");
}

static void test_body_mfa(void **state)
{
	BUILD(LOGIN_FIELDS, KV("username", "alice"), KV("password", "secret"), KV("mfa", "123456"));
	expect_body("{\"username\":\"alice\",\"password\":\"secret\",\"oldPassword\":\"\","
		    "\"mfaToken\":\"123456\"}");

	BUILD(LOGIN_FIELDS, KV("login_api", "v2"), KV("username", "alice"),
			KV("password", "secret"), KV("mfa", "12\"34"));
	expect_body("{\"username\":\"alice\",\"password\":\"secret\",\"oldPassword\":\"\","
		    "\"mfaToken\":\"12\\\"34\",\"appId\":1}");

	BUILD(LOGIN_FIELDS, KV("username", "alice"), KV("password", "secret"), KV("mfa", "7"));
	expect_body("{\"username\":\"alice\",\"password\":\"secret\",\"oldPassword\":\"\","
		    "\"mfaToken\":\"7\"}");

	/* An empty code is no code. */
	BUILD(LOGIN_FIELDS, KV("username", "alice"), KV("password", "secret"), KV("mfa", ""));
	expect_body("{\"username\":\"alice\",\"password\":\"secret\",\"oldPassword\":\"\"}");
}

static void test_body_validate(void **state)
{
	BUILD(KV("mode", "validate"), KV("url", "https://regscale.example"), KV("token", JWT));
	expect_body("{\"accessToken\":\"Bearer " JWT "\"}");

	/* No username or password is needed, and v2 does not change the body. */
	BUILD(KV("mode", "validate"), KV("login_api", "v2"), KV("url", "https://r.example"),
			KV("token", JWT));
	expect_body("{\"accessToken\":\"Bearer " JWT "\"}");
}

static void test_escaping(void **state)
{
	BUILD(LOGIN_FIELDS, KV("username", "a\"b\\c"), KV("password", "\"\\\"\\"));
	expect_body("{\"username\":\"a\\\"b\\\\c\",\"password\":\"\\\"\\\\\\\"\\\\\","
		    "\"oldPassword\":\"\"}");

	/* Control characters, NUL included, as \u00XX; DEL and '/' as they are. */
	BUILD(LOGIN_FIELDS, KV("username", "u"), KV("password", "\x01\n\t\r\x1f\0\x7f/"));
	expect_body("{\"username\":\"u\",\"password\":\"\\u0001\\u000a\\u0009\\u000d\\u001f"
		    "\\u0000\x7f/\",\"oldPassword\":\"\"}");

	/* Well-formed UTF-8 is passed through, in the username as in the password. */
	BUILD(LOGIN_FIELDS, KV("username", "j\xc3\xbcrgen"),
			KV("password", "p\xc3\xa4ss \xe2\x82\xac \xf0\x9f\x94\x91"));
	expect_body("{\"username\":\"j\xc3\xbcrgen\",\"password\":\"p\xc3\xa4ss \xe2\x82\xac "
		    "\xf0\x9f\x94\x91\",\"oldPassword\":\"\"}");
}

/* Every printable and control byte, plus multi-byte characters, comes back out of a JSON
 * parser unchanged: the body is valid JSON and says what the password was. */
static void test_roundtrip(void **state)
{
	char password[200];
	size_t n = 0;
	struct helper_request req;
	struct helper_answer a;
	struct json_tokener *tok;
	struct json_object *obj, *v;
	char *body;
	size_t len;

	for (int c = 1; c < 0x80; c++)
		password[n++] = (char)c;
	memcpy(password + n, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
	n += 9;

	msg_len = 0;
	build((const struct kv[]){LOGIN_FIELDS, KV("username", "bob"), {"password", password, n},
			KV("mfa", "\"\\\n"), END});
	assert_int_equal(parse(&req, &a), 0);
	body = helper_request_body(&req, &len);
	assert_non_null(body);

	/* The body has a length, not a NUL: the guard page after it catches a read past len. */
	tok = json_tokener_new();
	assert_non_null(tok);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
	assert_int_equal(json_tokener_get_parse_end(tok), len);
	json_tokener_free(tok);
	assert_non_null(obj);
	assert_true(json_object_object_get_ex(obj, "password", &v));
	assert_int_equal(json_object_get_string_len(v), n);
	assert_memory_equal(json_object_get_string(v), password, n);
	assert_true(json_object_object_get_ex(obj, "mfaToken", &v));
	assert_string_equal(json_object_get_string(v), "\"\\\n");
	assert_true(json_object_object_get_ex(obj, "username", &v));
	assert_string_equal(json_object_get_string(v), "bob");
	json_object_put(obj);
	sodium_free(body);
}

static void test_defaults(void **state)
{
	struct helper_request req;
	struct helper_answer a;

	/* Unknown fields (from a newer daemon) are skipped. */
	BUILD(LOGIN_FIELDS, KV("future_field", "x"), KV("username", "alice"),
			KV("password", "secret"));
	assert_int_equal(parse(&req, &a), 0);
	assert_false(req.validate);
	assert_false(req.v2);
	assert_string_equal(req.api, "v1");
	assert_string_equal(req.version, RT_VERSION);
	assert_int_equal(req.connect_timeout, 10);
	assert_int_equal(req.total_timeout, 30);
	assert_string_equal(req.username, "alice");
	assert_string_equal(req.url, "https://regscale.example");
	assert_string_equal(req.ca_file, "");
	assert_string_equal(req.proxy, "");
	/* The password is not copied: it points into the message. */
	assert_true(req.password.data > msg && req.password.data < msg + msg_len);
	assert_int_equal(req.password.len, 6);
	assert_memory_equal(req.password.data, "secret", 6);
	assert_int_equal(req.mfa.len, 0);

	BUILD(LOGIN_FIELDS, KV("login_api", "v2"), KV("ca_file", "/etc/ca.pem"),
			KV("proxy", "http://proxy:3128"), KV("connect_timeout", "1"),
			KV("total_timeout", "3600"), KV("user_agent_version", "1.2.3-rc.1"),
			KV("username", "alice"), KV("password", "secret"));
	assert_int_equal(parse(&req, &a), 0);
	assert_true(req.v2);
	assert_string_equal(req.ca_file, "/etc/ca.pem");
	assert_string_equal(req.proxy, "http://proxy:3128");
	assert_int_equal(req.connect_timeout, 1);
	assert_int_equal(req.total_timeout, 3600);
	assert_string_equal(req.version, "1.2.3-rc.1");
}

static void test_refused_fields(void **state)
{
	BUILD(LOGIN_FIELDS, KV("mode", "login"), KV("username", "a"), KV("password", "p"));
	expect_refused("request has field mode twice");

	BUILD(LOGIN_FIELDS, KV("connect_timeout", "0"), KV("username", "a"), KV("password", "p"));
	expect_refused("request field connect_timeout is not valid");
	BUILD(LOGIN_FIELDS, KV("total_timeout", "3601"), KV("username", "a"), KV("password", "p"));
	expect_refused("request field total_timeout is not valid");
	BUILD(LOGIN_FIELDS, KV("total_timeout", "ten"), KV("username", "a"), KV("password", "p"));
	expect_refused("request field total_timeout is not valid");

	/* A string field holds at most its buffer less one byte, and no NUL. */
	BUILD(KV("mode", "login-login-logi"), KV("url", "https://r.example"));
	expect_refused("request field mode is not valid");
	BUILD(LOGIN_FIELDS, KV("username", "al\0ice"), KV("password", "p"));
	expect_refused("request field username is not valid");

	/* A message that is not a sequence of fields. */
	memcpy(msg, "mode 99\nlogin\n", 14);
	msg_len = 14;
	expect_refused("request is malformed");
}

static void test_refused_values(void **state)
{
	BUILD(KV("mode", "logout"), KV("url", "https://r.example"));
	expect_refused("request mode is not login or validate");
	BUILD(KV("url", "https://r.example"), KV("username", "a"), KV("password", "p"));
	expect_refused("request mode is not login or validate");

	BUILD(LOGIN_FIELDS, KV("login_api", "v3"), KV("username", "a"), KV("password", "p"));
	expect_refused("login_api is not v1 or v2");

	BUILD(LOGIN_FIELDS, KV("user_agent_version", "1.0 beta"), KV("username", "a"),
			KV("password", "p"));
	expect_refused("user_agent_version is not valid");
	BUILD(LOGIN_FIELDS, KV("user_agent_version", ""), KV("username", "a"), KV("password", "p"));
	expect_refused("user_agent_version is not valid");

	BUILD(KV("mode", "login"), KV("username", "a"), KV("password", "p"));
	expect_refused("no url configured");

	BUILD(KV("mode", "validate"), KV("url", "https://r.example"));
	expect_refused("no well-formed token to validate");
	BUILD(KV("mode", "validate"), KV("url", "https://r.example"), KV("token", "abc.def"));
	expect_refused("no well-formed token to validate");
}

static void test_refused_credentials(void **state)
{
	static const struct kv bad_utf8[] = {
			KV("x", "\xc3"),             /* cut short */
			KV("x", "\xc3("),            /* not a continuation byte */
			KV("x", "\xc0\x80"),         /* overlong NUL */
			KV("x", "\xe0\x80\xaf"),     /* overlong '/' */
			KV("x", "\xed\xa0\x80"),     /* a surrogate */
			KV("x", "\xed\xbf\xbf"),     /* the last surrogate */
			KV("x", "\xe0\x9f\xbf"),     /* overlong U+07FF */
			KV("x", "\xf4\x90\x80\x80"), /* above U+10FFFF */
			KV("x", "\xf0\x8f\xbf\xbf"), /* overlong U+FFFF */
			KV("x", "\xff"),
			KV("x", "ok\x80"),
	};

	BUILD(LOGIN_FIELDS, KV("password", "p"));
	expect_refused("no username, or it is not valid UTF-8");
	BUILD(LOGIN_FIELDS, KV("username", ""), KV("password", "p"));
	expect_refused("no username, or it is not valid UTF-8");
	BUILD(LOGIN_FIELDS, KV("username", "a"));
	expect_refused("no password, or it is not valid UTF-8");
	BUILD(LOGIN_FIELDS, KV("username", "a"), KV("password", ""));
	expect_refused("no password, or it is not valid UTF-8");

	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		const struct kv *b = &bad_utf8[i];

		build((const struct kv[]){LOGIN_FIELDS, {"username", b->value, b->len},
				KV("password", "p"), END});
		expect_refused("no username, or it is not valid UTF-8");
		build((const struct kv[]){LOGIN_FIELDS, KV("username", "a"),
				{"password", b->value, b->len}, END});
		expect_refused("no password, or it is not valid UTF-8");
		build((const struct kv[]){LOGIN_FIELDS, KV("username", "a"), KV("password", "p"),
				{"mfa", b->value, b->len}, END});
		expect_refused("mfa code is not valid UTF-8");
	}

	/* The largest code point and the last before the surrogates are fine. */
	BUILD(LOGIN_FIELDS, KV("username", "\xf4\x8f\xbf\xbf"), KV("password", "\xed\x9f\xbf"));
	expect_body("{\"username\":\"\xf4\x8f\xbf\xbf\",\"password\":\"\xed\x9f\xbf\","
		    "\"oldPassword\":\"\"}");
}

static void test_answer_set(void **state)
{
	struct helper_answer a = {.outcome = HELPER_OK};
	char longer[600];

	helper_answer_set(&a, HELPER_PROTOCOL, "HTTP %d, %s", 200, "caf\xc3\xa9\n\x7f");
	assert_int_equal(a.outcome, HELPER_PROTOCOL);
	assert_string_equal(a.message, "HTTP 200, caf????");

	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	helper_answer_set(&a, HELPER_OK, "%s", longer);
	assert_int_equal(strlen(a.message), sizeof(a.message) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_body_v1),
			cmocka_unit_test(test_body_v2),
			cmocka_unit_test(test_body_mfa),
			cmocka_unit_test(test_body_validate),
			cmocka_unit_test(test_escaping),
			cmocka_unit_test(test_roundtrip),
			cmocka_unit_test(test_defaults),
			cmocka_unit_test(test_refused_fields),
			cmocka_unit_test(test_refused_values),
			cmocka_unit_test(test_refused_credentials),
			cmocka_unit_test(test_answer_set),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
