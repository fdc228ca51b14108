/* SPDX-License-Identifier: MIT */
/* Creating the daemon's own listening socket at a path: directory and socket modes set at
 * creation (no chmod window), a directory found only used when nobody else controls it,
 * stale sockets replaced, live ones never stolen. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Creates the directory of path if missing, or else checks that it is a real directory (a
 * symlink is refused) owned by the effective uid or root and not writable by group or
 * others (-EPERM or -ENOTDIR, logged: another user could replace the socket). Then binds
 * and listens on path with a umask that gives the socket its mode from the start:
 * directory 0700 and socket 0600, or when shared (other users are allowed, see access.h)
 * 0755 and 0666. A stale socket file (nobody accepts on it) is replaced; a live one is left
 * alone and -EADDRINUSE returned; a file that is not a socket gives -EEXIST. Returns 0 with
 * the listening, non-blocking, close-on-exec socket in *ret_fd (owned by the caller) and
 * the socket file's inode in *ret_ino, or -errno (logged). */
int listen_unix_path(const char *path, bool shared, int *ret_fd, ino_t *ret_ino);

/* Returns the address a Unix socket fd is bound to (a socket systemd passed us), in *ret (a
 * new string, the caller frees): its path, or "@NAME" for an abstract one. -EADDRNOTAVAIL
 * for a socket bound to no address, else -errno. */
int listen_socket_path(int fd, char **ret);
