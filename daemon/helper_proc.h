/* The one interface between the daemon and the code that talks to RegScale: a login (or a
 * token validation) runs in a short-lived helper process, regscale-token-login, which the
 * daemon feeds through a pipe and whose answer it reads from a pipe into guarded memory.
 * The daemon never links libcurl and never parses server data itself. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "daemon/config.h"
#include "common/secret.h"

/* What the helper's exit status and answer say. Stable: also the helper's exit codes. */
enum login_outcome {
	LOGIN_OK = 0,            /* a token (login) or a confirmation (validate) */
	LOGIN_REJECTED = 10,     /* 400/401/403: the credentials or token are wrong; never retried */
	LOGIN_TRANSIENT = 11,    /* network, DNS, TLS, timeout, 5xx, 429, helper crash: retry */
	LOGIN_PROTOCOL = 12,     /* the server answered, but not in a form we understand */
	LOGIN_CONFIG = 13,       /* bad URL, unreadable CA file...: retrying will not help */
};

enum login_mode {
	LOGIN_MODE_LOGIN,    /* POST /api/authentication/login */
	LOGIN_MODE_VALIDATE, /* POST /api/authentication/validateToken */
};

struct login_result {
	enum login_outcome outcome;
	int http_status;     /* 0 when no HTTP answer came */
	int64_t retry_after; /* seconds from a Retry-After header, -1 when none */
	int64_t expires_in;  /* seconds from an "expires_in" field, -1 when none */
	char user_id[129];   /* from the login answer, may be empty */
	char message[256];   /* one line for logs and status: no secret bytes */
	struct secret *token; /* the JWT on LOGIN_OK in login mode, else NULL; owned by the result */
};

struct login_request {
	enum login_mode mode;
	const struct config *config; /* url, ca_file, proxy, login_api, timeouts */
	const char *username;        /* login mode */
	const struct secret *password; /* login mode */
	const char *mfa;             /* login mode, may be NULL */
	const struct secret *token;  /* validate mode */
};

struct login;

/* Called once when the helper is done (or was killed at the total timeout). The result
 * and its token belong to the callee for the duration of the call only: seal the token,
 * don't keep the pointer. The login object is freed after the callback returns. */
typedef void (*login_done_t)(struct login_result *result, void *userdata);

/* Spawns helper_path (stdin/stdout are pipes, stderr is inherited so its one log line
 * lands in the daemon's log), writes req to it and watches it on e. Returns 0 and *ret
 * (owned by the caller until done runs; login_free cancels), or -errno. */
int login_start(sd_event *e, const char *helper_path, const struct login_request *req,
	login_done_t done, void *userdata, struct login **ret);

/* Cancels a login in flight (kills and reaps the helper, wipes buffers) without calling
 * done. Accepts NULL, returns NULL. */
struct login *login_free(struct login *l);

/* Returns the wire/log name of an outcome ("ok", "rejected"...). */
const char *login_outcome_name(enum login_outcome o);
