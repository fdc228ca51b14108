/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
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

/* Writes the name of uid to buf, or "uid N" (with bare, "N", as chown takes it) when it
 * has none. */
static void describe_uid(uid_t uid, bool bare, char *buf, size_t size)
{
	const struct passwd *pw = getpwuid(uid);

	if (pw && pw->pw_name)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, bare ? "%u" : "uid %u", (unsigned)uid);
}

/* Returns 0 if the file st describes is the daemon's alone: owned by our euid or root, and
 * no permission bit for group or others (what OpenSSH wants of a private key). Else -EPERM,
 * with a reason naming path, mode, owner and the fix. */
static int check_private(const char *path, const struct stat *st, char *reason, size_t size)
{
	uid_t me = geteuid();
	unsigned mode = (unsigned)(st->st_mode & 07777);
	bool loose = (st->st_mode & (S_IRWXG | S_IRWXO)) != 0;
	char owner[64], want[64], chown_to[64];

	/* Names are looked up only for the message: a good file costs no NSS lookup. */
	if (st->st_uid != me && st->st_uid != 0) {
		describe_uid(st->st_uid, false, owner, sizeof(owner));
		describe_uid(me, false, want, sizeof(want));
		describe_uid(me, true, chown_to, sizeof(chown_to));
		snprintf(reason, size,
				"%s is owned by %s, not by %s%s (mode %04o): another user controls "
				"it, so it is refused; run chown %s %s%s%s",
				path, owner, want, me == 0 ? "" : " or root", mode, chown_to, path,
				loose ? " and chmod 600 " : "", loose ? path : "");
		return -EPERM;
	}
	if (loose) {
		describe_uid(st->st_uid, false, owner, sizeof(owner));
		snprintf(reason, size,
				"%s has mode %04o (owner %s): group or others may access it, so it "
				"is refused; run chmod 600 %s",
				path, mode, owner, path);
		return -EPERM;
	}
	return 0;
}

static int read_file(const char *path, size_t max, bool private, struct secret **ret, char *reason,
		size_t reason_size)
{
	_cleanup_(closep) int fd = -EBADF;
	_cleanup_(secret_freep) struct secret *s = NULL;
	struct stat st;
	size_t n;
	ssize_t k;
	int r;

	if (max > SIZE_MAX / 2)
		return -EINVAL;

	/* O_NONBLOCK so that a FIFO does not block the open; it is refused below anyway. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	/* The checks are on the file opened, not on the path: nothing can swap it between. */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (private && (r = check_private(path, &st, reason, reason_size)) < 0)
		return r;
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

int secret_read_file(const char *path, size_t max, struct secret **ret)
{
	return read_file(path, max, false, ret, NULL, 0);
}

int secret_read_private_file(
		const char *path, size_t max, struct secret **ret, char *ret_reason, size_t size)
{
	if (size > 0)
		ret_reason[0] = '\0';
	return read_file(path, max, true, ret, ret_reason, size);
}
