/* SPDX-License-Identifier: MIT */
/* refserver: the reference server of tests/bench/run, the physical floor of serving one fixed
 * reply line per request line over a Unix stream socket.
 *
 *   refserver --socket PATH (--reply-bytes N | --reply-file FILE)
 *
 * One thread, one level-triggered epoll set, non-blocking sockets, any number of
 * connections. The server does not parse requests: every '\n' received is owed one reply
 * (the file's exact bytes, e.g. a real `get` reply of the daemon, or N-1 bytes of 'x' and a
 * newline). Per request on a persistent connection that is one epoll_wait(), one recv() and
 * one send(), and no allocation: a connection's state is a slot in a table indexed by its
 * fd, which only grows when a higher fd shows up. With $NOTIFY_SOCKET set it sends READY=1
 * there once it listens, with one sendto() (what sd_notify() does, without libsystemd).
 * Runs until killed. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"

#define MAX_EVENTS 256

struct conn {
	bool open;
	bool want_out; /* EPOLLOUT is armed: the socket was full */
	uint64_t owed; /* replies still to send, the current one included */
	size_t off;    /* bytes of the current reply sent already */
};

static struct conn *conns;
static size_t n_conns; /* slots in conns */
static char *reply;
static size_t reply_len;
static char inbuf[65536];

/* Returns the slot of fd, growing the table when needed, or NULL when out of memory. */
static struct conn *conn_slot(int fd)
{
	if ((size_t)fd >= n_conns) {
		size_t n = n_conns ? n_conns : 64;
		struct conn *p;

		while (n <= (size_t)fd)
			n *= 2;
		p = realloc(conns, n * sizeof(*p));
		if (!p)
			return NULL;
		memset(p + n_conns, 0, (n - n_conns) * sizeof(*p));
		conns = p;
		n_conns = n;
	}
	return &conns[fd];
}

static void conn_close(int fd)
{
	conns[fd] = (struct conn){0};
	close(fd); /* also takes it out of the epoll set */
}

/* Sends what fd is owed. Returns 0 (all sent, or the socket is full and EPOLLOUT armed), or
 * -errno when the connection is to be closed. */
static int conn_flush(int ep, int fd)
{
	struct conn *c = &conns[fd];
	struct epoll_event ev = {.data.fd = fd};

	while (c->owed > 0) {
		ssize_t n = send(fd, reply + c->off, reply_len - c->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			if (!c->want_out) {
				ev.events = EPOLLIN | EPOLLOUT;
				if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0)
					return -errno;
				c->want_out = true;
			}
			return 0;
		}
		c->off += (size_t)n;
		if (c->off == reply_len) {
			c->off = 0;
			c->owed--;
		}
	}
	if (c->want_out) {
		ev.events = EPOLLIN;
		if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0)
			return -errno;
		c->want_out = false;
	}
	return 0;
}

/* Reads what fd has (level-triggered: one recv() per wake-up is enough, epoll reports what is
 * left) and owes one reply per newline. Returns 0, 1 at end of stream (answer, then close),
 * or -errno when the connection is to be closed. */
static int conn_read(int fd)
{
	ssize_t n = recv(fd, inbuf, sizeof(inbuf), 0);
	const char *p, *end;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 1;
	for (p = inbuf, end = inbuf + n; (p = memchr(p, '\n', (size_t)(end - p))); p++)
		conns[fd].owed++;
	return 0;
}

static void accept_all(int ep, int lfd)
{
	for (int i = 0; i < 64; i++) {
		struct epoll_event ev = {.events = EPOLLIN};
		struct conn *c;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return; /* EAGAIN, or a passing error: epoll reports the rest */
		c = conn_slot(fd);
		ev.data.fd = fd;
		if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			continue;
		}
		*c = (struct conn){.open = true};
	}
}

static int listen_on(const char *path)
{
	_cleanup_(closep) int fd = -EBADF;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0)
		return -errno;
	return take_fd(&fd);
}

/* READY=1 to $NOTIFY_SOCKET, if set: a path, or an abstract name written "@name". */
static void notify_ready(void)
{
	static const char msg[] = "READY=1";
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_(closep) int fd = -EBADF;
	size_t len;

	if (!path || !path[0] || (len = strlen(path)) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL, (struct sockaddr *)&sa,
			(socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
}

/* Reads all of path into reply. Returns 0, or -errno. */
static int load_reply(const char *path)
{
	_cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0 || st.st_size > (1 << 24))
		return -EINVAL;
	reply = malloc((size_t)st.st_size);
	if (!reply)
		return -ENOMEM;
	n = loop_read(fd, reply, (size_t)st.st_size);
	if (n < 0)
		return (int)n;
	reply_len = (size_t)n;
	return reply_len > 0 ? 0 : -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: refserver --socket PATH (--reply-bytes N | --reply-file FILE)\n"
		   "Answers every request line on PATH with one fixed reply line.\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
			{"socket", required_argument, NULL, 's'},
			{"reply-bytes", required_argument, NULL, 'b'},
			{"reply-file", required_argument, NULL, 'f'},
			{"help", no_argument, NULL, 'h'},
			{0},
	};
	const char *path = NULL, *file = NULL;
	struct epoll_event events[MAX_EVENTS];
	long bytes = 0;
	int c, ep, lfd, r;

	while ((c = getopt_long(argc, argv, "s:b:f:h", options, NULL)) >= 0) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'b':
			bytes = strtol(optarg, NULL, 10);
			break;
		case 'f':
			file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || (!file && (bytes < 1 || bytes > (1 << 24)))) {
		usage(stderr);
		return 2;
	}
	if (file) {
		r = load_reply(file);
		if (r < 0) {
			fprintf(stderr, "refserver: cannot read %s: %s\n", file, strerror(-r));
			return 1;
		}
	} else {
		reply_len = (size_t)bytes;
		reply = malloc(reply_len);
		if (!reply)
			return 1;
		memset(reply, 'x', reply_len - 1);
		reply[reply_len - 1] = '\n';
	}

	lfd = listen_on(path);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0) {
		fprintf(stderr, "refserver: cannot listen on %s: %s\n", path,
				strerror(lfd < 0 ? -lfd : errno));
		return 1;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd,
			    &(struct epoll_event){.events = EPOLLIN, .data.fd = lfd}) < 0) {
		perror("refserver: epoll_ctl");
		return 1;
	}
	notify_ready();

	for (;;) {
		int n = epoll_wait(ep, events, MAX_EVENTS, -1);

		if (n < 0 && errno != EINTR) {
			perror("refserver: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;

			if (fd == lfd) {
				accept_all(ep, lfd);
				continue;
			}
			if ((size_t)fd >= n_conns || !conns[fd].open)
				continue; /* closed by an earlier event of this batch */
			r = 0;
			if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				r = conn_read(fd);
			if (r >= 0 && conn_flush(ep, fd) < 0)
				r = -1;
			if (r != 0)
				conn_close(fd);
		}
	}
}
