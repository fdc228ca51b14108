/* SPDX-License-Identifier: MIT */
/* Which daemon, and whose token: the socket a command used and the profile that named it, shown
 * by get --format json, status and whoami; and the whoami command. */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include "client/cli.h"

struct identity {
	char *socket;        /* the socket's path; owned */
	const char *profile; /* the profile that named it, or NULL when --socket or
				$REGSCALE_TOKEN_SOCKET did; not owned */
};

/* Resolves the socket as cli_socket_path() does, noting the profile. Returns 0 and fills *ret
 * (release with identity_done()), or the exit code after saying what went wrong. */
int identity_resolve(const struct globals *g, struct identity *ret);

/* Frees what id owns. */
void identity_done(struct identity *id);

/* Returns a copy of g that uses id's socket, so that a request goes where id says. */
struct globals identity_globals(const struct globals *g, const struct identity *id);

/* Resolves the socket (identity_resolve()) and asks the daemon there for its status. Returns 0
 * with *ret_id (identity_done()) and *rep (an "ok" reply, connect_reply_done()), or the exit
 * code after saying what went wrong (nothing to release then). */
int identity_status(const struct globals *g, struct identity *ret_id, struct connect_reply *rep);

/* Writes the reply line[0..len) (a JSON object) to fd with "socket" and "profile" (null for
 * none) added before its final '}', and a newline. The line goes out with writev(2), never
 * through a buffer of ours, so it may hold the token. Returns 0, -EBADMSG when the line does
 * not end in '}' after a field, or -errno. */
int identity_write_json(int fd, const char *line, size_t len, const struct identity *id);

/* Prints id as "socket:" and "profile:" lines in format_status()'s layout. */
void identity_print(FILE *f, const struct identity *id);

/* "whoami [--json]": prints whose token the daemon holds, "USERNAME (USER_ID) at URL" (or
 * "USER_ID at URL" when the username is unknown), from a status request. Returns the exit
 * code: EXIT_NO_TOKEN when the daemon holds none. */
int identity_run_whoami(const struct globals *g, int argc, char **argv);
