/* SPDX-License-Identifier: MIT */
/* refclient: the reference of `regscale-token get` in tests/bench/run.
 *
 *   refclient SOCKET
 *
 * What any client of the protocol has to do and nothing more: connect, send {"op":"get"},
 * read the reply line, print the value of "token" and a newline. No option parsing beyond
 * the path, no JSON parser (a strstr() finds the field), no check of who serves the socket.
 * A dynamically linked program of libc only, so its start-up is the floor of a client's
 * too. Exits 0 when it printed a token, 1 otherwise. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"

int main(int argc, char **argv)
{
	static const char request[] = "{\"op\":\"get\"}\n";
	static char buf[65536 + 1];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_(closep) int fd = -EBADF;
	size_t len = 0;
	char *tok, *end;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "Usage: refclient SOCKET\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
			loop_write(fd, request, sizeof(request) - 1) < 0) {
		perror("refclient");
		return 1;
	}
	while (len < sizeof(buf) - 1 && !memchr(buf, '\n', len)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 1;
		len += (size_t)n;
	}
	buf[len] = '\0';
	tok = strstr(buf, "\"token\":\"");
	if (!tok)
		return 1;
	tok += strlen("\"token\":\"");
	end = strchr(tok, '"');
	if (!end)
		return 1;
	*end++ = '\n';
	return loop_write(STDOUT_FILENO, tok, (size_t)(end - tok)) < 0 ? 1 : 0;
}
