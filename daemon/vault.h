/* SPDX-License-Identifier: MIT */
/* Encryption of secrets at rest in daemon memory: crypto_secretbox with a random key that
 * lives in read-only sodium_malloc memory. A secret is decrypted only to answer one request,
 * into guarded memory, and wiped right after. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "common/secret.h"

struct vault;

/* A sealed (encrypted) secret: nonce + MAC + ciphertext. Not secret by itself. */
struct sealed;

/* Creates a vault with a fresh random key. Returns 0 and the vault in *ret (owned by the
 * caller, vault_free), -ENOMEM, or -EIO if libsodium cannot be initialised. Calls
 * sodium_init() if needed. */
int vault_new(struct vault **ret);

/* Wipes the key and frees v (NULL is fine). Returns NULL. */
struct vault *vault_free(struct vault *v);

/* Encrypts plain[0..len) under v's key. Returns 0 and a new sealed secret in *ret (owned by
 * the caller, sealed_free), or -ENOMEM. */
int vault_seal(struct vault *v, const char *plain, size_t len, struct sealed **ret);

/* Decrypts s into a new secret (owned by the caller, secret_free). Returns 0, -EBADMSG if
 * s fails authentication, or -ENOMEM. */
int vault_open(struct vault *v, const struct sealed *s, struct secret **ret);

/* Decrypts s into buf[0..size) (guarded memory of the caller's), NUL-terminated. Allocates
 * nothing and makes no system call. Returns the plaintext length, -ENOBUFS if it does not fit
 * with its NUL, or -EBADMSG if s fails authentication (buf then holds nothing of it). */
ssize_t vault_open_into(struct vault *v, const struct sealed *s, char *buf, size_t size);

/* Returns the plaintext length of s. */
size_t sealed_len(const struct sealed *s);

/* Returns the stored bytes of s (nonce, MAC, ciphertext: nothing secret), owned by s, and
 * their number in *ret_size. For tests, which check nonces and tampering through it. */
unsigned char *sealed_bytes(struct sealed *s, size_t *ret_size);

/* Wipes and frees s (NULL is fine). Returns NULL. */
struct sealed *sealed_free(struct sealed *s);
