#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/listen.h"
#include "daemon/log.h"

static int make_parent_dir(const char *path, mode_t mode)
{
	_cleanup_(freep) char *dir = strdup(path);
	char *slash;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, mode) < 0 && errno != EEXIST)
		return log_error_errno(-errno, "cannot create the socket directory %s", dir);
	return 0;
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
