/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/vault.h"

struct vault {
	/* crypto_secretbox_KEYBYTES in sodium_malloc memory (locked, guard pages on both sides,
	 * not in core dumps), read-only once made. It stays readable between requests: making it
	 * PROT_NONE cost two mprotect() calls per request, and SECURITY.md says why that guard
	 * buys nothing a non-dumpable, unptraceable process does not already have. */
	unsigned char *key;
};

struct sealed {
	size_t len; /* plaintext bytes */
	/* nonce, then MAC, then len bytes of ciphertext: one run of bytes for sealed_bytes() */
	unsigned char bytes[];
};

#define SEALED_OVERHEAD (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)

/* libsodium's secretbox works on the first 32 bytes of the message in a block on its own stack
 * (crypto_secretbox_detached() and _open_detached() in 1.0.18 wipe the subkey, not that block).
 * Called right after them: overwrites the stack they used, well below the caller's frame. */
static __attribute__((noinline)) void wipe_stack_below(void)
{
	char pad[4096];

	explicit_bzero(pad, sizeof(pad));
	__asm__ volatile("" : : "r"(pad) : "memory");
}

static unsigned char *nonce(const struct sealed *s)
{
	return (unsigned char *)s->bytes;
}

static unsigned char *box(const struct sealed *s)
{
	return (unsigned char *)s->bytes + crypto_secretbox_NONCEBYTES;
}

int vault_new(struct vault **ret)
{
	struct vault *v;

	if (sodium_init() < 0)
		return -EIO;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->key = sodium_malloc(crypto_secretbox_KEYBYTES);
	if (!v->key) {
		free(v);
		return -ENOMEM;
	}
	randombytes_buf(v->key, crypto_secretbox_KEYBYTES);
	if (sodium_mprotect_readonly(v->key) < 0) {
		int r = errno > 0 ? -errno : -EIO;
		sodium_free(v->key);
		free(v);
		return r;
	}

	*ret = v;
	return 0;
}

struct vault *vault_free(struct vault *v)
{
	if (!v)
		return NULL;
	/* sodium_free() makes the region writable again, wipes it and unmaps it. */
	sodium_free(v->key);
	free(v);
	return NULL;
}

int vault_seal(struct vault *v, const char *plain, size_t len, struct sealed **ret)
{
	struct sealed *s;
	int r;

	if (len > SIZE_MAX / 2 - sizeof(struct sealed) - SEALED_OVERHEAD)
		return -ENOMEM;
	s = malloc(sizeof(struct sealed) + SEALED_OVERHEAD + len);
	if (!s)
		return -ENOMEM;
	s->len = len;
	/* A fresh random nonce per seal: 192 bits make collisions a non-issue. */
	randombytes_buf(nonce(s), crypto_secretbox_NONCEBYTES);

	r = crypto_secretbox_easy(
			box(s), (const unsigned char *)(plain ? plain : ""), len, nonce(s), v->key);
	wipe_stack_below();
	if (r != 0) {
		sealed_free(s);
		return -EIO;
	}

	*ret = s;
	return 0;
}

ssize_t vault_open_into(struct vault *v, const struct sealed *s, char *buf, size_t size)
{
	if (s->len >= size)
		return -ENOBUFS;
	int r = crypto_secretbox_open_easy((unsigned char *)buf, box(s),
			crypto_secretbox_MACBYTES + s->len, nonce(s), v->key);

	wipe_stack_below();
	if (r != 0) {
		explicit_bzero(buf, s->len);
		return -EBADMSG;
	}
	buf[s->len] = '\0';
	return (ssize_t)s->len;
}

int vault_open(struct vault *v, const struct sealed *s, struct secret **ret)
{
	struct secret *plain;
	ssize_t n;

	plain = secret_new(s->len + 1);
	if (!plain)
		return -ENOMEM;
	n = vault_open_into(v, s, plain->data, plain->size);
	if (n < 0) {
		secret_free(plain);
		return (int)n;
	}
	plain->len = (size_t)n;
	*ret = plain;
	return 0;
}

size_t sealed_len(const struct sealed *s)
{
	return s->len;
}

unsigned char *sealed_bytes(struct sealed *s, size_t *ret_size)
{
	*ret_size = SEALED_OVERHEAD + s->len;
	return s->bytes;
}

struct sealed *sealed_free(struct sealed *s)
{
	if (!s)
		return NULL;
	/* Ciphertext only, but there is no reason to leave it behind in freed heap. */
	sodium_memzero(s, sizeof(struct sealed) + SEALED_OVERHEAD + s->len);
	free(s);
	return NULL;
}
