/* SPDX-License-Identifier: MIT */
/* Small helpers shared by every program: _cleanup_ attributes, fd ownership, whole reads and
 * writes, the monotonic clock. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
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

/* Returns CLOCK_MONOTONIC in microseconds: the clock of timeouts and uptime. */
static inline uint64_t now_monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

/* Frees p and returns NULL: x = mfree(x). */
static inline void *mfree(void *p)
{
	free(p);
	return NULL;
}

static inline void freep(void *p)
{
	free(*(void **)p);
}
