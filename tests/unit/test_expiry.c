/* SPDX-License-Identifier: MIT */
/* The arithmetic of expiry warnings (daemon/expiry.c), table-driven with injected time: which
 * point is due, how far the handled count moves, where the next timer goes, the late point,
 * and duration_format() (common/duration.c), which writes the durations its lines show. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "common/duration.h"
#include "daemon/expiry.h"

#define D    INT64_C(86400)
#define H    INT64_C(3600)
#define END  INT64_C(1800000000)
#define NONE INT64_MIN

static void test_due(void **state)
{
	static const struct {
		const char *name;
		uint64_t points[4]; /* 0 ends the list; default when all 0 */
		int64_t left;       /* seconds to the end at now */
		size_t done;        /* handled before */
		int due;            /* expected index, -1 none */
		size_t done_after;
		int64_t next_left; /* seconds before the end of the next point, NONE for none */
	} cases[] = {
			{"far from every point", {0}, 40 * D, 0, -1, 0, 30 * D},
			{"at the first point", {0}, 30 * D, 0, 0, 1, 7 * D},
			{"just before the first", {0}, 30 * D + 1, 0, -1, 0, 30 * D},
			{"first handled, before the second", {0}, 8 * D, 1, -1, 1, 7 * D},
			{"arrives past three: one line, the nearest", {0}, 2 * H, 0, 2, 3, H},
			{"arrives past all four: the last only", {0}, 59, 0, 3, 4, NONE},
			{"all handled", {0}, 10, 4, -1, 4, NONE},
			{"ended: none, all handled", {0}, 0, 1, -1, 4, NONE},
			{"ended long ago", {0}, -5 * D, 0, -1, 4, NONE},
			{"seconds: before 4s", {4, 2}, 6, 0, -1, 0, 4},
			{"seconds: at 4s", {4, 2}, 4, 0, 0, 1, 2},
			{"seconds: between", {4, 2}, 3, 1, -1, 1, 2},
			{"seconds: at 2s", {4, 2}, 2, 1, 1, 2, NONE},
			{"seconds: past both at once", {4, 2}, 1, 0, 1, 2, NONE},
			{"a jump back after a point: nothing again", {4, 2}, 10, 1, -1, 1, 2},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct expiry_points p = {0};
		size_t done = cases[i].done;
		int64_t next, want_next;
		int due;

		if (!cases[i].points[0])
			expiry_points_default(&p);
		for (size_t k = 0; k < 4 && cases[i].points[k]; k++)
			assert_int_equal(expiry_points_add(&p, cases[i].points[k]), 0);
		due = expiry_due(&p, END, END - cases[i].left, &done);
		next = expiry_next(&p, END, done);
		want_next = cases[i].next_left == NONE ? 0 : END - cases[i].next_left;
		if (due != cases[i].due || done != cases[i].done_after || next != want_next)
			fail_msg("%s: due %d (want %d), done %zu (want %zu), next %lld (want %lld)",
					cases[i].name, due, cases[i].due, done, cases[i].done_after,
					(long long)(next - END), (long long)(want_next - END));
	}
}

static void test_points(void **state)
{
	struct expiry_points p = {0};

	expiry_points_default(&p);
	assert_int_equal(p.n, 4);
	assert_int_equal(p.sec[0], 30 * D);
	assert_int_equal(p.sec[3], H);

	/* Sorted longest first whatever the order given, a repeat kept once. */
	p = (struct expiry_points){0};
	assert_int_equal(expiry_points_add(&p, 60), 0);
	assert_int_equal(expiry_points_add(&p, 7 * D), 0);
	assert_int_equal(expiry_points_add(&p, 60), 0);
	assert_int_equal(expiry_points_add(&p, 3600), 0);
	assert_int_equal(p.n, 3);
	assert_int_equal(p.sec[0], 7 * D);
	assert_int_equal(p.sec[1], 3600);
	assert_int_equal(p.sec[2], 60);
	for (uint64_t s = 100; p.n < EXPIRY_MAX_POINTS; s++)
		assert_int_equal(expiry_points_add(&p, s), 0);
	assert_int_equal(expiry_points_add(&p, 1), -E2BIG);
}

static void test_passed(void **state)
{
	static const struct {
		int64_t left;
		int expect;
	} cases[] = {
			{40 * D, -1},
			{30 * D, 0},
			{8 * D, 0},
			{7 * D, 1},
			{2 * D, 1},
			{D, 2},
			{2 * H, 2},
			{H, 3},
			{1, 3},
			{0, -1},
			{-1, -1},
	};
	struct expiry_points p;

	expiry_points_default(&p);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (expiry_passed(&p, END, END - cases[i].left) != cases[i].expect)
			fail_msg("%llds left: passed %d, want %d", (long long)cases[i].left,
					expiry_passed(&p, END, END - cases[i].left),
					cases[i].expect);
}

static void test_late_at(void **state)
{
	assert_int_equal(expiry_late_at(END - 3600, END), END - 1200);
	assert_int_equal(expiry_late_at(END - 9, END), END - 3);
	assert_int_equal(expiry_late_at(END - 10, END), END - 3); /* at most a third left */
	assert_int_equal(expiry_late_at(END, END), END);
}

static void test_duration_format(void **state)
{
	static const struct {
		int64_t s;
		const char *text;
	} cases[] = {
			{7 * D, "7d"},
			{7 * D - 1, "6d 23h"},
			{D + 59 * 60, "1d"},
			{5 * H + 20 * 60 + 7, "5h 20m"},
			{H, "1h"},
			{3599, "59m 59s"},
			{60, "1m"},
			{4, "4s"},
			{0, "0s"},
			{-3, "0s"},
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(duration_format(cases[i].s, buf, sizeof(buf)), cases[i].text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_due),
			cmocka_unit_test(test_points),
			cmocka_unit_test(test_passed),
			cmocka_unit_test(test_late_at),
			cmocka_unit_test(test_duration_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
