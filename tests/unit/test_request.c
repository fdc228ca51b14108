/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/request.c and proto/json.c: the strict request parser and the JSON
 * object check. Every input is copied into a heap block of exactly its length, so
 * AddressSanitizer catches any read past len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "common/util.h"
#include "proto/json.h"
#include "proto/request.h"
#include "xorshift.h"

#define ERR_BAD     PROTO_E_BAD_REQUEST
#define ERR_VERSION PROTO_E_UNSUPPORTED_VERSION
#define ERR_OP      PROTO_E_UNKNOWN_OP

static const char *last_msg;

/* Parses s[0..len) from an exact-size copy; checks the message contract on the way. */
static enum proto_error parse_n(const char *s, size_t len, struct request *req)
{
	char *copy = malloc(len ? len : 1);
	enum proto_error e;

	assert_non_null(copy);
	memcpy(copy, s, len);
	last_msg = "unset";
	e = request_parse(copy, len, req, &last_msg);
	free(copy);

	if (e == PROTO_OK)
		assert_null(last_msg);
	else {
		assert_non_null(last_msg);
		assert_true(strlen(last_msg) > 0);
		assert_null(strchr(last_msg, '\n'));
	}
	return e;
}

/* Like parse_n() for a C string, keeping the caller's secret buffer. */
static enum proto_error parse_n_s(const char *s, struct request *req)
{
	return parse_n(s, strlen(s), req);
}

static enum proto_error parse(const char *s, struct request *req)
{
	*req = (struct request){0};
	return parse_n(s, strlen(s), req);
}

static enum proto_error parse_s(const char *s)
{
	struct request req = {0};
	return parse(s, &req);
}

#define assert_ok(s)     assert_int_equal(parse_s(s), PROTO_OK)
#define assert_err(s, e) assert_int_equal(parse_s(s), (e))

static bool all_zero(const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i])
			return false;
	return true;
}

static void test_op_names(void **state)
{
	assert_string_equal(proto_op_name(PROTO_OP_PING), "ping");
	assert_string_equal(proto_op_name(PROTO_OP_GET), "get");
	assert_string_equal(proto_op_name(PROTO_OP_STATUS), "status");
	assert_string_equal(proto_op_name(PROTO_OP_LOGIN), "login");
	assert_string_equal(proto_op_name(PROTO_OP_LOGOUT), "logout");
	assert_string_equal(proto_op_name(PROTO_OP_REFRESH), "refresh");
	assert_null(proto_op_name(_PROTO_OP_MAX));
	assert_null(proto_op_name((enum proto_op) - 1));
}

static void test_every_op(void **state)
{
	for (int i = 0; i < _PROTO_OP_MAX; i++) {
		char line[64];
		struct request req = {0};

		snprintf(line, sizeof(line), "{\"op\":\"%s\"}", proto_op_name((enum proto_op)i));
		assert_int_equal(parse(line, &req), PROTO_OK);
		assert_int_equal(req.op, i);
	}
}

static void test_defaults(void **state)
{
	struct request req = {0};

	memset(&req, 0x55, sizeof(req));
	req.secret = NULL;
	req.secret_size = 0;
	assert_int_equal(parse_n_s("{\"op\":\"ping\"}", &req), PROTO_OK);
	assert_int_equal(req.op, PROTO_OP_PING);
	assert_false(req.has_id);
	assert_string_equal(req.id, "");
	assert_int_equal(req.min_valid, -1);
	assert_int_equal(req.wait, -1);
	assert_string_equal(req.username, "");
	assert_string_equal(req.mfa, "");
	assert_false(req.has_secret);
	assert_int_equal(req.secret_len, 0);
}

static void test_full_request(void **state)
{
	struct request req = {0};

	assert_int_equal(parse("{\"op\":\"get\",\"v\":1,\"id\":\"req-1\",\"min_valid\":300,"
			       "\"wait\":10}",
					 &req),
			PROTO_OK);
	assert_int_equal(req.op, PROTO_OP_GET);
	assert_true(req.has_id);
	assert_string_equal(req.id, "req-1");
	assert_int_equal(req.min_valid, 300);
	assert_int_equal(req.wait, 10);

	/* Field order does not matter. */
	assert_int_equal(parse("{\"wait\":0,\"id\":7,\"op\":\"status\",\"v\":1}", &req), PROTO_OK);
	assert_int_equal(req.op, PROTO_OP_STATUS);
	assert_string_equal(req.id, "7");
	assert_int_equal(req.wait, 0);
	assert_int_equal(req.min_valid, -1);
}

static void test_whitespace(void **state)
{
	assert_ok(" {\"op\":\"get\"}");
	assert_ok("{\"op\":\"get\"} ");
	assert_ok("\t\r\n{ \"op\" : \"get\" }\t\r\n ");
	assert_ok("{\n\"op\"\n:\n\"get\"\n,\n\"v\"\n:\n1\n}");
	assert_ok("{ \"x\" : [ 1 , { \"y\" : null } ] , \"op\" : \"get\" }");
	/* Only the four JSON whitespace characters are whitespace. */
	assert_err("{\"op\":\"get\"}\v", ERR_BAD);
	assert_err("\f{\"op\":\"get\"}", ERR_BAD);
	assert_err("{\xc2\xa0\"op\":\"get\"}", ERR_BAD);
}

static void test_version(void **state)
{
	assert_ok("{\"op\":\"get\",\"v\":1}");
	assert_err("{\"op\":\"get\",\"v\":2}", ERR_VERSION);
	assert_string_equal(last_msg, "only \"v\":1 is supported");
	assert_err("{\"op\":\"get\",\"v\":0}", ERR_VERSION);
	assert_err("{\"op\":\"get\",\"v\":-1}", ERR_VERSION);
	assert_err("{\"op\":\"get\",\"v\":-0}", ERR_VERSION);
	assert_err("{\"op\":\"get\",\"v\":9223372036854775807}", ERR_VERSION);
	/* The version is judged before the op: a v2 request may mean something else. */
	assert_err("{\"op\":\"frobnicate\",\"v\":2}", ERR_VERSION);
	assert_err("{\"v\":2}", ERR_VERSION);

	assert_err("{\"op\":\"get\",\"v\":\"1\"}", ERR_BAD);
	assert_string_equal(last_msg, "\"v\" must be an integer");
	assert_err("{\"op\":\"get\",\"v\":1.0}", ERR_BAD);
	assert_err("{\"op\":\"get\",\"v\":1e0}", ERR_BAD);
	assert_err("{\"op\":\"get\",\"v\":true}", ERR_BAD);
	assert_err("{\"op\":\"get\",\"v\":null}", ERR_BAD);
	assert_err("{\"op\":\"get\",\"v\":[1]}", ERR_BAD);
	assert_err("{\"op\":\"get\",\"v\":99999999999999999999999}", ERR_BAD);
	assert_string_equal(last_msg, "\"v\" is out of range");
	/* Syntax errors beat everything. */
	assert_err("{\"op\":\"get\",\"v\":2", ERR_BAD);
	assert_err("{\"op\":\"get\",\"v\":01}", ERR_BAD);
}

static void test_op_errors(void **state)
{
	struct request req = {0};

	assert_err("{}", ERR_BAD);
	assert_string_equal(last_msg, "\"op\" is missing");
	assert_err("{\"v\":1,\"id\":\"x\"}", ERR_BAD);
	assert_string_equal(last_msg, "\"op\" is missing");
	assert_err("{\"OP\":\"get\"}", ERR_BAD);

	assert_err("{\"op\":\"frobnicate\"}", ERR_OP);
	assert_string_equal(last_msg, "\"op\" names no known request");
	assert_err("{\"op\":\"\"}", ERR_OP);
	assert_err("{\"op\":\"GET\"}", ERR_OP);
	assert_err("{\"op\":\"get \"}", ERR_OP);
	assert_err("{\"op\":\"gett\"}", ERR_OP);
	assert_err("{\"op\":\"ge\"}", ERR_OP);
	assert_err("{\"op\":\"\xc3\xa9\"}", ERR_OP);
	/* Exactly PROTO_MAX_OP bytes, then one more: both unknown, neither malformed. */
	assert_err("{\"op\":\"getgetgetgetgetgetgetgetgetgetge\"}", ERR_OP);
	assert_err("{\"op\":\"getgetgetgetgetgetgetgetgetgetget\"}", ERR_OP);
	assert_err("{\"op\":\"getgetgetgetgetgetgetgetgetgetgetgetgetgetgetgetgetgetget\"}",
			ERR_OP);

	assert_err("{\"op\":1}", ERR_BAD);
	assert_string_equal(last_msg, "\"op\" must be a string");
	assert_err("{\"op\":null}", ERR_BAD);
	assert_err("{\"op\":true}", ERR_BAD);
	assert_err("{\"op\":[\"get\"]}", ERR_BAD);
	assert_err("{\"op\":{\"get\":1}}", ERR_BAD);
	assert_err("{\"op\":\"get\\u0000\"}", ERR_BAD);
	assert_string_equal(last_msg, "\"op\" must not contain \\u0000");

	/* Escapes in the name and in the value are decoded before matching. */
	assert_int_equal(parse("{\"\\u006fp\":\"\\u0067et\"}", &req), PROTO_OK);
	assert_int_equal(req.op, PROTO_OP_GET);
	assert_int_equal(parse("{\"o\\u0070\":\"s\\/tatus\"}", &req), ERR_OP);
}

/* Builds {"op":"login","<name>":"<n times c>"} into buf. */
static const char *repeat_field(char *buf, size_t size, const char *name, const char *c, int n)
{
	size_t off = (size_t)snprintf(buf, size, "{\"op\":\"login\",\"%s\":\"", name);

	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, size - off, "%s", c);
	snprintf(buf + off, size - off, "\"}");
	return buf;
}

static void test_id_forms(void **state)
{
	struct request req = {0};

	assert_int_equal(parse("{\"op\":\"get\",\"id\":\"abc\"}", &req), PROTO_OK);
	assert_true(req.has_id);
	assert_string_equal(req.id, "abc");

	assert_int_equal(parse("{\"op\":\"get\",\"id\":42}", &req), PROTO_OK);
	assert_true(req.has_id);
	assert_string_equal(req.id, "42");

	assert_int_equal(parse("{\"op\":\"get\",\"id\":0}", &req), PROTO_OK);
	assert_string_equal(req.id, "0");
	assert_int_equal(parse("{\"op\":\"get\",\"id\":-7}", &req), PROTO_OK);
	assert_string_equal(req.id, "-7");
	/* Integers are echoed as written, however large. */
	assert_int_equal(parse("{\"op\":\"get\",\"id\":123456789012345678901234567890}", &req),
			PROTO_OK);
	assert_string_equal(req.id, "123456789012345678901234567890");

	assert_int_equal(parse("{\"op\":\"get\",\"id\":\"\"}", &req), PROTO_OK);
	assert_true(req.has_id);
	assert_string_equal(req.id, "");

	assert_int_equal(
			parse("{\"op\":\"get\",\"id\":\"a\\\"b\\\\c\\n\\u00e9\"}", &req), PROTO_OK);
	assert_string_equal(req.id, "a\"b\\c\n\xc3\xa9");

	/* 64 bytes fit, 65 do not; both for strings and for integers. */
	assert_int_equal(parse("{\"op\":\"get\",\"id\":"
			       "\"0123456789012345678901234567890123456789012345678901234567890123"
			       "\"}",
					 &req),
			PROTO_OK);
	assert_int_equal(strlen(req.id), 64);
	assert_err("{\"op\":\"get\",\"id\":"
		   "\"01234567890123456789012345678901234567890123456789012345678901234\"}",
			ERR_BAD);
	assert_string_equal(last_msg, "\"id\" is longer than 64 bytes");
	assert_int_equal(parse("{\"op\":\"get\",\"id\":"
			       "1123456789012345678901234567890123456789012345678901234567890123}",
					 &req),
			PROTO_OK);
	assert_int_equal(strlen(req.id), 64);
	assert_err("{\"op\":\"get\",\"id\":"
		   "11234567890123456789012345678901234567890123456789012345678901234}",
			ERR_BAD);
	/* 32 two-byte characters are 64 bytes; one more is too many. */
	{
		char line[256];

		assert_int_equal(
				parse(repeat_field(line, sizeof(line), "id", "\xc3\xa9", 32), &req),
				PROTO_OK);
		assert_int_equal(strlen(req.id), 64);
		assert_int_equal(
				parse(repeat_field(line, sizeof(line), "id", "\xc3\xa9", 33), &req),
				ERR_BAD);
		/* A 3-byte character that would straddle the limit is not cut in half. */
		assert_int_equal(parse(repeat_field(line, sizeof(line), "id", "\xe2\x82\xac", 22),
						 &req),
				ERR_BAD);
	}

	assert_err("{\"op\":\"get\",\"id\":1.5}", ERR_BAD);
	assert_string_equal(last_msg, "\"id\" must be a string or an integer");
	assert_err("{\"op\":\"get\",\"id\":1e3}", ERR_BAD);
	assert_err("{\"op\":\"get\",\"id\":null}", ERR_BAD);
	assert_err("{\"op\":\"get\",\"id\":true}", ERR_BAD);
	assert_err("{\"op\":\"get\",\"id\":[]}", ERR_BAD);
	assert_err("{\"op\":\"get\",\"id\":{}}", ERR_BAD);
	assert_err("{\"op\":\"get\",\"id\":\"a\\u0000b\"}", ERR_BAD);
	assert_err("{\"op\":\"get\",\"id\":+1}", ERR_BAD);
}

static void test_seconds(void **state)
{
	static const char *const names[] = {"min_valid", "wait"};

	for (size_t i = 0; i < 2; i++) {
		struct request req = {0};
		char line[256];
		int64_t *field;

#define TRY(value)                                                                                 \
	(snprintf(line, sizeof(line), "{\"op\":\"get\",\"%s\":%s}", names[i], value),              \
			parse(line, &req))
		field = i == 0 ? &req.min_valid : &req.wait;

		assert_int_equal(TRY("0"), PROTO_OK);
		assert_int_equal(*field, 0);
		assert_int_equal(TRY("-0"), PROTO_OK);
		assert_int_equal(*field, 0);
		assert_int_equal(TRY("300"), PROTO_OK);
		assert_int_equal(*field, 300);
		assert_int_equal(TRY("9223372036854775807"), PROTO_OK);
		assert_true(*field == INT64_MAX);

		assert_int_equal(TRY("9223372036854775808"), ERR_BAD);
		assert_non_null(strstr(last_msg, "is too large"));
		assert_int_equal(TRY("18446744073709551616"), ERR_BAD);
		assert_int_equal(TRY("99999999999999999999999999999999999999"), ERR_BAD);
		assert_int_equal(TRY("-1"), ERR_BAD);
		assert_non_null(strstr(last_msg, "must be a whole number"));
		assert_int_equal(TRY("-9223372036854775808"), ERR_BAD);
		assert_int_equal(TRY("-99999999999999999999999"), ERR_BAD);
		assert_int_equal(TRY("1.5"), ERR_BAD);
		assert_int_equal(TRY("1.0"), ERR_BAD);
		assert_int_equal(TRY("1e2"), ERR_BAD);
		assert_int_equal(TRY("1E+2"), ERR_BAD);
		assert_int_equal(TRY("\"5\""), ERR_BAD);
		assert_int_equal(TRY("null"), ERR_BAD);
		assert_int_equal(TRY("false"), ERR_BAD);
		assert_int_equal(TRY("[5]"), ERR_BAD);
		assert_int_equal(TRY("{}"), ERR_BAD);
		assert_int_equal(TRY("05"), ERR_BAD);
		assert_int_equal(TRY("+5"), ERR_BAD);
		assert_int_equal(TRY("0x10"), ERR_BAD);
		assert_int_equal(TRY("-"), ERR_BAD);
		assert_int_equal(TRY("Infinity"), ERR_BAD);
#undef TRY
	}
}

static void test_string_limits(void **state)
{
	char line[4096];
	struct request req = {0};

	assert_int_equal(parse(repeat_field(line, sizeof(line), "username", "u", 256), &req),
			PROTO_OK);
	assert_int_equal(strlen(req.username), 256);
	assert_int_equal(parse(repeat_field(line, sizeof(line), "username", "u", 257), &req),
			ERR_BAD);
	assert_string_equal(last_msg, "\"username\" is longer than 256 bytes");
	/* The limit counts decoded bytes, not escapes. */
	assert_int_equal(parse(repeat_field(line, sizeof(line), "username", "\\u0075", 256), &req),
			PROTO_OK);
	assert_int_equal(parse(repeat_field(line, sizeof(line), "username", "\\u00e9", 128), &req),
			PROTO_OK);
	assert_int_equal(strlen(req.username), 256);
	assert_int_equal(parse(repeat_field(line, sizeof(line), "username", "\\u20ac", 86), &req),
			ERR_BAD);

	assert_int_equal(parse(repeat_field(line, sizeof(line), "mfa", "1", 16), &req), PROTO_OK);
	assert_string_equal(req.mfa, "1111111111111111");
	assert_int_equal(parse(repeat_field(line, sizeof(line), "mfa", "1", 17), &req), ERR_BAD);
	assert_string_equal(last_msg, "\"mfa\" is longer than 16 bytes");

	assert_int_equal(
			parse("{\"op\":\"login\",\"username\":\"alice\",\"mfa\":\"123456\"}", &req),
			PROTO_OK);
	assert_string_equal(req.username, "alice");
	assert_string_equal(req.mfa, "123456");

	assert_err("{\"op\":\"login\",\"username\":1}", ERR_BAD);
	assert_string_equal(last_msg, "\"username\" must be a string");
	assert_err("{\"op\":\"login\",\"mfa\":123456}", ERR_BAD);
	assert_err("{\"op\":\"login\",\"username\":null}", ERR_BAD);
	assert_err("{\"op\":\"login\",\"username\":\"a\\u0000\"}", ERR_BAD);
}

static void test_escapes(void **state)
{
	struct request req = {0};

	assert_int_equal(
			parse("{\"op\":\"get\",\"username\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", &req),
			PROTO_OK);
	assert_string_equal(req.username, "\"\\/\b\f\n\r\t");

	assert_int_equal(parse("{\"op\":\"get\",\"username\":\"\\u0041\\u00e9\\u00E9\\u20ac\"}",
					 &req),
			PROTO_OK);
	assert_string_equal(req.username, "A\xc3\xa9\xc3\xa9\xe2\x82\xac");

	assert_int_equal(parse("{\"op\":\"get\",\"username\":\"\\u007f\\u0080\\u07ff\\u0800"
			       "\\uffff\\ud7ff\\ue000\"}",
					 &req),
			PROTO_OK);
	assert_string_equal(req.username, "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"
					  "\xed\x9f\xbf\xee\x80\x80");

	/* Surrogate pairs become one 4-byte sequence. */
	assert_int_equal(parse("{\"op\":\"get\",\"username\":\"\\ud83d\\ude00|\\uD83D\\uDE00|"
			       "\\ud800\\udc00|\\udbff\\udfff\"}",
					 &req),
			PROTO_OK);
	assert_string_equal(req.username, "\xf0\x9f\x98\x80|\xf0\x9f\x98\x80|\xf0\x90\x80\x80|"
					  "\xf4\x8f\xbf\xbf");

	/* Control characters may come escaped. */
	assert_int_equal(parse("{\"op\":\"get\",\"username\":\"\\u0001\\u001f\"}", &req), PROTO_OK);
	assert_string_equal(req.username, "\x01\x1f");
}

static void test_bad_escapes(void **state)
{
	static const char *const bad[] = {
			"\\x41",
			"\\a",
			"\\0",
			"\\'",
			"\\U0041",
			"\\u",
			"\\u1",
			"\\u12",
			"\\u123",
			"\\u12G4",
			"\\u-123",
			"\\u 123",
			"\\",
			"\\ud83d",        /* lone high surrogate */
			"\\ud83dx",       /* high surrogate, then a plain character */
			"\\ud83d\\u0041", /* high surrogate, then no low one */
			"\\ud83d\\ud83d", /* two high surrogates */
			"\\ud83d\\n",     /* high surrogate, then another escape */
			"\\ud83d\\ude0",  /* truncated low surrogate */
			"\\ude00",        /* lone low surrogate */
			"\\ude00\\ud83d", /* reversed pair */
			"\\udfff",
	};

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		char line[128];

		/* In a known field, in an unknown field and in a member name. */
		snprintf(line, sizeof(line), "{\"op\":\"get\",\"username\":\"%s\"}", bad[i]);
		assert_int_equal(parse_s(line), ERR_BAD);
		snprintf(line, sizeof(line), "{\"op\":\"get\",\"other\":\"%s\"}", bad[i]);
		assert_int_equal(parse_s(line), ERR_BAD);
		snprintf(line, sizeof(line), "{\"op\":\"get\",\"%s\":1}", bad[i]);
		assert_int_equal(parse_s(line), ERR_BAD);
	}
	assert_err("{\"op\":\"get\",\"x\":\"\\ude00\"}", ERR_BAD);
	assert_string_equal(last_msg, "string contains an unpaired \\u surrogate");
	assert_err("{\"op\":\"get\",\"x\":\"\\q\"}", ERR_BAD);
	assert_string_equal(last_msg, "string contains an invalid escape");
}

static void test_raw_utf8(void **state)
{
	struct request req = {0};

	assert_int_equal(
			parse("{\"op\":\"get\",\"username\":\"h\xc3\xa9llo \xe2\x82\xac "
			      "\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xed\x9f\xbf \xee\x80\x80 \x7f\"}",
					&req),
			PROTO_OK);
	assert_string_equal(req.username, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 "
					  "\xf4\x8f\xbf\xbf \xed\x9f\xbf \xee\x80\x80 \x7f");
	assert_ok("{\"op\":\"get\",\"\xc3\xa9t\xc3\xa9\":\"\xe2\x82\xac\"}");
}

static void test_invalid_utf8(void **state)
{
	static const struct {
		const char *bytes;
		const char *what;
	} bad[] = {
			{"\x80", "lone continuation byte"},
			{"\xbf", "lone continuation byte"},
			{"a\x80z", "continuation after ASCII"},
			{"\xc0\x80", "overlong NUL"},
			{"\xc0\xaf", "overlong slash"},
			{"\xc1\xbf", "overlong 2-byte"},
			{"\xe0\x80\x80", "overlong 3-byte"},
			{"\xe0\x9f\xbf", "overlong 3-byte"},
			{"\xf0\x80\x80\x80", "overlong 4-byte"},
			{"\xf0\x8f\xbf\xbf", "overlong 4-byte"},
			{"\xed\xa0\x80", "encoded high surrogate U+D800"},
			{"\xed\xbf\xbf", "encoded low surrogate U+DFFF"},
			{"\xed\xa0\xbd\xed\xb8\x80", "CESU-8 surrogate pair"},
			{"\xf4\x90\x80\x80", "above U+10FFFF"},
			{"\xf5\x80\x80\x80", "F5 lead byte"},
			{"\xf8\x88\x80\x80\x80", "5-byte form"},
			{"\xfc\x84\x80\x80\x80\x80", "6-byte form"},
			{"\xfe", "FE"},
			{"\xff", "FF"},
			{"\xc3", "truncated 2-byte"},
			{"\xe2\x82", "truncated 3-byte"},
			{"\xf0\x9f\x98", "truncated 4-byte"},
			{"\xc3\x41", "bad continuation"},
			{"\xe2\x28\xa1", "bad continuation"},
			{"\xf0\x9f\x28\x80", "bad continuation"},
			{"\xc3\xa9\xa9", "extra continuation"},
	};

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		char line[128];

		snprintf(line, sizeof(line), "{\"op\":\"get\",\"username\":\"%s\"}", bad[i].bytes);
		if (parse_s(line) != ERR_BAD)
			fail_msg("%s accepted in a known field", bad[i].what);
		assert_string_equal(last_msg, "string is not valid UTF-8");

		snprintf(line, sizeof(line), "{\"op\":\"get\",\"x\":[\"%s\"]}", bad[i].bytes);
		if (parse_s(line) != ERR_BAD)
			fail_msg("%s accepted in an unknown field", bad[i].what);

		snprintf(line, sizeof(line), "{\"op\":\"get\",\"%s\":1}", bad[i].bytes);
		if (parse_s(line) != ERR_BAD)
			fail_msg("%s accepted in a member name", bad[i].what);

		/* Outside strings, any byte above 0x7f is broken JSON. */
		snprintf(line, sizeof(line), "{\"op\":\"get\"%s}", bad[i].bytes);
		assert_int_equal(parse_s(line), ERR_BAD);
	}
	/* The string is cut right after a lead byte. */
	assert_err("{\"op\":\"get\",\"x\":\"\xe2", ERR_BAD);
	assert_err("{\"op\":\"get\",\"x\":\"\xf0\x9f", ERR_BAD);
	/* A byte order mark is not JSON text here. */
	assert_err("\xef\xbb\xbf{\"op\":\"get\"}", ERR_BAD);
}

static void test_control_characters(void **state)
{
	for (int c = 1; c < 0x20; c++) {
		char line[64];

		snprintf(line, sizeof(line), "{\"op\":\"get\",\"username\":\"a%cb\"}", c);
		assert_int_equal(parse_s(line), ERR_BAD);
		assert_string_equal(last_msg, "string contains a raw control character");
		snprintf(line, sizeof(line), "{\"op\":\"get\",\"x\":\"a%cb\"}", c);
		assert_int_equal(parse_s(line), ERR_BAD);
	}
	assert_ok("{\"op\":\"get\",\"x\":\"a\x7f\"}");
}

static void test_nul_bytes(void **state)
{
	static const char good[] = "{\"op\":\"get\",\"username\":\"ab\"}";
	struct request req = {0};
	char line[sizeof(good) + 1];

	/* A NUL byte at any position, replacing or added to a byte, is refused. */
	for (size_t i = 0; i < sizeof(good) - 1; i++) {
		memcpy(line, good, sizeof(good) - 1);
		line[i] = '\0';
		assert_int_equal(parse_n(line, sizeof(good) - 1, &req), ERR_BAD);
		assert_string_equal(last_msg, "request contains a NUL byte");
	}
	memcpy(line, good, sizeof(good) - 1);
	line[sizeof(good) - 1] = '\0';
	assert_int_equal(parse_n(line, sizeof(good), &req), ERR_BAD);
	assert_int_equal(parse_n("\0", 1, &req), ERR_BAD);

	/* An escaped NUL is valid JSON: refused in known fields, which are C strings, but
	 * fine where it is only skipped. */
	assert_err("{\"op\":\"get\",\"username\":\"\\u0000\"}", ERR_BAD);
	assert_string_equal(last_msg, "\"username\" must not contain \\u0000");
	assert_ok("{\"op\":\"get\",\"x\":\"a\\u0000b\"}");
	assert_ok("{\"op\":\"get\",\"x\\u0000\":1}");
	/* "op\u0000" is not "op". */
	assert_err("{\"op\\u0000\":\"get\"}", ERR_BAD);
	assert_string_equal(last_msg, "\"op\" is missing");
}

static void test_not_object(void **state)
{
	static const char *const cases[] = {"[]", "[{\"op\":\"get\"}]", "\"op\"", "1", "-1", "0",
			"null", "true", "false", "\"{\\\"op\\\":\\\"get\\\"}\""};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		assert_int_equal(parse_s(cases[i]), ERR_BAD);
		assert_string_equal(last_msg, "request is not a JSON object");
	}

	assert_err("", ERR_BAD);
	assert_string_equal(last_msg, "request is empty");
	assert_err(" \t\r\n", ERR_BAD);
	assert_string_equal(last_msg, "request is empty");
	assert_err("op=get", ERR_BAD);
	assert_string_equal(last_msg, "request is not valid JSON");
	assert_err("not json", ERR_BAD);
	assert_string_equal(last_msg, "request is not valid JSON");
	assert_err("nul", ERR_BAD);
	assert_string_equal(last_msg, "request is not valid JSON");
	assert_err("[1,", ERR_BAD);
	assert_string_equal(last_msg, "request is not valid JSON");
	assert_err("[\"\xff\"]", ERR_BAD);
	assert_string_equal(last_msg, "string is not valid UTF-8");
	assert_err("GET / HTTP/1.1", ERR_BAD);
	assert_err("}", ERR_BAD);
}

static void test_invalid_json(void **state)
{
	static const char *const cases[] = {
			"{",
			"{\"op\"",
			"{\"op\":",
			"{\"op\":\"get\"",
			"{\"op\":\"get\",",
			"{\"op\":\"get\",}",
			"{,\"op\":\"get\"}",
			"{\"op\":\"get\",,\"v\":1}",
			"{\"op\" \"get\"}",
			"{\"op\"::\"get\"}",
			"{\"op\":\"get\";\"v\":1}",
			"{\"op\":\"get\" \"v\":1}",
			"{'op':'get'}",
			"{op:\"get\"}",
			"{\"op\":get}",
			"{\"op\":\"get]",
			"{\"op\":\"get\"]",
			"{\"op\":\"get\",\"x\":[}",
			"{\"op\":\"get\",\"x\":[1,]}",
			"{\"op\":\"get\",\"x\":[,1]}",
			"{\"op\":\"get\",\"x\":[1 2]}",
			"{\"op\":\"get\",\"x\":{\"a\"}}",
			"{\"op\":\"get\",\"x\":{\"a\":}}",
			"{\"op\":\"get\",\"x\":{1:2}}",
			"{\"op\":\"get\",\"x\":{\"a\":1,}}",
			"{\"op\":\"get\",\"x\":{\"a\":1]}",
			"{\"op\":\"get\",\"x\":[1}",
			"{\"op\":\"get\",\"x\":}",
			"{\"op\":\"get\",\"x\"}",
			"{\"op\":\"get\",\"x\":tru}",
			"{\"op\":\"get\",\"x\":True}",
			"{\"op\":\"get\",\"x\":nul}",
			"{\"op\":\"get\",\"x\":nulll}",
			"{\"op\":\"get\",\"x\":fals}",
			"{\"op\":\"get\",\"x\":falsey}",
			"{\"op\":\"get\",\"x\":undefined}",
			"{\"op\":\"get\",\"x\":NaN}",
			"{\"op\":\"get\",\"x\":Infinity}",
			"{\"op\":\"get\",\"x\":-Infinity}",
			"{\"op\":\"get\",\"x\":01}",
			"{\"op\":\"get\",\"x\":-01}",
			"{\"op\":\"get\",\"x\":1.}",
			"{\"op\":\"get\",\"x\":.5}",
			"{\"op\":\"get\",\"x\":-}",
			"{\"op\":\"get\",\"x\":--1}",
			"{\"op\":\"get\",\"x\":+1}",
			"{\"op\":\"get\",\"x\":1e}",
			"{\"op\":\"get\",\"x\":1e+}",
			"{\"op\":\"get\",\"x\":1E-}",
			"{\"op\":\"get\",\"x\":1.e5}",
			"{\"op\":\"get\",\"x\":0x1F}",
			"{\"op\":\"get\",\"x\":1_000}",
			"{\"op\":\"get\",\"x\":\"unterminated}",
			"{\"op\":\"get\",\"x\":'single'}",
			"{\"op\":\"get\" /* comment */}",
			"{\"op\":\"get\"} // comment",
			"{\"op\":\"get\",\"x\":[1,2,3}",
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		if (parse_s(cases[i]) != ERR_BAD)
			fail_msg("accepted: %s", cases[i]);
	assert_err("{\"op\":\"get\",}", ERR_BAD);
	assert_string_equal(last_msg, "request is not valid JSON");
}

static void test_trailing(void **state)
{
	static const char *const cases[] = {
			"{\"op\":\"get\"}x",
			"{\"op\":\"get\"}{}",
			"{\"op\":\"get\"}{\"op\":\"get\"}",
			"{\"op\":\"get\"} {\"op\":\"get\"}",
			"{\"op\":\"get\"}}",
			"{\"op\":\"get\"},",
			"{\"op\":\"get\"} 1",
			"{\"op\":\"get\"}\xc3\xa9",
			"{} {\"op\":\"get\"}",
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		assert_int_equal(parse_s(cases[i]), ERR_BAD);
		assert_string_equal(last_msg, "request has data after the JSON object");
	}
}

/* Writes a request whose unknown field "x" nests containers so that the deepest one sits at
 * depth levels (the request object itself is level 1). kind: 'o' objects, 'a' arrays, 'm'
 * both, alternating. */
static size_t nested(char *buf, size_t size, int depth, char kind)
{
	size_t off = (size_t)snprintf(buf, size, "{\"op\":\"get\",\"x\":");

	for (int i = 1; i < depth; i++) {
		bool array = kind == 'a' || (kind == 'm' && i % 2);
		off += (size_t)snprintf(buf + off, size - off, "%s", array ? "[" : "{\"k\":");
	}
	off += (size_t)snprintf(buf + off, size - off, "1");
	for (int i = depth - 1; i >= 1; i--) {
		bool array = kind == 'a' || (kind == 'm' && i % 2);
		off += (size_t)snprintf(buf + off, size - off, "%s", array ? "]" : "}");
	}
	off += (size_t)snprintf(buf + off, size - off, "}");
	return off;
}

static void test_depth(void **state)
{
	static const char kinds[] = {'o', 'a', 'm'};
	struct request req = {0};
	char line[512];

	for (size_t k = 0; k < sizeof(kinds); k++) {
		for (int d = 1; d <= PROTO_MAX_DEPTH; d++) {
			nested(line, sizeof(line), d, kinds[k]);
			if (parse_s(line) != PROTO_OK)
				fail_msg("depth %d (%c) refused: %s", d, kinds[k], line);
		}
		nested(line, sizeof(line), PROTO_MAX_DEPTH + 1, kinds[k]);
		assert_int_equal(parse_s(line), ERR_BAD);
		assert_string_equal(last_msg, "request is nested more than 8 levels deep");
	}

	/* Empty containers count too. */
	assert_ok("{\"op\":\"get\",\"x\":[[[[[[[]]]]]]]}");
	assert_err("{\"op\":\"get\",\"x\":[[[[[[[[]]]]]]]]}", ERR_BAD);
	assert_ok("{\"op\":\"get\",\"x\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}");
	assert_err("{\"op\":\"get\",\"x\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}"
		   "}}",
			ERR_BAD);
	/* A deep value in a known field is still judged by depth first. */
	assert_err("{\"op\":[[[[[[[[[]]]]]]]]]}", ERR_BAD);
	assert_string_equal(last_msg, "request is nested more than 8 levels deep");
	assert_err("{\"op\":[[[[[[[]]]]]]]}", ERR_BAD);
	assert_string_equal(last_msg, "\"op\" must be a string");

	/* Siblings at full depth, then back up and deep again. */
	assert_ok("{\"op\":\"get\",\"x\":[[[[[[[1,2]]],[[[3]]]]]],{\"a\":[[[[[]]]]]}]}");
	assert_err("{\"op\":\"get\",\"x\":[[[[[[[1,2]]],[[[3]]]]]],{\"a\":[[[[[[]]]]]]}]}",
			ERR_BAD);

	/* A huge nesting is refused quickly, without recursion. */
	{
		size_t n = 1 << 20;
		char *big = malloc(n);

		assert_non_null(big);
		memcpy(big, "{\"op\":\"get\",\"x\":", 16);
		memset(big + 16, '[', n - 16);
		assert_int_equal(parse_n(big, n, &req), ERR_BAD);
		memset(big + 16, '{', n - 16);
		assert_int_equal(parse_n(big, n, &req), ERR_BAD);
		free(big);
	}
}

static void test_duplicates(void **state)
{
	static const char *const cases[] = {
			"{\"op\":\"get\",\"op\":\"get\"}",
			"{\"op\":\"get\",\"op\":\"ping\"}",
			"{\"op\":\"get\",\"\\u006fp\":\"get\"}",
			"{\"op\":\"get\",\"v\":1,\"v\":1}",
			"{\"op\":\"get\",\"id\":1,\"id\":\"1\"}",
			"{\"op\":\"get\",\"min_valid\":1,\"min_valid\":1}",
			"{\"op\":\"get\",\"wait\":1,\"wait\":2}",
			"{\"op\":\"login\",\"username\":\"a\",\"username\":\"a\"}",
			"{\"op\":\"login\",\"mfa\":\"1\",\"mfa\":\"2\"}",
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		if (parse_s(cases[i]) != ERR_BAD)
			fail_msg("accepted: %s", cases[i]);
	assert_err("{\"op\":\"get\",\"wait\":1,\"wait\":2}", ERR_BAD);
	assert_string_equal(last_msg, "\"wait\" appears twice");

	/* Unknown fields may repeat: they are skipped, not judged. */
	assert_ok("{\"op\":\"get\",\"x\":1,\"x\":2,\"x\":[]}");
}

static void test_unknown_fields(void **state)
{
	struct request req = {0};

	assert_int_equal(parse("{\"s\":\"str\",\"n\":-12.5e-3,\"t\":true,\"f\":false,\"z\":null,"
			       "\"a\":[],\"o\":{},\"op\":\"get\",\"deep\":[1,[2,{\"a\":null,\"b\":"
			       "[true,false,\"x\",{}]}],-0,0.0,1E+10,1e-10,"
			       "123456789012345678901234567890],"
			       "\"\":\"empty key\",\"weird key "
			       "\\u00e9\\n\":{\"op\":\"ping\",\"v\":2}}",
					 &req),
			PROTO_OK);
	/* The nested "op" and "v" belong to an unknown field and change nothing. */
	assert_int_equal(req.op, PROTO_OP_GET);

	/* Keys that start like a known one, or are longer than any, are unknown. */
	assert_ok("{\"op\":\"get\",\"opx\":1,\"o\":2,\"ops\":3,\"vv\":4,\"min_valid_\":5,"
		  "\"passwordpasswordpassword\":6,\"ID\":7}");

	/* Numbers of every valid form. */
	assert_ok("{\"op\":\"get\",\"x\":[0,-0,1,-1,0.5,-0.5,10.01,1e5,1E5,1e+5,1e-5,-1.5E-05,"
		  "0e0,99999999999999999999999999999999e99999999999]}");

	/* Literals exactly, in every position. */
	assert_ok("{\"op\":\"get\",\"x\":true,\"y\":false,\"z\":null}");
	assert_ok("{\"op\":\"get\",\"x\":[true,false,null],\"y\":{\"a\":true,\"b\":null}}");
}

static void test_password(void **state)
{
	char secret[32];
	struct request req = {.secret = secret, .secret_size = sizeof(secret)};

	memset(secret, 'X', sizeof(secret));
	assert_int_equal(parse_n_s("{\"op\":\"login\",\"username\":\"alice\",\"password\":"
				   "\"s3cr\\u00e9t\\\"\"}",
					 &req),
			PROTO_OK);
	assert_true(req.has_secret);
	assert_int_equal(req.secret_len, 8);
	assert_memory_equal(secret, "s3cr\xc3\xa9t\"\0", 9);
	assert_ptr_equal(req.secret, secret);
	assert_int_equal(req.secret_size, sizeof(secret));

	/* An empty password is a password. */
	assert_int_equal(parse_n_s("{\"op\":\"login\",\"password\":\"\"}", &req), PROTO_OK);
	assert_true(req.has_secret);
	assert_int_equal(req.secret_len, 0);
	assert_int_equal(secret[0], '\0');

	/* Without a password the buffer still ends up NUL-terminated. */
	memset(secret, 'X', sizeof(secret));
	assert_int_equal(parse_n_s("{\"op\":\"get\"}", &req), PROTO_OK);
	assert_false(req.has_secret);
	assert_int_equal(req.secret_len, 0);
	assert_int_equal(secret[0], '\0');
}

static void test_password_refused(void **state)
{
	struct request req = {0};
	char one[1] = {'X'};

	assert_int_equal(parse_n_s("{\"op\":\"login\",\"password\":\"pw\"}", &req), ERR_BAD);
	assert_string_equal(last_msg, "a \"password\" or \"token\" is not accepted here");
	assert_false(req.has_secret);

	req = (struct request){.secret = one, .secret_size = 0};
	assert_int_equal(parse_n_s("{\"op\":\"login\",\"password\":\"\"}", &req), ERR_BAD);
	assert_int_equal(one[0], 'X');
}

static void test_password_limits(void **state)
{
	char secret[8];
	struct request req = {.secret = secret, .secret_size = sizeof(secret)};
	const char *seven = "{\"op\":\"login\",\"password\":\"1234567\"}";
	const char *eight = "{\"op\":\"login\",\"password\":\"12345678\"}";
	const char *long_one = "{\"op\":\"login\",\"password\":\"1234567890123456789012345\"}";

	assert_int_equal(parse_n(seven, strlen(seven), &req), PROTO_OK);
	assert_int_equal(req.secret_len, 7);
	assert_string_equal(secret, "1234567");

	memset(secret, 'X', sizeof(secret));
	assert_int_equal(parse_n(eight, strlen(eight), &req), ERR_BAD);
	assert_string_equal(last_msg, "\"password\" is too long");
	assert_true(all_zero(secret, sizeof(secret)));
	assert_false(req.has_secret);
	assert_int_equal(req.secret_len, 0);

	memset(secret, 'X', sizeof(secret));
	assert_int_equal(parse_n(long_one, strlen(long_one), &req), ERR_BAD);
	assert_true(all_zero(secret, sizeof(secret)));
}

/* Every way a request with a good password can still fail wipes the whole buffer. */
static void test_password_wiped_on_failure(void **state)
{
	static const char *const cases[] = {
			"{\"op\":\"login\",\"password\":\"hunter2\"}x",
			"{\"op\":\"login\",\"password\":\"hunter2\",\"x\":[}",
			"{\"op\":\"login\",\"password\":\"hunter2\",\"x\":\"\xff\"}",
			"{\"op\":\"login\",\"password\":\"hunter2\",\"password\":\"hunter3\"}",
			"{\"op\":\"login\",\"password\":\"hunter2\",\"username\":5}",
			"{\"op\":\"login\",\"password\":\"hunter2\",\"mfa\":\"12345678901234567\"}",
			"{\"op\":\"login\",\"password\":\"hunter2\",\"v\":2}",
			"{\"op\":\"nope\",\"password\":\"hunter2\"}",
			"{\"password\":\"hunter2\"}",
			"{\"password\":\"hunter2\",\"x\":[[[[[[[[[]]]]]]]]]}",
			"{\"op\":\"login\",\"password\":\"hun\\u0000ter2\"}",
			"{\"op\":\"login\",\"password\":\"hunter2\\ud800\"}",
			"{\"op\":\"login\",\"password\":\"hunter2\xc0\x80\"}",
			"{\"op\":\"login\",\"password\":\"hunter2",
			"{\"op\":\"login\",\"password\":\"hunter2\"",
			"{\"op\":\"login\",\"password\":\"hunter2\",",
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char secret[64];
		struct request req = {.secret = secret, .secret_size = sizeof(secret)};

		memset(secret, 'X', sizeof(secret));
		if (parse_n(cases[i], strlen(cases[i]), &req) == PROTO_OK)
			fail_msg("accepted: %s", cases[i]);
		if (!all_zero(secret, sizeof(secret)))
			fail_msg("secret not wiped after: %s", cases[i]);
		assert_false(req.has_secret);
		assert_int_equal(req.secret_len, 0);
		assert_true(all_zero(req.mfa, sizeof(req.mfa)));
	}
}

static void test_mfa_wiped_on_failure(void **state)
{
	struct request req = {0};

	assert_int_equal(parse("{\"op\":\"login\",\"mfa\":\"123456\",\"x\":}", &req), ERR_BAD);
	assert_true(all_zero(req.mfa, sizeof(req.mfa)));
	assert_int_equal(parse("{\"op\":\"login\",\"mfa\":\"123456\",\"v\":3}", &req), ERR_VERSION);
	assert_true(all_zero(req.mfa, sizeof(req.mfa)));
}

static const char full_request[] =
		"{\"op\":\"login\",\"v\":1,\"id\":\"r\\u00e9q-1\",\"min_valid\":300,\"wait\":5,"
		"\"username\":\"al\\u0069ce\",\"mfa\":\"123456\",\"password\":"
		"\"p\\u00e4ss\\ud83d\\ude00\","
		"\"extra\":[1,-2.5e3,{\"a\":[true,false,null]},\"s\\n\"]}";

static void test_full_request_with_everything(void **state)
{
	char secret[64];
	struct request req = {.secret = secret, .secret_size = sizeof(secret)};

	assert_int_equal(parse_n(full_request, sizeof(full_request) - 1, &req), PROTO_OK);
	assert_int_equal(req.op, PROTO_OP_LOGIN);
	assert_string_equal(req.id, "r\xc3\xa9q-1");
	assert_int_equal(req.min_valid, 300);
	assert_int_equal(req.wait, 5);
	assert_string_equal(req.username, "alice");
	assert_string_equal(req.mfa, "123456");
	assert_string_equal(secret, "p\xc3\xa4ss\xf0\x9f\x98\x80");
	assert_int_equal(req.secret_len, 9);
}

/* Every strict prefix of a valid request is an error, never a crash or a read past len. */
static void test_truncated_prefixes(void **state)
{
	for (size_t n = 0; n < sizeof(full_request) - 1; n++) {
		char secret[64];
		struct request req = {.secret = secret, .secret_size = sizeof(secret)};

		memset(secret, 'X', sizeof(secret));
		if (parse_n(full_request, n, &req) == PROTO_OK)
			fail_msg("prefix of %zu bytes accepted", n);
		assert_true(all_zero(secret, sizeof(secret)));
	}
}

/* A fixed seed, so that a failure can be replayed. */
static uint32_t rng_state = 0x12345678;

static uint32_t rng(void)
{
	return xorshift32(&rng_state);
}

/* Random mutations of a valid request: whatever comes out, the contract holds. */
static void test_mutations(void **state)
{
	static const char alphabet[] =
			"{}[]:,\"\\ u0123456789abcdefABCDEF-+.eE tnrfl\x80\xc3\xed\xf0\xff";
	const size_t base = sizeof(full_request) - 1;
	char buf[sizeof(full_request) + 16];

	for (int iter = 0; iter < 200000; iter++) {
		char secret[16];
		struct request req = {.secret = secret, .secret_size = sizeof(secret)};
		size_t len = base;
		int edits = 1 + (int)(rng() % 4);
		enum proto_error e;

		memcpy(buf, full_request, base);
		for (int k = 0; k < edits; k++) {
			size_t pos = len ? rng() % len : 0;
			switch (rng() % 4) {
			case 0: /* replace */
				if (len)
					buf[pos] = alphabet[rng() % (sizeof(alphabet) - 1)];
				break;
			case 1: /* insert */
				if (len < sizeof(buf)) {
					memmove(buf + pos + 1, buf + pos, len - pos);
					buf[pos] = alphabet[rng() % (sizeof(alphabet) - 1)];
					len++;
				}
				break;
			case 2: /* delete */
				if (len) {
					memmove(buf + pos, buf + pos + 1, len - pos - 1);
					len--;
				}
				break;
			default: /* cut */
				len = pos;
				break;
			}
		}

		memset(secret, 'X', sizeof(secret));
		e = parse_n(buf, len, &req);
		assert_true(e == PROTO_OK || e == ERR_BAD || e == ERR_VERSION || e == ERR_OP);
		if (e != PROTO_OK) {
			assert_true(all_zero(secret, sizeof(secret)));
			continue;
		}
		assert_true(req.op < _PROTO_OP_MAX);
		assert_true(req.secret_len < sizeof(secret));
		assert_int_equal(secret[req.secret_len], '\0');
		assert_true(strlen(req.id) <= PROTO_MAX_ID);
	}
}

static void test_long_line(void **state)
{
	/* The parser itself has no length limit below PROTO_MAX_LINE: the framing enforces it. */
	size_t n = PROTO_MAX_LINE - 1;
	char *big = malloc(n);
	struct request req = {0};

	assert_non_null(big);
	memcpy(big, "{\"op\":\"get\",\"x\":\"", 17);
	memset(big + 17, 'a', n - 17 - 2);
	memcpy(big + n - 2, "\"}", 2);
	assert_int_equal(parse_n(big, n, &req), PROTO_OK);
	free(big);
}

static void test_null_arguments(void **state)
{
	struct request req = {0};

	assert_int_equal(request_parse(NULL, 0, &req, &last_msg), ERR_BAD);
	assert_string_equal(last_msg, "request is empty");
	/* The message is optional. */
	assert_int_equal(request_parse("{\"op\":\"get\"}", 12, &req, NULL), PROTO_OK);
	assert_int_equal(request_parse("{", 1, &req, NULL), ERR_BAD);
}

static void test_json_object_valid(void **state)
{
	static const char *const good[] = {
			"{}",
			" {\"ok\":true} ",
			"{\"ok\":true,\"v\":1,\"a\":[1,-2.5e3,null,\"\\u00e9\"],\"o\":{\"p\":{}}}",
			"{\"x\":[[[[[[[]]]]]]]}",
			"{\"x\":\"\\u0000\"}",
	};
	static const char *const bad[] = {
			"",
			"[]",
			"1",
			"{",
			"{}x",
			"{} {}",
			"{\"x\":[[[[[[[[]]]]]]]]}",
			"{\"x\":\"\x01\"}",
			"{\"x\":\"\xc0\x80\"}",
			"{\"x\":\"\\udc00\"}",
			"{\"x\":NaN}",
			"{'x':1}",
	};

	for (size_t i = 0; i < ELEMENTSOF(good); i++)
		if (!proto_json_object_valid(good[i], strlen(good[i])))
			fail_msg("refused: %s", good[i]);
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		if (proto_json_object_valid(bad[i], strlen(bad[i])))
			fail_msg("accepted: %s", bad[i]);
	assert_false(proto_json_object_valid("{}\0", 3));
	assert_false(proto_json_object_valid("{\"x\":\"\0\"}", 8));
	assert_false(proto_json_object_valid(NULL, 0));
	/* Length is respected: a valid object cut short is not one. */
	assert_false(proto_json_object_valid("{\"a\":1}", 6));
	assert_true(proto_json_object_valid("{\"a\":1}garbage", 7));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_op_names),
			cmocka_unit_test(test_every_op),
			cmocka_unit_test(test_defaults),
			cmocka_unit_test(test_full_request),
			cmocka_unit_test(test_whitespace),
			cmocka_unit_test(test_version),
			cmocka_unit_test(test_op_errors),
			cmocka_unit_test(test_id_forms),
			cmocka_unit_test(test_seconds),
			cmocka_unit_test(test_string_limits),
			cmocka_unit_test(test_escapes),
			cmocka_unit_test(test_bad_escapes),
			cmocka_unit_test(test_raw_utf8),
			cmocka_unit_test(test_invalid_utf8),
			cmocka_unit_test(test_control_characters),
			cmocka_unit_test(test_nul_bytes),
			cmocka_unit_test(test_not_object),
			cmocka_unit_test(test_invalid_json),
			cmocka_unit_test(test_trailing),
			cmocka_unit_test(test_depth),
			cmocka_unit_test(test_duplicates),
			cmocka_unit_test(test_unknown_fields),
			cmocka_unit_test(test_password),
			cmocka_unit_test(test_password_refused),
			cmocka_unit_test(test_password_limits),
			cmocka_unit_test(test_password_wiped_on_failure),
			cmocka_unit_test(test_mfa_wiped_on_failure),
			cmocka_unit_test(test_full_request_with_everything),
			cmocka_unit_test(test_truncated_prefixes),
			cmocka_unit_test(test_mutations),
			cmocka_unit_test(test_long_line),
			cmocka_unit_test(test_null_arguments),
			cmocka_unit_test(test_json_object_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
