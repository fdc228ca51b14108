/* SPDX-License-Identifier: MIT */
/* Talking to the daemon: finding its socket, and one request/reply exchange bounded by a
 * single deadline that covers connecting, sending and receiving. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/linebuf.h"
#include "proto/reply_read.h"

/* Longest profile name; it becomes part of the socket path. */
#define CONNECT_MAX_PROFILE 64

struct connect_reply {
	struct linebuf buf;
	const char *line;    /* the reply line as received, without newline; lives in buf */
	size_t len;          /* its length */
	struct reply_read r; /* the reply read from line: "ok" is a boolean, "v" PROTO_VERSION */
};

/* Returns true if name is a usable profile name: 1..CONNECT_MAX_PROFILE letters, digits,
 * '.', '_' or '-', not starting with '.'. */
bool connect_profile_valid(const char *name);

/* Resolves the daemon socket, the command line before the environment: socket_opt (--socket),
 * else the profile profile_opt (-p), else $REGSCALE_TOKEN_SOCKET, else the profile
 * $REGSCALE_TOKEN_PROFILE, else the profile "default". A profile NAME is
 * /run/regscale-token/NAME.sock if that exists, else $XDG_RUNTIME_DIR/regscale-token/NAME.sock
 * (/run/user/UID/... when XDG_RUNTIME_DIR is unset). Returns 0 and a new string in *ret_path
 * (caller frees) and, if ret_profile is not NULL, the profile's name in *ret_profile (static,
 * or from the arguments/environment), NULL when a path was named; -EINVAL for an empty path or
 * a bad profile name (*ret_bad names the offending value, static or from the
 * arguments/environment), -ENAMETOOLONG when the path does not fit a sockaddr_un, or -ENOMEM. */
int connect_socket_path(const char *socket_opt, const char *profile_opt, char **ret_path,
		const char **ret_bad, const char **ret_profile);

/* Connects to path within timeout_ms, waiting for room while the daemon's listen backlog
 * is full. Returns 0 and the connected socket (blocking, with SO_SNDTIMEO set; close-on-exec;
 * the caller closes it) in *ret_fd, or -ENOENT/-ECONNREFUSED (no daemon listening),
 * -EACCES/-EPERM (socket not accessible), -ETIMEDOUT, -ENAMETOOLONG, or another -errno. */
int connect_open(const char *path, int64_t timeout_ms, int *ret_fd);

/* Sends the request line req[0..len) (one JSON object ending in '\n') on fd and reads one
 * reply line, all within timeout_ms, to which fd's SO_SNDTIMEO and SO_RCVTIMEO are set.
 * With wipe, req is wiped (explicit_bzero) as soon as it has been sent, or on failure, so a
 * request holding a password is gone before the wait for the reply. Returns 0 and fills *ret
 * (release with connect_reply_done()), or: -ETIMEDOUT (deadline passed), -ECONNRESET/-EPIPE
 * (closed without a reply), -EMSGSIZE (reply line too long), -EBADMSG (reply refused by
 * reply_read_parse(): not a JSON object with a boolean "ok", a field named twice...), -EPROTO
 * (reply "v" is not PROTO_VERSION), or another -errno. */
int connect_exchange(int fd, char *req, size_t len, bool wipe, int64_t timeout_ms,
		struct connect_reply *ret);

/* Called once when a reply takes longer than CONNECT_SLOW_MS (the daemon waits for RegScale):
 * the moment to tell a person why nothing happens yet. */
struct connect_slow {
	void (*note)(void *userdata);
	void *userdata;
};

/* How long a reply may take before connect_slow's note is called, milliseconds. */
#define CONNECT_SLOW_MS 400

/* connect_exchange(), calling slow->note (when slow is not NULL) once the reply has taken
 * CONNECT_SLOW_MS. */
int connect_exchange_slow(int fd, char *req, size_t len, bool wipe, int64_t timeout_ms,
		const struct connect_slow *slow, struct connect_reply *ret);

/* Reads who serves the socket fd is connected to, as the kernel recorded it (SO_PEERCRED:
 * the process that called listen(), the service manager for a socket it passed on). Returns
 * 0 and *ret, or -errno. */
int connect_peer(int fd, struct ucred *ret);

/* Returns CLOCK_MONOTONIC in milliseconds, the clock of every timeout here. */
int64_t connect_now_ms(void);

/* Wipes the reply line, which holds the only copy of a token, and frees it. */
void connect_reply_done(struct connect_reply *r);
