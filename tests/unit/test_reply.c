/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/reply_write.c, proto/jsonw.c and proto/proto.c: reply lines as the
 * daemon writes them, error codes, time format. Every line written is also read back with
 * json-c, an independent reader, and with reply_read.c, the client's. */
#include <errno.h>
#include <json-c/json.h>
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
#include "proto/reply_read.h"
#include "proto/reply_write.h"

/* Checks the line framing of buf[0..n) and that both readers take it; returns buf. */
static const char *checked(const char *buf, int n)
{
	struct json_object *o;
	struct reply_read r;

	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	assert_int_equal(buf[n - 1], '\n');
	/* One line: the only newline is the last byte. */
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
	assert_true(proto_json_object_valid(buf, (size_t)n - 1));
	assert_int_equal(reply_read_parse(&r, buf, (size_t)n - 1), 0);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	json_object_put(o);
	return buf;
}

/* An ok reply with nothing but its head, for id. */
static const char *ok_line(const char *id)
{
	static char buf[PROTO_MAX_LINE];
	struct jsonw w;
	size_t len;

	reply_begin(&w, buf, sizeof(buf), true, id);
	assert_int_equal(jsonw_end(&w, &len), 0);
	return checked(buf, (int)len);
}

static const char *error_line(enum proto_error err, const char *message, const char *id)
{
	static char buf[PROTO_MAX_LINE];

	return checked(buf, reply_write_error(buf, sizeof(buf), err, message, id, NULL));
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
			{PROTO_E_MFA_REQUIRED, "mfa_required"},
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
	assert_string_equal(ok_line(NULL), "{\"ok\":true,\"v\":1}\n");
	assert_string_equal(ok_line(""), "{\"ok\":true,\"v\":1}\n");
	assert_string_equal(ok_line("abc"), "{\"ok\":true,\"v\":1,\"id\":\"abc\"}\n");
	assert_string_equal(ok_line("42"), "{\"ok\":true,\"v\":1,\"id\":\"42\"}\n");
	/* An id with quotes, a newline and UTF-8 stays one line and round-trips. */
	assert_string_equal(ok_line("a\"b\n\xc3\xa9"),
			"{\"ok\":true,\"v\":1,\"id\":\"a\\\"b\\n\xc3\xa9\"}\n");
}

static void test_format_fields_in_order(void **state)
{
	char buf[512], frag[256];
	struct jsonw w, f;
	size_t len;

	/* What the daemon does for "get": its head, then a fragment of fields written once,
	 * then the fields of the request, token last; every type the writer has. */
	jsonw_fragment(&f, frag, sizeof(frag));
	jsonw_string_or_null(&f, "kind", "service");
	jsonw_string_or_null(&f, "user_id", "");
	jsonw_string(&f, "url", "https://regscale.example/x", 26);
	assert_int_equal(f.err, 0);
	reply_begin(&w, buf, sizeof(buf), true, "7");
	memcpy(buf + w.len, frag, f.len + 1);
	w.len += f.len;
	jsonw_int(&w, "expires_at", 1795960800);
	jsonw_int(&w, "low", INT64_MIN);
	jsonw_int(&w, "high", INT64_MAX);
	jsonw_int(&w, "zero", 0);
	jsonw_null(&w, "expires_in");
	jsonw_bool(&w, "pong", false);
	jsonw_string(&w, "token", "a.b.c", 5);
	assert_int_equal(jsonw_end(&w, &len), 0);
	assert_string_equal(checked(buf, (int)len),
			"{\"ok\":true,\"v\":1,\"id\":\"7\",\"kind\":\"service\",\"user_id\":null,"
			"\"url\":\"https://regscale.example/x\",\"expires_at\":1795960800,"
			"\"low\":-9223372036854775808,\"high\":9223372036854775807,\"zero\":0,"
			"\"expires_in\":null,\"pong\":false,\"token\":\"a.b.c\"}\n");
}

static void test_format_u64(void **state)
{
	char buf[24];

	assert_int_equal(jsonw_format_u64(0, buf), 1);
	assert_string_equal(buf, "0");
	assert_int_equal(jsonw_format_u64(86399, buf), 5);
	assert_string_equal(buf, "86399");
	assert_int_equal(jsonw_format_u64(UINT64_MAX, buf), 20);
	assert_string_equal(buf, "18446744073709551615");
}

static void test_format_error(void **state)
{
	assert_string_equal(error_line(PROTO_E_NO_TOKEN, "no token held", NULL),
			"{\"ok\":false,\"v\":1,\"error\":\"no_token\",\"message\":\"no token "
			"held\"}\n");
	assert_string_equal(error_line(PROTO_E_BAD_REQUEST, "\"op\" is missing", "r1"),
			"{\"ok\":false,\"v\":1,\"id\":\"r1\",\"error\":\"bad_request\","
			"\"message\":\"\\\"op\\\" is missing\"}\n");
	assert_string_equal(error_line(PROTO_E_INTERNAL, NULL, NULL),
			"{\"ok\":false,\"v\":1,\"error\":\"internal\",\"message\":\"\"}\n");
	/* An out-of-range code still produces a valid error reply. */
	assert_string_equal(error_line((enum proto_error)99, "x", NULL),
			"{\"ok\":false,\"v\":1,\"error\":\"internal\",\"message\":\"x\"}\n");
	/* Control characters in a message cannot break the framing. */
	assert_string_equal(error_line(PROTO_E_LOGIN_FAILED, "a\nb\r\tc\x01", NULL),
			"{\"ok\":false,\"v\":1,\"error\":\"login_failed\","
			"\"message\":\"a\\nb\\r\\tc\\u0001\"}\n");
}

static void test_format_size(void **state)
{
	const char *want = "{\"ok\":false,\"v\":1,\"error\":\"timeout\",\"message\":\"m\"}\n";
	size_t n = strlen(want);
	char buf[128];

	/* The line and its terminating NUL need room; what does not fit is refused whole. */
	assert_int_equal(reply_write_error(buf, n, PROTO_E_TIMEOUT, "m", NULL, NULL), -ENOBUFS);
	assert_int_equal(reply_write_error(buf, 1, PROTO_E_TIMEOUT, "m", NULL, NULL), -ENOBUFS);
	assert_int_equal(reply_write_error(buf, 0, PROTO_E_TIMEOUT, "m", NULL, NULL), -ENOBUFS);
	assert_int_equal(reply_write_error(buf, n + 1, PROTO_E_TIMEOUT, "m", NULL, NULL), (int)n);
	assert_string_equal(buf, want);
	/* Not UTF-8: refused, not sent. */
	assert_int_equal(reply_write_error(buf, sizeof(buf), PROTO_E_TIMEOUT, "\xff", NULL, NULL),
			-EILSEQ);
}

static void test_error_roundtrip(void **state)
{
	for (int e = PROTO_E_BAD_REQUEST; e < _PROTO_E_MAX; e++) {
		char buf[256], message[64], id[16];
		struct reply_read r;
		int n = reply_write_error(
				buf, sizeof(buf), (enum proto_error)e, "why", "id-1", NULL);

		checked(buf, n);
		assert_int_equal(reply_read_parse(&r, buf, (size_t)n - 1), 0);
		assert_int_equal(reply_read_error(&r, message, sizeof(message)), e);
		assert_string_equal(message, "why");
		assert_int_equal(reply_read_string(&r, "id", id, sizeof(id), NULL), 0);
		assert_string_equal(id, "id-1");
	}
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
			cmocka_unit_test(test_format_u64),
			cmocka_unit_test(test_format_error),
			cmocka_unit_test(test_format_size),
			cmocka_unit_test(test_error_roundtrip),
			cmocka_unit_test(test_format_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
