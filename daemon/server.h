/* SPDX-License-Identifier: MIT */
/* The Unix socket the daemon serves: listening (own socket or one passed by systemd),
 * accepting within limits, and one connection object per client that reads request lines
 * and writes reply lines without ever blocking the loop. */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>

#include <systemd/sd-event.h>

#include "daemon/access.h"
#include "daemon/ops.h"

struct server;

/* Of the PROTO_MAX_CLIENTS connections served at once, this many are kept for the daemon's
 * own uid and root: the other uids together hold at most PROTO_MAX_CLIENTS minus this, and
 * each of them at most [daemon] max_connections_per_user. When no slot is left for a new
 * client, a connection of another uid that sent nothing but ping (or nothing) for an
 * idle_timeout is closed with idle_timeout to make room; for the daemon's uid and root, any
 * connection of another uid between requests, and last one of their own that sent only
 * pings for an idle_timeout. */
#define SERVER_RESERVED_CLIENTS (PROTO_MAX_CLIENTS / 8)

/* Creates a server on event loop e (referenced) answering requests with env (borrowed, must
 * outlive it), with no listening socket yet. Returns 0 and *ret (owned by the caller,
 * server_free), or -ENOMEM. */
int server_new(sd_event *e, struct ops_env *env, struct server **ret);

/* Sets who may connect from now on (NULL: only the daemon's uid and root); a (borrowed)
 * access that must outlive its use. */
void server_set_access(struct server *s, const struct access *a);

/* Closes every connection and the listening socket, unlinking the socket file if this
 * server created it. Accepts NULL, returns NULL. */
struct server *server_free(struct server *s);

/* Serves a socket it creates at path (see listen_unix_path() for modes and stale sockets)
 * and unlinks on free. Returns 0 or -errno (logged). */
int server_listen_path(struct server *s, const char *path, bool shared);

/* Serves on fd, a listening Unix stream socket passed by the service manager. Takes
 * ownership of fd. Returns 0 or -errno. */
int server_listen_fd(struct server *s, int fd);

/* Serves a connected socket fd as a client (used by accept and by tests over
 * socketpair()). Takes ownership of fd, also on failure. Returns 0 or -errno. */
int server_add_connection(struct server *s, int fd);

/* Stops accepting, lets pending replies drain, and exits the event loop with code 0 when
 * the last connection is gone (or after a short grace period). */
void server_shutdown(struct server *s);

/* Answers again every request waiting for a login (called when one finished). */
void server_wake_waiters(struct server *s);

/* Returns the number of connected clients. */
unsigned server_n_connections(const struct server *s);
