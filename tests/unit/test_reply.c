/* Unit tests for proto/reply.c and proto/proto.c: reply lines, error codes, time format. */
#include <errno.h>
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
#include "proto/reply.h"

/* Formats obj, checks the line framing, frees obj; returns the line in a static buffer. */
static const char *format(struct json_object *obj)
{
	static char buf[PROTO_MAX_LINE];
	int n;

	assert_non_null(obj);
	n = reply_format(obj, buf, sizeof(buf));
	json_object_put(obj);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	assert_int_equal(buf[n - 1], '\n');
	/* One line: the only newline is the last byte. */
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
	return buf;
}

static void test_error_names(void **state)
{
	static const struct {
		enum proto_error err;
		const char *name;
	} table[] = {
			{PROTO_E_BAD_REQUEST, "bad_request"},
			{PROTO_E_UNSUPPORTED_VERSION, "unsupported_version"},
			{PROTO_E_UNKNOWN_OP, "unknown_op"},
			{PROTO_E_TOO_LARGE, "too_large"},
			{PROTO_E_TOO_MANY_CLIENTS, "too_many_clients"},
			{PROTO_E_IDLE_TIMEOUT, "idle_timeout"},
			{PROTO_E_PERMISSION_DENIED, "permission_denied"},
			{PROTO_E_NO_TOKEN, "no_token"},
			{PROTO_E_TOKEN_EXPIRED, "token_expired"},
			{PROTO_E_LOGIN_FAILED, "login_failed"},
			{PROTO_E_CREDENTIALS_REJECTED, "credentials_rejected"},
			{PROTO_E_LOGIN_REQUIRED, "login_required"},
			{PROTO_E_TIMEOUT, "timeout"},
			{PROTO_E_INTERNAL, "internal"},
	};

	/* The table covers every code: the wire names are the contract. */
	assert_int_equal(ELEMENTSOF(table), _PROTO_E_MAX - 1);
	for (size_t i = 0; i < ELEMENTSOF(table); i++) {
		assert_string_equal(proto_error_name(table[i].err), table[i].name);
		assert_int_equal(proto_error_from_name(table[i].name), table[i].err);
	}

	assert_string_equal(proto_error_name(PROTO_OK), "ok");
	assert_string_equal(proto_error_name(_PROTO_E_MAX), "internal");
	assert_string_equal(proto_error_name((enum proto_error)1000), "internal");
	assert_string_equal(proto_error_name((enum proto_error) - 1), "internal");

	assert_int_equal(proto_error_from_name("ok"), -EINVAL);
	assert_int_equal(proto_error_from_name(""), -EINVAL);
	assert_int_equal(proto_error_from_name("BAD_REQUEST"), -EINVAL);
	assert_int_equal(proto_error_from_name("bad_request "), -EINVAL);
	assert_int_equal(proto_error_from_name("no_tokens"), -EINVAL);
	assert_int_equal(proto_error_from_name(NULL), -EINVAL);
}

static void test_format_ok(void **state)
{
	assert_string_equal(format(reply_new_ok(NULL)), "{\"ok\":true,\"v\":1}\n");
	assert_string_equal(format(reply_new_ok("")), "{\"ok\":true,\"v\":1}\n");
	assert_string_equal(format(reply_new_ok("abc")), "{\"ok\":true,\"v\":1,\"id\":\"abc\"}\n");
	assert_string_equal(format(reply_new_ok("42")), "{\"ok\":true,\"v\":1,\"id\":\"42\"}\n");
	/* An id with quotes, a newline and UTF-8 stays one line and round-trips. */
	assert_string_equal(format(reply_new_ok("a\"b\n\xc3\xa9")),
			"{\"ok\":true,\"v\":1,\"id\":\"a\\\"b\\n\xc3\xa9\"}\n");
}

static void test_format_fields_in_order(void **state)
{
	struct json_object *obj = reply_new_ok("7");

	/* What the daemon does for "get": fields follow in insertion order, token last. */
	assert_non_null(obj);
	json_object_object_add(obj, "kind", json_object_new_string("service"));
	json_object_object_add(obj, "url", json_object_new_string("https://regscale.example/x"));
	json_object_object_add(obj, "expires_at", json_object_new_int64(1795960800));
	json_object_object_add(obj, "expires_in", NULL);
	json_object_object_add(obj, "token", json_object_new_string("a.b.c"));
	assert_string_equal(format(obj),
			"{\"ok\":true,\"v\":1,\"id\":\"7\",\"kind\":\"service\","
			"\"url\":\"https://regscale.example/x\",\"expires_at\":1795960800,"
			"\"expires_in\":null,\"token\":\"a.b.c\"}\n");
}

static void test_format_error(void **state)
{
	assert_string_equal(format(reply_new_error(PROTO_E_NO_TOKEN, "no token held", NULL)),
			"{\"ok\":false,\"v\":1,\"error\":\"no_token\",\"message\":\"no token "
			"held\"}\n");
	assert_string_equal(format(reply_new_error(PROTO_E_BAD_REQUEST, "\"op\" is missing", "r1")),
			"{\"ok\":false,\"v\":1,\"id\":\"r1\",\"error\":\"bad_request\","
			"\"message\":\"\\\"op\\\" is missing\"}\n");
	assert_string_equal(format(reply_new_error(PROTO_E_INTERNAL, NULL, NULL)),
			"{\"ok\":false,\"v\":1,\"error\":\"internal\",\"message\":\"\"}\n");
	/* An out-of-range code still produces a valid error reply. */
	assert_string_equal(format(reply_new_error((enum proto_error)99, "x", NULL)),
			"{\"ok\":false,\"v\":1,\"error\":\"internal\",\"message\":\"x\"}\n");
	/* Control characters in a message cannot break the framing. */
	assert_string_equal(format(reply_new_error(PROTO_E_LOGIN_FAILED, "a\nb\r\tc\x01", NULL)),
			"{\"ok\":false,\"v\":1,\"error\":\"login_failed\","
			"\"message\":\"a\\nb\\r\\tc\\u0001\"}\n");
}

static void test_format_size(void **state)
{
	const char *want = "{\"ok\":true,\"v\":1}\n";
	size_t n = strlen(want);
	struct json_object *obj = reply_new_ok(NULL);
	char buf[64];

	assert_non_null(obj);
	/* The newline and the terminating NUL both need room. */
	memset(buf, 'X', sizeof(buf));
	assert_int_equal(reply_format(obj, buf, n), -ENOBUFS);
	assert_int_equal(reply_format(obj, buf, n - 1), -ENOBUFS);
	assert_int_equal(reply_format(obj, buf, 0), -ENOBUFS);
	assert_int_equal(buf[0], 'X');
	assert_int_equal(reply_format(obj, buf, n + 1), (int)n);
	assert_string_equal(buf, want);
	/* Formatting twice gives the same line. */
	assert_int_equal(reply_format(obj, buf, sizeof(buf)), (int)n);
	assert_string_equal(buf, want);
	json_object_put(obj);
}

static void test_parse_good(void **state)
{
	static const char *const lines[] = {
			"{\"ok\":true,\"v\":1}",
			"{\"ok\":false,\"v\":1,\"error\":\"no_token\",\"message\":\"none\"}",
			" {\"ok\" : true} ",
			"{\"ok\":true,\"v\":1}\r",
			"{\"v\":1,\"pong\":true,\"ok\":true,\"nested\":{\"a\":[1,2,{}]}}",
			"{\"ok\":true,\"x\":[[[[[[[1]]]]]]]}",
			"{\"ok\":false,\"message\":\"\\u001b is escaped, so fine\"}",
			"{\"ok\":true,\"url\":\"https:\\/\\/x\",\"s\":\"\\u00e9\\ud83d\\ude00\"}",
	};

	for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
		struct json_object *obj = NULL;

		if (reply_parse(lines[i], strlen(lines[i]), &obj) != 0)
			fail_msg("refused: %s", lines[i]);
		assert_true(json_object_is_type(obj, json_type_object));
		json_object_put(obj);
	}
}

static void test_parse_bad(void **state)
{
	static const char *const lines[] = {
			"",
			" ",
			"null",
			"true",
			"[]",
			"[{\"ok\":true}]",
			"\"ok\"",
			"{}",
			"{\"v\":1}",
			"{\"ok\":\"true\"}",
			"{\"ok\":1}",
			"{\"ok\":null}",
			"{\"ok\":true",
			"{\"ok\":true,}",
			"{\"ok\":true}x",
			"{\"ok\":true}{\"ok\":true}",
			"{\"ok\":true} {}",
			"{ok:true}",
			"{\"ok\":True}",
			"{\"ok\":true,\"x\":\"\xff\"}",
			"{\"ok\":true,\"x\":\"\xc0\x80\"}",
			"{\"ok\":true,\"x\":\"\xed\xa0\x80\"}",
			"{\"ok\":true,\"x\":\"\xf4\x90\x80\x80\"}",
			"{\"ok\":true,\"x\":\"\x01\"}",
			"{\"ok\":true,\"x\":\"\x1b[31m\"}",
			"{\"ok\":true,\"x\":\"\\ud800\"}",
			"{\"ok\":true,\"x\":NaN}",
			"{'ok':true}",
			"{\"ok\":true,\"x\":[[[[[[[[1]]]]]]]]}",
			"\xef\xbb\xbf{\"ok\":true}",
			"pong",
	};
	struct json_object *obj;

	for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
		obj = NULL;
		if (reply_parse(lines[i], strlen(lines[i]), &obj) != -EBADMSG)
			fail_msg("accepted: %s", lines[i]);
		assert_null(obj);
	}

	/* A NUL byte, and a length that stops short of the object's end. */
	assert_int_equal(reply_parse("{\"ok\":true}\0", 12, &obj), -EBADMSG);
	assert_int_equal(reply_parse("{\"ok\":\0true}", 12, &obj), -EBADMSG);
	assert_int_equal(reply_parse("{\"ok\":true}", 10, &obj), -EBADMSG);
	assert_int_equal(reply_parse(NULL, 0, &obj), -EBADMSG);
}

static void test_parse_truncated(void **state)
{
	const char *line = "{\"ok\":false,\"v\":1,\"id\":\"x\",\"error\":\"timeout\",\"message\":"
			   "\"slow\"}";
	size_t n = strlen(line);

	for (size_t i = 0; i < n; i++) {
		struct json_object *obj = NULL;
		char *copy = malloc(i ? i : 1);

		assert_non_null(copy);
		memcpy(copy, line, i);
		assert_int_equal(reply_parse(copy, i, &obj), -EBADMSG);
		free(copy);
	}
}

static void test_error_roundtrip(void **state)
{
	for (int e = PROTO_E_BAD_REQUEST; e < _PROTO_E_MAX; e++) {
		char buf[256];
		struct json_object *obj = reply_new_error((enum proto_error)e, "why", "id-1");
		struct json_object *parsed = NULL, *id;
		const char *message = NULL;
		int n;

		n = reply_format(obj, buf, sizeof(buf));
		json_object_put(obj);
		assert_true(n > 0);
		assert_int_equal(reply_parse(buf, (size_t)n - 1, &parsed), 0);
		assert_int_equal(reply_error(parsed, &message), e);
		assert_string_equal(message, "why");
		assert_true(json_object_object_get_ex(parsed, "id", &id));
		assert_string_equal(json_object_get_string(id), "id-1");
		json_object_put(parsed);
	}
}

/* Parses line and returns reply_error()'s verdict; *msg is copied into msgbuf. */
static enum proto_error error_of(const char *line, char *msgbuf, size_t size)
{
	struct json_object *obj = NULL;
	const char *message = NULL;
	enum proto_error e;

	assert_int_equal(reply_parse(line, strlen(line), &obj), 0);
	e = reply_error(obj, &message);
	assert_non_null(message);
	snprintf(msgbuf, size, "%s", message);
	json_object_put(obj);
	return e;
}

static void test_reply_error(void **state)
{
	char m[128];

	assert_int_equal(error_of("{\"ok\":true,\"v\":1,\"pong\":true}", m, sizeof(m)), PROTO_OK);
	assert_string_equal(m, "");
	/* status replies carry a message although they are ok. */
	assert_int_equal(
			error_of("{\"ok\":true,\"v\":1,\"message\":\"token valid\"}", m, sizeof(m)),
			PROTO_OK);
	assert_string_equal(m, "token valid");

	assert_int_equal(error_of("{\"ok\":false,\"error\":\"token_expired\",\"message\":\"old\"}",
					 m, sizeof(m)),
			PROTO_E_TOKEN_EXPIRED);
	assert_string_equal(m, "old");
	assert_int_equal(error_of("{\"ok\":false,\"error\":\"permission_denied\"}", m, sizeof(m)),
			PROTO_E_PERMISSION_DENIED);
	assert_string_equal(m, "");

	/* A code this client does not know is treated as internal, message kept. */
	assert_int_equal(error_of("{\"ok\":false,\"error\":\"quota_exceeded\",\"message\":"
				  "\"later\"}",
					 m, sizeof(m)),
			PROTO_E_INTERNAL);
	assert_string_equal(m, "later");
	assert_int_equal(error_of("{\"ok\":false,\"error\":\"ok\"}", m, sizeof(m)),
			PROTO_E_INTERNAL);
	assert_int_equal(error_of("{\"ok\":false}", m, sizeof(m)), PROTO_E_INTERNAL);
	assert_int_equal(error_of("{\"ok\":false,\"error\":5}", m, sizeof(m)), PROTO_E_INTERNAL);
	assert_int_equal(error_of("{\"ok\":false,\"error\":null,\"message\":7}", m, sizeof(m)),
			PROTO_E_INTERNAL);
	assert_string_equal(m, "");
}

static void test_reply_error_without_ok(void **state)
{
	struct json_object *obj = json_object_new_object();
	const char *message = NULL;

	/* Objects built by hand, not through reply_parse(), are judged just as carefully. */
	assert_int_equal(reply_error(obj, &message), PROTO_E_INTERNAL);
	assert_string_equal(message, "");
	json_object_object_add(obj, "ok", json_object_new_string("true"));
	assert_int_equal(reply_error(obj, &message), PROTO_E_INTERNAL);
	json_object_put(obj);
}

static void test_format_time(void **state)
{
	char buf[32];

	assert_string_equal(proto_format_time(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
	assert_string_equal(
			proto_format_time(1795960800, buf, sizeof(buf)), "2026-11-29T14:00:00Z");
	assert_string_equal(
			proto_format_time(1764430000, buf, sizeof(buf)), "2025-11-29T15:26:40Z");
	assert_string_equal(proto_format_time(-1, buf, sizeof(buf)), "1969-12-31T23:59:59Z");
	assert_string_equal(
			proto_format_time(2147483648LL, buf, sizeof(buf)), "2038-01-19T03:14:08Z");
	assert_string_equal(proto_format_time(253402300799LL, buf, sizeof(buf)),
			"9999-12-31T23:59:59Z");

	/* 21 bytes are enough; fewer give an empty string, never a truncated time. */
	{
		char exact[21], small[20];

		assert_ptr_equal(proto_format_time(1795960800, exact, sizeof(exact)), exact);
		assert_string_equal(exact, "2026-11-29T14:00:00Z");
		memset(small, 'X', sizeof(small));
		assert_string_equal(proto_format_time(1795960800, small, sizeof(small)), "");
		/* Year 10000 does not fit in 21 bytes. */
		assert_string_equal(proto_format_time(253402300800LL, exact, sizeof(exact)), "");
	}

	/* Beyond what gmtime_r can represent. */
	assert_string_equal(proto_format_time(INT64_MAX, buf, sizeof(buf)), "");
	assert_string_equal(proto_format_time(INT64_MIN, buf, sizeof(buf)), "");
	/* size 0 writes nothing. */
	buf[0] = 'X';
	assert_ptr_equal(proto_format_time(0, buf, 0), buf);
	assert_int_equal(buf[0], 'X');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_error_names),
			cmocka_unit_test(test_format_ok),
			cmocka_unit_test(test_format_fields_in_order),
			cmocka_unit_test(test_format_error),
			cmocka_unit_test(test_format_size),
			cmocka_unit_test(test_parse_good),
			cmocka_unit_test(test_parse_bad),
			cmocka_unit_test(test_parse_truncated),
			cmocka_unit_test(test_error_roundtrip),
			cmocka_unit_test(test_reply_error),
			cmocka_unit_test(test_reply_error_without_ok),
			cmocka_unit_test(test_format_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
