/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/secret.h"
#include "daemon/vault.h"

/* ---- secret ---- */

static void test_secret_new(void **state)
{
	struct secret *s = secret_new(64);

	assert_non_null(s);
	assert_int_equal(s->len, 0);
	assert_int_equal(s->size, 64);
	for (size_t i = 0; i < s->size; i++)
		assert_int_equal(s->data[i], 0);
	assert_null(secret_free(s));
	assert_null(secret_free(NULL));

	s = secret_new(0); /* still room for the NUL */
	assert_non_null(s);
	assert_true(s->size >= 1);
	assert_int_equal(s->data[0], 0);
	secret_free(s);

	assert_null(secret_new(SIZE_MAX));

	s = secret_new_from("hunter2xyz", 7);
	assert_non_null(s);
	assert_int_equal(s->len, 7);
	assert_true(s->size > 7);
	assert_string_equal(s->data, "hunter2");
	secret_free(s);

	s = secret_new_from(NULL, 0);
	assert_non_null(s);
	assert_int_equal(s->len, 0);
	assert_string_equal(s->data, "");
	secret_free(s);

	/* sodium_malloc() returns addresses only as aligned as the size asked for */
	for (size_t size = 1; size <= 64; size++) {
		s = secret_new(size);
		assert_non_null(s);
		assert_int_equal((uintptr_t)s % _Alignof(struct secret), 0);
		assert_int_equal(s->size, size);
		memset(s->data, 'x', size - 1);
		assert_int_equal(s->data[size - 1], '\0');
		secret_free(s);
	}
}

struct tmpdir {
	char path[64];
};

static int tmpdir_setup(void **state)
{
	struct tmpdir *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	strcpy(d->path, "/tmp/test-vault-XXXXXX");
	if (!mkdtemp(d->path))
		return -1;
	*state = d;
	return 0;
}

static int tmpdir_teardown(void **state)
{
	struct tmpdir *d = *state;
	char *cmd;

	if (asprintf(&cmd, "rm -rf '%s'", d->path) < 0)
		return -1;
	if (system(cmd) != 0)
		return -1;
	free(cmd);
	free(d);
	return 0;
}

static char *write_file(const struct tmpdir *d, const char *name, const void *data, size_t len)
{
	char *path;
	int fd;

	assert_true(asprintf(&path, "%s/%s", d->path, name) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static int read_str(const struct tmpdir *d, const char *content, size_t max, struct secret **ret)
{
	char *path = write_file(d, "f", content, strlen(content));
	int r = secret_read_file(path, max, ret);

	free(path);
	return r;
}

static void test_secret_read_file(void **state)
{
	const struct tmpdir *d = *state;
	struct secret *s = NULL, *sentinel = (struct secret *)&s;

	assert_int_equal(read_str(d, "eyJ.abc.def\n", 100, &s), 0);
	assert_int_equal(s->len, 11);
	assert_string_equal(s->data, "eyJ.abc.def");
	s = secret_free(s);

	/* trailing whitespace of every kind goes, leading and inner whitespace stays */
	assert_int_equal(read_str(d, "  pass word \t\r\n\n \f\v", 100, &s), 0);
	assert_int_equal(s->len, 11);
	assert_string_equal(s->data, "  pass word");
	assert_int_equal(s->data[s->len], '\0');
	s = secret_free(s);

	/* no newline at all */
	assert_int_equal(read_str(d, "x", 100, &s), 0);
	assert_string_equal(s->data, "x");
	s = secret_free(s);

	/* empty, or nothing but whitespace; *ret untouched */
	s = sentinel;
	assert_int_equal(read_str(d, "", 100, &s), -ENODATA);
	assert_int_equal(read_str(d, "\n", 100, &s), -ENODATA);
	assert_int_equal(read_str(d, " \r\n\t\n", 100, &s), -ENODATA);
	assert_ptr_equal(s, sentinel);

	/* exactly max bytes, and one more */
	assert_int_equal(read_str(d, "0123456789", 10, &s), 0);
	assert_string_equal(s->data, "0123456789");
	s = secret_free(s);
	s = sentinel;
	assert_int_equal(read_str(d, "0123456789A", 10, &s), -EFBIG);
	/* the limit is on the file, trailing newline included */
	assert_int_equal(read_str(d, "0123456789\n", 10, &s), -EFBIG);
	assert_ptr_equal(s, sentinel);
	s = NULL;

	/* a NUL byte is just a byte */
	char *path = write_file(d, "nul", "ab\0cd\n", 6);
	assert_int_equal(secret_read_file(path, 100, &s), 0);
	assert_int_equal(s->len, 5);
	assert_memory_equal(s->data, "ab\0cd", 6);
	s = secret_free(s);
	free(path);
}

static void test_secret_read_file_errors(void **state)
{
	const struct tmpdir *d = *state;
	struct secret *s = NULL;
	char *path, *link, *fifo;

	assert_true(asprintf(&path, "%s/missing", d->path) > 0);
	assert_int_equal(secret_read_file(path, 100, &s), -ENOENT);
	assert_null(s);

	/* a dangling symlink is a missing file, a symlink to a file is the file */
	assert_true(asprintf(&link, "%s/link", d->path) > 0);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(secret_read_file(link, 100, &s), -ENOENT);
	free(path);
	path = write_file(d, "target", "tok\n", 4);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(secret_read_file(link, 100, &s), 0);
	assert_string_equal(s->data, "tok");
	s = secret_free(s);
	free(link);
	free(path);

	/* a directory */
	assert_int_equal(secret_read_file(d->path, 100, &s), -EINVAL);
	assert_int_equal(secret_read_file("/", 100, &s), -EINVAL);

	/* a FIFO without writer: refused, not waited on */
	assert_true(asprintf(&fifo, "%s/fifo", d->path) > 0);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(secret_read_file(fifo, 100, &s), -EINVAL);
	free(fifo);

	/* a character device */
	assert_int_equal(secret_read_file("/dev/null", 100, &s), -EINVAL);

	/* not readable (root reads anything, so only check when we are not root) */
	path = write_file(d, "noperm", "x", 1);
	assert_int_equal(chmod(path, 0), 0);
	if (geteuid() != 0)
		assert_int_equal(secret_read_file(path, 100, &s), -EACCES);
	free(path);
	assert_null(s);
}

/* ---- vault ---- */

static void test_roundtrip(void **state)
{
	struct vault *v = NULL;
	struct sealed *s = NULL;
	struct secret *p = NULL;
	const char *plain = "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IngifQ.c2ln";

	assert_int_equal(vault_new(&v), 0);
	assert_non_null(v);
	assert_int_equal(vault_seal(v, plain, strlen(plain), &s), 0);
	assert_int_equal(sealed_len(s), strlen(plain));

	/* open as often as needed: the key is locked again after each use */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vault_open(v, s, &p), 0);
		assert_int_equal(p->len, strlen(plain));
		assert_true(p->size > p->len);
		assert_string_equal(p->data, plain);
		p = secret_free(p);
	}

	/* the plaintext is nowhere in the sealed bytes */
	size_t n;
	unsigned char *b = sealed_bytes(s, &n);
	assert_int_equal(
			n, crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + strlen(plain));
	assert_null(memmem(b, n, "eyJ", 3));

	sealed_free(s);
	assert_null(sealed_free(NULL));
	assert_null(vault_free(v));
	assert_null(vault_free(NULL));
}

static void test_empty(void **state)
{
	struct vault *v = NULL;
	struct sealed *s = NULL;
	struct secret *p = NULL;

	assert_int_equal(vault_new(&v), 0);
	assert_int_equal(vault_seal(v, "", 0, &s), 0);
	assert_int_equal(sealed_len(s), 0);
	assert_int_equal(vault_open(v, s, &p), 0);
	assert_int_equal(p->len, 0);
	assert_string_equal(p->data, "");
	secret_free(p);
	sealed_free(s);
	vault_free(v);
}

static void test_tamper(void **state)
{
	struct vault *v = NULL;
	struct sealed *s = NULL;
	struct secret *p = NULL;
	const char *plain = "a.b.c";
	unsigned char *b;
	size_t n;

	assert_int_equal(vault_new(&v), 0);
	assert_int_equal(vault_seal(v, plain, strlen(plain), &s), 0);
	b = sealed_bytes(s, &n);

	/* every single bit of nonce, MAC and ciphertext is covered */
	for (size_t i = 0; i < n; i++)
		for (int bit = 0; bit < 8; bit++) {
			struct secret *q = (struct secret *)&v;
			b[i] ^= (unsigned char)(1u << bit);
			assert_int_equal(vault_open(v, s, &q), -EBADMSG);
			assert_ptr_equal(q, (struct secret *)&v); /* untouched */
			b[i] ^= (unsigned char)(1u << bit);
		}

	/* restored, it opens again */
	assert_int_equal(vault_open(v, s, &p), 0);
	assert_string_equal(p->data, plain);
	secret_free(p);
	sealed_free(s);
	vault_free(v);
}

static void test_other_vault(void **state)
{
	struct vault *v1 = NULL, *v2 = NULL;
	struct sealed *s = NULL;
	struct secret *p = NULL;

	assert_int_equal(vault_new(&v1), 0);
	assert_int_equal(vault_new(&v2), 0);
	assert_int_equal(vault_seal(v1, "secret", 6, &s), 0);
	assert_int_equal(vault_open(v2, s, &p), -EBADMSG);
	assert_null(p);
	assert_int_equal(vault_open(v1, s, &p), 0);
	assert_string_equal(p->data, "secret");
	secret_free(p);
	sealed_free(s);
	vault_free(v1);
	vault_free(v2);
}

static void test_nonces_differ(void **state)
{
	struct vault *v = NULL;
	struct sealed *a = NULL, *b = NULL;
	unsigned char *ba, *bb;
	size_t na, nb;
	const char *plain = "same plaintext, same key";

	assert_int_equal(vault_new(&v), 0);
	assert_int_equal(vault_seal(v, plain, strlen(plain), &a), 0);
	assert_int_equal(vault_seal(v, plain, strlen(plain), &b), 0);
	ba = sealed_bytes(a, &na);
	bb = sealed_bytes(b, &nb);
	assert_int_equal(na, nb);
	assert_memory_not_equal(ba, bb, crypto_secretbox_NONCEBYTES);
	/* and so the ciphertexts (MAC included) differ too */
	assert_memory_not_equal(ba + crypto_secretbox_NONCEBYTES, bb + crypto_secretbox_NONCEBYTES,
			na - crypto_secretbox_NONCEBYTES);
	sealed_free(a);
	sealed_free(b);
	vault_free(v);
}

static void test_big(void **state)
{
	const size_t len = 4 * 1024 * 1024 + 3;
	struct vault *v = NULL;
	struct sealed *s = NULL;
	struct secret *p = NULL;
	char *plain = malloc(len);

	assert_non_null(plain);
	randombytes_buf(plain, len);
	assert_int_equal(vault_new(&v), 0);
	assert_int_equal(vault_seal(v, plain, len, &s), 0);
	assert_int_equal(sealed_len(s), len);
	assert_int_equal(vault_open(v, s, &p), 0);
	assert_int_equal(p->len, len);
	assert_memory_equal(p->data, plain, len);
	assert_int_equal(p->data[len], '\0');
	secret_free(p);
	sealed_free(s);
	vault_free(v);
	free(plain);
}

static void test_many_vaults(void **state)
{
	/* keys are independent and every vault works while others exist */
	struct vault *v[8];
	struct sealed *s[8];
	struct secret *p;
	char text[16];

	for (int i = 0; i < 8; i++) {
		assert_int_equal(vault_new(&v[i]), 0);
		snprintf(text, sizeof(text), "token-%d", i);
		assert_int_equal(vault_seal(v[i], text, strlen(text), &s[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		snprintf(text, sizeof(text), "token-%d", i);
		assert_int_equal(vault_open(v[i], s[i], &p), 0);
		assert_string_equal(p->data, text);
		secret_free(p);
		assert_int_equal(vault_open(v[(i + 1) % 8], s[i], &p), -EBADMSG);
	}
	for (int i = 0; i < 8; i++) {
		sealed_free(s[i]);
		vault_free(v[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
			cmocka_unit_test(test_secret_new),
			cmocka_unit_test_setup_teardown(
					test_secret_read_file, tmpdir_setup, tmpdir_teardown),
			cmocka_unit_test_setup_teardown(test_secret_read_file_errors, tmpdir_setup,
					tmpdir_teardown),
			cmocka_unit_test(test_roundtrip),
			cmocka_unit_test(test_empty),
			cmocka_unit_test(test_tamper),
			cmocka_unit_test(test_other_vault),
			cmocka_unit_test(test_nonces_differ),
			cmocka_unit_test(test_big),
			cmocka_unit_test(test_many_vaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
