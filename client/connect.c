/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>

#include "client/connect.h"
#include "common/util.h"
#include "proto/proto.h"
#include "proto/reply_read.h"

bool connect_profile_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > CONNECT_MAX_PROFILE || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
				    c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static const char *getenv_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

int connect_socket_path(const char *socket_opt, const char *profile_opt, char **ret_path,
		const char **ret_bad, const char **ret_profile)
{
	const char *path = socket_opt, *profile = profile_opt, *runtime;
	char buf[sizeof(((struct sockaddr_un *)NULL)->sun_path) + 1];
	struct stat st;
	char *p;
	int n;

	/* What the command line names beats what the environment names: --socket, -p, then
	 * $REGSCALE_TOKEN_SOCKET, $REGSCALE_TOKEN_PROFILE. */
	if (!path && !profile)
		path = getenv_nonempty("REGSCALE_TOKEN_SOCKET");
	if (path) {
		if (!*path) {
			*ret_bad = path;
			return -EINVAL;
		}
		if (strlen(path) >= sizeof(buf) - 1)
			return -ENAMETOOLONG;
		p = strdup(path);
		if (!p)
			return -ENOMEM;
		*ret_path = p;
		if (ret_profile)
			*ret_profile = NULL;
		return 0;
	}

	if (!profile)
		profile = getenv_nonempty("REGSCALE_TOKEN_PROFILE");
	if (!profile)
		profile = "default";
	if (!connect_profile_valid(profile)) {
		*ret_bad = profile;
		return -EINVAL;
	}

	/* The system-wide daemon wins when it runs; otherwise the user's own. */
	n = snprintf(buf, sizeof(buf), "/run/regscale-token/%s.sock", profile);
	if (n < 0 || (size_t)n >= sizeof(buf) - 1 || stat(buf, &st) < 0) {
		runtime = getenv_nonempty("XDG_RUNTIME_DIR");
		if (runtime)
			n = snprintf(buf, sizeof(buf), "%s/regscale-token/%s.sock", runtime,
					profile);
		else
			n = snprintf(buf, sizeof(buf), "/run/user/%u/regscale-token/%s.sock",
					(unsigned)getuid(), profile);
		if (n < 0 || (size_t)n >= sizeof(buf) - 1)
			return -ENAMETOOLONG;
	}
	p = strdup(buf);
	if (!p)
		return -ENOMEM;
	*ret_path = p;
	if (ret_profile)
		*ret_profile = profile;
	return 0;
}

int64_t connect_now_ms(void)
{
	return (int64_t)(now_monotonic_usec() / 1000);
}

/* The socket blocks, and each call on it is bounded by SO_SNDTIMEO (connect, send) or
 * SO_RCVTIMEO (recv), set before the call to what is left until deadline: one call usually
 * does, where O_NONBLOCK took a call, its EAGAIN, a poll() and the call again. A call that
 * runs out of time fails with EAGAIN; the loop around it then finds the deadline passed. */

/* Sets the timeout opt (SO_SNDTIMEO or SO_RCVTIMEO) of fd to what is left until deadline.
 * Returns 0, -ETIMEDOUT when nothing is left, or -errno. */
static int set_timeout(int fd, int opt, int64_t deadline)
{
	int64_t left = deadline - connect_now_ms();
	struct timeval tv;

	/* Never 0, which means no timeout at all. */
	if (left <= 0)
		return -ETIMEDOUT;
	tv = (struct timeval){.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
	if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

static int connect_unix(int fd, const char *path, int64_t deadline)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	socklen_t salen;

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len);
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);

	/* A connect() to a Unix socket whose listen backlog is full sleeps until the daemon
	 * accepts a connection or SO_SNDTIMEO passes, then fails with EAGAIN: the wait for
	 * room is the kernel's, and ends as soon as there is some. No daemon listening
	 * (ENOENT, ECONNREFUSED) is not waited for. */
	for (;;) {
		int r = set_timeout(fd, SO_SNDTIMEO, deadline);

		if (r < 0)
			return r;
		if (connect(fd, (struct sockaddr *)&sa, salen) == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len > 0) {
		int r = set_timeout(fd, SO_SNDTIMEO, deadline);
		ssize_t n;

		if (r < 0)
			return r;
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads until b holds a complete line. Returns 0, or -errno as connect_exchange()
 * documents. */
static int recv_line(int fd, struct linebuf *b, int64_t deadline, const struct connect_slow *slow,
		char **ret_line, size_t *ret_len)
{
	int64_t slow_at = slow ? connect_now_ms() + CONNECT_SLOW_MS : INT64_MAX;

	for (;;) {
		ssize_t n;
		int r;

		if (linebuf_peek(b, ret_line, ret_len) > 0)
			return 0;
		if (slow_at < deadline) {
			/* Waiting for the first byte: past CONNECT_SLOW_MS, say why, once. */
			struct pollfd p = {.fd = fd, .events = POLLIN};
			int64_t left = slow_at - connect_now_ms();

			r = poll(&p, 1, left > 0 ? (int)left : 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				slow->note(slow->userdata);
			slow_at = INT64_MAX;
		}
		r = set_timeout(fd, SO_RCVTIMEO, deadline);
		if (r < 0)
			return r;
		n = linebuf_fill(b, fd);
		if (n > 0 || n == -EINTR || n == -EAGAIN)
			continue;
		if (n == 0)
			return -ECONNRESET;
		if (n == -ENOBUFS)
			return -EMSGSIZE;
		return (int)n;
	}
}

/* The reply must speak our protocol version. */
static int check_version(const struct reply_read *r)
{
	int64_t v;
	int q;

	q = reply_read_int64(r, PROTO_F_V, &v);
	if (q == -ERANGE)
		return -EPROTO;
	if (q < 0)
		return -EBADMSG;
	return v == PROTO_VERSION ? 0 : -EPROTO;
}

int connect_open(const char *path, int64_t timeout_ms, int *ret_fd)
{
	_cleanup_(closep) int fd = -EBADF;
	int r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect_unix(fd, path, connect_now_ms() + timeout_ms);
	if (r < 0)
		return r;
	*ret_fd = take_fd(&fd);
	return 0;
}

int connect_exchange(int fd, char *req, size_t len, bool wipe, int64_t timeout_ms,
		struct connect_reply *ret)
{
	return connect_exchange_slow(fd, req, len, wipe, timeout_ms, NULL, ret);
}

int connect_exchange_slow(int fd, char *req, size_t len, bool wipe, int64_t timeout_ms,
		const struct connect_slow *slow, struct connect_reply *ret)
{
	int64_t deadline = connect_now_ms() + timeout_ms;
	struct connect_reply rep = {.line = NULL};
	char *line;
	size_t line_len;
	int r, send_r;

	/* If the daemon hangs up while we send (too_many_clients, a shutdown), it may still have
	 * left a reply line saying why: read that before reporting the send error. */
	send_r = send_all(fd, req, len, deadline);
	if (wipe)
		explicit_bzero(req, len);
	if (send_r < 0 && send_r != -EPIPE && send_r != -ECONNRESET)
		return send_r;

	linebuf_init(&rep.buf, PROTO_MAX_LINE);
	r = recv_line(fd, &rep.buf, deadline, slow, &line, &line_len);
	if (r < 0) {
		if (send_r < 0 && r == -ECONNRESET)
			r = send_r;
		goto fail;
	}
	r = reply_read_parse(&rep.r, line, line_len);
	if (r < 0)
		goto fail;
	r = check_version(&rep.r);
	if (r < 0)
		goto fail;

	rep.line = line;
	rep.len = line_len;
	*ret = rep;
	return 0;

fail:
	connect_reply_done(&rep);
	return r;
}

int connect_peer(int fd, struct ucred *ret)
{
	socklen_t len = sizeof(*ret);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ret, &len) < 0)
		return -errno;
	if (len != sizeof(*ret))
		return -EIO;
	return 0;
}

void connect_reply_done(struct connect_reply *r)
{
	/* The reply read points into the line, which linebuf_done() wipes. */
	r->r.n_fields = 0;
	linebuf_done(&r->buf);
	r->line = NULL;
	r->len = 0;
}
