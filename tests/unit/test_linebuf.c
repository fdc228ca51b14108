/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/linebuf.c over socketpair() and pipe(). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "common/util.h"
#include "proto/linebuf.h"
#include "proto/proto.h"

struct fixture {
	int rd; /* non-blocking reading end, as the daemon has it */
	int wr;
	struct linebuf b;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int sv[2];

	if (!f || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	f->rd = sv[0];
	f->wr = sv[1];
	if (fcntl(f->rd, F_SETFL, O_NONBLOCK) < 0)
		return -1;
	linebuf_init(&f->b, PROTO_MAX_LINE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	linebuf_done(&f->b);
	closep(&f->rd);
	closep(&f->wr);
	free(f);
	return 0;
}

static void send_str(int fd, const char *s, size_t n)
{
	assert_int_equal(write(fd, s, n), (ssize_t)n);
}

#define SEND(f, s) send_str((f)->wr, (s), strlen(s))

/* Asserts that the next complete line is want, then pops it. */
static void expect_line(struct linebuf *b, const char *want, size_t want_len)
{
	char *line;
	size_t len;

	assert_int_equal(linebuf_peek(b, &line, &len), 1);
	assert_int_equal(len, want_len);
	assert_memory_equal(line, want, want_len);
	assert_int_equal(line[len], '\0');
	linebuf_pop(b);
}

#define EXPECT_LINE(b, s) expect_line((b), (s), strlen(s))

static void expect_no_line(struct linebuf *b)
{
	char *line = NULL;
	size_t len = 12345;

	assert_int_equal(linebuf_peek(b, &line, &len), 0);
	/* Out-parameters are left alone when there is no line. */
	assert_null(line);
	assert_int_equal(len, 12345);
}

static bool all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void test_single_line(void **state)
{
	struct fixture *f = *state;

	expect_no_line(&f->b);
	SEND(f, "{\"op\":\"get\"}\n");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 13);
	EXPECT_LINE(&f->b, "{\"op\":\"get\"}");
	expect_no_line(&f->b);
	assert_int_equal(f->b.len, 0);
	assert_int_equal(linebuf_fill(&f->b, f->rd), -EAGAIN);
}

static void test_several_lines_one_write(void **state)
{
	struct fixture *f = *state;

	SEND(f, "one\ntwo\n\nthree\nfour");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 19);
	EXPECT_LINE(&f->b, "one");
	EXPECT_LINE(&f->b, "two");
	EXPECT_LINE(&f->b, "");
	EXPECT_LINE(&f->b, "three");
	expect_no_line(&f->b);
	assert_int_equal(f->b.len, 4);

	SEND(f, "\n");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 1);
	EXPECT_LINE(&f->b, "four");
	expect_no_line(&f->b);
}

static void test_split_across_writes(void **state)
{
	struct fixture *f = *state;
	const char *msg = "{\"op\":\"status\",\"id\":42}\n";

	for (size_t i = 0; msg[i]; i++) {
		send_str(f->wr, msg + i, 1);
		assert_int_equal(linebuf_fill(&f->b, f->rd), 1);
		if (msg[i + 1])
			expect_no_line(&f->b);
	}
	EXPECT_LINE(&f->b, "{\"op\":\"status\",\"id\":42}");

	/* A line split between two writes with the next one following. */
	SEND(f, "{\"op\":");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 6);
	expect_no_line(&f->b);
	SEND(f, "\"ping\"}\n{\"op\"");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 13);
	EXPECT_LINE(&f->b, "{\"op\":\"ping\"}");
	expect_no_line(&f->b);
	SEND(f, ":\"get\"}\n");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 8);
	EXPECT_LINE(&f->b, "{\"op\":\"get\"}");
}

static void test_crlf(void **state)
{
	struct fixture *f = *state;

	SEND(f, "a\r\n\r\nb\rc\n\r\r\nd\n");
	assert_true(linebuf_fill(&f->b, f->rd) > 0);
	EXPECT_LINE(&f->b, "a");
	EXPECT_LINE(&f->b, "");
	/* A '\r' elsewhere is data, and only one is removed before the newline. */
	EXPECT_LINE(&f->b, "b\rc");
	EXPECT_LINE(&f->b, "\r");
	EXPECT_LINE(&f->b, "d");

	/* "\r" and "\n" arriving separately. */
	SEND(f, "e\r");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 2);
	expect_no_line(&f->b);
	SEND(f, "\n");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 1);
	EXPECT_LINE(&f->b, "e");
}

static void test_peek_is_idempotent(void **state)
{
	struct fixture *f = *state;
	char *l1, *l2;
	size_t n1, n2;

	SEND(f, "first\r\nsecond\n");
	assert_true(linebuf_fill(&f->b, f->rd) > 0);
	assert_int_equal(linebuf_peek(&f->b, &l1, &n1), 1);
	assert_int_equal(linebuf_peek(&f->b, &l2, &n2), 1);
	assert_ptr_equal(l1, l2);
	assert_int_equal(n1, 5);
	assert_int_equal(n2, 5);
	assert_string_equal(l2, "first");
	/* Filling while a line is peeked keeps it valid. */
	SEND(f, "third\n");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 6);
	assert_int_equal(linebuf_peek(&f->b, &l2, &n2), 1);
	assert_string_equal(l2, "first");
	linebuf_pop(&f->b);
	EXPECT_LINE(&f->b, "second");
	EXPECT_LINE(&f->b, "third");
}

static void test_pop_without_peek(void **state)
{
	struct fixture *f = *state;

	/* Popping with no complete line does nothing. */
	linebuf_pop(&f->b);
	SEND(f, "partial");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 7);
	linebuf_pop(&f->b);
	assert_int_equal(f->b.len, 7);

	SEND(f, "\nnext\n");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 6);
	linebuf_pop(&f->b);
	EXPECT_LINE(&f->b, "next");
}

static void test_nul_passes_through(void **state)
{
	struct fixture *f = *state;

	/* Judging bytes is the parser's job; the buffer only frames them. */
	send_str(f->wr, "a\0b\n", 4);
	assert_int_equal(linebuf_fill(&f->b, f->rd), 4);
	expect_line(&f->b, "a\0b", 3);
}

static void test_eof(void **state)
{
	struct fixture *f = *state;

	SEND(f, "done\nhalf");
	assert_int_equal(shutdown(f->wr, SHUT_WR), 0);
	assert_int_equal(linebuf_fill(&f->b, f->rd), 9);
	assert_int_equal(linebuf_fill(&f->b, f->rd), 0);
	EXPECT_LINE(&f->b, "done");
	/* An unterminated last line is never a line. */
	expect_no_line(&f->b);
	assert_int_equal(linebuf_fill(&f->b, f->rd), 0);
}

static void test_eagain(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(linebuf_fill(&f->b, f->rd), -EAGAIN);
	assert_int_equal(f->b.len, 0);
	assert_false(linebuf_overflowed(&f->b));
}

static void test_bad_fd(void **state)
{
	struct linebuf b;

	linebuf_init(&b, 64);
	assert_int_equal(linebuf_fill(&b, -1), -EBADF);
	linebuf_done(&b);
}

static void test_overflow(void **state)
{
	struct fixture *f = *state;
	struct linebuf b;

	linebuf_init(&b, 16);

	/* 15 bytes and a newline fit exactly. */
	SEND(f, "123456789012345\n");
	assert_int_equal(linebuf_fill(&b, f->rd), 16);
	assert_false(linebuf_overflowed(&b));
	EXPECT_LINE(&b, "123456789012345");

	/* 16 bytes without a newline do not. */
	SEND(f, "1234567890123456\n");
	assert_int_equal(linebuf_fill(&b, f->rd), -ENOBUFS);
	assert_true(linebuf_overflowed(&b));
	expect_no_line(&b);
	assert_int_equal(b.len, 16);
	/* It stays that way, and nothing more is read. */
	assert_int_equal(linebuf_fill(&b, f->rd), -ENOBUFS);
	assert_int_equal(b.len, 16);

	linebuf_done(&b);
}

static void test_overflow_in_steps(void **state)
{
	struct fixture *f = *state;
	struct linebuf b;

	linebuf_init(&b, 16);
	SEND(f, "12345678");
	assert_int_equal(linebuf_fill(&b, f->rd), 8);
	assert_false(linebuf_overflowed(&b));
	SEND(f, "12345678");
	assert_int_equal(linebuf_fill(&b, f->rd), -ENOBUFS);
	assert_true(linebuf_overflowed(&b));
	linebuf_done(&b);
}

static void test_full_of_lines(void **state)
{
	struct fixture *f = *state;
	struct linebuf b;

	/* Never more than max bytes held, even when some of them are complete lines. */
	linebuf_init(&b, 8);
	SEND(f, "abc\ndefgh\n");
	assert_int_equal(linebuf_fill(&b, f->rd), 8);
	assert_false(linebuf_overflowed(&b));
	assert_int_equal(linebuf_fill(&b, f->rd), -EBUSY);
	EXPECT_LINE(&b, "abc");
	assert_int_equal(linebuf_fill(&b, f->rd), 2);
	EXPECT_LINE(&b, "defgh");
	assert_int_equal(b.len, 0);

	/* A peeked line counts as a complete one, although its newline is gone. */
	SEND(f, "1234567\n");
	assert_int_equal(linebuf_fill(&b, f->rd), 8);
	{
		char *line;
		size_t len;
		assert_int_equal(linebuf_peek(&b, &line, &len), 1);
	}
	assert_false(linebuf_overflowed(&b));
	assert_int_equal(linebuf_fill(&b, f->rd), -EBUSY);
	linebuf_pop(&b);
	linebuf_done(&b);
}

/* Writes n bytes of a line (plus the newline) while filling the buffer, as a peer would. */
static ssize_t stream_line(struct fixture *f, struct linebuf *b, size_t n, char c)
{
	char chunk[4096];
	size_t sent = 0;
	ssize_t r = 0;

	memset(chunk, c, sizeof(chunk));
	while (sent < n + 1) {
		size_t k = n + 1 - sent < sizeof(chunk) ? n + 1 - sent : sizeof(chunk);

		if (sent + k == n + 1)
			chunk[k - 1] = '\n';
		send_str(f->wr, chunk, k);
		sent += k;
		do
			r = linebuf_fill(b, f->rd);
		while (r > 0);
		if (r != -EAGAIN)
			return r;
	}
	return r;
}

static void test_max_line(void **state)
{
	struct fixture *f = *state;
	char *line;
	size_t len;

	/* PROTO_MAX_LINE counts the newline. The buffer is then full of one complete line. */
	assert_int_equal(stream_line(f, &f->b, PROTO_MAX_LINE - 1, 'x'), -EBUSY);
	assert_false(linebuf_overflowed(&f->b));
	assert_int_equal(linebuf_peek(&f->b, &line, &len), 1);
	assert_int_equal(len, PROTO_MAX_LINE - 1);
	assert_int_equal(line[0], 'x');
	assert_int_equal(line[len - 1], 'x');
	assert_true(f->b.size <= PROTO_MAX_LINE);
	linebuf_pop(&f->b);

	assert_int_equal(stream_line(f, &f->b, PROTO_MAX_LINE, 'y'), -ENOBUFS);
	assert_true(linebuf_overflowed(&f->b));
	assert_int_equal(f->b.len, PROTO_MAX_LINE);
}

static void test_growth(void **state)
{
	struct fixture *f = *state;
	char *line;
	size_t len;

	SEND(f, "a\n");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 2);
	/* Starts small. */
	assert_true(f->b.size >= 2 && f->b.size <= 1024);
	EXPECT_LINE(&f->b, "a");

	assert_int_equal(stream_line(f, &f->b, 10000, 'z'), -EAGAIN);
	assert_true(f->b.size >= 10001);
	assert_true(f->b.size <= 16384);
	assert_int_equal(linebuf_peek(&f->b, &line, &len), 1);
	assert_int_equal(len, 10000);
	for (size_t i = 0; i < len; i++)
		if (line[i] != 'z')
			fail_msg("byte %zu is 0x%02x", i, (unsigned char)line[i]);
	linebuf_pop(&f->b);
	/* An emptied large buffer gives its memory back. */
	assert_int_equal(f->b.len, 0);
	assert_true(f->b.size <= 1024);
}

static void test_pop_wipes(void **state)
{
	struct fixture *f = *state;

	SEND(f, "{\"op\":\"login\",\"password\":\"hunter2\"}\r\n{\"op\":\"get\"}\n{\"op\"");
	assert_true(linebuf_fill(&f->b, f->rd) > 0);
	EXPECT_LINE(&f->b, "{\"op\":\"login\",\"password\":\"hunter2\"}");

	/* Nothing of the popped line is left anywhere in the allocation. */
	assert_null(memmem(f->b.data, f->b.size, "hunter2", 7));
	assert_null(memmem(f->b.data, f->b.size, "login", 5));
	assert_true(all_zero(f->b.data + f->b.len, f->b.size - f->b.len));
	assert_int_equal(f->b.len, 18);
	assert_memory_equal(f->b.data, "{\"op\":\"get\"}\n{\"op\"", 18);

	EXPECT_LINE(&f->b, "{\"op\":\"get\"}");
	assert_true(all_zero(f->b.data + f->b.len, f->b.size - f->b.len));
	assert_memory_equal(f->b.data, "{\"op\"", 5);
}

/* A lent buffer is used while the linebuf has none of its own and handed back when the lines
 * in it were popped; what is left unanswered moves to memory of its own, and the loan keeps
 * nothing of it. */
static void test_lend_and_keep(void **state)
{
	struct fixture *f = *state;
	char loan[64];
	struct linebuf other;

	memset(loan, 0, sizeof(loan));
	linebuf_lend(&f->b, loan, sizeof(loan));
	SEND(f, "{\"op\":\"get\"}\n");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 13);
	assert_ptr_equal(f->b.data, loan);
	EXPECT_LINE(&f->b, "{\"op\":\"get\"}");
	assert_null(f->b.data); /* given back by the pop */
	assert_int_equal(linebuf_keep(&f->b), 0);
	assert_true(all_zero(loan, sizeof(loan)));

	/* A line and a half: the half moves out at keep. */
	SEND(f, "{\"op\":\"ping\"}\n{\"op\":\"login\",\"password\":\"hu");
	assert_true(linebuf_fill(&f->b, f->rd) > 0);
	assert_ptr_equal(f->b.data, loan);
	EXPECT_LINE(&f->b, "{\"op\":\"ping\"}");
	assert_int_equal(linebuf_keep(&f->b), 0);
	assert_true(f->b.data != loan);
	assert_false(f->b.lent);
	assert_true(all_zero(loan, sizeof(loan)));

	/* The loan serves another buffer meanwhile. */
	linebuf_init(&other, PROTO_MAX_LINE);
	linebuf_lend(&other, loan, sizeof(loan));
	SEND(f, "nter2\"}\n");
	assert_true(linebuf_fill(&other, f->rd) > 0);
	assert_ptr_equal(other.data, loan);
	linebuf_done(&other);
	assert_true(all_zero(loan, sizeof(loan)));
	SEND(f, "nter2\"}\n");
	assert_true(linebuf_fill(&f->b, f->rd) > 0);
	EXPECT_LINE(&f->b, "{\"op\":\"login\",\"password\":\"hunter2\"}");

	/* A line longer than the loan grows into memory of its own, the loan wiped. */
	char longline[200];
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\n';
	send_str(f->wr, longline, sizeof(longline));
	while (!linebuf_peek(&f->b, &(char *){NULL}, &(size_t){0}))
		assert_true(linebuf_fill(&f->b, f->rd) > 0);
	assert_true(f->b.data != loan);
	assert_true(all_zero(loan, sizeof(loan)));
	expect_line(&f->b, longline, sizeof(longline) - 1);
}

static void test_done_and_reuse(void **state)
{
	struct fixture *f = *state;

	SEND(f, "x\ny");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 3);
	linebuf_done(&f->b);
	assert_null(f->b.data);
	assert_int_equal(f->b.len, 0);
	assert_int_equal(f->b.size, 0);
	/* Done twice is harmless. */
	linebuf_done(&f->b);

	linebuf_init(&f->b, 32);
	SEND(f, "z\n");
	assert_int_equal(linebuf_fill(&f->b, f->rd), 2);
	EXPECT_LINE(&f->b, "z");
}

static void test_pipe(void **state)
{
	struct linebuf b;
	int p[2];

	/* Not a socket: the buffer falls back to read(). */
	assert_int_equal(pipe(p), 0);
	linebuf_init(&b, 64);
	send_str(p[1], "over a pipe\n", 12);
	assert_int_equal(linebuf_fill(&b, p[0]), 12);
	EXPECT_LINE(&b, "over a pipe");
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(linebuf_fill(&b, p[0]), -EAGAIN);
	close(p[1]);
	assert_int_equal(linebuf_fill(&b, p[0]), 0);
	close(p[0]);
	linebuf_done(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test_setup_teardown(test_single_line, setup, teardown),
			cmocka_unit_test_setup_teardown(
					test_several_lines_one_write, setup, teardown),
			cmocka_unit_test_setup_teardown(test_split_across_writes, setup, teardown),
			cmocka_unit_test_setup_teardown(test_crlf, setup, teardown),
			cmocka_unit_test_setup_teardown(test_peek_is_idempotent, setup, teardown),
			cmocka_unit_test_setup_teardown(test_pop_without_peek, setup, teardown),
			cmocka_unit_test_setup_teardown(test_nul_passes_through, setup, teardown),
			cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
			cmocka_unit_test_setup_teardown(test_eagain, setup, teardown),
			cmocka_unit_test(test_bad_fd),
			cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
			cmocka_unit_test_setup_teardown(test_overflow_in_steps, setup, teardown),
			cmocka_unit_test_setup_teardown(test_full_of_lines, setup, teardown),
			cmocka_unit_test_setup_teardown(test_max_line, setup, teardown),
			cmocka_unit_test_setup_teardown(test_growth, setup, teardown),
			cmocka_unit_test_setup_teardown(test_pop_wipes, setup, teardown),
			cmocka_unit_test_setup_teardown(test_done_and_reuse, setup, teardown),
			cmocka_unit_test_setup_teardown(test_lend_and_keep, setup, teardown),
			cmocka_unit_test(test_pipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
