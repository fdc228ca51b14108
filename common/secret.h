/* SPDX-License-Identifier: MIT */
/* Secret bytes (JWT, password, service token) in libsodium guarded memory: locked, excluded
 * from core dumps, wiped on free. Nothing secret is ever held in ordinary heap memory. */
#pragma once

#include <stddef.h>
#include <string.h>

struct secret {
	size_t len;  /* bytes used, data[len] is always '\0' */
	size_t size; /* bytes available in data, including room for the terminating NUL */
	char data[];
};

/* Returns a zeroed secret with room for size-1 bytes plus a NUL, in sodium_malloc memory,
 * owned by the caller (secret_free), or NULL when out of memory. */
struct secret *secret_new(size_t size);

/* Returns a new secret holding a copy of data[0..len), or NULL when out of memory. */
struct secret *secret_new_from(const void *data, size_t len);

/* Wipes and frees s (NULL is fine). Returns NULL. */
struct secret *secret_free(struct secret *s);

/* Wipes the bytes in use and marks s empty, keeping its memory for reuse. */
static inline void secret_clear(struct secret *s)
{
	explicit_bzero(s->data, s->len);
	s->len = 0;
}

static inline void secret_freep(struct secret **s)
{
	*s = secret_free(*s);
}

/* Reads the file at path into a new secret with read(2) (no stdio buffers), removing
 * trailing whitespace (newline, CR, spaces). Returns 0 and the secret in *ret, -EFBIG if
 * the file is longer than max bytes, -ENODATA if it is empty after trimming, or -errno. */
int secret_read_file(const char *path, size_t max, struct secret **ret);

/* secret_read_file() for a secret the daemon was pointed at (password_file, token_file):
 * the file opened must also be owned by the effective uid or root and give group and
 * others no permission at all (checked with fstat() on the open file). Returns the same,
 * or -EPERM with a one-line reason in ret_reason (size bytes; "" on other errors) naming
 * the file, its mode and owner and the fix ("run chmod 600 FILE"). */
int secret_read_private_file(
		const char *path, size_t max, struct secret **ret, char *ret_reason, size_t size);
