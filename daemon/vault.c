#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "daemon/vault.h"

struct vault {
	/* crypto_secretbox_KEYBYTES in sodium_malloc memory, PROT_NONE except inside
	 * vault_seal() and vault_open(). */
	unsigned char *key;
};

struct sealed {
	size_t len; /* plaintext bytes */
	/* nonce, then MAC, then len bytes of ciphertext: one run of bytes for sealed_bytes() */
	unsigned char bytes[];
};

#define SEALED_OVERHEAD (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)

static unsigned char *nonce(const struct sealed *s)
{
	return (unsigned char *)s->bytes;
}

static unsigned char *box(const struct sealed *s)
{
	return (unsigned char *)s->bytes + crypto_secretbox_NONCEBYTES;
}

static int key_unlock(struct vault *v)
{
	if (sodium_mprotect_readonly(v->key) < 0)
		return errno > 0 ? -errno : -EIO;
	return 0;
}

static void key_lock(struct vault *v)
{
	/* Can only fail if the region is not ours; nothing sensible to do about it but keep
	 * going: the key stays readable, which is no worse than without the guard. */
	(void)sodium_mprotect_noaccess(v->key);
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
	if (sodium_mprotect_noaccess(v->key) < 0) {
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

	r = key_unlock(v);
	if (r < 0) {
		free(s);
		return r;
	}
	r = crypto_secretbox_easy(
			box(s), (const unsigned char *)(plain ? plain : ""), len, nonce(s), v->key);
	key_lock(v);
	if (r != 0) {
		sealed_free(s);
		return -EIO;
	}

	*ret = s;
	return 0;
}

int vault_open(struct vault *v, const struct sealed *s, struct secret **ret)
{
	struct secret *plain;
	int r;

	plain = secret_new(s->len + 1);
	if (!plain)
		return -ENOMEM;

	r = key_unlock(v);
	if (r < 0) {
		secret_free(plain);
		return r;
	}
	r = crypto_secretbox_open_easy((unsigned char *)plain->data, box(s),
			crypto_secretbox_MACBYTES + s->len, nonce(s), v->key);
	key_lock(v);
	if (r != 0) {
		secret_free(plain);
		return -EBADMSG;
	}

	plain->len = s->len;
	plain->data[s->len] = '\0';
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
