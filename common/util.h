/* Small helpers shared by every program: _cleanup_ attributes and fd ownership. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f)  __attribute__((cleanup(f)))
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
	*fd = -EBADF;
}

static inline int take_fd(int *fd)
{
	int r = *fd;
	*fd = -EBADF;
	return r;
}

/* Reads from fd until size bytes arrived or end of file. Returns the bytes read, or -errno. */
static inline ssize_t loop_read(int fd, void *buf, size_t size)
{
	size_t n = 0;

	while (n < size) {
		ssize_t k = read(fd, (char *)buf + n, size - n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	return (ssize_t)n;
}

/* Writes all of buf[0..size) to fd. Returns 0, or -errno. */
static inline int loop_write(int fd, const void *buf, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t k = write(fd, (const char *)buf + done, size - done);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)k;
	}
	return 0;
}

static inline void freep(void *p)
{
	free(*(void **)p);
}
