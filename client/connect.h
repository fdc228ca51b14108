/* Talking to the daemon: finding its socket, and one request/reply exchange bounded by a
 * single deadline that covers connecting, sending and receiving. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/linebuf.h"

/* Longest profile name; it becomes part of the socket path. */
#define CONNECT_MAX_PROFILE 64

struct connect_reply {
	struct linebuf buf;
	const char *line;        /* the reply line as received, without newline; lives in buf */
	size_t len;              /* its length */
	struct json_object *obj; /* the parsed reply: "ok" is a boolean, "v" is PROTO_VERSION */
};

/* Returns true if name is a usable profile name: 1..CONNECT_MAX_PROFILE letters, digits,
 * '.', '_' or '-', not starting with '.'. */
bool connect_profile_valid(const char *name);

/* Resolves the daemon socket: socket_opt (--socket), else $REGSCALE_TOKEN_SOCKET, else the
 * profile (profile_opt, else $REGSCALE_TOKEN_PROFILE, else "default") as
 * /run/regscale-token/NAME.sock if that exists, else $XDG_RUNTIME_DIR/regscale-token/NAME.sock
 * (/run/user/UID/... when XDG_RUNTIME_DIR is unset). Returns 0 and a new string in *ret_path
 * (caller frees), -EINVAL for an empty path or a bad profile name (*ret_bad names the
 * offending value, static or from the arguments/environment), -ENAMETOOLONG when the path
 * does not fit a sockaddr_un, or -ENOMEM. */
int connect_socket_path(const char *socket_opt, const char *profile_opt, char **ret_path,
		const char **ret_bad);

/* Connects to path, sends {"op":op,"v":1} and reads one reply line, all within timeout_ms.
 * Returns 0 and fills *ret (release with connect_reply_done()), or: -ENOENT/-ECONNREFUSED
 * (no daemon listening), -EACCES/-EPERM (socket not accessible), -ETIMEDOUT (deadline
 * passed), -ECONNRESET (closed without a reply), -EMSGSIZE (reply line too long), -EBADMSG
 * (reply not a JSON object with boolean "ok"), -EPROTO (reply "v" is not PROTO_VERSION),
 * -ENAMETOOLONG, or another -errno. */
int connect_call(const char *path, const char *op, int64_t timeout_ms, struct connect_reply *ret);

/* Wipes the reply line and the "token" string of the parsed reply, frees both. */
void connect_reply_done(struct connect_reply *r);
