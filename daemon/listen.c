/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/listen.h"
#include "daemon/log.h"

/* Writes "NAME (uid N)", or "uid N" for a uid without a name, to buf. */
static void describe_uid(uid_t uid, char *buf, size_t size)
{
	const struct passwd *pw = getpwuid(uid);

	if (pw && pw->pw_name)
		snprintf(buf, size, "%s (uid %u)", pw->pw_name, (unsigned)uid);
	else
		snprintf(buf, size, "uid %u", (unsigned)uid);
}

/* Checks the socket's directory dir (found, or just made): whoever may write to it may
 * replace the socket, so it must be a real directory (not followed if a symlink), owned by
 * our euid or root, and writable by nobody else. Returns 0, or -errno logged with what to
 * do. */
static int check_dir(const char *dir)
{
	char owner[128], want[128];
	const char *what;
	struct stat st;
	uid_t me = geteuid();

	if (lstat(dir, &st) < 0)
		return log_error_errno(-errno, "cannot check the socket directory %s", dir);
	if (S_ISLNK(st.st_mode))
		what = "is a symbolic link, not a directory";
	else if (!S_ISDIR(st.st_mode))
		what = "is not a directory";
	else if (st.st_uid != me && st.st_uid != 0)
		what = "belongs to another user, who could replace the socket";
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		what = "is writable by group or others, who could replace the socket";
	else
		return 0;
	/* Names are looked up only for the message. */
	describe_uid(st.st_uid, owner, sizeof(owner));
	describe_uid(me, want, sizeof(want));
	log_error("socket directory %s %s (owner %s, mode %04o); it must be a directory of %s%s "
		  "that only its owner may write to: remove it or pick another socket path",
			dir, what, owner, (unsigned)(st.st_mode & 07777), want,
			me == 0 ? "" : " or root");
	return S_ISDIR(st.st_mode) ? -EPERM : -ENOTDIR;
}

/* Makes the directory of path with mode if it is missing, and checks it either way. */
static int make_parent_dir(const char *path, mode_t mode)
{
	_cleanup_(freep) char *dir = strdup(path);
	char *slash;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash)
		return check_dir("."); /* a bare name: the working directory */
	if (slash == dir)
		return check_dir("/");
	*slash = '\0';
	if (mkdir(dir, mode) < 0 && errno != EEXIST)
		return log_error_errno(-errno, "cannot create the socket directory %s", dir);
	return check_dir(dir);
}

/* Returns true if a daemon accepts connections on path. */
static bool socket_is_live(const struct sockaddr_un *sa, socklen_t len)
{
	_cleanup_(closep) int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return true; /* cannot tell: never steal */
	if (connect(fd, (const struct sockaddr *)sa, len) == 0)
		return true;
	/* EAGAIN: the listener's backlog is full, so it is very much alive. */
	return errno != ECONNREFUSED && errno != ENOENT;
}

int listen_unix_path(const char *path, bool shared, int *ret_fd, ino_t *ret_ino)
{
	_cleanup_(closep) int fd = -EBADF;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;
	struct stat st;
	mode_t old_umask;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error_errno(-ENAMETOOLONG, "socket path \"%s\" is too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);

	/* The directory (when we make it) gets its final mode from mkdir itself. */
	old_umask = umask(0);
	r = make_parent_dir(path, shared ? 0755 : 0700);
	umask(old_umask);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(-errno, "cannot create a socket");

	/* The mode is right from the moment the file exists: no chmod window. Shared: anybody
	 * may connect and access_check() decides; else only our uid can even connect. */
	old_umask = umask(shared ? 0111 : 0177);
	r = bind(fd, (struct sockaddr *)&sa, len) < 0 ? -errno : 0;
	if (r == -EADDRINUSE) {
		if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
			r = -EEXIST;
		else if (socket_is_live(&sa, len))
			r = -EADDRINUSE;
		else {
			log_notice("replacing stale socket %s (no daemon answers on it)", path);
			(void)unlink(path);
			r = bind(fd, (struct sockaddr *)&sa, len) < 0 ? -errno : 0;
		}
	}
	umask(old_umask);
	if (r == -EEXIST)
		return log_error_errno(r, "%s exists and is not a socket; not touching it", path);
	if (r == -EADDRINUSE)
		return log_error_errno(r,
				"another daemon is serving %s; stop it first or use "
				"another --socket",
				path);
	if (r < 0)
		return log_error_errno(r, "cannot bind %s", path);
	if (listen(fd, SOMAXCONN) < 0)
		return log_error_errno(-errno, "cannot listen on %s", path);
	if (lstat(path, &st) < 0)
		return log_error_errno(-errno, "cannot stat %s after binding it", path);
	*ret_ino = st.st_ino;
	*ret_fd = take_fd(&fd);
	return 0;
}

int listen_socket_path(int fd, char **ret)
{
	struct sockaddr_un sa = {0};
	socklen_t len = sizeof(sa);
	size_t n;
	char *p;

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -errno;
	if (sa.sun_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path))
		return -EADDRNOTAVAIL;
	n = len - offsetof(struct sockaddr_un, sun_path);
	if (sa.sun_path[0] == '\0') {
		/* Abstract: "@NAME", as ss(8) and systemd write it; a NUL inside ends it. */
		n = strnlen(sa.sun_path + 1, n - 1);
		if (asprintf(&p, "@%.*s", (int)n, sa.sun_path + 1) < 0)
			return -ENOMEM;
	} else {
		p = strndup(sa.sun_path, strnlen(sa.sun_path, n));
		if (!p)
			return -ENOMEM;
	}
	*ret = p;
	return 0;
}
