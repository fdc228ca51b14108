/* SPDX-License-Identifier: MIT */
/* A bounded, self-wiping line buffer; see linebuf.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/linebuf.h"

/* Most requests are a few dozen bytes; start small and double up to max. */
#define LINEBUF_INITIAL 1024

void linebuf_init(struct linebuf *b, size_t max)
{
	*b = (struct linebuf){.max = max};
}

void linebuf_done(struct linebuf *b)
{
	if (b->data) {
		explicit_bzero(b->data, b->lent ? b->len : b->size);
		if (!b->lent)
			free(b->data);
	}
	*b = (struct linebuf){0};
}

/* Gives lent storage back: b holds no storage of its own afterwards. */
static void end_loan(struct linebuf *b)
{
	b->data = NULL;
	b->size = 0;
	b->lent = false;
}

void linebuf_lend(struct linebuf *b, char *buf, size_t size)
{
	b->loan = buf;
	b->loan_size = size < b->max ? size : b->max;
}

/* Moves what b holds into a new allocation of size bytes (>= b->len), wiping the old bytes
 * and freeing them unless they were lent. realloc() could leave a copy behind in freed
 * memory, so this is done by hand. Returns 0, or -ENOMEM with b unchanged. */
static int move_to(struct linebuf *b, size_t size)
{
	char *data = malloc(size);

	if (!data)
		return -ENOMEM;
	if (b->data) {
		memcpy(data, b->data, b->len);
		explicit_bzero(b->data, b->lent ? b->len : b->size);
		if (!b->lent)
			free(b->data);
	}
	memset(data + b->len, 0, size - b->len);
	b->data = data;
	b->size = size;
	b->lent = false;
	return 0;
}

int linebuf_keep(struct linebuf *b)
{
	size_t size = LINEBUF_INITIAL;

	if (!b->lent)
		return 0;
	if (b->len == 0) {
		end_loan(b);
		return 0;
	}
	while (size < b->len + 1 && size < b->max)
		size *= 2;
	if (size > b->max)
		size = b->max;
	if (size < b->len)
		size = b->len;
	if (move_to(b, size) < 0) {
		/* The loan must end all the same: drop what it held. */
		explicit_bzero(b->data, b->len);
		end_loan(b);
		b->len = b->peek_len = b->peek_next = 0;
		return -ENOMEM;
	}
	return 0;
}

/* Returns the offset of the first newline held, or -1. Knows about the peeked line, whose
 * newline was overwritten by linebuf_peek(). */
static ssize_t find_newline(const struct linebuf *b)
{
	const char *nl;

	if (b->peek_next > 0)
		return (ssize_t)b->peek_next - 1;
	if (b->len == 0)
		return -1;
	nl = memchr(b->data, '\n', b->len);
	return nl ? nl - b->data : -1;
}

int linebuf_overflowed(const struct linebuf *b)
{
	return b->len >= b->max && find_newline(b) < 0;
}

/* Grows the allocation to hold at least one more byte, never beyond max. */
static int grow(struct linebuf *b)
{
	size_t size;

	if (b->size >= b->max)
		return -ENOBUFS;
	size = b->size < LINEBUF_INITIAL / 2 ? LINEBUF_INITIAL : b->size * 2;
	if (size > b->max)
		size = b->max;
	return move_to(b, size);
}

ssize_t linebuf_fill(struct linebuf *b, int fd)
{
	ssize_t n;
	size_t room;
	int r;

	if (b->len >= b->max)
		return find_newline(b) < 0 ? -ENOBUFS : -EBUSY;

	if (!b->data && b->loan && b->loan_size > 0) {
		b->data = b->loan;
		b->size = b->loan_size;
		b->lent = true;
	}
	if (b->len == b->size) {
		r = grow(b);
		if (r < 0)
			return r;
	}
	/* grow() never allocates past max, so this never reads past it either. */
	room = b->size - b->len;

	do {
		n = recv(fd, b->data + b->len, room, 0);
		if (n < 0 && errno == ENOTSOCK)
			n = read(fd, b->data + b->len, room);
	} while (n < 0 && errno == EINTR);
	b->more = n > 0 && (size_t)n == room;
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;

	b->len += (size_t)n;
	if (n > 0 && linebuf_overflowed(b))
		return -ENOBUFS;
	return n;
}

int linebuf_peek(struct linebuf *b, char **ret_line, size_t *ret_len)
{
	ssize_t nl;
	size_t len;

	if (b->peek_next == 0) {
		nl = find_newline(b);
		if (nl < 0)
			return 0;
		len = (size_t)nl;
		b->data[len] = '\0';
		if (len > 0 && b->data[len - 1] == '\r')
			b->data[--len] = '\0';
		b->peek_len = len;
		b->peek_next = (size_t)nl + 1;
	}

	*ret_line = b->data;
	*ret_len = b->peek_len;
	return 1;
}

void linebuf_pop(struct linebuf *b)
{
	ssize_t nl = find_newline(b);
	size_t next, rest;

	if (nl < 0)
		return;
	next = (size_t)nl + 1;
	rest = b->len - next;

	/* The remaining bytes cover the start; wipe what is left behind at the end. */
	memmove(b->data, b->data + next, rest);
	explicit_bzero(b->data + rest, next);
	b->len = rest;
	b->peek_len = 0;
	b->peek_next = 0;

	/* Lent storage goes back once nothing is held. */
	if (b->len == 0 && b->lent)
		end_loan(b);
	/* Hand a large buffer back once it is empty: 128 idle clients need not keep 8 MiB. */
	if (b->len == 0 && b->size > LINEBUF_INITIAL) {
		free(b->data);
		b->data = NULL;
		b->size = 0;
	}
}
