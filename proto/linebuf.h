/* SPDX-License-Identifier: MIT */
/* A receive buffer that splits a byte stream into newline-terminated lines, bounded by a
 * maximum line length. Bytes that held a request are wiped before the memory is reused
 * or freed, because a request may carry a password. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct linebuf {
	char *data;
	size_t len;  /* bytes held */
	size_t size; /* bytes allocated (or lent) */
	/* Storage lent by linebuf_lend(), used while the buffer has none of its own; data points
	 * into it while lent is true. */
	char *loan;
	size_t loan_size;
	bool lent;
	/* The last linebuf_fill() read as much as it had room for: the fd may hold more. A
	 * shorter read emptied a socket's receive queue (at that moment). */
	bool more;
	size_t max; /* longest accepted line, newline included */
	/* The line linebuf_peek() returned, whose newline is already overwritten: its length
	 * and the offset just past its newline (0 when no line is peeked). */
	size_t peek_len;
	size_t peek_next;
};

/* Initialises an empty buffer accepting lines of up to max bytes (newline included). */
void linebuf_init(struct linebuf *b, size_t max);

/* Wipes and frees the buffer's memory; b may be reused after linebuf_init(). */
void linebuf_done(struct linebuf *b);

/* Reads once from fd (recv, non-blocking is fine) and appends. Returns the number of bytes
 * read, 0 at end of stream, -EAGAIN if nothing was ready, -ENOBUFS when the buffer holds
 * max bytes without a newline (the line is too long), -EBUSY without reading when it holds
 * max bytes of which some are complete lines (pop them first), or another -errno. The buffer
 * never holds more than max bytes. */
ssize_t linebuf_fill(struct linebuf *b, int fd);

/* Finds the first complete line. Returns 1 and points *ret_line at it (NUL-terminated in
 * place, the newline and a preceding '\r' removed) with its length in *ret_len, or 0 when
 * no complete line is held. The line stays valid until linebuf_pop(). */
int linebuf_peek(struct linebuf *b, char **ret_line, size_t *ret_len);

/* Drops the first complete line (the one linebuf_peek() returned), wiping its bytes. */
void linebuf_pop(struct linebuf *b);

/* Lends b the storage buf[0..size) for the next linebuf_fill() when b holds nothing then:
 * many buffers can share one, so a connection between requests holds no memory. Before buf
 * is used for another buffer, linebuf_keep() must be called on b. */
void linebuf_lend(struct linebuf *b, char *buf, size_t size);

/* Ends a loan: what b holds in lent storage (a partial line, lines not answered yet) is moved
 * to memory of its own, and the lent bytes are wiped. Returns 0 or -ENOMEM (b then holds
 * nothing, and the bytes are wiped all the same). */
int linebuf_keep(struct linebuf *b);

/* Returns true when the buffer holds max bytes or more without a newline. */
int linebuf_overflowed(const struct linebuf *b);
