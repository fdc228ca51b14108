/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/reply_read.c: reading reply lines without json-c. Every line is copied
 * into a heap block of exactly its length, so AddressSanitizer catches any read past len. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "common/util.h"
#include "proto/json.h"
#include "proto/reply_read.h"
#include "xorshift.h"

/* The exact-size copy of the last line parsed: the reply points into it. */
static char *copy;

static void drop_copy(void)
{
	free(copy);
	copy = NULL;
}

/* Parses s[0..len) from an exact-size copy that stays alive until the next parse. */
static int parse_n(struct reply_read *r, const char *s, size_t len)
{
	int q;

	drop_copy();
	copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, s, len);
	q = reply_read_parse(r, copy, len);
	/* The reader is never more lenient than the check reply.c applies with json-c. */
	if (q == 0)
		assert_true(proto_json_object_valid(copy, len));
	else
		assert_int_equal(q, -EBADMSG);
	return q;
}

static int parse(struct reply_read *r, const char *s)
{
	return parse_n(r, s, strlen(s));
}

static int parse_s(const char *s)
{
	struct reply_read r;

	return parse(&r, s);
}

static int teardown(void **state)
{
	drop_copy();
	return 0;
}

/* What the daemon sends for get, status and an error. */
#define GET_REPLY                                                                                  \
	"{\"ok\":true,\"v\":1,\"id\":\"7\",\"kind\":\"service\",\"user_id\":\"abc\","              \
	"\"url\":\"https://regscale.example.com\",\"expires_at\":1795960800,"                      \
	"\"expires\":\"2026-11-29T14:00:00Z\",\"expires_in\":57600,\"token\":\"eyJhbGciOi.e30."    \
	"sig\"}"
#define STATUS_REPLY                                                                               \
	"{\"ok\":true,\"v\":1,\"state\":\"valid\",\"message\":\"service token for abc\","          \
	"\"kind\":\"service\",\"user_id\":\"abc\",\"url\":null,\"expires_at\":null,"               \
	"\"expires\":null,\"expires_in\":null,\"last_refresh\":1795903200,\"next_refresh\":null,"  \
	"\"last_error\":null,\"retries\":0,\"login_in_flight\":false,\"version\":\"0.1.0\","       \
	"\"pid\":4242,\"uptime\":3600}"
#define ERROR_REPLY                                                                                \
	"{\"ok\":false,\"v\":1,\"error\":\"no_token\",\"message\":\"the daemon holds no token\"}"

static void test_valid(void **state)
{
	static const struct {
		const char *line;
		size_t fields;
		bool ok;
	} cases[] = {
			{"{\"ok\":true}", 1, true},
			{"{\"ok\":false}", 1, false},
			{"{\"ok\":true,\"v\":1}", 2, true},
			{" \t{ \"ok\" : true , \"v\" : 1 }\r\n ", 2, true},
			{"{\"v\":1,\"pong\":true,\"ok\":true}", 3, true},
			{"{\"ok\":true,\"nested\":{\"a\":[1,2,{}],\"ok\":false}}", 2, true},
			{"{\"ok\":true,\"a\":[],\"o\":{},\"s\":\"\",\"n\":null,\"f\":-0.5e-3}", 6,
					true},
			{"{\"ok\":true,\"x\":[[[[[[[1]]]]]]]}", 2, true},
			{"{\"ok\":true,\"\":1}", 2, true},
			{"{\"ok\":true,\"\xc3\xa9\":\"\xf0\x9f\x98\x80\"}", 2, true},
			{GET_REPLY, 10, true},
			{STATUS_REPLY, 18, true},
			{ERROR_REPLY, 4, false},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct reply_read r;

		if (parse(&r, cases[i].line) != 0)
			fail_msg("refused: %s", cases[i].line);
		assert_int_equal(r.n_fields, cases[i].fields);
		assert_int_equal(r.ok, cases[i].ok);
	}
}

static void test_invalid(void **state)
{
	static const char *const cases[] = {
			"",
			" ",
			"null",
			"true",
			"[]",
			"[{\"ok\":true}]",
			"\"ok\"",
			"pong",
			"{}",
			"{\"v\":1}",
			"{\"ok\":\"true\"}",
			"{\"ok\":1}",
			"{\"ok\":null}",
			"{\"ok\":[true]}",
			"{\"ok\":true",
			"{\"ok\":true,}",
			"{,\"ok\":true}",
			"{\"ok\":true,,\"v\":1}",
			"{\"ok\" true}",
			"{\"ok\"::true}",
			"{\"ok\":true;\"v\":1}",
			"{\"ok\":true \"v\":1}",
			"{\"ok\":true}x",
			"{\"ok\":true}{\"ok\":true}",
			"{\"ok\":true} {}",
			"{\"ok\":true}}",
			"{ok:true}",
			"{'ok':true}",
			"{\"ok\":True}",
			"{\"ok\":tru}",
			"{\"ok\":truex}",
			"{\"ok\":true,\"x\":nul}",
			"{\"ok\":true,\"x\":01}",
			"{\"ok\":true,\"x\":1.}",
			"{\"ok\":true,\"x\":.5}",
			"{\"ok\":true,\"x\":-}",
			"{\"ok\":true,\"x\":+1}",
			"{\"ok\":true,\"x\":1e}",
			"{\"ok\":true,\"x\":0x1F}",
			"{\"ok\":true,\"x\":NaN}",
			"{\"ok\":true,\"x\":[1,]}",
			"{\"ok\":true,\"x\":{\"a\"}}",
			"{\"ok\":true,\"x\":{1:2}}",
			"{\"ok\":true,\"x\":\"unterminated}",
			"{\"ok\":true,\"x\":\"\xff\"}",
			"{\"ok\":true,\"x\":\"\xc0\x80\"}",
			"{\"ok\":true,\"x\":\"\xed\xa0\x80\"}",
			"{\"ok\":true,\"x\":\"\xf4\x90\x80\x80\"}",
			"{\"ok\":true,\"x\":\"\x01\"}",
			"{\"ok\":true,\"x\":\"\x1b[31m\"}",
			/* Bad bytes after a run of plain ASCII. */
			"{\"ok\":true,\"x\":\"abc\x01\"}",
			"{\"ok\":true,\"x\":\"abc\x1f\"}",
			"{\"ok\":true,\"x\":\"abc\xff\"}",
			"{\"ok\":true,\"x\":\"abc\xc3\"}",
			"{\"ok\":true,\"x\":\"abc\\q\"}",
			"{\"ok\":true,\"x\":\"abc",
			"{\"ok\":true,\"x\":\"\\ud800\"}",
			"{\"ok\":true,\"x\":\"\\udc00\"}",
			"{\"ok\":true,\"x\":\"\\ud800\\u0041\"}",
			"{\"ok\":true,\"x\":\"\\x41\"}",
			"{\"ok\":true,\"x\":\"\\u12\"}",
			"{\"ok\":true,\"x\\q\":1}",
			"{\"ok\":true,\"\xff\":1}",
			"{\"ok\":true,\"x\":[[[[[[[[1]]]]]]]]}",
			"{\"ok\":true,\"x\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}"
			"}}}}",
			"\xef\xbb\xbf{\"ok\":true}",
			"{\"ok\":true} // comment",
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		if (parse_s(cases[i]) != -EBADMSG)
			fail_msg("accepted: %s", cases[i]);
	assert_int_equal(reply_read_parse(&(struct reply_read){0}, NULL, 0), -EBADMSG);
}

/* A NUL byte anywhere, replacing a byte or after the object, is refused. */
static void test_nul_bytes(void **state)
{
	static const char good[] = GET_REPLY;
	char line[sizeof(good)];

	for (size_t i = 0; i < sizeof(good) - 1; i++) {
		memcpy(line, good, sizeof(good) - 1);
		line[i] = '\0';
		assert_int_equal(
				parse_n(&(struct reply_read){0}, line, sizeof(good) - 1), -EBADMSG);
	}
	memcpy(line, good, sizeof(good));
	assert_int_equal(parse_n(&(struct reply_read){0}, line, sizeof(good)), -EBADMSG);
}

/* Every strict prefix of a valid reply is refused, never read past. */
static void test_truncated(void **state)
{
	static const char *const lines[] = {GET_REPLY, STATUS_REPLY, ERROR_REPLY};

	for (size_t k = 0; k < ELEMENTSOF(lines); k++) {
		size_t n = strlen(lines[k]);

		for (size_t i = 0; i < n; i++)
			if (parse_n(&(struct reply_read){0}, lines[k], i) != -EBADMSG)
				fail_msg("prefix of %zu bytes accepted: %.*s", i, (int)i, lines[k]);
		assert_int_equal(parse_n(&(struct reply_read){0}, lines[k], n), 0);
	}
}

static void test_get_reply(void **state)
{
	struct reply_read r;
	const char *span;
	char buf[64];
	size_t len;
	int64_t v;
	bool b;

	assert_int_equal(parse(&r, GET_REPLY), 0);
	assert_true(r.ok);
	assert_int_equal(reply_read_bool(&r, "ok", &b), 0);
	assert_true(b);
	assert_int_equal(reply_read_int64(&r, "v", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(reply_read_int64(&r, "expires_at", &v), 0);
	assert_int_equal(v, 1795960800);
	assert_int_equal(reply_read_string(&r, "kind", buf, sizeof(buf), &len), 0);
	assert_string_equal(buf, "service");
	assert_int_equal(len, 7);
	assert_int_equal(reply_read_string(&r, "url", buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, "https://regscale.example.com");

	/* The token is read where it stands in the line, not copied. */
	assert_int_equal(reply_read_span(&r, "token", &span, &len), 0);
	assert_int_equal(len, strlen("eyJhbGciOi.e30.sig"));
	assert_memory_equal(span, "eyJhbGciOi.e30.sig", len);
	assert_true(span > copy && span + len < copy + strlen(GET_REPLY));
	assert_int_equal(span[len], '"');

	assert_non_null(reply_read_field(&r, "id"));
	assert_int_equal(reply_read_field(&r, "id")->type, REPLY_STRING);
	assert_null(reply_read_field(&r, "pong"));
	assert_null(reply_read_field(&r, "toke"));
	assert_null(reply_read_field(&r, "tokens"));
	assert_null(reply_read_field(&r, "Token"));
	assert_null(reply_read_field(&r, ""));
}

/* Each accessor on each type: what it returns, and that it leaves *ret alone on failure. */
static void test_types(void **state)
{
	static const char line[] = "{\"ok\":true,\"s\":\"x\",\"i\":-42,\"f\":1.5,\"e\":1e3,"
				   "\"z\":-0,\"t\":true,\"b\":false,\"n\":null,\"o\":{\"k\":1},"
				   "\"a\":[1]}";
	enum { STR, SPAN, INT, BOOL };
	static const struct {
		const char *key;
		enum reply_type type;
		int want[4]; /* reply_read_string, _span, _int64, _bool */
		bool null;
	} cases[] = {
			{"s", REPLY_STRING, {0, 0, -EINVAL, -EINVAL}, false},
			{"i", REPLY_NUMBER, {-EINVAL, -EINVAL, 0, -EINVAL}, false},
			{"f", REPLY_NUMBER, {-EINVAL, -EINVAL, -EINVAL, -EINVAL}, false},
			{"e", REPLY_NUMBER, {-EINVAL, -EINVAL, -EINVAL, -EINVAL}, false},
			{"z", REPLY_NUMBER, {-EINVAL, -EINVAL, 0, -EINVAL}, false},
			{"t", REPLY_BOOL, {-EINVAL, -EINVAL, -EINVAL, 0}, false},
			{"b", REPLY_BOOL, {-EINVAL, -EINVAL, -EINVAL, 0}, false},
			{"n", REPLY_NULL, {-EINVAL, -EINVAL, -EINVAL, -EINVAL}, true},
			{"o", REPLY_OBJECT, {-EINVAL, -EINVAL, -EINVAL, -EINVAL}, false},
			{"a", REPLY_ARRAY, {-EINVAL, -EINVAL, -EINVAL, -EINVAL}, false},
			{"missing", REPLY_NULL, {-ENOENT, -ENOENT, -ENOENT, -ENOENT}, false},
			/* Inside a nested object is not at the top. */
			{"k", REPLY_NULL, {-ENOENT, -ENOENT, -ENOENT, -ENOENT}, false},
	};
	struct reply_read r;

	assert_int_equal(parse(&r, line), 0);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		const struct reply_field *f = reply_read_field(&r, cases[i].key);
		const char *span = "unset";
		char buf[8] = "unset";
		size_t len = 99;
		int64_t v = 99;
		bool b = true;
		int q;

		if (cases[i].want[STR] == -ENOENT)
			assert_null(f);
		else {
			assert_non_null(f);
			assert_int_equal(f->type, cases[i].type);
		}
		assert_int_equal(reply_read_is_null(&r, cases[i].key), cases[i].null);

		q = reply_read_string(&r, cases[i].key, buf, sizeof(buf), &len);
		assert_int_equal(q, cases[i].want[STR]);
		if (q < 0) {
			assert_string_equal(buf, "unset");
			assert_int_equal(len, 99);
		}
		q = reply_read_span(&r, cases[i].key, &span, &len);
		assert_int_equal(q, cases[i].want[SPAN]);
		if (q < 0)
			assert_string_equal(span, "unset");
		q = reply_read_int64(&r, cases[i].key, &v);
		assert_int_equal(q, cases[i].want[INT]);
		if (q < 0)
			assert_int_equal(v, 99);
		q = reply_read_bool(&r, cases[i].key, &b);
		assert_int_equal(q, cases[i].want[BOOL]);
		if (q < 0)
			assert_true(b);
	}

	{
		int64_t v;
		bool b = true;

		assert_int_equal(reply_read_int64(&r, "i", &v), 0);
		assert_int_equal(v, -42);
		assert_int_equal(reply_read_int64(&r, "z", &v), 0);
		assert_int_equal(v, 0);
		assert_int_equal(reply_read_bool(&r, "b", &b), 0);
		assert_false(b);
		assert_int_equal(reply_read_bool(&r, "t", &b), 0);
		assert_true(b);
	}
	/* The text of any value is where it stands in the line. */
	assert_int_equal(reply_read_field(&r, "o")->text_len, strlen("{\"k\":1}"));
	assert_memory_equal(reply_read_field(&r, "o")->text, "{\"k\":1}", 7);
	assert_memory_equal(reply_read_field(&r, "f")->text, "1.5", 3);
	assert_int_equal(reply_read_field(&r, "f")->text_len, 3);
}

static void test_integers(void **state)
{
	static const struct {
		const char *text;
		int want;
		int64_t value;
	} cases[] = {
			{"0", 0, 0},
			{"-0", 0, 0},
			{"1", 0, 1},
			{"-1", 0, -1},
			{"9223372036854775807", 0, INT64_MAX},
			{"-9223372036854775807", 0, -INT64_MAX},
			{"9223372036854775808", -ERANGE, 0},
			{"-9223372036854775808", -ERANGE, 0},
			{"18446744073709551616", -ERANGE, 0},
			{"123456789012345678901234567890", -ERANGE, 0},
			{"1.0", -EINVAL, 0},
			{"1e0", -EINVAL, 0},
			{"1E+2", -EINVAL, 0},
			{"-0.0", -EINVAL, 0},
			{"\"1\"", -EINVAL, 0},
			{"null", -EINVAL, 0},
			{"true", -EINVAL, 0},
			{"[1]", -EINVAL, 0},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char line[128];
		struct reply_read r;
		int64_t v = 99;

		snprintf(line, sizeof(line), "{\"ok\":true,\"n\":%s}", cases[i].text);
		assert_int_equal(parse(&r, line), 0);
		if (reply_read_int64(&r, "n", &v) != cases[i].want)
			fail_msg("%s: %d", cases[i].text, reply_read_int64(&r, "n", &v));
		assert_int_equal(v, cases[i].want == 0 ? cases[i].value : 99);
	}
}

static void test_escapes(void **state)
{
	static const struct {
		const char *json; /* the value as written */
		const char *want; /* unescaped */
		bool plain;
	} cases[] = {
			{"\"\"", "", true},
			{"\"abc\"", "abc", true},
			{"\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", "caf\xc3\xa9 \xf0\x9f\x98\x80", true},
			{"\"a\\\"b\"", "a\"b", false},
			{"\"a\\\\b\"", "a\\b", false},
			{"\"https:\\/\\/x\"", "https://x", false},
			{"\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", false},
			{"\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac", false},
			{"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", false},
			{"\"\\u001b[31m\"", "\x1b[31m", false},
			{"\"\x7f\"", "\x7f", true},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char line[128], buf[64];
		struct reply_read r;
		const char *span;
		size_t len;
		int q;

		snprintf(line, sizeof(line), "{\"ok\":true,\"s\":%s}", cases[i].json);
		assert_int_equal(parse(&r, line), 0);
		assert_int_equal(reply_read_string(&r, "s", buf, sizeof(buf), &len), 0);
		assert_string_equal(buf, cases[i].want);
		assert_int_equal(len, strlen(cases[i].want));
		q = reply_read_span(&r, "s", &span, &len);
		if (cases[i].plain) {
			assert_int_equal(q, 0);
			assert_int_equal(len, strlen(cases[i].want));
			assert_memory_equal(span, cases[i].want, len);
		} else {
			/* The line's bytes are not the value: no span is handed out. */
			assert_int_equal(q, -EILSEQ);
		}
	}
}

/* A string holding \u0000 is no C string: refused by both accessors, "" in buf. */
static void test_escaped_nul(void **state)
{
	struct reply_read r;
	const char *span;
	char buf[16] = "unset";
	size_t len;

	assert_int_equal(parse(&r, "{\"ok\":true,\"s\":\"a\\u0000b\"}"), 0);
	assert_int_equal(reply_read_string(&r, "s", buf, sizeof(buf), &len), -EILSEQ);
	assert_string_equal(buf, "");
	assert_int_equal(reply_read_span(&r, "s", &span, &len), -EILSEQ);
	assert_int_equal(reply_read_error(&r, buf, sizeof(buf)), PROTO_OK);
	/* An error code with a NUL inside is no code. */
	assert_int_equal(parse(&r, "{\"ok\":false,\"error\":\"no_token\\u0000\"}"), 0);
	assert_int_equal(reply_read_error(&r, NULL, 0), PROTO_E_INTERNAL);
}

/* A buffer too small gets a NUL-terminated prefix cut at a character boundary, and the length
 * it would have needed. */
static void test_string_cut(void **state)
{
	/* "a" then U+00E9 (2 bytes), U+20AC (3), U+1F600 (4): 10 bytes. */
	static const char *const lines[] = {
			"{\"ok\":true,\"s\":\"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
			"{\"ok\":true,\"s\":\"a\\u00e9\\u20ac\\ud83d\\ude00\"}",
	};
	static const char *const want[] = {
			"",                                      /* size 1 */
			"a",                                     /* 2 */
			"a",                                     /* 3: U+00E9 needs 2 more */
			"a\xc3\xa9",                             /* 4 */
			"a\xc3\xa9",                             /* 5 */
			"a\xc3\xa9",                             /* 6 */
			"a\xc3\xa9\xe2\x82\xac",                 /* 7 */
			"a\xc3\xa9\xe2\x82\xac",                 /* 8 */
			"a\xc3\xa9\xe2\x82\xac",                 /* 9 */
			"a\xc3\xa9\xe2\x82\xac",                 /* 10 */
			"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", /* 11: fits */
	};

	for (size_t k = 0; k < ELEMENTSOF(lines); k++) {
		struct reply_read r;

		assert_int_equal(parse(&r, lines[k]), 0);
		for (size_t size = 1; size <= ELEMENTSOF(want); size++) {
			char *buf = malloc(size);
			size_t len = 0;

			assert_non_null(buf);
			assert_int_equal(reply_read_string(&r, "s", buf, size, &len), 0);
			assert_int_equal(len, 10);
			assert_string_equal(buf, want[size - 1]);
			free(buf);
		}
		/* Only the length. */
		assert_int_equal(reply_read_string(&r, "s", NULL, 0, &(size_t){0}), 0);
	}
}

/* Names are compared once unescaped; a name is at most once in a reply, whatever its value. */
static void test_duplicates(void **state)
{
	static const char *const cases[] = {
			"{\"ok\":true,\"ok\":true}",
			"{\"ok\":true,\"ok\":false}",
			"{\"ok\":true,\"token\":\"a.b.c\",\"token\":\"d.e.f\"}",
			"{\"ok\":true,\"token\":\"a.b.c\",\"\\u0074oken\":\"d.e.f\"}",
			"{\"ok\":true,\"\\u0074oken\":\"a.b.c\",\"token\":\"d.e.f\"}",
			"{\"ok\":true,\"\\u0074oken\":\"a.b.c\",\"to\\u006ben\":\"d.e.f\"}",
			"{\"\\u006fk\":true,\"ok\":true}",
			"{\"ok\":true,\"x\":1,\"x\":[]}",
			"{\"ok\":true,\"\":1,\"\":2}",
			"{\"ok\":true,\"v\":1,\"a\":null,\"v\":1}",
	};
	struct reply_read r;
	const char *span;
	size_t len;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		if (parse_s(cases[i]) != -EBADMSG)
			fail_msg("accepted: %s", cases[i]);

	/* A name found under its escapes; names that only look alike are distinct. */
	assert_int_equal(parse(&r, "{\"\\u006fk\":true,\"t\\u006fken\":\"a.b\",\"Token\":\"x\","
				   "\"token \":\"y\"}"),
			0);
	assert_true(r.ok);
	assert_int_equal(reply_read_span(&r, "token", &span, &len), 0);
	assert_memory_equal(span, "a.b", 3);
	assert_int_equal(len, 3);
	/* The same key inside nested objects is not a duplicate at the top. */
	assert_int_equal(parse_s("{\"ok\":true,\"o\":{\"ok\":1,\"ok\":2},\"p\":{\"ok\":3}}"), 0);
}

static void test_keys(void **state)
{
	char line[256], key[REPLY_MAX_ESCAPED_KEY + 1];
	struct reply_read r;

	/* An escaped name of REPLY_MAX_ESCAPED_KEY bytes once unescaped is read, and found under
	 * its unescaped form; one byte more is refused. */
	memset(key, 'k', REPLY_MAX_ESCAPED_KEY);
	key[REPLY_MAX_ESCAPED_KEY] = '\0';
	snprintf(line, sizeof(line), "{\"ok\":true,\"\\u006b%s\":1}", key + 1);
	assert_int_equal(parse(&r, line), 0);
	assert_non_null(reply_read_field(&r, key));
	snprintf(line, sizeof(line), "{\"ok\":true,\"\\u006b%s\":1}", key);
	assert_int_equal(parse(&r, line), -EBADMSG);
	/* A plain name is read in the line, whatever its length. */
	snprintf(line, sizeof(line), "{\"ok\":true,\"%s%s%s\":1}", key, key, key);
	assert_int_equal(parse(&r, line), 0);
	assert_int_equal(reply_read_field(&r, "ok")->key_len, 2);
	assert_int_equal(r.fields[1].key_len, 3 * REPLY_MAX_ESCAPED_KEY);

	/* A name holding \u0000 is refused: it cannot be looked up as a C string. */
	assert_int_equal(parse_s("{\"ok\":true,\"x\\u0000\":1}"), -EBADMSG);
	assert_int_equal(parse_s("{\"ok\\u0000\":true}"), -EBADMSG);
	/* Other escapes in names are fine. */
	assert_int_equal(parse(&r, "{\"ok\":true,\"a\\nb\":1,\"\\u00e9\":2}"), 0);
	assert_non_null(reply_read_field(&r, "a\nb"));
	assert_non_null(reply_read_field(&r, "\xc3\xa9"));
	assert_null(reply_read_field(&r, "a\\nb"));
}

static void test_too_many_fields(void **state)
{
	char line[1024];
	size_t off = (size_t)snprintf(line, sizeof(line), "{\"ok\":true"), last = 0;
	struct reply_read r;
	char key[8];

	for (int i = 1; i < PROTO_MAX_REPLY_FIELDS; i++) {
		last = off;
		off += (size_t)snprintf(line + off, sizeof(line) - off, ",\"f%d\":%d", i, i);
	}
	snprintf(line + off, sizeof(line) - off, "}");
	assert_int_equal(parse(&r, line), 0);
	assert_int_equal(r.n_fields, PROTO_MAX_REPLY_FIELDS);
	for (int i = 1; i < PROTO_MAX_REPLY_FIELDS; i++) {
		int64_t v;

		snprintf(key, sizeof(key), "f%d", i);
		assert_int_equal(reply_read_int64(&r, key, &v), 0);
		assert_int_equal(v, i);
	}

	/* One more is refused, nested fields do not count. */
	snprintf(line + off, sizeof(line) - off, ",\"one_more\":null}");
	assert_int_equal(parse(&r, line), -EBADMSG);
	snprintf(line + off, sizeof(line) - off, ",\"o\":{\"a\":1,\"b\":2}}");
	assert_int_equal(parse(&r, line), -EBADMSG);
	snprintf(line + last, sizeof(line) - last, ",\"o\":{\"a\":1,\"b\":2}}");
	assert_int_equal(parse(&r, line), 0);
}

static void test_error(void **state)
{
	static const struct {
		const char *line;
		enum proto_error err;
		const char *message;
	} cases[] = {
			{ERROR_REPLY, PROTO_E_NO_TOKEN, "the daemon holds no token"},
			{"{\"ok\":false,\"v\":1,\"error\":\"credentials_rejected\",\"message\":"
			 "\"no\"}",
					PROTO_E_CREDENTIALS_REJECTED, "no"},
			{"{\"ok\":false,\"error\":\"timeout\"}", PROTO_E_TIMEOUT, ""},
			{"{\"message\":\"\\u00e9\\n\",\"error\":\"internal\",\"ok\":false}",
					PROTO_E_INTERNAL, "\xc3\xa9\n"},
			/* Unknown, missing, mistyped or overlong codes are internal. */
			{"{\"ok\":false,\"error\":\"no_such_code\",\"message\":\"m\"}",
					PROTO_E_INTERNAL, "m"},
			{"{\"ok\":false,\"error\":\"ok\"}", PROTO_E_INTERNAL, ""},
			{"{\"ok\":false,\"error\":\"\"}", PROTO_E_INTERNAL, ""},
			{"{\"ok\":false,\"error\":\"NO_TOKEN\"}", PROTO_E_INTERNAL, ""},
			{"{\"ok\":false,\"error\":\"no_token \"}", PROTO_E_INTERNAL, ""},
			{"{\"ok\":false,\"error\":\"no_token_and_then_some_more_text_beyond\"}",
					PROTO_E_INTERNAL, ""},
			{"{\"ok\":false}", PROTO_E_INTERNAL, ""},
			{"{\"ok\":false,\"error\":null,\"message\":null}", PROTO_E_INTERNAL, ""},
			{"{\"ok\":false,\"error\":7,\"message\":[\"x\"]}", PROTO_E_INTERNAL, ""},
			/* An escaped code is still the code. */
			{"{\"ok\":false,\"error\":\"no\\u005ftoken\"}", PROTO_E_NO_TOKEN, ""},
			/* A success, whatever else it carries. */
			{"{\"ok\":true,\"error\":\"no_token\",\"message\":\"fine\"}", PROTO_OK,
					"fine"},
			{GET_REPLY, PROTO_OK, ""},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct reply_read r;
		char message[64] = "unset";

		assert_int_equal(parse(&r, cases[i].line), 0);
		if (reply_read_error(&r, message, sizeof(message)) != cases[i].err)
			fail_msg("%s: %d", cases[i].line, reply_read_error(&r, NULL, 0));
		assert_string_equal(message, cases[i].message);
		assert_int_equal(reply_read_error(&r, NULL, 0), cases[i].err);
	}

	/* Every code the daemon may send comes back as itself. */
	for (int e = PROTO_E_BAD_REQUEST; e < _PROTO_E_MAX; e++) {
		char line[128];
		struct reply_read r;
		char message[4];

		snprintf(line, sizeof(line),
				"{\"ok\":false,\"v\":1,\"error\":\"%s\",\"message\":"
				"\"a long message\"}",
				proto_error_name((enum proto_error)e));
		assert_int_equal(parse(&r, line), 0);
		assert_int_equal(reply_read_error(&r, message, sizeof(message)), e);
		assert_string_equal(message, "a l");
	}
}

static void test_long_line(void **state)
{
	size_t n = PROTO_MAX_LINE;
	char *big = malloc(n + 1);
	struct reply_read r;
	const char *span;
	size_t len;

	assert_non_null(big);
	memcpy(big, "{\"ok\":true,\"token\":\"", 20);
	memset(big + 20, 'a', n - 20 - 2);
	memcpy(big + n - 2, "\"}", 2);
	assert_int_equal(parse_n(&r, big, n), 0);
	assert_int_equal(reply_read_span(&r, "token", &span, &len), 0);
	assert_int_equal(len, n - 22);
	/* Longer than the protocol allows, even if it is JSON. */
	memset(big + 20, 'a', n - 20 - 1);
	memcpy(big + n - 1, "\"}", 2);
	assert_int_equal(parse_n(&r, big, n + 1), -EBADMSG);
	free(big);
}

/* A fixed seed, so that a failure can be replayed. */
static uint32_t rng_state = 0x2468ace1;

static uint32_t rng(void)
{
	return xorshift32(&rng_state);
}

/* Random mutations of real replies: the reader agrees with proto_json_object_valid() on every
 * line that is an object with a boolean "ok" and no repeated name at the top, and every field
 * it reports can be looked up. */
static void test_mutations(void **state)
{
	static const char alphabet[] =
			"{}[]:,\"\\ u0123456789abcdefABCDEF-+.eE tnrfl\x80\xc3\xed\xf0\xff";
	static const char *const lines[] = {GET_REPLY, STATUS_REPLY, ERROR_REPLY};
	char buf[sizeof(STATUS_REPLY) + 16];
	size_t accepted = 0;

	for (int iter = 0; iter < 100000; iter++) {
		const char *base = lines[rng() % ELEMENTSOF(lines)];
		size_t len = strlen(base);
		int edits = 1 + (int)(rng() % 3);
		struct reply_read r;

		memcpy(buf, base, len);
		for (int k = 0; k < edits; k++) {
			size_t pos = len ? rng() % len : 0;
			switch (rng() % 4) {
			case 0:
				if (len)
					buf[pos] = alphabet[rng() % (sizeof(alphabet) - 1)];
				break;
			case 1:
				if (len < sizeof(buf)) {
					memmove(buf + pos + 1, buf + pos, len - pos);
					buf[pos] = alphabet[rng() % (sizeof(alphabet) - 1)];
					len++;
				}
				break;
			case 2:
				if (len) {
					memmove(buf + pos, buf + pos + 1, len - pos - 1);
					len--;
				}
				break;
			default:
				len = pos;
				break;
			}
		}

		/* parse_n() checks that an accepted line is valid. */
		if (parse_n(&r, buf, len) < 0)
			continue;
		accepted++;
		assert_true(r.n_fields >= 1 && r.n_fields <= PROTO_MAX_REPLY_FIELDS);
		for (size_t i = 0; i < r.n_fields; i++) {
			const struct reply_field *f = &r.fields[i];
			const char *key = f->key_escaped ? f->key_buf : f->key;
			char name[256];

			if (f->key_len >= sizeof(name) || memchr(key, '\0', f->key_len))
				continue;
			memcpy(name, key, f->key_len);
			name[f->key_len] = '\0';
			assert_ptr_equal(reply_read_field(&r, name), f);
			assert_true(f->text >= copy && f->text + f->text_len <= copy + len);
		}
	}
	/* The mutations are mild enough that many lines stay valid. */
	assert_true(accepted > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test_teardown(test_valid, teardown),
			cmocka_unit_test_teardown(test_invalid, teardown),
			cmocka_unit_test_teardown(test_nul_bytes, teardown),
			cmocka_unit_test_teardown(test_truncated, teardown),
			cmocka_unit_test_teardown(test_get_reply, teardown),
			cmocka_unit_test_teardown(test_types, teardown),
			cmocka_unit_test_teardown(test_integers, teardown),
			cmocka_unit_test_teardown(test_escapes, teardown),
			cmocka_unit_test_teardown(test_escaped_nul, teardown),
			cmocka_unit_test_teardown(test_string_cut, teardown),
			cmocka_unit_test_teardown(test_duplicates, teardown),
			cmocka_unit_test_teardown(test_keys, teardown),
			cmocka_unit_test_teardown(test_too_many_fields, teardown),
			cmocka_unit_test_teardown(test_error, teardown),
			cmocka_unit_test_teardown(test_long_line, teardown),
			cmocka_unit_test_teardown(test_mutations, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
