/* SPDX-License-Identifier: MIT */
/* The pipe contract between regscale-tokend and regscale-token-login: the one header both
 * programs include, as proto/proto.h is for the socket. Change it only on both sides at once.
 *
 * One run of the helper is one exchange with RegScale:
 *   1. The daemon spawns the helper in a process group of its own (the daemon kills the
 *      whole group at the timeout and when it cancels), with its stdin and stdout on
 *      sockets, one direction each (stderr is the daemon's log). Sockets, not pipes: another
 *      process of the same user can open a pipe through /proc/PID/fd/N, a socket never.
 *   2. The helper hardens itself before anything else: non-dumpable (harden_process()), then
 *      no tracer ("TracerPid:\t0" in /proc/self/status; a tracer attached earlier would keep
 *      its access), unless its tracer traces the daemon too (strace -f of the service: that
 *      one has the daemon's secrets anyway). Then it writes PIPE_READY on stdout. If it
 *      cannot, it writes an answer instead ("config" when it is traced or dumpable) and
 *      exits without reading.
 *   3. Only once the daemon has read PIPE_READY does it write one request, then it closes
 *      the socket (end of request). Until then no secret exists in the helper: another
 *      process of the daemon's user that looks early finds nothing, and later the kernel
 *      refuses it. (Not quite: a process allowed to ptrace the helper may open its
 *      /proc/PID/mem before harden_process() and read through it later. Installed 0711, not
 *      readable by the daemon's user, the helper is non-dumpable from exec on.) Anything but
 *      PIPE_READY first is the answer: no request is sent. A helper not ready within
 *      PIPE_READY_TIMEOUT_MSEC gets no request either (its stdin is closed) and the run is
 *      a transient failure.
 *   4. The helper does one HTTPS exchange, writes one answer on stdout, logs one line on
 *      stderr and exits with the answer's outcome as its exit status.
 *
 * Both messages are sequences of fields "NAME LEN\nBYTES\n" (common/fields.h): binary-safe,
 * parsed in place, so secrets never leave guarded memory. Unknown fields are ignored (a newer
 * daemon may send more); a field given twice is an error.
 *
 * Request fields (daemon -> helper):
 *   mode               "login" or "validate"
 *   url                RegScale base URL, checked by the daemon's config and again here
 *   login_api          "v1" or "v2"
 *   ca_file, proxy     optional
 *   connect_timeout    seconds, 1..PIPE_MAX_TIMEOUT
 *   total_timeout      seconds, 1..PIPE_MAX_TIMEOUT
 *   user_agent_version the daemon's version, [0-9a-z.-]
 *   username, password, mfa (optional)   login mode
 *   token              validate mode: the JWT to check
 *
 * Answer fields (helper -> daemon), the token last:
 *   outcome            helper_outcome_name(); equal to the exit status
 *   http_status        0 when no HTTP answer came
 *   retry_after        seconds from a Retry-After header, -1 when none
 *   expires_in         seconds from an "expires_in" answer field, -1 when none
 *   user_id            from the login answer, may be empty, printable ASCII
 *   message            one line for the log and status: printable ASCII, no secret bytes
 *   token              login mode with outcome "ok" only: the JWT */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "common/jwt.h"

/* Longest request and answer messages, in bytes. */
#define PIPE_MAX_REQUEST (16 * 1024 + PIPE_MAX_TOKEN)
#define PIPE_MAX_ANSWER  (8 * 1024 + PIPE_MAX_TOKEN)

/* Longest token either side accepts: the longest JWT the daemon stores. */
#define PIPE_MAX_TOKEN JWT_MAX_LEN

/* Longest user id in an answer, and longest message (NUL included). */
#define PIPE_MAX_USER_ID JWT_MAX_USER_ID
#define PIPE_MAX_MESSAGE 256

/* Longest password a login request carries, in bytes. */
#define PIPE_MAX_PASSWORD 4096

/* Largest connect_timeout and total_timeout the helper accepts, seconds. */
#define PIPE_MAX_TIMEOUT 3600

/* What the helper writes first, hardened and untraced, to ask for the request: a field named
 * PIPE_F_READY with an empty value. Not part of the answer that follows. */
#define PIPE_F_READY "ready"
#define PIPE_READY   PIPE_F_READY " 0\n\n"

/* How long after the spawn the daemon waits for PIPE_READY, milliseconds. The helper says it
 * before doing any network work, so this only allows for a slow start. */
#define PIPE_READY_TIMEOUT_MSEC 1000

/* Field names. */
#define PIPE_F_MODE            "mode"
#define PIPE_F_URL             "url"
#define PIPE_F_LOGIN_API       "login_api"
#define PIPE_F_CA_FILE         "ca_file"
#define PIPE_F_PROXY           "proxy"
#define PIPE_F_CONNECT_TIMEOUT "connect_timeout"
#define PIPE_F_TOTAL_TIMEOUT   "total_timeout"
#define PIPE_F_VERSION         "user_agent_version"
#define PIPE_F_USERNAME        "username"
#define PIPE_F_PASSWORD        "password"
#define PIPE_F_MFA             "mfa"
#define PIPE_F_TOKEN           "token"
#define PIPE_F_OUTCOME         "outcome"
#define PIPE_F_HTTP_STATUS     "http_status"
#define PIPE_F_RETRY_AFTER     "retry_after"
#define PIPE_F_EXPIRES_IN      "expires_in"
#define PIPE_F_USER_ID         "user_id"
#define PIPE_F_MESSAGE         "message"

/* Values of the mode and login_api fields. */
#define PIPE_MODE_LOGIN    "login"
#define PIPE_MODE_VALIDATE "validate"
#define PIPE_API_V1        "v1"
#define PIPE_API_V2        "v2"

/* What the helper's answer and exit status say. Stable: they are its exit codes. */
enum helper_outcome {
	HELPER_OK = 0,         /* a token (login) or a confirmation (validate) */
	HELPER_REJECTED = 10,  /* 400/401/403: the credentials or token are wrong; never retried */
	HELPER_TRANSIENT = 11, /* network, DNS, TLS, timeout, 5xx, 429, helper crash: retry */
	HELPER_PROTOCOL = 12,  /* the server answered, but not in a form we understand */
	HELPER_CONFIG = 13,    /* bad URL, unreadable CA file...: retrying will not help */
	HELPER_MFA_REQUIRED = 14, /* 400/401/403 asking for a one-time code the login had not */
};

/* Returns the wire name of o ("ok", "rejected", "transient", "protocol", "config",
 * "mfa_required"), or
 * "unknown" for a value outside the enum. */
static inline const char *helper_outcome_name(enum helper_outcome o)
{
	switch (o) {
	case HELPER_OK:
		return "ok";
	case HELPER_REJECTED:
		return "rejected";
	case HELPER_TRANSIENT:
		return "transient";
	case HELPER_PROTOCOL:
		return "protocol";
	case HELPER_CONFIG:
		return "config";
	case HELPER_MFA_REQUIRED:
		return "mfa_required";
	}
	return "unknown";
}

/* Returns the outcome named by v[0..len), or -EINVAL when it names none. */
static inline int helper_outcome_from_name(const char *v, size_t len)
{
	static const enum helper_outcome all[] = {HELPER_OK, HELPER_REJECTED, HELPER_TRANSIENT,
			HELPER_PROTOCOL, HELPER_CONFIG, HELPER_MFA_REQUIRED};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *name = helper_outcome_name(all[i]);
		if (strlen(name) == len && memcmp(name, v, len) == 0)
			return (int)all[i];
	}
	return -EINVAL;
}
