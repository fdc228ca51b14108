/* SPDX-License-Identifier: MIT */
/* Who may use the daemon. Every connection's peer is identified by the kernel
 * (SO_PEERCRED, SO_PEERGROUPS for its supplementary groups), never by anything it says.
 * Readers may get the token and status; admins may also change what the daemon holds
 * (login, logout, refresh). The daemon's own uid and root are always admins. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "daemon/config.h"

enum access_level {
	ACCESS_NONE,
	ACCESS_READ,
	ACCESS_ADMIN,
};

struct access;

/* A connected client as the kernel describes it, and what it may do. */
struct peer {
	struct ucred ucred;
	enum access_level level;
};

/* Resolves the names and numbers of allow_users, allow_groups, admin_users and
 * admin_groups in c. Returns 0 and *ret (owned by the caller, access_free), or -EINVAL with
 * one line naming the key and the unknown name in errbuf, or -ENOMEM. */
int access_new(const struct config *c, struct access **ret, char *errbuf, size_t errlen);

/* Frees a. Accepts NULL, returns NULL. */
struct access *access_free(struct access *a);

/* Returns true when others than the daemon's uid and root are allowed in: the socket then
 * has to be reachable by them (mode 0666 in a 0755 directory; the check is done here). */
bool access_is_shared(const struct access *a);

/* Returns the level of the peer connected on fd, whose credentials are peer, for a daemon
 * running as uid self. A NULL a allows only self and root. */
enum access_level access_check(
		const struct access *a, uid_t self, int fd, const struct ucred *peer);
