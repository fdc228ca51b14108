/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/privdir.h"
#include "common/util.h"

/* A directory this young is not swept even when unlocked: its maker may not have locked it
 * yet (it does so right after mkdtemp()). */
#define PRIVDIR_GRACE_S 10

/* Deeper than this, privdir_remove() gives up: nothing we run nests that far. */
#define PRIVDIR_MAX_DEPTH 32

/* $XDG_RUNTIME_DIR (a tmpfs of the user's, removed at the last logout) when it is a directory
 * we may write, else /tmp. */
static const char *base_dir(void)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	struct stat st;

	if (x && x[0] == '/' && stat(x, &st) == 0 && S_ISDIR(st.st_mode) &&
			access(x, W_OK | X_OK) == 0)
		return x;
	return "/tmp";
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* Removes everything in the directory dfd, not following symbolic links: a link is removed,
 * never what it points to. Returns 0 or the first -errno met. */
static int remove_contents(int dfd, int depth)
{
	int first = 0;

	if (depth > PRIVDIR_MAX_DEPTH)
		return -ELOOP;
	/* Removing entries while reading the directory may hide others from readdir(): read it
	 * again until a pass finds nothing left to remove. */
	for (bool again = true; again;) {
		_cleanup_(closedirp) DIR *dir = NULL;
		int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
		struct dirent *de;

		if (fd < 0)
			return -errno;
		dir = fdopendir(fd);
		if (!dir) {
			close(fd);
			return -errno;
		}
		rewinddir(dir);
		again = false;
		while ((de = readdir(dir))) {
			const char *name = de->d_name;
			struct stat st;
			int r = 0;

			if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
				continue;
			if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				r = errno == ENOENT ? 0 : -errno;
			} else if (S_ISDIR(st.st_mode)) {
				_cleanup_(closep) int sub = openat(dfd, name,
						O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

				r = sub < 0 ? -errno : remove_contents(sub, depth + 1);
				if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && r == 0)
					r = -errno;
			} else if (unlinkat(dfd, name, 0) < 0) {
				r = -errno;
			}
			if (r < 0) {
				if (first == 0)
					first = r;
			} else {
				again = true;
			}
		}
		if (first < 0)
			return first;
	}
	return 0;
}

/* Removes the directories PRIVDIR_PREFIX* in base that are ours and that nobody holds locked:
 * what clients killed with SIGKILL left behind. */
static void sweep(const char *base)
{
	_cleanup_(closedirp) DIR *dir = NULL;
	_cleanup_(closep) int bfd = -EBADF;
	time_t now = time(NULL);
	struct dirent *de;
	int fd;

	bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0)
		return;
	fd = fcntl(bfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return;
	}
	while ((de = readdir(dir))) {
		_cleanup_(closep) int d = -EBADF;
		struct stat st;

		if (strncmp(de->d_name, PRIVDIR_PREFIX, strlen(PRIVDIR_PREFIX)) != 0)
			continue;
		d = openat(bfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d < 0 || fstat(d, &st) < 0 || st.st_uid != getuid() ||
				now - st.st_ctime < PRIVDIR_GRACE_S)
			continue;
		/* Held by a live client: in use. */
		if (flock(d, LOCK_EX | LOCK_NB) < 0)
			continue;
		if (remove_contents(d, 0) == 0)
			(void)unlinkat(bfd, de->d_name, AT_REMOVEDIR);
	}
}

int privdir_make(struct privdir *ret)
{
	const char *base = base_dir();
	struct privdir d;
	int n;

	sweep(base);
	n = snprintf(d.path, sizeof(d.path), "%s/" PRIVDIR_PREFIX "XXXXXX", base);
	if (n < 0 || (size_t)n >= sizeof(d.path))
		return -ENAMETOOLONG;
	if (!mkdtemp(d.path))
		return -errno;
	d.fd = open(d.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* mkdtemp() made it 0700 less the umask: 0700 whatever the umask. */
	if (d.fd < 0 || fchmod(d.fd, 0700) < 0 || flock(d.fd, LOCK_EX | LOCK_NB) < 0) {
		int r = -errno;

		closep(&d.fd);
		(void)rmdir(d.path);
		return r;
	}
	*ret = d;
	return 0;
}

int privdir_remove(struct privdir *d)
{
	int r;

	if (d->fd < 0)
		return 0;
	r = remove_contents(d->fd, 0);
	if (rmdir(d->path) < 0 && r == 0)
		r = -errno;
	closep(&d->fd);
	return r;
}
