/* SPDX-License-Identifier: MIT */
/* The daemon's side of the pipe contract (daemon/helper/pipe.h): a login (or a token
 * validation) runs in a short-lived helper process, regscale-token-login, which the daemon
 * feeds through a socket once it said it is ready, and whose answer it reads into guarded memory.
 * The daemon never links libcurl and never parses server data itself. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/secret.h"
#include "daemon/config.h"
#include "daemon/helper/pipe.h"

enum helper_mode {
	HELPER_MODE_LOGIN,    /* POST /api/authentication/login */
	HELPER_MODE_VALIDATE, /* POST /api/authentication/validateToken */
};

struct helper_result {
	enum helper_outcome outcome;
	int http_status;                    /* 0 when no HTTP answer came */
	int64_t retry_after;                /* seconds from a Retry-After header, -1 when none */
	int64_t expires_in;                 /* seconds from an "expires_in" field, -1 when none */
	char user_id[PIPE_MAX_USER_ID + 1]; /* from the login answer, may be empty */
	char message[PIPE_MAX_MESSAGE];     /* one line for logs and status: no secret bytes */
	struct secret *token; /* the JWT on HELPER_OK in login mode, else NULL; owned by the result
			       */
};

struct helper_input {
	enum helper_mode mode;
	const struct config *config;   /* url, ca_file, proxy, login_api, timeouts */
	const char *username;          /* login mode */
	const struct secret *password; /* login mode */
	const char *mfa;               /* login mode, may be NULL */
	const struct secret *token;    /* validate mode */
};

struct helper_proc;

/* Called once when the helper is done (or was killed at the total timeout). The result
 * and its token belong to the callee for the duration of the call only: seal the token,
 * don't keep the pointer. The caller's pointer (*ret of helper_start()) is already NULL
 * when this runs, and the helper object is freed after it returns. */
typedef void (*helper_done_t)(struct helper_result *result, void *userdata);

/* Spawns helper_path (stdin/stdout are sockets, stderr is inherited so its one log line
 * lands in the daemon's log), writes req to it and watches it on e. Returns 0 and *ret
 * (owned by the caller until done runs; helper_free cancels), or -errno. *ret must stay
 * where it is while the helper runs: it is set to NULL when the helper is done or freed. */
int helper_start(sd_event *e, const char *helper_path, const struct helper_input *req,
		helper_done_t done, void *userdata, struct helper_proc **ret);

/* Cancels a helper in flight (kills and reaps it, wipes buffers) without calling done, and
 * clears the caller's pointer to it. Accepts NULL, returns NULL. */
struct helper_proc *helper_free(struct helper_proc *l);
