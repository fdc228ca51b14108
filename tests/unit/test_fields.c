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

#include "common/fields.h"

/* Reads every field of msg[0..len); returns the number read, or the first negative result. */
static int count_fields(const char *msg, size_t len)
{
	char name[FIELDS_MAX_NAME + 1];
	const char *v;
	size_t pos = 0, vlen;
	int r, n = 0;

	while ((r = fields_next(msg, len, &pos, name, &v, &vlen)) > 0) {
		assert_true(v >= msg && v + vlen <= msg + len);
		assert_true(pos <= len);
		n++;
	}
	return r < 0 ? r : n;
}

static void expect_bad(const char *msg)
{
	assert_int_equal(count_fields(msg, strlen(msg)), -EBADMSG);
}

static void test_roundtrip(void **state)
{
	char buf[256], name[FIELDS_MAX_NAME + 1];
	const char *v;
	size_t pos = 0, len, vlen;
	int64_t i;

	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "mode", "login", 5), 0);
	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "empty", "", 0), 0);
	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "null_ok", NULL, 0), 0);
	assert_int_equal(fields_put_int(buf, sizeof(buf), &pos, "http_status", 200), 0);
	assert_int_equal(fields_put_int(buf, sizeof(buf), &pos, "retry_after", -1), 0);
	assert_int_equal(fields_put_int(buf, sizeof(buf), &pos, "big", INT64_MIN), 0);
	len = pos;
	assert_memory_equal(buf, "mode 5\nlogin\nempty 0\n\nnull_ok 0\n\nhttp_status 3\n200\n",
			strlen("mode 5\nlogin\nempty 0\n\nnull_ok 0\n\nhttp_status 3\n200\n"));

	pos = 0;
	assert_int_equal(fields_next(buf, len, &pos, name, &v, &vlen), 1);
	assert_string_equal(name, "mode");
	assert_int_equal(vlen, 5);
	assert_memory_equal(v, "login", 5);
	assert_int_equal(fields_next(buf, len, &pos, name, &v, &vlen), 1);
	assert_string_equal(name, "empty");
	assert_int_equal(vlen, 0);
	assert_int_equal(fields_next(buf, len, &pos, name, &v, &vlen), 1);
	assert_string_equal(name, "null_ok");
	assert_int_equal(vlen, 0);
	assert_int_equal(fields_next(buf, len, &pos, name, &v, &vlen), 1);
	assert_string_equal(name, "http_status");
	assert_int_equal(fields_parse_int(v, vlen, &i), 0);
	assert_int_equal(i, 200);
	assert_int_equal(fields_next(buf, len, &pos, name, &v, &vlen), 1);
	assert_int_equal(fields_parse_int(v, vlen, &i), 0);
	assert_int_equal(i, -1);
	assert_int_equal(fields_next(buf, len, &pos, name, &v, &vlen), 1);
	assert_string_equal(name, "big");
	assert_int_equal(fields_parse_int(v, vlen, &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(fields_next(buf, len, &pos, name, &v, &vlen), 0);
	assert_int_equal(pos, len);
	/* Stays at the end. */
	assert_int_equal(fields_next(buf, len, &pos, name, &v, &vlen), 0);
	/* Empty message: no fields. */
	pos = 0;
	assert_int_equal(fields_next(buf, 0, &pos, name, &v, &vlen), 0);
}

static void test_binary(void **state)
{
	/* A password may hold any byte, newlines and NULs included, and look like a field. */
	static const char pw[] = "a\nb\0c 3\nxyz\n\n\xff";
	const size_t pwlen = sizeof(pw) - 1;
	char buf[128], name[FIELDS_MAX_NAME + 1];
	const char *v;
	size_t pos = 0, len, vlen;

	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "password", pw, pwlen), 0);
	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "user", "u", 1), 0);
	len = pos;

	pos = 0;
	assert_int_equal(fields_next(buf, len, &pos, name, &v, &vlen), 1);
	assert_string_equal(name, "password");
	assert_int_equal(vlen, pwlen);
	assert_memory_equal(v, pw, pwlen);
	assert_int_equal(fields_next(buf, len, &pos, name, &v, &vlen), 1);
	assert_string_equal(name, "user");
	assert_int_equal(fields_next(buf, len, &pos, name, &v, &vlen), 0);
}

static void test_truncated(void **state)
{
	char buf[256];
	size_t pos = 0, ends[8], n_ends = 0;

	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "a", "x\ny", 3), 0);
	ends[n_ends++] = pos;
	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "long_name_here", "", 0), 0);
	ends[n_ends++] = pos;
	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "v", "0123456789012", 13), 0);
	ends[n_ends++] = pos;

	/* A prefix is well formed exactly when it ends at a field boundary. The bytes past the
	 * prefix are poisoned so that a read beyond len would change the answer. */
	for (size_t l = 0; l <= pos; l++) {
		char *copy = malloc(pos + 64);
		bool boundary = l == 0;

		assert_non_null(copy);
		memcpy(copy, buf, l);
		memset(copy + l, '\n', pos + 64 - l);
		for (size_t i = 0; i < n_ends; i++)
			boundary = boundary || ends[i] == l;
		if (boundary)
			assert_true(count_fields(copy, l) >= 0);
		else
			assert_int_equal(count_fields(copy, l), -EBADMSG);
		free(copy);
	}
	assert_int_equal(count_fields(buf, pos), 3);
}

static void test_malformed(void **state)
{
	char name[FIELDS_MAX_NAME + 1];
	const char *v = (const char *)0x1;
	size_t pos = 0, vlen = 4242;

	expect_bad("a 01\nx\n"); /* leading zero */
	expect_bad("a 00\n\n");  /* leading zero */
	expect_bad("a +1\nx\n"); /* sign */
	expect_bad("a -1\nx\n");
	expect_bad("a  1\nx\n"); /* two spaces */
	expect_bad("a 1 \nx\n"); /* space after the length */
	expect_bad("a\t1\nx\n");
	expect_bad("a 1\r\nx\n");
	expect_bad("a 1\nx");    /* missing final newline */
	expect_bad("a 1\nxy\n"); /* value longer than said */
	expect_bad("a 2\nx\n");  /* value shorter than said */
	expect_bad("a 1\nx\r");
	expect_bad("a \nx\n"); /* no length */
	expect_bad("a\n");
	expect_bad("a");
	expect_bad(" 1\nx\n");   /* no name */
	expect_bad("A 1\nx\n");  /* upper case */
	expect_bad("a1 1\nx\n"); /* digit in name */
	expect_bad("a-b 1\nx\n");
	expect_bad("\n");
	expect_bad("a 0\n\nb");                    /* garbage after a good field */
	expect_bad("a 99999999999999999999\nx\n"); /* huge */
	expect_bad("a 999999999999999999999999\nx\n");
	expect_bad("a 18446744073709551616\nx\n"); /* SIZE_MAX + 1 */
	expect_bad("a 18446744073709551615\nx\n"); /* SIZE_MAX */
	expect_bad("a 4294967297\nx\n");
	expect_bad("abcdefghijklmnopqrstuvwxyzabcdefg 1\nx\n"); /* 33 characters */
	assert_int_equal(count_fields("abcdefghijklmnopqrstuvwxyzabcdef 1\nx\n",
					 strlen("abcdefghijklmnopqrstuvwxyzabcdef 1\nx\n")),
			1); /* 32 characters */
	assert_int_equal(count_fields("a 0\n\n", 5), 1);

	/* NUL in the name or length */
	assert_int_equal(count_fields("a\0 1\nx\n", 7), -EBADMSG);
	assert_int_equal(count_fields("a 1\0\nx\n", 7), -EBADMSG);

	/* Nothing is written and pos does not move on an error. */
	pos = 0;
	assert_int_equal(fields_next("a 01\nx\n", 7, &pos, name, &v, &vlen), -EBADMSG);
	assert_int_equal(pos, 0);
	assert_ptr_equal(v, (const char *)0x1);
	assert_int_equal(vlen, 4242);
	/* pos beyond len */
	pos = 8;
	assert_int_equal(fields_next("a 0\n\n", 5, &pos, name, &v, &vlen), -EBADMSG);
}

static void test_put_small(void **state)
{
	char buf[16];
	size_t pos = 0;

	memset(buf, 'Z', sizeof(buf));
	/* "name 5\nhello\n" is 13 bytes */
	assert_int_equal(fields_put(buf, 12, &pos, "name", "hello", 5), -ENOBUFS);
	assert_int_equal(pos, 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'Z');
	assert_int_equal(fields_put(buf, 13, &pos, "name", "hello", 5), 0);
	assert_int_equal(pos, 13);
	assert_int_equal(buf[13], 'Z');
	/* Full: even an empty field does not fit. */
	assert_int_equal(fields_put(buf, 13, &pos, "a", "", 0), -ENOBUFS);
	assert_int_equal(pos, 13);
	assert_int_equal(fields_put(buf, 16, &pos, "a", "", 0), -ENOBUFS); /* needs 5 */
	assert_int_equal(fields_put_int(buf, 16, &pos, "i", 100), -ENOBUFS);
	assert_int_equal(pos, 13);
	/* A length near SIZE_MAX does not wrap around. */
	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "a", "x", SIZE_MAX - 2), -ENOBUFS);
	assert_int_equal(pos, 13);
	/* Bad names are refused. */
	pos = 0;
	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "", "", 0), -EINVAL);
	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "A", "", 0), -EINVAL);
	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "a b", "", 0), -EINVAL);
	assert_int_equal(fields_put(buf, sizeof(buf), &pos, "abcdefghijklmnopqrstuvwxyzabcdefg", "",
					 0),
			-EINVAL);
	assert_int_equal(pos, 0);
}

static void test_parse_int(void **state)
{
	int64_t i = 77;

	assert_int_equal(fields_parse_int("0", 1, &i), 0);
	assert_int_equal(i, 0);
	assert_int_equal(fields_parse_int("9223372036854775807", 19, &i), 0);
	assert_true(i == INT64_MAX);
	assert_int_equal(fields_parse_int("-9223372036854775808", 20, &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(fields_parse_int("-30", 3, &i), 0);
	assert_int_equal(i, -30);
	/* Only the given bytes count. */
	assert_int_equal(fields_parse_int("123", 2, &i), 0);
	assert_int_equal(i, 12);

	i = 77;
	assert_int_equal(fields_parse_int("9223372036854775808", 19, &i), -EINVAL);
	assert_int_equal(fields_parse_int("-9223372036854775809", 20, &i), -EINVAL);
	assert_int_equal(fields_parse_int("99999999999999999999", 20, &i), -EINVAL);
	assert_int_equal(fields_parse_int("", 0, &i), -EINVAL);
	assert_int_equal(fields_parse_int("-", 1, &i), -EINVAL);
	assert_int_equal(fields_parse_int("-0", 2, &i), -EINVAL);
	assert_int_equal(fields_parse_int("01", 2, &i), -EINVAL);
	assert_int_equal(fields_parse_int("+1", 2, &i), -EINVAL);
	assert_int_equal(fields_parse_int(" 1", 2, &i), -EINVAL);
	assert_int_equal(fields_parse_int("1 ", 2, &i), -EINVAL);
	assert_int_equal(fields_parse_int("1a", 2, &i), -EINVAL);
	assert_int_equal(fields_parse_int("1\0", 2, &i), -EINVAL);
	assert_int_equal(i, 77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_roundtrip),
			cmocka_unit_test(test_binary),
			cmocka_unit_test(test_truncated),
			cmocka_unit_test(test_malformed),
			cmocka_unit_test(test_put_small),
			cmocka_unit_test(test_parse_int),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
