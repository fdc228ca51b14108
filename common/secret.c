#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/secret.h"
#include "common/util.h"

struct secret *secret_new(size_t size)
{
	struct secret *s;
	size_t alloc;

	/* sodium_malloc() depends on the page size sodium_init() records; it is idempotent. */
	if (sodium_init() < 0)
		return NULL;
	if (size == 0)
		size = 1; /* always room for the NUL */
	if (size > SIZE_MAX / 2 - sizeof(struct secret))
		return NULL;

	/* sodium_malloc() puts the region right before a guard page, so the address is only as
	 * aligned as the size is: round it up to keep struct secret aligned. */
	alloc = sizeof(struct secret) + size;
	alloc = (alloc + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * _Alignof(max_align_t);
	s = sodium_malloc(alloc);
	if (!s)
		return NULL;
	/* sodium_malloc() fills with a pattern, not zeroes. */
	memset(s, 0, alloc);
	s->size = size;
	return s;
}

struct secret *secret_new_from(const void *data, size_t len)
{
	struct secret *s;

	if (len == SIZE_MAX)
		return NULL;
	s = secret_new(len + 1);
	if (!s)
		return NULL;
	if (len > 0)
		memcpy(s->data, data, len);
	s->len = len;
	return s;
}

struct secret *secret_free(struct secret *s)
{
	/* sodium_free() wipes the whole region before unmapping it. */
	if (s)
		sodium_free(s);
	return NULL;
}

static bool is_trailing_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int secret_read_file(const char *path, size_t max, struct secret **ret)
{
	_cleanup_(closep) int fd = -EBADF;
	_cleanup_(secret_freep) struct secret *s = NULL;
	struct stat st;
	size_t n;
	ssize_t k;

	if (max > SIZE_MAX / 2)
		return -EINVAL;

	/* O_NONBLOCK so that a FIFO does not block the open; it is refused below anyway. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;

	/* Room for max + 1 bytes, so that a file that grew since fstat() is still caught. */
	s = secret_new(max + 2);
	if (!s)
		return -ENOMEM;

	k = loop_read(fd, s->data, max + 1);
	if (k < 0)
		return (int)k;
	n = (size_t)k;
	if (n > max)
		return -EFBIG;

	while (n > 0 && is_trailing_space(s->data[n - 1]))
		s->data[--n] = '\0';
	if (n == 0)
		return -ENODATA;

	s->len = n;
	*ret = s;
	s = NULL;
	return 0;
}
