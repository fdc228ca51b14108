/* Small helpers shared by every program: _cleanup_ attributes and fd ownership. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
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

static inline void freep(void *p)
{
	free(*(void **)p);
}
